"""One query across live and archived versions.

A small demo datastack (versions 343 and 661) is served by ``caveql serve`` with version 343
marked expired (its ``version.json`` ``valid: false``: the service lists it no more, as MICrONs
does a year after a release), next to a Delta Lake archive of 343 written from the demo's own
service before it expired (``caveql snapshot --format delta``). A connection with the archive
reads 343 from the archive and 661 from the service, says so in EXPLAIN and SHOW VERSIONS, and
still answers 343 when the service is down.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

import caveql
from caveql.backends.local import LocalBackend
from caveql.backends.routing import RoutingBackend
from caveql.datastack.snapshot import snapshot
from caveql.engine import Engine
from caveql.errors import CaveqlError, TransportError
from caveql.repl.cli import main
from tests.server.conftest import TOKEN, serve

pytestmark = pytest.mark.timeout(300)

DROPPED = ("created", "deleted", "superceded_id")  # the exporter drops them


@pytest.fixture(scope="module")
def archive(demo_4k, tmp_path_factory) -> Path:
    """Version 343 exported from the demo's service (before it expired) as Delta Lake tables."""
    served = serve(demo_4k)
    try:
        dest = tmp_path_factory.mktemp("exports") / "minnie65_demo"
        with served.http() as http:
            snapshot(http, 343, dest, format="delta", small_table_mb=0, n_partitions=2, progress=None)
        return dest
    finally:
        served.stop()


@pytest.fixture(scope="module")
def expired_demo(demo_4k, tmp_path_factory) -> Path:
    """The demo with version 343 expired."""
    folder = tmp_path_factory.mktemp("expired") / "minnie65_demo"
    shutil.copytree(demo_4k, folder)
    meta_path = folder / "versions" / "343" / "version.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "valid": False, "status": "EXPIRED"}))
    return folder


@pytest.fixture(scope="module")
def service(expired_demo):
    served = serve(expired_demo)
    yield served
    served.stop()


@pytest.fixture
def routed(service, archive):
    with caveql.connect("minnie65_demo", server=service.url, token=TOKEN, cache=False,
                        archives=[archive]) as db:
        yield db


@pytest.fixture(scope="module")
def original(demo_4k):
    b = LocalBackend(demo_4k)
    yield Engine(b)
    b.close()


def _drop(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=[c for c in frame.columns if c.removesuffix("_ref") in DROPPED])


def _root(original: Engine, version: int) -> int:
    frame = original.execute(f"SELECT pre_pt_root_id, COUNT(*) AS n FROM synapses_pni_2 "
                             f"GROUP BY pre_pt_root_id ORDER BY n DESC, pre_pt_root_id LIMIT 1 "
                             f"AT VERSION {version}").frame
    return int(frame.pre_pt_root_id[0])


def test_the_service_lists_343_no_more(service, routed):
    with service.http() as http:
        assert http.versions() == [661]
    assert isinstance(routed.engine.backend, RoutingBackend)
    assert routed.engine.backend.versions() == [343, 661]


STATEMENTS = [
    "SELECT * FROM synapses_pni_2 WHERE pre_pt_root_id = {root} AT VERSION {v}",
    "SELECT id, pt_root_id, pt_position FROM nucleus_detection_v0 WHERE volume > 200 ORDER BY id "
    "LIMIT 50 AT VERSION {v}",
    "SELECT * FROM aibs_soma_nuc_metamodel_preds_v117 WHERE cell_type = 'BC' AT VERSION {v}",
    "SELECT cell_type, COUNT(*) AS n FROM aibs_soma_nuc_metamodel_preds_v117 GROUP BY cell_type "
    "ORDER BY cell_type AT VERSION {v}",
    "SELECT s.id, c.cell_type FROM synapses_pni_2 s JOIN aibs_soma_nuc_metamodel_preds_v117 c "
    "ON s.post_pt_root_id = c.pt_root_id WHERE s.pre_pt_root_id = {root} ORDER BY s.id AT VERSION {v}",
]


@pytest.mark.parametrize("version", [343, 661])
@pytest.mark.parametrize("template", STATEMENTS)
def test_each_version_answers_as_the_demo_did(routed, original, version, template):
    cql = template.format(v=version, root=_root(original, version))
    want = _drop(original.execute(cql).frame)
    got = _drop(routed.query(cql))
    assert len(want) > 0
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True))


def test_explain_names_the_source_of_every_call(routed, service, archive, original):
    root = _root(original, 343)
    old = routed.explain(f"SELECT * FROM synapses_pni_2 WHERE pre_pt_root_id = {root} AT VERSION 343")
    new = routed.explain(f"SELECT * FROM synapses_pni_2 WHERE pre_pt_root_id = {root} AT VERSION 661")
    assert f"source: archive {archive} (version 343 not among the service's valid versions)" in old
    assert f"source: service {service.url}" in new and "archive" not in new.split("Remote calls:")[1]
    both = routed.explain(
        "SELECT s.id, c.cell_type FROM synapses_pni_2 s JOIN aibs_soma_nuc_metamodel_preds_v117 c "
        f"ON s.post_pt_root_id = c.pt_root_id WHERE s.pre_pt_root_id = {root} AT VERSION 343")
    assert both.count("source: archive") == 2  # every call of the statement names it


def test_one_statement_reads_both(routed, original, service, archive):
    """A set operation whose branches read an archived version and a served one."""
    cql = ("SELECT pt_root_id FROM nucleus_detection_v0 WHERE volume > 200 AT VERSION 343 "
           "EXCEPT SELECT pt_root_id FROM nucleus_detection_v0 WHERE volume > 200 AT VERSION 661")
    want = original.execute(cql).frame
    got = routed.query(cql)
    assert len(want) > 0
    assert sorted(got.pt_root_id.tolist()) == sorted(want.pt_root_id.tolist())
    plan = routed.explain(cql)
    assert f"source: archive {archive} (version 343" in plan and f"source: service {service.url}" in plan


def test_show_versions_says_where_each_lives(routed, archive):
    frame = routed.query("SHOW VERSIONS")
    rows = {int(r.version): r for r in frame.itertuples()}
    assert sorted(rows) == [343, 661]
    assert rows[343].location == str(archive) and bool(rows[343].expired)
    assert rows[343].answered_by == "archive"
    assert rows[661].location == "service" and not rows[661].expired and not pd.isna(rows[661].expired)
    assert rows[661].answered_by == "service"
    # the expired version keeps the service's record (its time stamp)
    assert str(rows[343].time_stamp).startswith("2022-02-24")


def test_a_version_in_both_is_answered_by_the_service(service, archive, tmp_path):
    """An archive of 661 too: the service still lists 661, so it answers it."""
    with service.http() as http:
        snapshot(http, 661, archive, tables=["nucleus_detection_v0"], format="delta", small_table_mb=0,
                 progress=None)
    try:
        with caveql.connect("minnie65_demo", server=service.url, token=TOKEN, cache=False,
                            archives=[archive]) as db:
            frame = db.query("SHOW VERSIONS")
            row = frame[frame.version == 661].iloc[0]
            assert row.location == f"service + {archive}" and row.answered_by == "service"
            assert f"source: service {service.url}" in db.explain(
                "SELECT id FROM nucleus_detection_v0 AT VERSION 661")
    finally:
        shutil.rmtree(archive / "v661")


def test_service_down_the_archive_still_answers(expired_demo, archive, original):
    served = serve(expired_demo)
    root = _root(original, 343)
    old = f"SELECT * FROM synapses_pni_2 WHERE pre_pt_root_id = {root} AT VERSION 343"
    want = _drop(original.execute(old).frame)
    with caveql.connect("minnie65_demo", server=served.url, token=TOKEN, cache=False,
                        archives=[archive]) as db:
        assert db.query("SELECT COUNT(*) AS n FROM nucleus_detection_v0 AT VERSION 661").n[0] > 0
        served.stop()
        got = _drop(db.query(old))
        pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True))
        with pytest.raises(TransportError, match="refused"):
            db.query("SELECT COUNT(*) AS n FROM nucleus_detection_v0 AT VERSION 661")
        # the failure marked the service down: no call tries it again for a while
        assert "(service unreachable)" in db.explain(old)
        got = _drop(db.query(old))
        pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True))
        frame = db.query("SHOW VERSIONS")
        assert frame.version.tolist() == [343] and frame.expired.isna().all()
    # a connection opened while the service is down
    with caveql.connect("minnie65_demo", server=served.url, token=TOKEN, cache=False,
                        archives=[archive]) as db:
        got = _drop(db.query(old))
        pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True))
        assert f"source: archive {archive} (service unreachable)" in db.explain(old)


def test_cli_archive_flag_routes(service, archive, original, capsys):
    root = _root(original, 343)
    q = f"SELECT id, size FROM synapses_pni_2 WHERE pre_pt_root_id = {root} ORDER BY id AT VERSION 343"
    args = ["--datastack", "minnie65_demo", "--server", service.url, "--token", TOKEN, "--no-cache"]
    assert main([*args, "--archive", str(archive), "-c", q, "-F", "csv"]) == 0
    got = capsys.readouterr().out
    want = original.execute(q).frame.to_csv(index=False)
    assert got.replace("\r\n", "\n") == want
    assert main([*args, "--archive", str(archive), "-c", "SHOW VERSIONS", "-F", "csv"]) == 0
    shown = capsys.readouterr().out
    assert "location" in shown.splitlines()[0] and str(archive) in shown
    # without the archive the expired version is not there
    assert main([*args, "-c", q]) == 1
    assert "343" in capsys.readouterr().err


def test_a_bad_archive_location_is_named(service, tmp_path):
    with pytest.raises(CaveqlError, match="no Delta Lake archive at"):
        caveql.connect("minnie65_demo", server=service.url, token=TOKEN, cache=False,
                       archives=[str(tmp_path)])


def test_config_key_archives(tmp_path):
    import os

    from caveql.errors import ConfigError
    from caveql.repl.config import Config

    cfg = Config.from_toml('[connection]\n'
                           'archives = ["~/exports/minnie65_public", "gs://b/minnie65_public"]\n')
    assert cfg.archives == [os.path.expanduser("~/exports/minnie65_public"), "gs://b/minnie65_public"]
    with pytest.raises(ConfigError, match="'archives' must be"):
        Config.from_toml("[connection]\narchives = [1]\n")
    with pytest.raises(ConfigError, match="'archives' must be list"):
        Config.from_toml('[connection]\narchives = "x"\n')


def test_config_archives_reach_the_connection(service, archive, original, tmp_path, monkeypatch, capsys):
    root = _root(original, 343)
    q = f"SELECT id FROM synapses_pni_2 WHERE pre_pt_root_id = {root} ORDER BY id AT VERSION 343"
    config = tmp_path / "config.toml"
    config.write_text(f'[connection]\narchives = ["{archive}"]\n')
    monkeypatch.setenv("CAVEQL_CONFIG", str(config))
    args = ["--datastack", "minnie65_demo", "--server", service.url, "--token", TOKEN, "--no-cache"]
    assert main([*args, "-c", q, "-F", "csv"]) == 0
    assert capsys.readouterr().out.replace("\r\n", "\n") == original.execute(q).frame.to_csv(index=False)
