"""Float32 columns compare in 32 bits, pushed or local (.notes/differential-view-float-precision.md).

The float32 columns are a table's ``Float`` columns: the service stores and filters doubles and
answers them as Float32 (here: a table stored with doubles, which the local backend answers as
Float32 as the service does). A view's floats come back as the doubles themselves (Float64, the
genuine engine's reflected DOUBLE PRECISION) and compare as doubles everywhere."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caveql.engine import Engine
from caveql.plan.rules.float32 import edge_filters, f32

OPS = ("=", "<", "<=", ">", ">=")
APPLY = {"greater": lambda d, m: d > m, "greater_equal": lambda d, m: d >= m,
         "less": lambda d, m: d < m, "less_equal": lambda d, m: d <= m}
CMP = {"=": lambda a, b: a == b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
       ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}

f32s = st.floats(width=32, allow_nan=False, allow_infinity=False)


def _near(f: float) -> list[float]:
    """Doubles around float32 ``f``: its neighbours, the midpoints (ties) and a hair either side."""
    with np.errstate(over="ignore"):
        lo = float(np.nextafter(np.float32(f), np.float32(-np.inf)))
        hi = float(np.nextafter(np.float32(f), np.float32(np.inf)))
    out = [f, lo, hi]
    for a, b in ((lo, f), (f, hi)):
        if math.isfinite(a) and math.isfinite(b):
            m = (a + b) / 2
            out += [m, math.nextafter(m, -math.inf), math.nextafter(m, math.inf)]
    return out


@given(f=f32s, other=st.floats(allow_nan=False, allow_infinity=False), op=st.sampled_from(OPS))
def test_edges_select_exactly_the_doubles_that_round_in(f, other, op):
    """For every double d (ties included): the pushed filters accept d  <=>  float32(d) op f."""
    filters = edge_filters(op, f)
    for d in _near(f) + [other]:
        want = CMP[op](f32(d), f)
        if not filters:  # only where an edge lies past the float32 range: the conjunct stays local
            assert op in (">", "<") and abs(f) == float(np.finfo(np.float32).max)
            continue
        got = all(APPLY[k](d, m) for k, m in filters)
        assert got == want, (d, op, f, filters)


@given(a=f32s, b=f32s)
def test_between_edges(a, b):
    lo, hi = min(a, b), max(a, b)
    filters = edge_filters("BETWEEN", lo, hi)
    for d in _near(lo) + _near(hi):
        assert all(APPLY[k](d, m) for k, m in filters) == (lo <= f32(d) <= hi)


Q = ("SELECT root_id FROM synapses_pni_2_in_out_degree WHERE root_id = 864691132827765541 "
     "AND {} AT VERSION 343")
V = "9625.333333333334"  # the view's double (28876 / 3), which the answer holds (Float64)


@pytest.fixture(scope="module")
def demo(demo_backend):
    return Engine(demo_backend)


def test_the_notes_four_queries_agree(demo):
    """x = v, x != v, NOT (x = v) and (x = v OR false-ish) give one consistent answer (a view's
    float is the double, pushed and local)."""
    n = {c: len(demo.execute(Q.format(c)).frame) for c in (
        f"avg_input_size = {V}", f"avg_input_size != {V}", f"NOT (avg_input_size = {V})",
        f"(avg_input_size = {V} OR root_id = 1)")}
    eq, ne, not_eq, or_eq = n.values()
    assert eq == or_eq == 1  # the row exists and its value is v
    assert ne == not_eq == 0
    # its float32 rounding is another number: no row
    assert len(demo.execute(Q.format(f"avg_input_size = {f32(float(V))!r}")).frame) == 0
    # what the user reads back finds the row too
    value = demo.execute(Q.format("TRUE").replace("SELECT root_id", "SELECT avg_input_size")
                         ).frame.avg_input_size[0]
    assert len(demo.execute(Q.format(f"avg_input_size = {float(value)!r}")).frame) == 1


@pytest.fixture(scope="module")
def thirds(tmp_path_factory):
    """The tiny datastack plus a table ``thirds`` stored with doubles that float32 cannot hold
    (size / 3, size / 7) — the service's Float columns: doubles in the database, Float32 in the
    answer — so the exact double of each row is known here; and a view ``thirds_view`` of the
    same doubles (answered as Float64)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from caveql.backends.local import LocalBackend
    from caveql.datastack.layout import write_table_metadata, write_view
    from caveql.datastack.tiny import build_tiny

    root = build_tiny(tmp_path_factory.mktemp("f32"))
    sizes = [40.0 * k for k in range(1, 11)]
    ids = list(range(100, 110))
    pq.write_table(pa.table({
        "id": pa.array(ids, pa.int64()),
        "created": pa.array([0] * len(ids), pa.timestamp("us")),
        "superceded_id": pa.array([None] * len(ids), pa.int64()),
        "valid": pa.array([True] * len(ids)),
        "size": pa.array(sizes, pa.float32()),
        "third": pa.array([s / 3 for s in sizes], pa.float64()),
        "seventh": pa.array([s / 7 for s in sizes], pa.float64()),
    }), root / "versions" / "2" / "tables" / "thirds.parquet")
    write_table_metadata(root, 2, "thirds", {
        "schema_type": "doubles", "table_name": "thirds", "valid": True, "description": "doubles",
        "reference_table": None, "voxel_resolution_x": 4.0, "voxel_resolution_y": 4.0,
        "voxel_resolution_z": 40.0})
    write_view(root, 2, "thirds_view", {
        "id": 2, "description": "doubles", "datastack_name": "tiny", "voxel_resolution_x": 4.0,
        "voxel_resolution_y": 4.0, "voxel_resolution_z": 40.0, "notice_text": None,
        "live_compatible": False,
    }, "SELECT id, CAST(size AS DOUBLE) / 3 AS third, CAST(size AS DOUBLE) / 7 AS seventh FROM synapses")
    b = LocalBackend(root)
    eng = Engine(b)
    rows = eng.execute("SELECT id, third, seventh, size FROM thirds AT VERSION 2").frame
    yield eng, rows
    b.close()


def test_pushed_equals_local_equals_float32_rule(thirds):
    """At the exact doubles, their float32 values, the ties between float32 neighbours and a hair
    off: each comparison pushed gives the rows the same comparison gives locally (in the select
    list), and both are float32(value) op float32(literal)."""
    eng, rows = thirds
    assert str(rows.third.dtype) == "Float32" and len(rows) >= 8
    for col, div in (("third", 3), ("seventh", 7)):
        exact = sorted({float(s) / div for s in rows["size"]})
        literals = []
        for d in exact[:4]:
            f = f32(d)
            up = float(np.nextafter(np.float32(f), np.float32(np.inf)))
            literals += [d, f, (f + up) / 2, math.nextafter(d, math.inf)]
        assert any(f32(d) != d for d in exact)  # the doubles really differ from the answer
        for lit in literals:
            cols = ", ".join(f"{col} {op} {lit!r} AS c{i}" for i, op in enumerate(OPS + ("!=",)))
            local = eng.execute(f"SELECT id, {cols} FROM thirds AT VERSION 2").frame
            returned = rows[col].to_numpy(dtype="float32")
            v32 = np.float32(lit)
            for i, op in enumerate(OPS + ("!=",)):
                mask = {"=": returned == v32, "!=": returned != v32, "<": returned < v32,
                        "<=": returned <= v32, ">": returned > v32, ">=": returned >= v32}[op]
                want = sorted(rows.id[mask])
                assert sorted(local.id[local[f"c{i}"].astype(bool)]) == want, (col, op, lit)
                if op != "!=":  # != stays local (the service drops exclusion filters)
                    res = eng.execute(f"SELECT id FROM thirds WHERE {col} {op} {lit!r} AT VERSION 2")
                    assert "pushed" in eng.explain(f"SELECT id FROM thirds WHERE {col} {op} {lit!r}")
                    assert sorted(res.frame.id) == want, (col, op, lit)


def test_view_floats_are_the_doubles(thirds):
    """A view's float is the double the service filters (Float64): pushed and local comparisons
    compare that double with the literal as it is, never rounded to float32."""
    eng, _rows = thirds
    view = eng.execute("SELECT id, third, seventh FROM thirds_view AT VERSION 2").frame
    assert str(view.third.dtype) == "Float64" and len(view) == 10
    for col in ("third", "seventh"):
        values = view[col].to_numpy(dtype="float64")
        for d in values[:4]:
            for lit in (float(d), f32(float(d)), math.nextafter(float(d), math.inf)):
                for op in OPS:
                    want = sorted(view.id[CMP[op](values, lit)])
                    cql = f"SELECT id FROM thirds_view WHERE {col} {op} {lit!r} AT VERSION 2"
                    assert "float32" not in eng.explain(cql)
                    assert sorted(eng.execute(cql).frame.id) == want, (col, op, lit)
                    local = eng.execute(f"SELECT id, {col} {op} {lit!r} AS c FROM thirds_view AT VERSION 2").frame
                    assert sorted(local.id[local.c.astype(bool)]) == want, (col, op, lit)


def test_explain_shows_the_float32_edges(demo):
    text = demo.explain(f"SELECT id FROM nucleus_detection_v0 WHERE volume = {V} AT VERSION 343")
    assert f"in float32]" in text and "volume = 9625.3330078125" in text
    assert '"filter_greater_dict"' in text and '"filter_less_dict"' in text  # 9625.333008 is odd
    # a view's float is compared as the double: pushed as it is
    text = demo.explain(Q.format(f"avg_input_size = {V}"))
    assert "float32" not in text and f'"avg_input_size": {V}' in text


def test_stored_float32_columns_unchanged(demo):
    """Stored float32 values compare as before: the rounded literal of a float32 value is itself."""
    f = demo.execute("SELECT id, volume FROM nucleus_detection_v0 WHERE id < 3000").frame
    v = float(f.volume.iloc[0])
    got = demo.execute(f"SELECT id FROM nucleus_detection_v0 WHERE volume = {v!r} AND id < 3000").frame
    assert set(f.id[f.volume == np.float32(v)]) == set(got.id)


def _around(rows, col: str, div: int):
    """Literals near the view's real doubles: exact, float32, ties, a few ulps off, or anywhere."""
    exact = sorted({float(s) / div for s in rows["size"]})

    def build(i: int, kind: str, k: int, anywhere: float) -> float:
        d = exact[i % len(exact)]
        if kind == "exact":
            return d
        if kind == "f32":
            return f32(d)
        if kind == "tie":
            f = f32(d)
            return (f + float(np.nextafter(np.float32(f), np.float32(np.inf)))) / 2
        if kind == "ulps":
            x = d
            for _ in range(abs(k)):
                x = math.nextafter(x, math.inf if k > 0 else -math.inf)
            return x
        return anywhere

    return st.builds(build, st.integers(0, 100), st.sampled_from(["exact", "f32", "tie", "ulps", "any"]),
                     st.integers(-3, 3), st.floats(-200, 200, allow_nan=False))


@pytest.mark.parametrize("col, div", [("third", 3), ("seventh", 7)])
def test_pushed_local_and_rule_agree_for_any_literal(thirds, col, div):
    """Hypothesis: comparisons, BETWEEN and IN with literals around the real values give the same
    rows pushed, local (inside NOT NOT) and by the float32 rule computed with numpy."""
    eng, rows = thirds
    returned = rows[col].to_numpy(dtype="float32")
    ops = {"=": np.equal, "<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal}

    @settings(max_examples=40)
    @given(a=_around(rows, col, div), b=_around(rows, col, div),
           form=st.sampled_from(list(ops) + ["BETWEEN", "IN"]))
    def check(a: float, b: float, form: str) -> None:
        if form == "BETWEEN":
            cond = f"{col} BETWEEN {a!r} AND {b!r}"
            mask = (returned >= np.float32(a)) & (returned <= np.float32(b))
        elif form == "IN":
            cond = f"{col} IN ({a!r}, {b!r})"
            mask = (returned == np.float32(a)) | (returned == np.float32(b))
        else:
            cond = f"{col} {form} {a!r}"
            mask = ops[form](returned, np.float32(a))
        want = sorted(rows.id[mask])
        for where in (cond, f"NOT (NOT ({cond}))"):
            got = eng.execute(f"SELECT id FROM thirds WHERE {where} AT VERSION 2").frame
            assert sorted(got.id) == want, where

    check()
