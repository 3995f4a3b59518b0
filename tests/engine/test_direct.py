"""The DuckDB-free local step (caveql.execute.direct) gives exactly the DuckDB step's frame.

Exactly: same columns, dtypes, values and row order (pandas' frame equality with exact
checks), on random id ranges of demo tables, reference tables and views with an id, and of
the tiny datastack behind a 3-row cap (answers split into many chunks); plus the sort itself on random
chunkings (overlapping, disjoint, duplicate and null keys) against a stable sort, and the
column-by-column frame conversion against the whole-table one.
"""

from __future__ import annotations

import datetime as dt
import decimal
from unittest import mock

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caveql.engine import Engine
from caveql.execute.direct import DirectStep, direct_step, sort_batches, sorted_relation
from caveql.execute.local import to_frame

# demo sources with an id column: tables, reference tables (id, id_ref), a view (the
# synapse table and the other views take ~0.3-0.6 s per query locally: covered once below)
_DEMO = ["nucleus_detection_v0", "aibs_soma_nuc_metamodel_preds_v117", "nucleus_alternative_points",
         "proofreading_status_public_release", "soma_counts", "apl_functional_coreg_forward_v5"]
# the tiny datastack behind a 3-row cap: every answer comes back as several id-range chunks
_TINY = ["cells", "cell_types", "nuclei", "synapses"]


@pytest.fixture(scope="module")
def engines(demo_backend, capped_backend):
    return {"demo": Engine(demo_backend), "tiny": Engine(capped_backend)}


@pytest.fixture(scope="module")
def id_spans(engines):
    out = {}
    for which, tables in (("demo", _DEMO), ("tiny", _TINY)):
        for t in tables:
            lo, hi, n = engines[which].execute(f"SELECT min(id), max(id), count(*) FROM {t}").frame.iloc[0]
            out[t] = (which, int(lo), int(hi), int(n))
    return out


def _both(eng: Engine, cql: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    p = eng.physical_plan(cql)
    assert direct_step(p) is not None, f"the direct step should apply to {cql}"
    direct = eng.execute(cql).frame
    with mock.patch("caveql.execute.local.direct_step", return_value=None):
        duck = eng.execute(cql).frame
    return direct, duck


@settings(max_examples=30)
@given(data=st.data())
def test_same_frame_as_duckdb_on_random_id_ranges(engines, id_spans, data):
    table = data.draw(st.sampled_from(_DEMO + _TINY), label="table")
    which, lo, hi, n = id_spans[table]
    eng = engines[which]
    # a range holding ~1,500 rows at most (the tables' ids are roughly uniform)
    width = max(2, (hi - lo) * 1500 // n)
    a = lo - 1 + (hi - lo) * data.draw(st.integers(0, 999), label="from (per mille)") // 1000
    b = a + width * data.draw(st.integers(0, 100), label="width (%)") // 100
    cols = "*"
    if data.draw(st.booleans(), label="some columns"):
        names = [c for c, _t in eng.catalog().columns(table)]
        pick = data.draw(st.lists(st.sampled_from(names), min_size=1, max_size=5), label="columns")
        cols = ", ".join(pick)
    split = data.draw(st.booleans(), label="split")
    cql = f"SELECT {cols} FROM {table} WHERE id >= {a} AND id < {b}" + (" SPLIT POSITIONS" if split else "")
    direct, duck = _both(eng, cql)
    pd.testing.assert_frame_equal(direct, duck, check_exact=True)
    assert [str(t) for t in direct.dtypes] == [str(t) for t in duck.dtypes]


def test_the_benchmarks_large_answer_takes_the_direct_step(engines):
    eng = engines["demo"]
    cql = "SELECT * FROM synapses_pni_2 WHERE size > 2236 SPLIT POSITIONS"
    assert direct_step(eng.physical_plan(cql)) is not None
    direct, duck = _both(eng, "SELECT * FROM synapses_pni_2 WHERE id < 1000000000")
    assert len(direct) > 30_000
    pd.testing.assert_frame_equal(direct, duck, check_exact=True)


@pytest.mark.parametrize("cql", [
    "SELECT * FROM synapses_pni_2 WHERE id < 200000000 ORDER BY size",
    "SELECT * FROM synapses_pni_2 WHERE id < 200000000 ORDER BY id DESC LIMIT 5",
    "SELECT id, size * 2 AS s FROM synapses_pni_2 WHERE id < 200000000",
    "SELECT DISTINCT pre_pt_root_id FROM synapses_pni_2 WHERE id < 200000000",
    "SELECT COUNT(*) AS n FROM synapses_pni_2 WHERE id < 200000000",
    "SELECT * FROM synapses_pni_2 WHERE id < 200000000 AND pre_pt_root_id != post_pt_root_id",
    "SELECT * FROM synapses_pni_2_in_out_degree",  # a view without id: sorted by every column
])
def test_other_local_work_keeps_duckdb(engines, cql):
    eng = engines["demo"]
    assert direct_step(eng.physical_plan(cql)) is None


@st.composite
def chunkings(draw):
    """Batches of (id, origin) rows: ids from a small pool (duplicates), some null, in
    ranges that overlap or not, each batch sorted or not."""
    n_batches = draw(st.integers(0, 5))
    batches = []
    origin = 0
    disjoint = draw(st.booleans())
    for i in range(n_batches):
        base = i * 100 if disjoint else 0
        ids = draw(st.lists(st.one_of(st.integers(base, base + 60), st.none() if draw(st.booleans())
                                      else st.integers(base, base + 60)), max_size=30))
        if draw(st.booleans()):
            ids = sorted(ids, key=lambda v: (v is None, v))
        batches.append(pa.record_batch({"id": pa.array(ids, pa.int64()),
                                        "origin": pa.array(range(origin, origin + len(ids)), pa.int64())}))
        origin += len(ids)
    if draw(st.booleans()):
        batches.reverse()
    return batches


_SCHEMA = pa.schema([("id", pa.int64()), ("origin", pa.int64())])


@given(chunkings())
def test_sort_batches_is_a_stable_sort(batches):
    whole = pa.Table.from_batches(batches, schema=_SCHEMA)
    want = whole.take(pc.sort_indices(whole, sort_keys=[("id", "ascending")]))
    got = sort_batches(list(batches), ("id",), _SCHEMA)
    assert got.to_pydict() == want.to_pydict()  # ties keep their order: origin shows it


@given(chunkings())
def test_sorted_relation_projects_and_sorts_by_two_keys(batches):
    rel = pa.Table.from_batches(batches, schema=_SCHEMA)
    rel = rel.append_column("id_ref", pc.multiply(rel.column("origin"), -1))
    want = rel.take(pc.sort_indices(rel, sort_keys=[("id", "ascending"), ("id_ref", "ascending")]))
    step = DirectStep("r0", ("id", "id_ref"), (("origin", "c0"), ("origin", "c1")))
    relations = {"r0": rel, "r1": rel}
    got = sorted_relation(step, relations)
    assert relations == {}
    assert got.column_names == ["c0", "c1"]
    assert got.column("c0").to_pylist() == want.column("origin").to_pylist()
    assert got.column("c1").to_pylist() == want.column("origin").to_pylist()


def test_to_frame_consuming_matches_the_whole_table_conversion():
    def table():
        return pa.table({
            "i": pa.array([1, None, 3], pa.int64()), "u": pa.array([1, 2, None], pa.uint32()),
            "f": pa.array([1.5, None, float("nan")], pa.float32()), "b": pa.array([True, None, False]),
            "s": pa.array(["a", None, "c"]), "ls": pa.array(["x", "y", None], pa.large_string()),
            "d": pa.array(["p", "q", "p"]).dictionary_encode(),
            "ts": pa.array([dt.datetime(2024, 1, 1), None, dt.datetime(2024, 5, 6, 7)], pa.timestamp("us")),
            "tz": pa.array([dt.datetime(2024, 1, 1), None, None], pa.timestamp("ms", tz="UTC")),
            "date": pa.array([dt.date(2024, 1, 1), None, dt.date(2024, 1, 3)]),
            "dec": pa.array([decimal.Decimal("1.25"), None, decimal.Decimal("3")], pa.decimal128(5, 2)),
            "null": pa.array([None, None, None], pa.null()),
            "dup": pa.array([7, 8, 9], pa.int16()),
        })

    want = to_frame(table())
    # large enough (~64 MB) for the grouped conversion; each kind of column at several places
    big = pa.concat_tables([table()] * 250_000).combine_chunks()
    got = to_frame(big, consume=True)
    del big
    assert len(got) == 750_000 and got.index.equals(pd.RangeIndex(750_000))
    for k in (0, 1, 2, 749_998):
        pd.testing.assert_frame_equal(got.iloc[[k]].reset_index(drop=True), want.iloc[[k % 3]].reset_index(drop=True),
                                      check_exact=True)
    pd.testing.assert_series_equal(got.dtypes, want.dtypes)
    # a repeated name keeps each column's own dtype (pyarrow's own conversion does not)
    names = ["i", "u", "f", "b", "s", "ls", "d", "ts", "tz", "date", "dec", "null", "i"]
    for consume in (False, True):
        dup = to_frame(table().rename_columns(names), consume=consume)
        assert list(dup.columns) == names
        assert [str(t) for t in dup.dtypes] == [str(t) for t in want.dtypes]
    empty = table().slice(0, 0)
    pd.testing.assert_frame_equal(to_frame(empty, consume=True), to_frame(empty), check_exact=True)


def test_an_empty_call_result_gives_the_duckdb_frame(engines):
    """A call that never ran (no keys to send) leaves an all-null relation; same frame either way."""
    from caveql.execute import _empty
    from caveql.execute.local import run_local

    eng = engines["demo"]
    for cql in ["SELECT * FROM nucleus_detection_v0 WHERE id < 300",
                "SELECT * FROM nucleus_ref_neuron_svm WHERE id < 300 SPLIT POSITIONS"]:
        p = eng.physical_plan(cql)
        assert direct_step(p) is not None
        call = p.calls[0]
        direct, _arrow, stats = run_local(p, {call.relation: _empty(call)})
        assert stats["engine"] == "direct"
        with mock.patch("caveql.execute.local.direct_step", return_value=None):
            duck, _arrow, stats = run_local(p, {call.relation: _empty(call)})
        assert stats["engine"] == "duckdb"
        pd.testing.assert_frame_equal(direct, duck, check_exact=True)


_PLAIN_TYPES = [pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.uint8(), pa.uint32(), pa.uint64(),
                pa.float32(), pa.float64(), pa.bool_(), pa.string(), pa.large_string()]


def _column(kind: pa.DataType, n: int, data: st.DataObject) -> pa.ChunkedArray:
    if pa.types.is_boolean(kind):
        value = st.booleans()
    elif pa.types.is_floating(kind):
        value = st.floats(width=32 if kind == pa.float32() else 64)
    elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
        value = st.text(max_size=4)
    else:
        info = (pa.types.is_unsigned_integer(kind), kind.bit_width)
        lo, hi = (0, 2 ** info[1] - 1) if info[0] else (-(2 ** (info[1] - 1)), 2 ** (info[1] - 1) - 1)
        value = st.integers(lo, hi)
    values = data.draw(st.lists(st.none() | value, min_size=n, max_size=n))
    cut = data.draw(st.integers(0, n))  # one or two chunks, as DuckDB's answers come
    return pa.chunked_array([pa.array(values[:cut], kind), pa.array(values[cut:], kind)], kind)


@settings(max_examples=60, deadline=None)
@given(kinds=st.lists(st.sampled_from(_PLAIN_TYPES), min_size=1, max_size=5), n=st.integers(0, 12),
       data=st.data())
def test_small_plain_answers_convert_as_pyarrow_does(kinds, n, data):
    """A small answer of plain types goes straight to pandas arrays (caveql.execute.local.to_frame):
    the frame pyarrow's own conversion with the nullable types gives, names repeated or not."""
    from caveql.execute.local import _NULLABLE

    names = [data.draw(st.sampled_from(["a", "b", "id"])) for _ in kinds]
    table = pa.Table.from_arrays([_column(k, n, data) for k in kinds], names=[str(i) for i in range(len(kinds))])
    want = table.to_pandas(types_mapper=_NULLABLE.get)
    want.columns = names
    got = to_frame(table.rename_columns(names))
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert got.index.equals(pd.RangeIndex(n))
