"""WITHIN BOX and component ranges: the pushed box never loses a matching point."""

from __future__ import annotations

from fractions import Fraction

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from caveql.backends.base import QueryRequest
from caveql.engine import Engine
from caveql.plan.rules.spatial_box import stored_interval

RATIOS = st.sampled_from([(4.0, 1.0), (40.0, 1.0), (4.0, 3.0), (8.0, 4.0), (4.0, 8.0), (40.0, 7.0),
                          (4.0, 4.0), (8.0, 0.5), (4.0, None)])


@given(RATIOS, st.integers(-500, 500), st.integers(0, 400), st.booleans(), st.booleans(),
       st.sampled_from([0, Fraction(1, 2), Fraction(1, 3)]))
def test_stored_interval_matches_brute_force(ratio, lo, width, lo_strict, hi_strict, frac):
    """A coordinate at the statement's resolution is s * voxel/res exactly (a whole number where
    the ratio is whole, else the float the engine computes): the interval holds every match."""
    voxel, res = ratio
    lo = lo + frac  # bounds need not be whole numbers
    hi = lo + width
    s_lo, s_hi, exact = stored_interval(lo, hi, voxel, res, lo_strict=lo_strict, hi_strict=hi_strict)
    r = Fraction(voxel) / Fraction(res) if res else Fraction(1)
    assert exact == (r.denominator == 1)

    def inside(s: int) -> bool:
        v = s * r
        return (v > lo if lo_strict else v >= lo) and (v < hi if hi_strict else v <= hi)

    window = range(-2000, 2000)
    want = [s for s in window if inside(s)]
    got = [s for s in window if s_lo <= s <= s_hi]
    if exact:
        assert got == want
    else:
        assert got == want or set(want) <= set(range(s_lo - 1, s_hi + 2))


def _positions(backend, res):
    """The cells' positions at ``res`` exactly: stored voxels (4, 4, 40 nm) times voxel / res."""
    t = backend.query(QueryRequest(kind="table", table="cells", version=2)).table
    df = t.to_pandas().sort_values("id")
    for a, v, r in zip("xyz", (4, 4, 40), res, strict=True):
        df[f"pt_position_{a}"] = [s * Fraction(v) / Fraction(r) for s in df[f"pt_position_{a}"]]
    return df


@settings(max_examples=40)
@given(st.sampled_from([(1, 1, 1), (3, 3, 3), (4, 4, 40), (2, 5, 7)]),
       st.tuples(*[st.integers(-50, 2000)] * 3), st.tuples(*[st.integers(0, 1500)] * 3))
def test_within_box_equals_brute_force(tiny_backend, res, low, size):
    high = tuple(a + b for a, b in zip(low, size, strict=True))
    df = _positions(tiny_backend, res)
    inside = pd.Series(True, index=df.index)
    for a, lo, hi in zip("xyz", low, high, strict=True):
        inside &= (df[f"pt_position_{a}"] >= lo) & (df[f"pt_position_{a}"] <= hi)
    eng = Engine(tiny_backend)
    got = eng.execute(f"SELECT id FROM cells WHERE pt_position WITHIN BOX({low}, {high}) "
                      f"AT RESOLUTION {res[0]}, {res[1]}, {res[2]}").frame
    assert got.id.tolist() == df[inside].id.tolist()
    got = eng.execute(f"SELECT id FROM cells WHERE pt_position_x BETWEEN {low[0]} AND {high[0]} "
                      f"AND pt_position_z > {low[2]} AT RESOLUTION {res[0]}, {res[1]}, {res[2]}").frame
    want = df[(df.pt_position_x >= low[0]) & (df.pt_position_x <= high[0]) & (df.pt_position_z > low[2])]
    assert got.id.tolist() == want.id.tolist()
