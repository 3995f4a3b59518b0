"""Positions scaled by the engine where the service would truncate them.

A call with a :class:`~caveql.plan.physical.Rescale` fetched its positions at a resolution
where they are whole numbers; each component is scaled here to the statement's resolution
with exact arithmetic: ``s * num / den`` (``num/den`` the exact ratio of the two resolutions),
an Int32 where the scaled values are whole, else the correctly rounded Float64.

>>> import pyarrow as pa
>>> from caveql.plan.physical import Rescale
>>> t = pa.table({"p_x": pa.array([57328], pa.int32()), "p_y": pa.array([3], pa.int32()),
...               "p_z": pa.array([7], pa.int32())})
>>> spec = Rescale((("p", (False, False, True)),), (4.0, 4.0, 40.0), (3.0, 3.0, 40.0))
>>> rescale(t, spec).to_pylist()
[{'p_x': 76437.33333333333, 'p_y': 4.0, 'p_z': 7}]
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from caveql.analyze.resolution import ratio
from caveql.errors import ExecutionError
from caveql.plan.physical import Rescale

__all__ = ["rescale"]


def _scaled(col: pa.ChunkedArray, num: int, den: int, whole: bool, name: str) -> pa.ChunkedArray:
    if pa.types.is_null(col.type):  # an empty answer's placeholder column
        return col.cast(pa.int32() if whole else pa.float64())
    if whole:
        # exact: the stored coordinate times the table's voxel size is a whole multiple of the target
        wide = pc.multiply_checked(col.cast(pa.int64()), pa.scalar(num, pa.int64()))
        out = pc.divide(wide, pa.scalar(den, pa.int64())) if den != 1 else wide
        try:
            return out.cast(pa.int32())
        except pa.ArrowInvalid as exc:
            raise ExecutionError(f"{name} does not fit a 32-bit integer at this resolution") from exc
    # one rounding: s * num is exact in a double (|s| < 2**31, num small), then one division
    return pc.divide(pc.multiply(col.cast(pa.float64()), float(num)), float(den))


def rescale(table: pa.Table, spec: Rescale) -> pa.Table:
    """``table`` with the positions of ``spec`` scaled from ``spec.fetched`` to ``spec.target``."""
    for name, whole in spec.columns:
        for axis, (a, exact) in enumerate(zip("xyz", whole, strict=True)):
            col_name = f"{name}_{a}"
            i = table.schema.get_field_index(col_name)
            if i < 0:
                continue
            r = ratio(spec.fetched[axis], spec.target[axis])
            col = _scaled(table.column(i), r.numerator, r.denominator, exact, col_name)
            table = table.set_column(i, pa.field(col_name, col.type), col)
    return table
