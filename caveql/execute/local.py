"""The local step: the plan's SQL in DuckDB over the remote results, then the frame.

The frame has caveclient's shape: nullable pandas dtypes (``Int64`` ids,
``Int32`` position components, ``Float32``/``Float64``, ``boolean``, ``string``,
naive ``datetime64[ns]``), and, unless SPLIT POSITIONS, each position as one
column of ``numpy`` arrays ``[x, y, z]`` appended after the other columns in
their order (exactly where caveclient's ``concatenate_position_columns`` puts them).

>>> import pyarrow as pa
>>> t = pa.table({"id": pa.array([1, None], pa.int64())})
>>> to_frame(t).dtypes["id"]
Int64Dtype()
"""

from __future__ import annotations

import time
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from caveql.errors import ExecutionError
from caveql.plan.physical import OutputSpec, PhysicalPlan

__all__ = ["pack_positions", "run_local", "to_frame"]

_NULLABLE = {
    pa.int8(): pd.Int8Dtype(), pa.int16(): pd.Int16Dtype(), pa.int32(): pd.Int32Dtype(),
    pa.int64(): pd.Int64Dtype(), pa.uint8(): pd.UInt8Dtype(), pa.uint16(): pd.UInt16Dtype(),
    pa.uint32(): pd.UInt32Dtype(), pa.uint64(): pd.UInt64Dtype(), pa.bool_(): pd.BooleanDtype(),
    pa.float32(): pd.Float32Dtype(), pa.float64(): pd.Float64Dtype(),
    pa.string(): pd.StringDtype("python"), pa.large_string(): pd.StringDtype("python"),
}


def to_frame(table: pa.Table) -> pd.DataFrame:
    """An Arrow table as a DataFrame with the service's nullable dtypes."""
    fixed = []
    for f in table.schema:
        col = table.column(f.name)
        if pa.types.is_timestamp(f.type):
            col = col.cast(pa.timestamp("ns", tz=f.type.tz)) if f.type.unit != "ns" else col
        elif pa.types.is_decimal(f.type):
            col = col.cast(pa.float64())
        elif pa.types.is_dictionary(f.type):
            col = col.cast(f.type.value_type)
        fixed.append(col)
    table = pa.Table.from_arrays(fixed, names=table.column_names)
    return table.to_pandas(types_mapper=_NULLABLE.get, date_as_object=False)


def pack_positions(frame: pd.DataFrame, outputs: tuple[OutputSpec, ...]) -> pd.DataFrame:
    """Each position's three columns -> one column of ``np.array([x, y, z])`` at the end."""
    positions = [o for o in outputs if o.position]
    if not positions:
        return frame
    out = frame.drop(columns=[c for o in positions for c in o.columns])
    for o in positions:
        values = frame[list(o.columns)].to_numpy(dtype=object).tolist()
        out[o.name] = pd.Series([np.array(v) for v in values], index=frame.index, dtype=object)
    return out


def run_local(p: PhysicalPlan, relations: dict[str, pa.Table]) -> tuple[pd.DataFrame, pa.Table, dict[str, Any]]:
    """Run the plan's SQL over ``relations``; the frame, the Arrow result and timings."""
    t0 = time.perf_counter()
    con = duckdb.connect()
    try:
        for name, table in relations.items():
            con.register(name, table)
        for name, values in p.lists:
            con.register(name, _list_table(values))
        try:
            result = con.sql(p.sql, params=list(p.params)).to_arrow_table()
        except duckdb.Error as exc:
            raise ExecutionError(f"the local step failed: {str(exc).splitlines()[0]}") from exc
    finally:
        con.close()
    t1 = time.perf_counter()
    frame = to_frame(result)
    if not p.split_positions:
        frame = pack_positions(frame, p.outputs)
    t2 = time.perf_counter()
    return frame, result, {"rows": result.num_rows, "bytes": result.nbytes,
                           "ms": (t1 - t0) * 1000, "frame_ms": (t2 - t1) * 1000}


def _list_table(values: tuple[Any, ...]) -> pa.Table:
    try:
        arr = pa.array(list(values))
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        arr = pa.array([None if v is None else str(v) for v in values])
    return pa.table({"v": arr})
