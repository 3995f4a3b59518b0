"""Genuine Delta Lake exports, read by ArchiveBackend: the same answers as LocalBackend on the
source folder and as the genuine engine serving the same version.

The tiny datastack is loaded into the conformance cluster (``genuine_tiny``), then every table
and view of each version is exported by the engine's own ``export_table_to_deltalake`` /
``export_view_to_deltalake`` (``me_export.py``, run in the engine's environment), twice:

- ``deployed``: the engine's default config (a small table keeps only its ``id`` copy, one
  partition: every point stays PostGIS WKB);
- ``all_specs``: ``DELTALAKE_SMALL_TABLE_THRESHOLD_MB`` 0 and two partitions per copy, so every
  table gets all its copies (root ids, Morton) in several files, the Morton point decoded to
  ``_x/_y/_z``. (More partitions fail upstream on these few rows: ``assign_partition``'s
  ``pl.cut`` refuses the repeated percentile breaks of a root-id column.)
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from caveql.backends.archive import ArchiveBackend
from caveql.backends.http import HttpBackend
from caveql.backends.local import LocalBackend
from caveql.engine import Engine, Settings
from tests.archive.conftest import local_metadata
from tests.archive.test_archive_engine import DROPPED
from tests.archive.test_archive_engine import STATEMENTS as ARCHIVE_STATEMENTS
from tests.conformance.harness import HERE, PG_BIN, HarnessError, Oracle

pytestmark = pytest.mark.timeout(300)

CONFIGS = {
    "deployed": [],
    "all_specs": ["--small-table-threshold-mb", "0", "--n-partitions", "2"],
}
# the archive statements (positions, boxes, copies, views, joins) + the version-1 ones again
STATEMENTS = ARCHIVE_STATEMENTS + [
    "SELECT * FROM synapses AT VERSION 1",
    "SELECT * FROM cells WHERE pt_root_id = 1001 AT VERSION 1",
    "SELECT id, pt_position FROM nuclei WHERE pt_position WITHIN BOX((60, 110, 10), (130, 180, 13)) "
    "AT VERSION 1",
]


def export(oracle: Oracle, datastack: str, versions: list[int], output: Path, options: list[str]) -> dict:
    """Run me_export.py in the engine's environment; its summary."""
    env = {**os.environ, "PYTHONPATH": str(oracle.source), "PYTHONHASHSEED": "0",
           "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("VIRTUAL_ENV", None)
    cmd = [str(oracle.python), str(HERE / "me_export.py"), "--pg-url", oracle.pg.url().rpartition("/")[0],
           "--datastack", datastack, "--versions", *map(str, versions), "--output", str(output),
           "--pg-bin", str(PG_BIN), *options]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=oracle.source)
    if done.returncode != 0:
        raise HarnessError(f"exporting {datastack} failed:\n{done.stdout[-3000:]}{done.stderr[-6000:]}")
    return json.loads([ln for ln in done.stdout.splitlines() if ln.startswith("{")][-1])


@pytest.fixture(scope="module")
def tiny_backends(oracle, genuine_tiny, tiny_datastack, tmp_path_factory):
    local = LocalBackend(tiny_datastack)
    remote = HttpBackend(genuine_tiny.datastack, server=genuine_tiny.global_url, cache=False)
    archives, summaries = {}, {}
    for name, options in CONFIGS.items():
        root = tmp_path_factory.mktemp(f"genuine-export-{name}")
        try:
            summaries[name] = export(oracle, genuine_tiny.datastack, local.all_versions(), root, options)
        except HarnessError as e:
            pytest.fail(f"conformance harness: {e}", pytrace=False)
        archives[name] = ArchiveBackend(root, datastack=genuine_tiny.datastack,
                                        metadata=local_metadata(local))
    yield local, remote, archives, summaries
    for b in (local, remote, *archives.values()):
        b.close()


def _drop(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=[c for c in frame.columns if c.removesuffix("_ref") in DROPPED])


def _text(frame: pd.DataFrame) -> pd.DataFrame:
    """Every value as text (points as their lists: ``astype(str)`` of arrays takes seconds)."""
    return pd.DataFrame({c: [repr(v.tolist()) if isinstance(v, np.ndarray) else repr(v) for v in frame[c]]
                         if frame[c].dtype == object else frame[c].astype(str) for c in frame.columns},
                        index=frame.index).reset_index(drop=True)


def agree(got: pd.DataFrame, *wants: pd.DataFrame, ordered: bool) -> None:
    """Same columns, dtypes and rows (as multisets unless ``ordered``) as each of ``wants``."""
    def rows(frame: pd.DataFrame) -> pd.DataFrame:
        text = _text(frame)
        return text if ordered else text.sort_values(list(text.columns)).reset_index(drop=True)

    mine = rows(got)
    for want in wants:
        assert list(got.columns) == list(want.columns)
        assert list(got.dtypes.astype(str)) == list(want.dtypes.astype(str))
        theirs = rows(want)
        assert mine.equals(theirs), (mine, theirs)


def test_exports_hold_the_expected_copies(tiny_backends):
    """The genuine exporter wrote what the module docstring says (so both configs are exercised)."""
    local, _remote, archives, summaries = tiny_backends
    for v in local.all_versions():
        deployed = summaries["deployed"]["versions"][str(v)]
        full = summaries["all_specs"]["versions"][str(v)]
        assert sorted(deployed["tables"]) == sorted(local.tables(v)) == sorted(archives["deployed"].tables(v))
        assert sorted(deployed["views"]) == sorted(local.views(v)) == sorted(archives["deployed"].views(v))
        assert all(specs == ["id"] for specs in deployed["tables"].values())
        assert any(any(s.endswith("_morton") for s in specs) for specs in full["tables"].values())
        assert any(len(specs) > 2 for specs in full["tables"].values())
    # several partitions: files the reader can prune
    synapses = archives["all_specs"]._table(max(local.all_versions()), "synapses")
    assert len(synapses.copies["id"].files) > 1


@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("cql", STATEMENTS)
def test_same_answers(tiny_backends, config, cql):
    local, remote, archives, _ = tiny_backends
    # a root id not current at the version (1005 at version 1) runs, to the service's answer
    # (the CQL017 check is tests/roots'; an archive has no graph to check with)
    settings = Settings(allow_invalid_root_ids=True)
    want = _drop(Engine(local, settings=settings).execute(cql).frame)
    genuine = _drop(Engine(remote, settings=settings).execute(cql).frame)
    got = Engine(archives[config]).execute(cql).frame
    assert len(want) > 0 or "NULL" in cql
    agree(got, want, genuine, ordered="ORDER BY" in cql.upper())


# what tests/archive/writer.py is asked for to stand for each config
WRITER = {"deployed": {"n_partitions": 1, "small_tables": ("cell_types", "cells", "nuclei", "synapses")},
          "all_specs": {"n_partitions": 2}}


@pytest.mark.parametrize("config", list(CONFIGS))
def test_writer_imitates_the_genuine_exporter(tiny_backends, tiny_datastack, tmp_path, config):
    """tests/archive/writer.py (the archive tests' stand-in) writes what the genuine exporter
    writes: the same copies, Delta schemas, partition columns and rows in each partition."""
    from deltalake import DeltaTable

    from tests.archive.writer import export_archive

    _local, _remote, archives, _ = tiny_backends
    genuine = archives[config].path
    imitation = export_archive(tiny_datastack, tmp_path, **WRITER[config])
    copies = sorted(str(p.parent.relative_to(genuine)) for p in genuine.rglob("_delta_log"))
    assert copies == sorted(str(p.parent.relative_to(imitation)) for p in imitation.rglob("_delta_log"))
    for copy in copies:
        a, b = DeltaTable(str(genuine / copy)), DeltaTable(str(imitation / copy))
        assert a.schema().to_arrow() == b.schema().to_arrow(), copy
        assert a.metadata().partition_columns == b.metadata().partition_columns, copy
        ta, tb = a.to_pyarrow_table(), b.to_pyarrow_table()
        order = [(n, "ascending") for n in (a.metadata().partition_columns + ["id"]
                                            if "id" in ta.column_names else ta.column_names)]
        assert ta.sort_by(order).to_pylist() == tb.select(ta.column_names).sort_by(order).to_pylist(), copy


def test_snapshot_delta_writes_what_the_genuine_exporter_writes(tiny_backends, tiny_datastack, tmp_path):
    """``caveql snapshot --format delta`` (from the service's answers, not the database) writes the
    genuine exporter's tables and views: the same copies, Delta schemas, partition columns and
    valid rows. The exporter streams the frozen table, invalidated rows too, which the service
    never answers: those rows, and so the percentile bounds of the partitions, differ."""
    import pyarrow.compute as pc
    from deltalake import DeltaTable

    from caveql.datastack.snapshot import snapshot

    local, _remote, archives, _ = tiny_backends
    genuine = archives["all_specs"].path
    dest = tmp_path / "tiny"
    for v in local.all_versions():
        snapshot(local, v, dest, progress=None, format="delta", small_table_mb=0, n_partitions=2)
    tables = {f"v{v}/{t}" for v in local.all_versions() for t in [*local.tables(v), *local.views(v)]}
    copies = sorted(str(p.parent.relative_to(genuine)) for p in genuine.rglob("_delta_log")
                    if str(p.parent.parent.relative_to(genuine)) in tables)
    assert copies and copies == sorted(str(p.parent.relative_to(dest)) for p in dest.rglob("_delta_log"))
    assert any(c.endswith("/syn_counts/flat") for c in copies)
    for copy in copies:
        a, b = DeltaTable(str(genuine / copy)), DeltaTable(str(dest / copy))
        assert a.schema().to_arrow() == b.schema().to_arrow(), copy
        assert a.metadata().partition_columns == b.metadata().partition_columns, copy
        part = a.metadata().partition_columns
        ta, tb = a.to_pyarrow_table(), b.to_pyarrow_table()
        ta = ta.filter(pc.field("valid")) if "valid" in ta.column_names else ta
        cols = [n for n in ta.column_names if n not in part]
        order = "id" if "id" in cols else [(n, "ascending") for n in cols]  # (a view may have no id)
        assert ta.select(cols).sort_by(order).to_pylist() == tb.select(cols).sort_by(order).to_pylist(), copy
        if part:
            assert set(tb.column(part[0]).to_pylist()) <= {0, 1}, copy  # two partitions, as asked


def test_snapshot_of_a_view_from_the_genuine_engine(genuine_demo_capped, small_demo, tmp_path):
    """A view copied from the genuine engine at a 1,000-row cap (its view endpoint: filters,
    ``?count=true``, no order) answers as the source, locally and as Delta Lake tables."""
    from caveql.datastack.snapshot import snapshot

    views = ["synapses_pni_2_in_out_degree", "connections_with_nuclei"]
    with LocalBackend(small_demo) as local, HttpBackend(genuine_demo_capped.datastack,
                                                        server=genuine_demo_capped.global_url,
                                                        cache=False, progress=False) as http:
        for fmt, opts in (("local", {}), ("delta", {"format": "delta", "n_partitions": 2})):
            report = snapshot(http, 661, tmp_path / fmt / "minnie65_demo", tables=views, progress=None,
                              **opts)
            assert [t.name for t in report.tables] == views and all(t.view for t in report.tables)
        assert http.capabilities.row_cap == 1000  # (learned: the views were fetched in pages)
        copies = [LocalBackend(tmp_path / "local" / "minnie65_demo"),
                  ArchiveBackend(tmp_path / "delta" / "minnie65_demo")]
        try:
            for cql in [f"SELECT * FROM {views[0]}", f"SELECT * FROM {views[1]}", *DEMO_VIEWS]:
                want = Engine(local).execute(cql).frame
                assert len(want) > 0
                for copy in copies:
                    agree(Engine(copy).execute(cql).frame, want, ordered=False)
        finally:
            for b in copies:
                b.close()


# ---------------------------------------------------------------------------- the small demo

from tests.conformance.test_engine_genuine import DEMO, DEMO_VIEWS, SPEC, SPEC_PARAMS, used  # noqa: E402


@pytest.fixture(scope="module")
def demo_backends(oracle, genuine_demo, small_demo, tmp_path_factory):
    """The small demo (every table of minnie65_public's shape) exported as deployed."""
    local = LocalBackend(small_demo)
    remote = HttpBackend(genuine_demo.datastack, server=genuine_demo.global_url, cache=False)
    root = tmp_path_factory.mktemp("genuine-export-demo")
    try:
        summary = export(oracle, genuine_demo.datastack, local.all_versions(), root, [])
    except HarnessError as e:
        pytest.fail(f"conformance harness: {e}", pytrace=False)
    archive = ArchiveBackend(root, datastack=genuine_demo.datastack, metadata=local_metadata(local))
    yield local, remote, archive, summary
    for b in (local, remote, archive):
        b.close()


# views whose export has id and Morton copies besides ``flat``
DEMO_ARCHIVE_VIEWS = ["SELECT * FROM single_neurons", "SELECT * FROM soma_counts WHERE neuron_count > 1"]


@pytest.mark.parametrize(("cql", "key"), [(c, None) for c in DEMO + DEMO_VIEWS + DEMO_ARCHIVE_VIEWS] + SPEC)
def test_demo_same_answers(demo_backends, cql, key):
    local, remote, archive, _ = demo_backends
    params = used(SPEC_PARAMS, cql)
    want = _drop(Engine(local).execute(cql, params=params).frame)
    genuine = _drop(Engine(remote).execute(cql, params=params).frame)
    got = Engine(archive).execute(cql, params=params).frame
    assert len(want) > 0
    # ties of the spec's ORDER BYs may come in any order: rows as multisets, the key in order
    agree(got, want, genuine, ordered="ORDER BY" in cql.upper() and key is None)
    if key is not None:
        assert got[key].tolist() == want[key].tolist() == genuine[key].tolist()
