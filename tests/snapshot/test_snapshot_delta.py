"""``caveql snapshot --format delta``: the tiny datastack served at a 4-row cap, written in
MaterializationEngine's Delta Lake export layout, read back by the archive backend with the same
answers; the layout is the exporter's; resumable; on the command line."""

from __future__ import annotations

import shutil

import pandas as pd
import pyarrow as pa
import pytest
from deltalake import DeltaTable

from caveql.backends.archive import ArchiveBackend
from caveql.backends.local import LocalBackend
from caveql.datastack.snapshot import snapshot
from caveql.engine import Engine
from caveql.errors import ConfigError
from caveql.repl.cli import main

from .conftest import TOKEN
from .test_snapshot import STATEMENTS

pytestmark = pytest.mark.timeout(120)

DROPPED = ("created", "deleted", "superceded_id")  # the exporter drops them


def _drop(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=[c for c in frame.columns if c.removesuffix("_ref") in DROPPED])


@pytest.fixture(scope="module")
def exported(tiny_capped, tmp_path_factory):
    """Both versions of the tiny datastack through the 4-row cap, every copy, 2 partitions each."""
    from caveql.backends.http import HttpBackend

    dest = tmp_path_factory.mktemp("delta") / "tiny"
    with HttpBackend("tiny", server=tiny_capped.url, token=TOKEN, cache=False, progress=False) as http:
        reports = [snapshot(http, v, dest, progress=None, workers=2, format="delta", small_table_mb=0,
                            n_partitions=2) for v in (1, 2)]
    return dest, reports


@pytest.fixture(scope="module")
def engines(exported, tiny_datastack):
    orig, copy = LocalBackend(tiny_datastack), ArchiveBackend(exported[0])
    yield Engine(orig), Engine(copy)
    orig.close()
    copy.close()


@pytest.mark.parametrize("cql", STATEMENTS)
def test_the_archive_answers_as_the_original(engines, cql):
    orig, copy = engines
    want, got = _drop(orig.execute(cql).frame), copy.execute(cql).frame
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True))


def test_the_exporters_layout(exported, tiny_datastack):
    dest, reports = exported
    orig = LocalBackend(tiny_datastack)
    try:
        for report in reports:
            v = report.version
            names = sorted([*orig.tables(v), *orig.views(v)])
            assert sorted(p.name for p in (dest / f"v{v}").iterdir()) == names
            for t in report.tables:
                assert not t.skipped
                assert t.view or t.rows == orig.table_count(v, t.name)
    finally:
        orig.close()
    # a view: the exporter's `flat` copy (no `id` column, no point: no other copy)
    assert [p.name for p in (dest / "v2" / "syn_counts").iterdir()] == ["flat"]
    assert DeltaTable(str(dest / "v2" / "syn_counts" / "flat")).metadata().partition_columns == []
    synapses = dest / "v2" / "synapses"
    assert sorted(p.name for p in synapses.iterdir()) == ["ctr_pt_position_morton", "id", "post_pt_root_id",
                                                          "pre_pt_root_id"]
    assert sorted(p.name for p in (dest / "v2" / "cell_types").iterdir()) == ["id", "target_id"]
    for spec in synapses.iterdir():
        dt = DeltaTable(str(spec))
        schema = pa.schema(dt.schema().to_arrow())
        assert dt.metadata().partition_columns == [f"{spec.name}_partition"]
        assert not set(DROPPED) & set(schema.names)
        # only the Morton copy's point is decoded (appended, Int32); the others stay (E)WKB
        assert schema.names[-5 if spec.name.endswith("_morton") else -4:][:3] == [
            "ctr_pt_position_x", "ctr_pt_position_y", "ctr_pt_position_z"]
        assert schema.field("ctr_pt_position_x").type == pa.int32()
        assert schema.field("pre_pt_position").type == pa.binary()
        assert schema.field("size").type == pa.float64()  # double precision, as in PostgreSQL
        assert len({a["partition.ctr_pt_position_morton_partition" if spec.name.endswith("_morton")
                      else f"partition.{spec.name}_partition"]
                    for a in pa.table(dt.get_add_actions(flatten=True)).to_pylist()}) == 2
        ops = [h["operation"] for h in dt.history()]
        assert "OPTIMIZE" in ops and "VACUUM END" in ops  # z-ordered, then vacuumed
    assert (dest / "archive.json").is_file() and not (dest / ".partial").exists()


def test_small_tables_keep_their_id_copy(tiny_capped, tmp_path):
    """As the exporter does below DELTALAKE_SMALL_TABLE_THRESHOLD_MB (200 MB by default)."""
    from caveql.backends.http import HttpBackend

    with HttpBackend("tiny", server=tiny_capped.url, token=TOKEN, cache=False, progress=False) as http:
        snapshot(http, 2, tmp_path / "tiny", tables=["synapses"], progress=None, format="delta")
    assert [p.name for p in (tmp_path / "tiny" / "v2" / "synapses").iterdir()] == ["id"]


def test_resumes_and_redoes_a_damaged_table(exported, tiny_capped):
    from caveql.backends.http import HttpBackend

    dest = exported[0]
    with HttpBackend("tiny", server=tiny_capped.url, token=TOKEN, cache=False, progress=False) as http:
        again = snapshot(http, 2, dest, progress=None, format="delta", small_table_mb=0, n_partitions=2)
        assert all(t.skipped for t in again.tables)
        shutil.rmtree(dest / "v2" / "cells" / "pt_root_id" / "_delta_log")  # a copy damaged
        redo = snapshot(http, 2, dest, progress=None, format="delta", small_table_mb=0, n_partitions=2)
    assert {t.name for t in redo.tables if not t.skipped} == {"cells"}
    with ArchiveBackend(dest) as b:
        assert b.table_count(2, "cells") == 6


def test_where_copies_only_the_rows_kept(tiny_capped, tmp_path, tiny_datastack):
    from caveql.backends.http import HttpBackend

    with HttpBackend("tiny", server=tiny_capped.url, token=TOKEN, cache=False, progress=False) as http:
        r = snapshot(http, 2, tmp_path / "tiny", tables=["synapses"], where="size > 100", progress=None,
                     format="delta", small_table_mb=0)
    with ArchiveBackend(tmp_path / "tiny") as b, LocalBackend(tiny_datastack) as orig:
        want = Engine(orig).execute("SELECT id FROM synapses WHERE size > 100").frame
        got = Engine(b).execute("SELECT id FROM synapses").frame
        assert got.id.tolist() == want.id.tolist() and r.tables[0].rows == len(want) > 0


def test_bad_format_options(tmp_path, tiny_datastack):
    with LocalBackend(tiny_datastack) as src:
        with pytest.raises(ConfigError, match="format must be"):
            snapshot(src, 2, tmp_path / "x", format="csv", progress=None)
        with pytest.raises(ConfigError, match="options of format='delta'"):
            snapshot(src, 2, tmp_path / "x", small_table_mb=0, progress=None)


def test_snapshot_command_delta(tiny_capped, tmp_path, capsys):
    dest = tmp_path / "tiny"
    args = ["snapshot", "-d", "tiny", "--server", tiny_capped.url, "--token", TOKEN, "--version", "2",
            "--path", str(dest), "--no-cache", "--tables", "cells", "synapses", "--format", "delta",
            "--small-table-mb", "0", "-q"]
    assert main(args) == 0
    assert capsys.readouterr().out.strip() == f"{dest}: 2 tables at version 2, 16 rows copied"
    q = "SELECT id, pt_root_id FROM cells ORDER BY id"
    assert main(["--archive", str(dest), "-c", q, "-F", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[1:3] == ["1,1001", "2,1002"]
    assert main([*args[:-5], "--partitions", "2", "-q"]) == 2  # without --format delta
    assert "go with --format delta" in capsys.readouterr().err
