"""Calls read in place (``Capabilities.relations``): the same answers as fetched rows.

The archive hands a call to the local DuckDB step as SQL over its pruned Parquet files
(caveql.execute.relations); the same archive with the capability turned off fetches the rows as
Arrow tables. Random filtered aggregates over the small demo's synapse export (hypothesis) and
the tiny archive's tables, views and merged reference tables must answer alike on both paths.
"""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caveql.backends.archive import ArchiveBackend
from caveql.engine import Engine
from tests.archive.conftest import export_demo_synapses, local_metadata

TABLE = "synapses_pni_2"


def _fetching(backend: ArchiveBackend) -> ArchiveBackend:
    backend.capabilities = dataclasses.replace(backend.capabilities, relations=False)
    return backend


@pytest.fixture(scope="module")
def demo_pair(demo_4k, tmp_path_factory):
    root, rows, res = export_demo_synapses(demo_4k, tmp_path_factory.mktemp("relations"), 4)
    a, b = ArchiveBackend(root, voxel_resolution=res), _fetching(ArchiveBackend(root, voxel_resolution=res))
    yield a, b, rows
    a.close()
    b.close()


@pytest.fixture(scope="module")
def tiny_pair(tiny_archive_root, tiny_local):
    meta = local_metadata(tiny_local)
    a = ArchiveBackend(tiny_archive_root, datastack="tiny", metadata=meta)
    b = _fetching(ArchiveBackend(tiny_archive_root, datastack="tiny", metadata=meta))
    yield a, b
    a.close()
    b.close()


def _both(a: ArchiveBackend, b: ArchiveBackend, cql: str) -> tuple[pd.DataFrame, pd.DataFrame, bool]:
    """Both paths' frames, and whether the first read a call in place."""
    got = Engine(a, max_fetch_rows=None).execute(cql)
    want = Engine(b, max_fetch_rows=None).execute(cql)
    assert not any(c.get("in_place") for c in want.stats["calls"].values())
    return got.frame, want.frame, any(c.get("in_place") for c in got.stats["calls"].values())


def _same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    # sums of floats may add in another order (DuckDB's threads): the last bits may differ
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True),
                                  check_exact=False, rtol=1e-12, atol=0)


_COLS = ("id", "size", "pre_pt_root_id", "post_pt_root_id", "ctr_pt_position_x", "ctr_pt_position_z")
_AGGS = ("COUNT(*)", "SUM(size)", "AVG(size)", "MIN(id)", "MAX(post_pt_root_id)",
         "COUNT(DISTINCT pre_pt_root_id)", "MIN(ctr_pt_position_y)")


@st.composite
def _statements(draw, rows) -> str:
    values = {c: sorted(set(rows.column(c).to_pylist())) for c in _COLS}
    conds = []
    for _ in range(draw(st.integers(0, 3))):
        col = draw(st.sampled_from(_COLS))
        v = draw(st.sampled_from(values[col]))
        op = draw(st.sampled_from(["=", "<", ">=", "!=", "IN"]))
        if op == "IN":
            more = draw(st.lists(st.sampled_from(values[col]), max_size=3))
            conds.append(f"{col} IN ({', '.join(str(x) for x in [v, *more])})")
        else:
            conds.append(f"{col} {op} {v}")
    where = f" WHERE {' AND '.join(conds)}" if conds else ""
    aggs = draw(st.lists(st.sampled_from(_AGGS), min_size=1, max_size=3, unique=True))
    items = ", ".join(f"{a} AS a{i}" for i, a in enumerate(aggs))
    if draw(st.booleans()):
        key = draw(st.sampled_from(("pre_pt_root_id", "post_pt_root_id")))
        limit = draw(st.sampled_from(["", " LIMIT 5"]))
        return f"SELECT {key}, {items} FROM {TABLE}{where} GROUP BY {key} ORDER BY a0 DESC{limit}"
    if draw(st.booleans()):  # rows, filtered locally and ordered: read in place too
        return f"SELECT id, size, ctr_pt_position FROM {TABLE}{where} ORDER BY size DESC LIMIT 20"
    return f"SELECT {items} FROM {TABLE}{where}"


def test_random_aggregates_answer_alike_in_place_and_fetched(demo_pair):
    a, b, rows = demo_pair
    used: list[bool] = []

    @settings(max_examples=60, deadline=None)
    @given(_statements(rows))
    def check(cql):
        got, want, in_place = _both(a, b, cql)
        _same(got, want)
        # (a bare COUNT(*) with every filter pushed is counted by the backend: no rows either way)
        counted = all(c.request.count for c in Engine(a).physical_plan(cql).calls)
        used.append(in_place or counted)
    check()
    assert all(used)  # every statement had local work over a call the archive can give as SQL


def test_the_benchmark_scan_reads_in_place(demo_pair):
    a, b, rows = demo_pair
    cql = f"SELECT COUNT(*) AS n, AVG(size) AS mean FROM {TABLE} WHERE size > 5000"
    got, want, in_place = _both(a, b, cql)
    assert in_place
    _same(got, want)
    sizes = [s for s in rows.column("size").to_pylist() if s > 5000]
    assert got.n.tolist() == [len(sizes)]
    eng = Engine(a, max_fetch_rows=None)
    assert "relation: read in place by the local step" in eng.explain(cql)
    assert "actual: read in place, " in eng.explain(cql, analyze=True)
    assert "relation:" not in Engine(b).explain(cql)


TINY = [
    "SELECT COUNT(*) AS n, SUM(size) AS s FROM synapses WHERE size > 100",
    "SELECT pre_pt_root_id, COUNT(*) AS n FROM synapses GROUP BY pre_pt_root_id "
    "ORDER BY n DESC, pre_pt_root_id",
    "SELECT cell_type, COUNT(*) AS n, MIN(id) AS lo FROM cell_types GROUP BY cell_type "
    "ORDER BY cell_type",
    "SELECT cell_type, COUNT(*) AS n FROM cells WHERE cell_type IS NOT NULL GROUP BY 1 "
    "ORDER BY 1 AT VERSION 1",
    "SELECT * FROM syn_counts ORDER BY 1 DESC, 2",
    # a joined call fed the keys of another (and the one feeding them) fetch their rows
    "SELECT s.id, c.cell_type FROM synapses s JOIN cells c ON s.post_pt_root_id = c.pt_root_id ORDER BY s.id",
    "SELECT DISTINCT cell_type FROM cells ORDER BY cell_type",
    "SELECT id, pt_position FROM cells ORDER BY id DESC LIMIT 3",
    # the nuclei's points are WKB (decoded in Python by the archive's DuckDB): their rows are fetched
    "SELECT COUNT(*) AS n FROM nuclei WHERE pt_position WITHIN BOX((60, 110, 10), (130, 180, 13))",
    "SELECT id, pt_position FROM nuclei ORDER BY id DESC LIMIT 2",
]


@pytest.mark.parametrize("cql", TINY)
def test_tiny_archive_answers_alike(cql, tiny_pair):
    a, b = tiny_pair
    got, want, in_place = _both(a, b, cql)
    _same(got, want)
    assert len(want) > 0
    assert in_place == ("nuclei" not in cql and "JOIN" not in cql)


def test_a_missing_file_is_named_on_the_in_place_path_too(demo_pair, tmp_path):
    import os
    import shutil

    from caveql.errors import DatastackError

    a, _b, _rows = demo_pair
    src = a.path
    copy = tmp_path / "minnie65_demo"
    shutil.copytree(src, copy)
    broken = ArchiveBackend(copy, voxel_resolution=a._res)
    try:
        victim = next(iter(broken._table(661, TABLE).copies["id"].files))["path"]
        os.unlink(victim)
        with pytest.raises(DatastackError, match="missing"):
            Engine(broken).execute(f"SELECT COUNT(*) AS n FROM {TABLE} WHERE size > 10")
    finally:
        broken.close()


def test_a_file_gone_after_a_first_read_is_named_on_the_next(demo_pair, tmp_path):
    """The archive keeps each request's statement (its Delta logs are read once), but checks its
    files every time: a file deleted between two statements is named, never a partial answer."""
    import os
    import shutil

    from caveql.errors import DatastackError

    a, _b, rows = demo_pair
    copy = tmp_path / "minnie65_demo"
    shutil.copytree(a.path, copy)
    broken = ArchiveBackend(copy, voxel_resolution=a._res)
    cql = f"SELECT COUNT(*) AS n, MAX(size) AS top FROM {TABLE} WHERE size > 10"
    try:
        eng = Engine(broken, max_fetch_rows=None)
        first = eng.execute(cql)
        want = sum(1 for s, v in zip(rows.column("size").to_pylist(), rows.column("valid").to_pylist(),
                                     strict=True) if v and s is not None and s > 10)
        assert first.frame["n"].tolist() == [want]
        request = first.plan.calls[0].request
        rel = broken.relation(request)
        assert broken.relation(request) is rel  # kept
        # the scan is read directly, not through a subquery listing every column
        assert "FROM read_parquet([" in rel.sql and "(SELECT \"id\"" not in rel.sql
        victim = rel.scans[0][1][0]
        os.unlink(victim)
        with pytest.raises(DatastackError, match="missing") as err:
            eng.execute(cql)
        assert os.path.basename(victim) in str(err.value)
    finally:
        broken.close()
