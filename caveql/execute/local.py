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

import threading
import time
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from caveql.errors import ExecutionError
from caveql.plan.physical import OutputSpec, PhysicalPlan

__all__ = ["run_local", "shape_frame", "to_frame"]

_NULLABLE = {
    pa.int8(): pd.Int8Dtype(), pa.int16(): pd.Int16Dtype(), pa.int32(): pd.Int32Dtype(),
    pa.int64(): pd.Int64Dtype(), pa.uint8(): pd.UInt8Dtype(), pa.uint16(): pd.UInt16Dtype(),
    pa.uint32(): pd.UInt32Dtype(), pa.uint64(): pd.UInt64Dtype(), pa.bool_(): pd.BooleanDtype(),
    pa.float32(): pd.Float32Dtype(), pa.float64(): pd.Float64Dtype(),
    pa.string(): pd.StringDtype("python"), pa.large_string(): pd.StringDtype("python"),
}


def to_frame(table: pa.Table, consume: bool = False) -> pd.DataFrame:
    """An Arrow table as a DataFrame with the service's nullable dtypes (``consume``: the
    caller holds no other reference, so Arrow buffers are freed while converting)."""
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
    if consume:
        return table.to_pandas(types_mapper=_NULLABLE.get, date_as_object=False,
                               self_destruct=True, split_blocks=True)
    return table.to_pandas(types_mapper=_NULLABLE.get, date_as_object=False)


def _packed(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.Series:
    """One object column of ``np.array([x, y, z])`` per row, as caveclient builds it
    (int64 arrays; a row with a missing component gets an object array holding NA)."""
    parts = [frame[c] for c in columns]
    nulls = np.zeros(len(frame), dtype=bool)
    for part in parts:
        nulls |= part.isna().to_numpy()
    if not nulls.any():
        # rows of one 2-D int64 array: the same values and dtype as np.array([x, y, z])
        stacked = np.stack([part.to_numpy(dtype="int64") for part in parts], axis=1)
        return pd.Series(list(stacked), index=frame.index, dtype=object)
    ints = list(np.stack([part.to_numpy(dtype="int64", na_value=0) for part in parts], axis=1))
    objs = np.empty((len(frame), 3), dtype=object)
    for k, part in enumerate(parts):
        objs[:, k] = part.to_numpy(dtype=object)  # pd.NA where missing, as caveclient's rows
    rows = [objs[i] if null else ints[i] for i, null in enumerate(nulls)]
    return pd.Series(rows, index=frame.index, dtype=object)


def shape_frame(frame: pd.DataFrame, outputs: tuple[OutputSpec, ...], split: bool) -> pd.DataFrame:
    """The result columns (internal names) as the frame's columns.

    Unless ``split``, each position's three columns become one column of
    ``np.array([x, y, z])`` (caveclient's packing); a position that came from ``*``
    goes after the other columns, where caveclient's ``concatenate_position_columns``
    puts it; an explicit select item keeps its place. Split positions are named
    ``P_x, P_y, P_z``. Names may repeat, as in SQL.
    """
    if split or not any(o.position for o in outputs):
        # nothing to pack or move: rename in place, no copy of the data
        names: list[str] = []
        for o in outputs:
            names += [f"{o.name}_{a}" for a in "xyz"] if o.position else [o.name]
        frame.columns = names
        return frame
    cols: list[pd.Series] = []
    names = []
    tail: list[tuple[str, pd.Series]] = []
    for o in outputs:
        if o.position and not split:
            ser = _packed(frame, o.columns)
            if o.at_end:
                tail.append((o.name, ser))
            else:
                cols.append(ser)
                names.append(o.name)
        elif o.position:
            for c, a in zip(o.columns, "xyz", strict=True):
                cols.append(frame[c])
                names.append(f"{o.name}_{a}")
        else:
            cols.append(frame[o.columns[0]])
            names.append(o.name)
    for name, ser in tail:
        cols.append(ser)
        names.append(name)
    if not cols:
        return pd.DataFrame(index=frame.index)
    out = pd.concat(cols, axis=1, ignore_index=True, copy=False)
    out.columns = names
    return out


_DB: duckdb.DuckDBPyConnection | None = None
_DB_LOCK = threading.Lock()


def _connection() -> duckdb.DuckDBPyConnection:
    """A fresh connection to one process-wide in-memory database (a new database per
    statement costs ~50 ms; a cursor costs nothing and keeps registrations apart)."""
    global _DB
    with _DB_LOCK:
        if _DB is None:
            _DB = duckdb.connect(":memory:")
        return _DB.cursor()


def run_local(p: PhysicalPlan, relations: dict[str, pa.Table], keep_arrow: bool = False
              ) -> tuple[pd.DataFrame, pa.Table | None, dict[str, Any]]:
    """Run the plan's SQL over ``relations`` (emptied once DuckDB has answered, so the calls'
    results can be freed); the frame, the Arrow result if ``keep_arrow``, and timings."""
    t0 = time.perf_counter()
    con = _connection()
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
        relations.clear()
    t1 = time.perf_counter()
    stats = {"rows": result.num_rows, "bytes": result.nbytes}
    if keep_arrow:
        frame = shape_frame(to_frame(result), p.outputs, p.split_positions)
        kept: pa.Table | None = result
    else:
        frame = shape_frame(to_frame(result, consume=True), p.outputs, p.split_positions)
        kept = None
        del result
    t2 = time.perf_counter()
    stats.update(ms=(t1 - t0) * 1000, frame_ms=(t2 - t1) * 1000)
    return frame, kept, stats


def _list_table(values: tuple[Any, ...]) -> pa.Table:
    try:
        arr = pa.array(list(values))
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        arr = pa.array([None if v is None else str(v) for v in values])
    return pa.table({"v": arr})
