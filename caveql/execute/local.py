"""The local step: the plan's SQL in DuckDB over the remote results, then the frame.

The frame has caveclient's shape: nullable pandas dtypes (``Int64`` ids,
``Int32`` position components — ``Float64`` on an axis that a statement's resolution does not
scale to whole numbers —, ``Float32``/``Float64``, ``boolean``, ``string``,
``datetime64[ns, UTC]`` for a table's timestamps as the service sends them — a view's are
naive, as the service reflects them), and, unless SPLIT POSITIONS, each position as one
column of ``numpy`` arrays ``[x, y, z]`` appended after the other columns in
their order (exactly where caveclient's ``concatenate_position_columns`` puts them).

>>> import pyarrow as pa
>>> t = pa.table({"id": pa.array([1, None], pa.int64())})
>>> to_frame(t).dtypes["id"]
Int64Dtype()
>>> to_frame(pa.table({"t": pa.array([0], pa.timestamp("us", tz="Etc/UTC"))})).dtypes["t"]
datetime64[ns, UTC]
"""

from __future__ import annotations

import threading
import time
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from caveql import cancel
from caveql.errors import CancelledError, ExecutionError
from caveql.execute.direct import direct_step, sorted_relation
from caveql.execute.failures import local_failure
from caveql.execute.relations import fuse, is_in_place
from caveql.identity import resolve as identity
from caveql.plan.physical import OutputSpec, PhysicalPlan

__all__ = ["local_connection", "run_local", "run_sql", "shape_frame", "to_frame"]

_NULLABLE = {
    pa.int8(): pd.Int8Dtype(), pa.int16(): pd.Int16Dtype(), pa.int32(): pd.Int32Dtype(),
    pa.int64(): pd.Int64Dtype(), pa.uint8(): pd.UInt8Dtype(), pa.uint16(): pd.UInt16Dtype(),
    pa.uint32(): pd.UInt32Dtype(), pa.uint64(): pd.UInt64Dtype(), pa.bool_(): pd.BooleanDtype(),
    pa.float32(): pd.Float32Dtype(), pa.float64(): pd.Float64Dtype(),
    pa.string(): pd.StringDtype("python"), pa.large_string(): pd.StringDtype("python"),
}


_RELEASE_BYTES = 16 << 20


def to_frame(table: pa.Table, consume: bool = False) -> pd.DataFrame:
    """An Arrow table as a DataFrame with the service's nullable dtypes.

    ``consume``: the caller passed its only reference (e.g. ``to_frame(holder.pop(), True)``),
    so a large table is converted a few columns at a time, each group freed once converted:
    the peak is about the frame, not the frame plus the table.

    >>> to_frame(pa.table({"a": [1.5, None]}), consume=True).dtypes["a"]
    Float64Dtype()
    """
    names = table.column_names
    fixed: list[Any] = []
    col = None
    for i, f in enumerate(table.schema):
        col = table.column(i)  # by position: names may repeat
        if pa.types.is_timestamp(f.type):
            # one zone name whoever produced the column (the service and DuckDB say UTC, Etc/UTC
            # or the session's zone): an aware timestamp is shown in UTC, a naive one stays naive
            want = pa.timestamp("ns", tz=None if f.type.tz is None else "UTC")
            col = col.cast(want) if f.type != want else col
        elif pa.types.is_decimal(f.type):
            col = col.cast(pa.float64())
        elif pa.types.is_dictionary(f.type):
            col = col.cast(f.type.value_type)
        fixed.append(col)
    del table, col
    size = sum(c.nbytes for c in fixed)
    if size < _RELEASE_BYTES and fixed and all(c.type in _NULLABLE for c in fixed):
        # small, of the service's plain types: each column straight to its pandas array (what
        # to_pandas does through its block manager, at a third of the cost: ~0.1 ms of a lookup)
        frame = pd.DataFrame({i: _NULLABLE[c.type].__from_arrow__(c) for i, c in enumerate(fixed)},
                             copy=False)
        frame.columns = names
        return frame
    if not consume or size < 2 * _RELEASE_BYTES:
        # small: one conversion (pyarrow converts the columns on several threads — not below
        # _RELEASE_BYTES, where waking its pool right after DuckDB's query cost up to 30 ms on a
        # loaded machine for ~0.1 ms of work); unique names inside, as pyarrow maps a repeated
        # name's dtype from the wrong column
        frame = pa.Table.from_arrays(fixed, names=[str(i) for i in range(len(fixed))]).to_pandas(
            types_mapper=_NULLABLE.get, date_as_object=False, use_threads=size >= _RELEASE_BYTES)
        frame.columns = names
        return frame
    # large: groups of columns of ~_RELEASE_BYTES, each freed once converted (threads within a
    # group; one group at a time, so at most one group is held twice)
    columns: dict[int, pd.Series] = {}
    pool = pa.default_memory_pool()
    start = 0
    while start < len(fixed):
        end, size = start, 0
        while end < len(fixed) and (end == start or size + fixed[end].nbytes <= _RELEASE_BYTES):
            size += fixed[end].nbytes
            end += 1
        group = pa.Table.from_arrays(fixed[start:end], names=[str(i) for i in range(start, end)])
        fixed[start:end] = [None] * (end - start)
        part = group.to_pandas(types_mapper=_NULLABLE.get, date_as_object=False, split_blocks=True)
        del group
        for i in range(start, end):
            columns[i] = part[str(i)]
        del part
        # Arrow's allocator keeps freed pages for reuse, but pandas allocates with malloc: hand
        # them back, or the process holds the table and the frame at once (~0.5 ms a call)
        pool.release_unused()
        start = end
    frame = pd.DataFrame(columns, copy=False)
    frame.columns = names
    return frame


def _packed(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.Series:
    """One object column of ``np.array([x, y, z])`` per row, as caveclient builds it
    (int64 arrays, float64 where a component is not whole at the statement's resolution;
    a row with a missing component gets an object array holding NA; an empty answer's column is
    ``float64``, as caveclient's assignment of an empty list makes it)."""
    if len(frame) == 0:
        return pd.Series([], index=frame.index, dtype="float64")
    parts = [frame[c] for c in columns]
    kind = "float64" if any(pd.api.types.is_float_dtype(part.dtype) for part in parts) else "int64"
    nulls = np.zeros(len(frame), dtype=bool)
    for part in parts:
        nulls |= part.isna().to_numpy()
    if not nulls.any():
        # rows of one 2-D array: the same values and dtype as np.array([x, y, z])
        stacked = np.stack([part.to_numpy(dtype=kind) for part in parts], axis=1)
        return pd.Series(list(stacked), index=frame.index, dtype=object)
    ints = list(np.stack([part.to_numpy(dtype=kind, na_value=0) for part in parts], axis=1))
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
            db = duckdb.connect(":memory:")
            # CQL's timestamp literals and a view's naive timestamps are UTC: comparing them with a
            # table's UTC-aware timestamps must not go through the machine's zone
            db.execute("SET GLOBAL TimeZone = 'UTC'")
            identity.register_udfs(db)  # LATEST_ROOTS() & co. over columns (caveql.identity)
            _DB = db
        return _DB.cursor()


def run_local(p: PhysicalPlan, relations: dict[str, pa.Table], keep_arrow: bool = False
              ) -> tuple[pd.DataFrame, pa.Table | None, dict[str, Any]]:
    """Run the plan's SQL over ``relations`` (emptied once DuckDB has answered, so the calls'
    results can be freed); the frame, the Arrow result if ``keep_arrow``, and timings.

    A plan that only sorts one call's rows by id and projects skips DuckDB
    (:mod:`caveql.execute.direct`): same frame, a fraction of the peak memory.
    """
    t0 = time.perf_counter()
    # (a call read in place has no rows to sort: DuckDB reads it)
    step = direct_step(p) if not any(is_in_place(t) for t in relations.values()) else None
    # one reference to the result, handed to to_frame (which frees it as it converts)
    holder: list[pa.Table] = []
    if step is not None:
        try:
            holder.append(sorted_relation(step, relations))
        except (pa.ArrowException, KeyError) as exc:
            raise ExecutionError(f"the local step failed: {exc}") from exc
        finally:
            relations.clear()
    else:
        try:
            # calls read in place become CTEs of the one statement (caveql.execute.relations)
            sql, params = fuse(p.sql, p.params, relations)
            con = local_connection(p, {k: t for k, t in relations.items() if not is_in_place(t)})
            try:
                holder.append(run_sql(con, sql, params, "the local step"))
            finally:
                con.close()
        finally:
            relations.clear()
    t1 = time.perf_counter()
    stats: dict[str, Any] = {"rows": holder[0].num_rows, "bytes": holder[0].nbytes,
                             "engine": "direct" if step is not None else "duckdb"}
    kept = holder[0] if keep_arrow else None
    frame = shape_frame(to_frame(holder.pop(), consume=not keep_arrow), p.outputs, p.split_positions)
    t2 = time.perf_counter()
    stats.update(ms=(t1 - t0) * 1000, frame_ms=(t2 - t1) * 1000)
    return frame, kept, stats


def local_connection(p: PhysicalPlan, relations: dict[str, pa.Table]) -> duckdb.DuckDBPyConnection:
    """A cursor with the calls' results and the plan's bound value lists registered."""
    con = _connection()
    try:
        for name, table in relations.items():
            con.register(name, table.bind(con) if is_in_place(table) else table)
        for name, values in p.lists:
            con.register(name, _list_table(values))
        resolver = identity.active()
        if resolver is not None:  # the identity UDFs find the statement's resolver by this name
            con.execute(f"SET VARIABLE {identity.VARIABLE} = '{resolver.name}'")
    except BaseException:
        con.close()
        raise
    return con


def run_sql(con: duckdb.DuckDBPyConnection, sql: str, params: tuple[Any, ...], where: str) -> pa.Table:
    """``sql`` on ``con`` as an Arrow table. A cancelled statement interrupts DuckDB
    (:class:`CancelledError`); DuckDB's failures are said in CQL terms (``where`` names the step).

    >>> con = _connection()
    >>> run_sql(con, "SELECT $1 + 1 AS a", (41,), "a step").to_pydict()
    {'a': [42]}
    >>> try:
    ...     run_sql(con, "SELECT 1 % 0", (), "a step")
    ... except ExecutionError as err:
    ...     print(err.message)
    a step failed: division by zero in (1 % 0)
    >>> con.close()
    """
    try:
        with cancel.on_cancel(con.interrupt):
            cancel.check()
            return con.sql(sql, params=list(params)).to_arrow_table()
    except duckdb.InterruptException as exc:
        raise CancelledError(f"the statement was cancelled during {where}") from exc
    except duckdb.Error as exc:
        resolver = identity.active()
        if resolver is not None and resolver.error is not None:
            raise resolver.error from exc  # an identity UDF's own error, not DuckDB's wrapping of it
        raise local_failure(exc, f"{where} failed") from exc


def _list_table(values: tuple[Any, ...]) -> pa.Table:
    try:
        arr = pa.array(list(values))
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        arr = pa.array([None if v is None else str(v) for v in values])
    return pa.table({"v": arr})
