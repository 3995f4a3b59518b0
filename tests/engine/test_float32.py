"""Float32 columns compare in 32 bits, pushed or local (.notes/differential-view-float-precision.md)."""

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
V = "9625.333333333334"  # the view's double (28876 / 3); the answer holds float32 9625.333008


@pytest.fixture(scope="module")
def demo(demo_backend):
    return Engine(demo_backend)


def test_the_notes_four_queries_agree(demo):
    """x = v, x != v, NOT (x = v) and (x = v OR false-ish) give one consistent answer."""
    n = {c: len(demo.execute(Q.format(c)).frame) for c in (
        f"avg_input_size = {V}", f"avg_input_size != {V}", f"NOT (avg_input_size = {V})",
        f"(avg_input_size = {V} OR root_id = 1)")}
    eq, ne, not_eq, or_eq = n.values()
    assert eq == or_eq == 1  # the row exists and its value rounds to float32(v)
    assert ne == not_eq == 0
    # what the user reads back finds the row too
    value = demo.execute(Q.format("TRUE").replace("SELECT root_id", "SELECT avg_input_size")
                         ).frame.avg_input_size[0]
    assert len(demo.execute(Q.format(f"avg_input_size = {float(value)!r}")).frame) == 1


@pytest.fixture(scope="module")
def thirds(tmp_path_factory):
    """The tiny datastack plus a view of doubles that float32 cannot hold (size / 3, size / 7),
    so the exact double of each row is known here: Python divides as DuckDB does."""
    from caveql.backends.local import LocalBackend
    from caveql.datastack.layout import write_view
    from caveql.datastack.tiny import build_tiny

    root = build_tiny(tmp_path_factory.mktemp("f32"))
    write_view(root, 2, "thirds", {
        "id": 2, "description": "doubles", "datastack_name": "tiny", "voxel_resolution_x": 4.0,
        "voxel_resolution_y": 4.0, "voxel_resolution_z": 40.0, "notice_text": None,
        "live_compatible": False,
    }, "SELECT id, CAST(size AS DOUBLE) / 3 AS third, CAST(size AS DOUBLE) / 7 AS seventh FROM synapses")
    b = LocalBackend(root)
    eng = Engine(b)
    rows = eng.execute("SELECT id, third, seventh FROM thirds AT VERSION 2").frame
    sizes = eng.execute("SELECT id, size FROM synapses AT VERSION 2").frame
    yield eng, rows.merge(sizes, on="id")
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


def test_explain_shows_the_float32_edges(demo):
    text = demo.explain(Q.format(f"avg_input_size = {V}"))
    assert f"in float32]" in text and "avg_input_size = 9625.3330078125" in text
    assert '"filter_greater_dict"' in text and '"filter_less_dict"' in text  # 9625.333008 is odd


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
