"""AT RESOLUTION never loses precision: a ratio that is not a whole number is scaled locally.

The service truncates ``s * voxel / R`` into an Int32; CQL asks for the positions in the
table's own voxels instead and computes the exact value (Float64; Int32 on an axis whose
ratio is whole), identically through every backend.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

from caveql.backends.base import QueryRequest
from caveql.engine import Engine

# (statement resolution, per axis whether the cells' 4 x 4 x 40 nm voxels scale to whole numbers)
RESOLUTIONS = [
    ((1, 1, 1), (True, True, True)),
    ((3, 3, 3), (False, False, False)),
    ((8, 8, 40), (False, False, True)),
    ((2, 5, 7), (True, False, False)),
    ((0.5, 0.5, 0.5), (True, True, True)),
    ((0.3, 0.3, 4), (False, False, True)),
]


def _stored(backend, table: str) -> dict[int, tuple[int, int, int]]:
    t = backend.query(QueryRequest(kind="table", table=table, version=2)).table.to_pydict()
    return {i: (x, y, z) for i, x, y, z in zip(t["id"], t["pt_position_x"], t["pt_position_y"],
                                               t["pt_position_z"], strict=True)}


def _exact(s: int | None, voxel: float, res: float) -> Fraction | None:
    return None if s is None else s * Fraction(repr(float(voxel))) / Fraction(repr(float(res)))


@pytest.mark.parametrize(("res", "whole"), RESOLUTIONS, ids=[str(r) for r, _ in RESOLUTIONS])
def test_positions_are_exact_at_any_resolution(tiny_backend, res, whole):
    stored = _stored(tiny_backend, "cells")
    frame = Engine(tiny_backend).execute(
        f"SELECT id, pt_position FROM cells AT RESOLUTION {res[0]}, {res[1]}, {res[2]} SPLIT POSITIONS").frame
    for axis, a in enumerate("xyz"):
        col = frame[f"pt_position_{a}"]
        assert str(col.dtype) == ("Int32" if whole[axis] else "Float64")
        for i, got in zip(frame.id, col, strict=True):
            want = _exact(stored[i][axis], (4, 4, 40)[axis], res[axis])
            if want is None:
                assert got is pd.NA
            else:
                assert got == float(want)  # the correctly rounded value (exact when whole)


def test_packed_positions_keep_the_fraction(tiny_backend):
    frame = Engine(tiny_backend).execute("SELECT id, pt_position FROM cells WHERE id = 1 AT RESOLUTION 3,3,3").frame
    (p,) = frame.pt_position
    assert p.dtype == np.float64
    assert p.tolist() == [100 * 4 / 3, 200 * 4 / 3, 10 * 40 / 3]


def test_expressions_on_scaled_components_are_not_truncated(tiny_backend):
    eng = Engine(tiny_backend)
    one = eng.execute("SELECT SUM(pt_position_x) AS sx, MAX(pt_position_z) AS mz FROM cells "
                      "WHERE id = 1 AT RESOLUTION 3,3,3").frame
    assert one.sx.tolist() == [pytest.approx(400 / 3)]
    assert one.mz.tolist() == [pytest.approx(400 / 3)]
    # a component compared with a fraction: 100 * 4/3 = 133.33 > 133.3 (truncated, 133 would not be)
    hit = eng.execute("SELECT id FROM cells WHERE pt_position_x > 133.3 AND pt_position_x < 133.4 "
                      "AT RESOLUTION 3,3,3").frame
    assert hit.id.tolist() == [1]


def test_reference_and_join_positions_scale_exactly(tiny_backend):
    """A merged reference table's positions (its target's, 8 x 8 x 40 nm) and a join's two calls."""
    eng = Engine(tiny_backend)
    nuclei = _stored(tiny_backend, "nuclei")
    ref = eng.execute("SELECT id, pt_position FROM cell_types AT RESOLUTION 3,3,3 SPLIT POSITIONS").frame
    for i, x in zip(ref.id, ref.pt_position_x, strict=True):
        assert x == float(_exact(nuclei[i][0], 8, 3))
    joined = eng.execute("SELECT c.id, DISTANCE(c.pt_position, n.pt_position) AS d FROM cells c "
                         "JOIN nuclei n ON c.pt_root_id = n.pt_root_id AT RESOLUTION 3,3,3").frame
    assert len(joined) and str(joined.d.dtype) == "Float64"


def test_explain_says_how_positions_are_scaled(tiny_backend):
    eng = Engine(tiny_backend)
    local = eng.explain("SELECT id, pt_position FROM cells AT RESOLUTION 8,8,40")
    assert '"desired_resolution": [4, 4, 40]' in local
    assert "scaled locally to 8, 8, 40" in local and "x/y Float64, z Int32" in local
    served = eng.explain("SELECT id, pt_position FROM cells AT RESOLUTION 1,1,1")
    assert '"desired_resolution": [1, 1, 1]' in served
    assert "scaled by the service from 4, 4, 40 to 1, 1, 1" in served
    assert "positions:" not in eng.explain("SELECT id FROM cells AT RESOLUTION 3,3,3")


def test_a_live_statement_scales_locally_too(tiny_backend):
    eng = Engine(tiny_backend)
    cql = "SELECT id, pt_position FROM cells AT TIMESTAMP '2024-01-01T00:00:00' AT RESOLUTION 3,3,3 SPLIT POSITIONS"
    text = eng.explain(cql)
    assert "/query?" in text and '"desired_resolution": [4, 4, 40]' in text
    frame = eng.execute(cql).frame
    assert str(frame.pt_position_x.dtype) == "Float64"
