"""What MaterializationEngine 5.26.4 does to an answer after its SQL ran, mirrored for ``caveql serve``.

The service builds every answer as a pandas frame (``pd.read_sql`` with ``dtype_map``, then
``fix_columns_with_query``) and sends ``pa.RecordBatch.from_pandas(frame)``; the frame's dtypes
come from the SQLAlchemy column *class* (exact match), which is why a table's ``created`` is
``datetime64[ns, UTC]`` and a view's integers are ``Int64``. This module reproduces those
steps over the backend's Arrow answer: column selection (``QueryManager.select_column`` adds
``X_supervoxel_id`` before a selected ``X_root_id``), output names (suffix only duplicated
names), frame dtypes, split-layout ``COALESCE(root, 1)``, the one-column failure, the live
path's pandas re-filter, warning texts and the Arrow encoding. File and line references are to
ME 5.26.4 (``materializationengine/blueprints/client/``); see ``.notes/genuine-vs-serve.md``.

>>> plan = Selection.build([("cells", ["id", "pt_position", "pt_supervoxel_id", "pt_root_id"],
...                          {"pt_position"})], {"cells": ["pt_root_id"]})
>>> plan.keys("cells")
['pt_supervoxel_id', 'pt_root_id']
>>> plan.column_names_header()
"{'cells': {'pt_supervoxel_id': 'pt_supervoxel_id', 'pt_root_id': 'pt_root_id'}}"
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import pandas as pd
import pyarrow as pa

from caveql.backends.wire import fold_positions

__all__ = [
    "DEFAULT_LIMIT", "DEFAULT_SUFFIX_LIST", "IPC_FORMAT_WARNING", "JOIN_NON_PANDAS_WARNING",
    "JOIN_SELECT_COLUMNS_WARNING", "JOIN_SUFFIXES_WARNING", "SQL_QUERY_WARNING", "Selection",
    "coerce_filters", "encode_frame", "genuine_frame", "live_cap_warning", "live_refilter",
    "missing_lookups_message", "model_columns", "one_column_error", "type_name",
]

#: query_manager.py:23
DEFAULT_SUFFIX_LIST = ["x", "y", "z", "xx", "yy", "zz", "xxx", "yyy", "zzz"]
#: query_manager.py:24 — the limit of a QueryManager built without one (the live path's)
DEFAULT_LIMIT = 250_000

#: common.py:25-27, with its newlines turned into spaces as add_warnings_to_headers does
SQL_QUERY_WARNING = ("Query was executed using streaming via CSV, which can mangle types. Please upgrade to "
                     "caveclient > 8.0.0 to avoid type mangling. Because you may have been affected by mangled "
                     "types, this change is breaking, but it should provide an improved experience.")
#: common.py:422-429
JOIN_SUFFIXES_WARNING = ("Suffixes is deprecated for complex queries as it can be ambiguous what you desire, "
                         "please pass suffix_map as a dictionary to explicitly set suffixes for individual "
                         "tables. Upgrade caveclient to >=5.0.0 ")
#: common.py:441-447
JOIN_NON_PANDAS_WARNING = ("Using non-pandas query execution is deprecated as it can mangle types, please "
                           "upgrade caveclient to >=8.0.0 to use pandas for improved type handling.")
#: common.py:513-522
JOIN_SELECT_COLUMNS_WARNING = (
    "Select_columns is deprecated for join queries, please use select_column_map a dictionary which is "
    "more explicit about what columns to select from what tables. This query result will attempt to "
    "select the first column it finds of this name in any table, but if there are more than one such "
    "column it will not select both. Upgrade caveclient to >=5.0.0 .")
#: utils.py:101-108 (sent instead of every other warning when arrow_format is false)
IPC_FORMAT_WARNING = ("Response is in pyarrow IPC format. If you encounter a parsing error, please upgrade "
                      "CAVEClient to >=5.9.0 with: pip install --upgrade caveclient. To suppress this "
                      "warning, pass arrow_format=True in your query parameters.")


def live_cap_warning(rows: int, limit: int, *, production: bool = False) -> str:
    """The live path's cap warning (api2.py:491-492, 561-562): its f-string continues over a
    line break inside the literal, so the next line's indentation stays in the text.

    >>> live_cap_warning(3, 3)
    'result has 3 entries, which is equal or more         than limit of 3 there may be more results which are not shown'
    """
    gap = " " * (5 if production else 9)
    return (f"result has {rows} entries, which is equal or more{gap}than limit of {limit} there may be more "
            f"results which are not shown")


def missing_lookups_message(n: int) -> str:
    """new_query.py:32 (a 406 abort, or a warning with ``allow_missing_lookups``)."""
    return (f"There are {n} annotations that need supervoxel lookups, wait till new annotation ingest is done "
            f"or pick an less recent timestamp")


# --------------------------------------------------------------------------- model columns

def model_columns(schema: pa.Schema) -> list[tuple[str, bool]]:
    """``(key, is_position)`` of an answer's columns: ``X_x, X_y, X_z`` integer trios are one
    position ``X`` (the local backend's rule for stored positions).

    >>> model_columns(pa.schema([("id", pa.int64()), ("p_x", pa.int32()), ("p_y", pa.int32()),
    ...                          ("p_z", pa.int32())]))
    [('id', False), ('p', True)]
    """
    return [(n, position) for n, position, _i in fold_positions(schema)]


@dataclass
class Selection:
    """The columns a QueryManager selects, per table, in ``_selected_columns`` order, and the
    names the answer gives them (query_manager.py:561-648)."""

    order: list[str]                                     # tables, in selection order
    selected: dict[str, list[str]]                       # table -> model keys
    positions: dict[str, set[str]]                       # table -> keys that are positions
    suffixes: dict[str, str] = field(default_factory=dict)
    phantom: set[tuple[str, str]] = field(default_factory=set)  # selected, not stored (deleted)

    @staticmethod
    def select_column(selected: list[str], available: Sequence[str], table: str, column: str) -> None:
        """query_manager.py:336-365: unknown → ValueError; ``X_root_id`` selects ``X_supervoxel_id``
        (when the table has it) right before itself; a column is selected once."""
        if column in selected:
            return
        if column not in available:
            raise ValueError(f"{column} not in model or models for {table}")
        if column.endswith("root_id"):
            sv = column[: -len("root_id")] + "supervoxel_id"
            try:
                Selection.select_column(selected, available, table, sv)
            except ValueError:
                pass
        selected.append(column)

    @classmethod
    def build(cls, tables: Iterable[tuple[str, Sequence[str], set[str]]],
              requested: Mapping[str, Sequence[str]] | None) -> Selection:
        """``tables``: ``(name, model keys, position keys)``; ``requested``: ``{table: columns}``
        in the order the service walks them, or ``None`` for every model column."""
        info = {name: (list(keys), set(pos)) for name, keys, pos in tables}
        sel = cls(order=[], selected={}, positions={})
        if requested is None:
            for name, (keys, pos) in info.items():
                sel.order.append(name)
                sel.selected[name] = list(keys)
                sel.positions[name] = pos
            return sel
        for name, cols in requested.items():
            keys, pos = info[name]
            chosen = sel.selected.setdefault(name, [])
            if name not in sel.order:
                sel.order.append(name)
            sel.positions[name] = pos
            for c in cols:
                cls.select_column(chosen, keys, name, c)
        return sel

    def keys(self, table: str) -> list[str]:
        return self.selected.get(table, [])

    def suffix(self, table: str) -> str:
        """query_manager.py:581-583: the table's suffix, else the default by selection position."""
        given = self.suffixes.get(table)
        return given if given is not None else DEFAULT_SUFFIX_LIST[self.order.index(table)]

    def duplicated(self) -> set[str]:
        counts: dict[str, int] = {}
        for t in self.order:
            for k in self.selected[t]:
                counts[k] = counts.get(k, 0) + 1
        return {k for k, n in counts.items() if n > 1}

    def out_name(self, table: str, key: str) -> str:
        return key + self.suffix(table) if key in self.duplicated() else key

    def column_names(self) -> dict[str, dict[str, str]]:
        """The ``column_names`` header's dict: ``{table: {key: output name}}`` (positions unsplit)."""
        return {t: {k: self.out_name(t, k) for k in self.selected[t]} for t in self.order}

    def column_names_header(self, names: Mapping[str, Mapping[str, str]] | None = None) -> str:
        """``str()`` of that dict, as Werkzeug writes a dict header value (utils.py:98)."""
        return str({t: dict(m) for t, m in (names if names is not None else self.column_names()).items()})

    def output_columns(self) -> list[tuple[str, str, str, bool]]:
        """``(table, key, first output column, is_position)`` in SQL order (positions give three
        columns ``name_x/_y/_z``)."""
        return [(t, k, self.out_name(t, k), k in self.positions.get(t, set()))
                for t in self.order for k in self.selected[t]]

    def sql_width(self) -> int:
        """How many columns the SQL statement selects (a position is three)."""
        return sum(3 if pos else 1 for *_x, pos in self.output_columns())

    def answer_names(self) -> list[str]:
        """The frame's column names, phantoms included."""
        out: list[str] = []
        for t, k, name, pos in self.output_columns():
            out += [f"{name}_{a}" for a in "xyz"] if pos else [name]
        return out


def type_name(t: pa.DataType, *, view: bool) -> str:
    """The SQLAlchemy type class a column has on the service's side: the model's for tables
    (EMAS ``field_column_map``), the reflected PostgreSQL type for views.

    >>> type_name(pa.int64(), view=False), type_name(pa.float64(), view=True)
    ('BigInteger', 'DOUBLE_PRECISION')
    """
    if pa.types.is_boolean(t):
        return "BOOLEAN" if view else "Boolean"
    if pa.types.is_int32(t) or pa.types.is_int16(t) or pa.types.is_int8(t):
        return "INTEGER" if view else "Integer"
    if pa.types.is_integer(t):
        return "BIGINT" if view else "BigInteger"
    if pa.types.is_float32(t):
        return "REAL" if view else "Float"
    if pa.types.is_floating(t):
        return "DOUBLE_PRECISION" if view else "Float"
    if pa.types.is_decimal(t):
        return "NUMERIC" if view else "Numeric"
    if pa.types.is_timestamp(t):
        return "TIMESTAMP" if view else "DateTime"
    return "VARCHAR" if view else "String"


def one_column_error(name: str, t: pa.DataType, *, view: bool) -> AttributeError:
    """query.py:89-94: with one selected column ``fix_columns_with_query`` takes the column's
    *type* for the model and ``getattr``s the column name on it.

    >>> str(one_column_error("id", pa.int64(), view=False))
    "'BigInteger' object has no attribute 'id'"
    """
    return AttributeError(f"'{type_name(t, view=view)}' object has no attribute '{name}'")


# --------------------------------------------------------------------------- frames

def _is_position_component(names: Sequence[str], i: int, schema: pa.Schema) -> bool:
    for start in (i, i - 1, i - 2):
        if 0 <= start and start + 2 < len(names):
            base = names[start][:-2]
            if (names[start] == base + "_x" and names[start + 1] == base + "_y" and names[start + 2] == base + "_z"
                    and all(pa.types.is_integer(schema.field(start + k).type) for k in range(3))):
                return True
    return False


def genuine_frame(table: pa.Table, *, view: bool, coalesce: Iterable[str] = (),
                  timestamps_utc: bool | None = None) -> pd.DataFrame:
    """The frame the service builds for this answer.

    Tables (query.py:23-29 ``dtype_map`` by exact model class, then query.py:106-111): BigInteger
    → ``Int64``, Integer (and every position component, ``CAST(ST_X(..) AS INTEGER)``) → ``Int32``,
    Float → ``Float32``, Boolean → ``boolean``, DateTime → ``datetime64[ns, UTC]`` (the naive
    value read as UTC), String → ``string``. Views (reflected INTEGER/BIGINT/DOUBLE_PRECISION/...
    are not in ``dtype_map``): integers → ``Int64``, floats and NUMERIC → ``Float64``, timestamps
    stay naive; positions are still ``Int32``. ``coalesce``: columns read through
    ``COALESCE(col, 1)`` (split layout, query_manager.py:640-646).

    >>> t = pa.table({"id": pa.array([1], pa.int64()), "created": pa.array([0], pa.timestamp("ns"))})
    >>> genuine_frame(t, view=False).dtypes.astype(str).tolist()
    ['Int64', 'datetime64[ns, UTC]']
    """
    utc = (not view) if timestamps_utc is None else timestamps_utc
    schema = table.schema
    names = schema.names
    fill = set(coalesce)
    data: dict[str, Any] = {}
    for i, name in enumerate(names):
        col = table.column(i)
        t = col.type
        if pa.types.is_integer(t):
            position = _is_position_component(names, i, schema)
            target = pa.int32() if position or (not view and pa.types.is_int32(t)) else pa.int64()
            s = _nullable(col.cast(target))
        elif pa.types.is_floating(t) or pa.types.is_decimal(t):
            target = pa.float64() if view or pa.types.is_decimal(t) else pa.float32()
            s = _nullable(col.cast(target))
        elif pa.types.is_boolean(t) or pa.types.is_string(t) or pa.types.is_large_string(t):
            s = _nullable(col.cast(pa.string()) if pa.types.is_large_string(t) else col)
        elif pa.types.is_timestamp(t):
            s = col.cast(pa.timestamp("ns", tz=t.tz)).to_pandas()
            if utc and s.dt.tz is None:
                s = s.dt.tz_localize("UTC")
            elif not utc and s.dt.tz is not None:
                s = s.dt.tz_convert("UTC").dt.tz_localize(None)
        else:
            s = col.to_pandas()
        if name in fill:
            s = s.fillna(1)
        data[name] = s.reset_index(drop=True)
    return pd.DataFrame(data, columns=names) if names else pd.DataFrame(index=range(table.num_rows))


_PANDAS = {pa.int32(): pd.Int32Dtype(), pa.int64(): pd.Int64Dtype(), pa.float32(): pd.Float32Dtype(),
           pa.float64(): pd.Float64Dtype(), pa.bool_(): pd.BooleanDtype(), pa.string(): pd.StringDtype()}


def _nullable(col: pa.ChunkedArray) -> pd.Series:
    return col.to_pandas(types_mapper=_PANDAS.get)


def encode_frame(df: pd.DataFrame, accept_encoding: str | None, *, compress: bool = True) -> bytes:
    """utils.py:109-122: ``pa.RecordBatch.from_pandas(df)`` as one IPC stream batch, buffers
    compressed LZ4_FRAME if "lz4" is accepted, else ZSTD if "zstd", else not at all. A
    non-range index becomes a trailing ``__index_level_0__`` column (pandas' default)."""
    if len(df) == 0:
        # read_sql infers string columns of an empty answer as object: Arrow's null type
        strings = [c for c in df.columns if isinstance(df[c].dtype, pd.StringDtype)]
        if strings:
            df = df.astype({c: object for c in strings})
    batch = pa.RecordBatch.from_pandas(df)
    enc = (accept_encoding or "")
    codec = None
    if compress:
        codec = "lz4" if "lz4" in enc else "zstd" if "zstd" in enc else None
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema, options=pa.ipc.IpcWriteOptions(compression=codec)) as writer:
        writer.write_batch(batch)
    return sink.getvalue().to_pybytes()


# --------------------------------------------------------------------------- filter values

class PgError(Exception):
    """What PostgreSQL says about a literal (the service inlines values: ``literal_binds``)."""


_PG_INT = re.compile(r"^\s*[+-]?\d+\s*$")
_PG_BOOL_TRUE = ("t", "true", "y", "yes", "on", "1")
_PG_BOOL_FALSE = ("f", "false", "n", "no", "off", "0")


def _pg_type(t: pa.DataType) -> str:
    if pa.types.is_int32(t) or pa.types.is_int16(t):
        return "integer"
    if pa.types.is_integer(t):
        return "bigint"
    if pa.types.is_float32(t):
        return "real"
    if pa.types.is_floating(t):
        return "double precision"
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_timestamp(t):
        return "timestamp without time zone"
    return "character varying"


def _pg_literal(value: Any, t: pa.DataType) -> Any:
    """A JSON value as PostgreSQL reads the literal SQLAlchemy renders for it, compared with a
    column of Arrow type ``t``: quoted strings are cast to the column's type (``'7'`` → 7), a
    float NaN/inf renders as a bare ``nan``/``inf`` (a column reference: an error)."""
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        raise PgError(f'column "{str(value).lstrip("-")}" does not exist')
    if not isinstance(value, str):
        return value
    kind = _pg_type(t)
    if kind in ("integer", "bigint"):
        if not _PG_INT.match(value):
            raise PgError(f'invalid input syntax for type {kind}: "{value}"')
        n = int(value)
        hi = 2**31 - 1 if kind == "integer" else 2**63 - 1
        if not -hi - 1 <= n <= hi:
            raise PgError(f'value "{value}" is out of range for type {kind}')
        return n
    if kind in ("real", "double precision"):
        text = value.strip().lower()
        special = {"nan": math.nan, "infinity": math.inf, "+infinity": math.inf, "-infinity": -math.inf,
                   "inf": math.inf, "+inf": math.inf, "-inf": -math.inf}
        if text in special:
            return special[text]
        try:
            Decimal(text)
            return float(text)
        except (InvalidOperation, ValueError):
            raise PgError(f'invalid input syntax for type {kind}: "{value}"') from None
    if kind == "boolean":
        text = value.strip().lower()
        if text and any(w.startswith(text) for w in _PG_BOOL_TRUE) and not any(
                w.startswith(text) for w in _PG_BOOL_FALSE):
            return True
        if text and any(w.startswith(text) for w in _PG_BOOL_FALSE) and not any(
                w.startswith(text) for w in _PG_BOOL_TRUE):
            return False
        raise PgError(f'invalid input syntax for type boolean: "{value}"')
    return value


def coerce_filters(body: Mapping[str, Any], types: Mapping[str, Mapping[str, pa.DataType]],
                   kinds: Sequence[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """The filter dicts with every value as PostgreSQL reads it (see :func:`_pg_literal`).

    ``types``: ``{table: {column: Arrow type}}``; columns not in it are left alone (the backend
    reports them). Raises :class:`PgError` as the database would."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for kind in kinds:
        spec = body.get(f"filter_{kind}_dict")
        if not spec:
            continue
        out[kind] = {}
        for table, cols in spec.items():
            if not isinstance(cols, Mapping):
                out[kind][table] = cols
                continue
            conv: dict[str, Any] = {}
            for col, value in cols.items():
                t = types.get(table, {}).get(col)
                if t is None or kind in ("spatial", "regex"):
                    conv[col] = value
                elif isinstance(value, list):
                    conv[col] = [_pg_literal(v, t) if v is not None else None for v in value]
                else:
                    conv[col] = _pg_literal(value, t)
            out[kind][table] = conv
    return out


# --------------------------------------------------------------------------- live re-filter

def live_refilter(df: pd.DataFrame, body: Mapping[str, Any],
                  column_names: Mapping[str, Mapping[str, str]]) -> pd.DataFrame:
    """api2.py:567-611 ``apply_filters``: the live answer filtered again in pandas with the
    request's own values (a missing column is a KeyError, ``== None`` matches nothing, a string
    compared with a number matches nothing or fails). ``filter_out_dict`` is never in a body
    (the schema has ``filter_notin_dict``), so its (buggy) branch never runs."""
    ops = (("filter_in_dict", lambda s, v: s.isin(v)), ("filter_equal_dict", lambda s, v: s == v),
           ("filter_greater_dict", lambda s, v: s > v), ("filter_less_dict", lambda s, v: s < v),
           ("filter_greater_equal_dict", lambda s, v: s >= v), ("filter_less_equal_dict", lambda s, v: s <= v))
    for key, op in ops:
        spec = body.get(key)
        if not spec:
            continue
        for table, flt in spec.items():
            for col, val in flt.items():
                colname = column_names[table][col]
                df = df[op(df[colname], val)]
    return df
