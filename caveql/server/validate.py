"""Query bodies and query strings checked as MaterializationEngine 5.26.4 checks them.

Bodies: the marshmallow 3.5.1 schemas of ``blueprints/client/schemas.py`` (``SimpleQuerySchema``,
``ComplexQuerySchema``, ``V2QuerySchema``) loaded by flask-accepts with ``unknown=RAISE``:
unknown keys, ``null`` values, wrong types and wrong lengths are reported per field, with
marshmallow's messages and its coercions (``"7"`` and ``7.9`` are the integer 7, ``"2"`` is the
float 2.0, a naive timestamp is UTC). A failure raises :class:`BodyError`, which the app answers
as the service does: HTTP 500 with ``{"schema_errors": {...}}``. Query strings: flask-restx
``reqparse`` with ``inputs.boolean``/``inputs.positive`` (:class:`ArgError`, answered as
``{"errors": {name: help + " " + message}, "message": "Input payload validation failed"}``).

>>> load_simple({"filter_equal_dict": {"t": {"a": 1}}, "limit": "5"})
{'filter_equal_dict': {'t': {'a': 1}}, 'limit': 5}
>>> load_simple({"filter_out_dict": {}})
Traceback (most recent call last):
...
caveql.server.validate.BodyError: {'filter_out_dict': ['Unknown field.']}
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

__all__ = ["ARGS_V2", "ARGS_V3", "ArgError", "BodyError", "join_request", "live_request", "load_complex", "load_live",
           "load_simple", "parse_args", "simple_request"]

_FILTERS = ("filter_in_dict", "filter_notin_dict", "filter_equal_dict", "filter_greater_dict", "filter_less_dict",
            "filter_greater_equal_dict", "filter_less_equal_dict", "filter_spatial_dict", "filter_regex_dict")


class BodyError(ValueError):
    """The body does not fit the endpoint's schema; ``errors`` is marshmallow's dict."""

    def __init__(self, errors: dict[str, Any]) -> None:
        super().__init__(errors)
        self.errors = errors


class ArgError(ValueError):
    """A query-string argument has a bad value (reqparse's 400, answered as a 500)."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message


# --------------------------------------------------------------------------- query strings

# api2.py:140-228 (v3) and api.py:63-103 (v2): name, type, default, help
_HELP = {
    "return_pyarrow": "whether to return query in pyarrow compatible binary format(faster), false returns json",
    "arrow_format": "whether to convert dataframe to pyarrow ipc batch format",
    "random_sample": "How many samples to randomly get using tablesample on annotation tables, useful for "
                     "visualization of large tables does not work as a random sample of query",
    "split_positions": "whether to return position columnsas seperate x,y,z columns (faster)",
    "count": "whether to only return the count of a query",
    "allow_missing_lookups": "whether to return annotation results when there are new annotations that exist "
                             "but haven't yet had supervoxel and rootId lookups. A warning will still be "
                             "returned, but no 406 error thrown.",
    "allow_invalid_root_ids": "whether to let a query proceed when passed a set of root ids that are not valid "
                              "at the timestamp that is queried. If True the filter will likely not be relevant "
                              "and the user might not be getting data back that they expect, but it will not "
                              "error.",
    "ipc_compress": "whether to have arrow compress the result when using           return_pyarrow=True and "
                    "arrow_format=True.           If False, the result will not have it's internal data"
                    "          compressed (note that the entire response           will be gzip compressed if "
                    "accept-enconding includes gzip).           If True, accept-encoding will determine what"
                    "           internal compression is used",
    "direct_sql_pandas": "whether to use direct SQL queries with pandas,           if False it will fall back to "
                         "the csv streaming method.           which is prone to mangling types.           "
                         "CAVEclient>=8.0.0 should set this to True",
    "expired": "whether to return all expired versions",
}
ARGS_V3 = (("return_pyarrow", "bool", True), ("arrow_format", "bool", False), ("random_sample", "positive", None),
           ("split_positions", "bool", False), ("count", "bool", False), ("allow_missing_lookups", "bool", False),
           ("allow_invalid_root_ids", "bool", False), ("ipc_compress", "bool", True),
           ("direct_sql_pandas", "bool", False))
ARGS_V2 = (("return_pyarrow", "bool", True), ("arrow_format", "bool", False), ("split_positions", "bool", False),
           ("count", "bool", False), ("random_sample", "positive", None))
_HELP_V2 = {**_HELP, "return_pyarrow": "whether to return query in pyarrow compatible binary format (faster), "
                                       "false returns json",
            "split_positions": "whether to return position columns as seperate x,y,z columns (faster)"}


def _boolean(value: str) -> bool:
    """flask-restx ``inputs.boolean``: true/1/on, false/0, empty is false, any case."""
    if not value:
        return False
    low = value.lower()
    if low in ("true", "1", "on"):
        return True
    if low in ("false", "0"):
        return False
    raise ValueError(f"Invalid literal for boolean(): {low}")


def _positive(value: str) -> int:
    """flask-restx ``inputs.positive``."""
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{value} is not a valid integer") from None
    if n < 1:
        raise ValueError(f"Invalid argument: {n}. argument must be a positive integer")
    return n


def parse_args(args: Mapping[str, str], spec: tuple[tuple[str, str, Any], ...] = ARGS_V3, *,
               v2: bool = False) -> dict[str, Any]:
    """``query_parser.parse_args()``: every argument of ``spec`` with its value or default (the
    first bad one raises :class:`ArgError`); other arguments are ignored.

    >>> parse_args({"count": "True"})["count"], parse_args({})["return_pyarrow"]
    (True, True)
    """
    helps = _HELP_V2 if v2 else _HELP
    out: dict[str, Any] = {}
    for name, kind, default in spec:
        if name not in args:
            out[name] = default
            continue
        try:
            out[name] = _boolean(args[name]) if kind == "bool" else _positive(args[name])
        except ValueError as exc:
            raise ArgError(name, f"{helps[name]} {exc}") from None
    return out


# --------------------------------------------------------------------------- marshmallow fields

_NULL = "Field may not be null."


def _integer(value: Any) -> int:
    if isinstance(value, bool) or value is None:
        raise ValueError("Not a valid integer.")
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError("Not a valid integer.") from None


def _float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("Not a valid number.")
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError("Not a valid number.") from None


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("Not a valid string.")
    return value


def _list_of(value: Any, item: Any, length: int | None = None) -> tuple[Any, Any]:
    """marshmallow ``List``: (value, None) or (None, errors)."""
    if not isinstance(value, list):
        return None, ["Not a valid list."]
    out, errors = [], {}
    for i, v in enumerate(value):
        if v is None:
            errors[i] = [_NULL]
            continue
        try:
            out.append(item(v))
        except _Nested as nested:
            errors[i] = nested.errors
        except ValueError as exc:
            errors[i] = [str(exc)]
    if errors:
        return None, errors
    if length is not None and len(out) != length:
        return None, [f"Length must be {length}."]
    return out, None


class _Nested(ValueError):
    def __init__(self, errors: Any) -> None:
        super().__init__(errors)
        self.errors = errors


def _pair_list(v: Any) -> list[str]:
    out, err = _list_of(v, _string, 2)
    if err is not None:
        raise _Nested(err)
    return out


def _str_list(v: Any) -> list[str]:
    out, err = _list_of(v, _string)
    if err is not None:
        raise _Nested(err)
    return out


# marshmallow 3.5.1 utils.from_iso_datetime
_ISO = re.compile(r"(?P<year>\d{4})-(?P<month>\d{1,2})-(?P<day>\d{1,2})[T ](?P<hour>\d{1,2}):(?P<minute>\d{1,2})"
                  r"(?::(?P<second>\d{1,2})(?:\.(?P<microsecond>\d{1,6})\d{0,6})?)?"
                  r"(?P<tzinfo>Z|[+-]\d{2}(?::?\d{2})?)?$")


def _aware_datetime(value: Any) -> datetime:
    """``fields.AwareDateTime(default_timezone=utc)``."""
    if not isinstance(value, str):
        raise ValueError("Not a valid datetime.")
    m = _ISO.match(value)
    if not m:
        raise ValueError("Not a valid datetime.")
    kw = m.groupdict()
    kw["microsecond"] = kw["microsecond"] and kw["microsecond"].ljust(6, "0")
    tz = kw.pop("tzinfo")
    try:
        ts = datetime(**{k: int(v) for k, v in kw.items() if v})
    except ValueError:
        raise ValueError("Not a valid datetime.") from None
    if tz == "Z":
        return ts.replace(tzinfo=UTC)
    if tz is not None:
        minutes = int(tz[-2:]) if len(tz) > 3 else 0
        offset = timedelta(hours=int(tz[1:3]), minutes=minutes)
        return ts.replace(tzinfo=timezone(-offset if tz[0] == "-" else offset))
    return ts.replace(tzinfo=UTC)


def _load(body: Any, fields: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    if not isinstance(body, Mapping):
        raise BodyError({"_schema": ["Invalid input type."]})
    errors: dict[str, Any] = {}
    out: dict[str, Any] = {}
    for name, kind in fields.items():
        if name not in body:
            if name in required:
                errors[name] = ["Missing data for required field."]
            continue
        value = body[name]
        if value is None:
            errors[name] = [_NULL]
            continue
        if kind == "dict":
            if isinstance(value, Mapping):
                out[name] = dict(value)
            else:
                errors[name] = ["Not a valid mapping type."]
            continue
        try:
            if kind == "int":
                out[name] = _integer(value)
            elif kind == "str":
                out[name] = _string(value)
            elif kind == "datetime":
                out[name] = _aware_datetime(value)
            else:
                loaded, err = kind(value)
                if err is not None:
                    errors[name] = err
                else:
                    out[name] = loaded
        except ValueError as exc:
            errors[name] = [str(exc)]
    for name in body:
        if name not in fields:
            errors[name] = ["Unknown field."]
    if errors:
        raise BodyError(_jsonable(errors))
    return out


def _jsonable(errors: Any) -> Any:
    """Integer keys (list positions) as JSON writes them."""
    if isinstance(errors, dict):
        return {str(k): _jsonable(v) for k, v in errors.items()}
    return errors


_COMMON: dict[str, Any] = {name: "dict" for name in _FILTERS}
_RESOLUTION = ("desired_resolution", lambda v: _list_of(v, _float, 3))

_SIMPLE = {**_COMMON, "select_columns": lambda v: _list_of(v, _string), "offset": "int", "limit": "int",
           _RESOLUTION[0]: _RESOLUTION[1]}
_COMPLEX = {"tables": lambda v: _list_of(v, _pair_list), **_COMMON, "select_columns": lambda v: _list_of(v, _string),
            "select_column_map": "dict", "offset": "int", "limit": "int",
            "suffixes": lambda v: _list_of(v, _string), "suffix_map": "dict", _RESOLUTION[0]: _RESOLUTION[1]}
_LIVE = {"table": "str", "timestamp": "datetime", "join_tables": lambda v: _list_of(v, _str_list), **_COMMON,
         "select_columns": "dict", "offset": "int", "limit": "int", "suffixes": "dict",
         _RESOLUTION[0]: _RESOLUTION[1]}


def load_simple(body: Any) -> dict[str, Any]:
    """``SimpleQuerySchema`` (table and view queries)."""
    return _load(body, _SIMPLE)


def load_complex(body: Any) -> dict[str, Any]:
    """``ComplexQuerySchema`` (frozen joins).

    >>> load_complex({"tables": [["s", "post_pt_root_id"], ["n"]]})
    Traceback (most recent call last):
    ...
    caveql.server.validate.BodyError: {'tables': {'1': ['Length must be 2.']}}
    """
    return _load(body, _COMPLEX, required=("tables",))


def load_live(body: Any) -> dict[str, Any]:
    """``V2QuerySchema`` (live_live); the timestamp comes back timezone-aware (naive means UTC).

    >>> load_live({"table": "t", "timestamp": "2024-01-01T01:00:00+01:00"})["timestamp"].isoformat()
    '2024-01-01T01:00:00+01:00'
    """
    return _load(body, _LIVE, required=("table", "timestamp"))


# --------------------------------------------------------------------------- as QueryRequests

def _flat(errors: dict[str, Any]) -> dict[str, list[str]]:
    """marshmallow's errors with per-item errors flattened into one list per field."""
    def walk(v: Any) -> list[str]:
        if isinstance(v, dict):
            return [m for x in v.values() for m in walk(x)]
        if isinstance(v, list):
            return [m for x in v for m in walk(x)]
        return [str(v)]
    return {k: walk(v) for k, v in errors.items()}


def _checked(load: Any, body: Any) -> dict[str, Any]:
    try:
        return load(body)
    except BodyError as err:
        raise BodyError(_flat(err.errors)) from None


def _filters_of(body: Mapping[str, Any]) -> dict[str, Any]:
    return {name[: -len("_dict")]: body[name] for name in _FILTERS if name in body}


def simple_request(body: Any, table: str, version: int, *, kind: str = "table", count: bool = False) -> Any:
    """A table or view body (``SimpleQuerySchema``) as the QueryRequest it asks for.

    >>> simple_request({"filter_equal_dict": {"t": {"a": 1}}, "limit": 5}, "t", 661).limit
    5
    """
    from caveql.backends.base import QueryRequest

    data = _checked(load_simple, body)
    cols = data.get("select_columns")
    res = data.get("desired_resolution")
    return QueryRequest(kind=kind, table=table, version=version, **_filters_of(data),  # type: ignore[arg-type]
                        select_columns={table: tuple(cols)} if cols is not None else None,
                        offset=data.get("offset"), limit=data.get("limit"),
                        desired_resolution=tuple(res) if res is not None else None, count=count)


def join_request(body: Any, version: int, columns_of: Any = None) -> Any:
    """A join body (``ComplexQuerySchema``) as a QueryRequest of its first two tables (the
    service joins no more); a ``select_columns`` list goes to the first table having each name.

    >>> join_request({"tables": [["s", "post_pt_root_id"], ["n", "pt_root_id"]],
    ...               "suffix_map": {"s": "", "n": "_n"}}, 661).join
    (('s', 'post_pt_root_id'), ('n', 'pt_root_id'))
    """
    from caveql.backends.base import QueryRequest

    data = _checked(load_complex, body)
    tables = data["tables"]
    if len(tables) < 2:
        raise BodyError({"tables": ["The service joins two tables: list index out of range."]})
    (t1, c1), (t2, c2) = tables[0], tables[1]
    select: dict[str, tuple[str, ...]] | None = None
    cmap, cols = data.get("select_column_map"), data.get("select_columns")
    if cmap is not None:
        select = {t: tuple(c) if isinstance(c, list) else () for t, c in cmap.items()}
    elif cols is not None:
        select = {}
        for col in cols:
            for t in (t1, t2):
                if columns_of is None or col in columns_of(t):
                    select[t] = select.get(t, ()) + (col,)
                    break
    smap = data.get("suffix_map")
    suffixes = data.get("suffixes")
    suffix_map = dict(smap) if smap is not None else (
        dict(zip(dict.fromkeys((t1, t2)), suffixes, strict=False)) if suffixes is not None else None)
    res = data.get("desired_resolution")
    return QueryRequest(kind="join", join=((t1, c1), (t2, c2)), version=version,
                        **_filters_of(data),  # type: ignore[arg-type]
                        select_columns=select, offset=data.get("offset"), limit=data.get("limit"),
                        desired_resolution=tuple(res) if res is not None else None, suffix_map=suffix_map)


def live_request(body: Any) -> Any:
    """A live_live body (``V2QuerySchema``) as a QueryRequest; the timestamp as naive UTC.

    >>> live_request({"table": "t", "timestamp": "2024-01-01T01:00:00+01:00"}).timestamp
    datetime.datetime(2024, 1, 1, 0, 0)
    """
    from caveql.backends.base import QueryRequest

    data = _checked(load_live, body)
    ts = data["timestamp"].astimezone(UTC).replace(tzinfo=None)
    cols = data.get("select_columns")
    suffixes = data.get("suffixes")
    res = data.get("desired_resolution")
    return QueryRequest(kind="live", table=data["table"], timestamp=ts,
                        live_joins=tuple(tuple(j) for j in data.get("join_tables", [])),  # type: ignore[misc]
                        **_filters_of(data),  # type: ignore[arg-type]
                        select_columns={t: tuple(c) if isinstance(c, list) else () for t, c in cols.items()}
                        if cols is not None else None,
                        offset=data.get("offset"), limit=data.get("limit"),
                        desired_resolution=tuple(res) if res is not None else None,
                        suffix_map=dict(suffixes) if suffixes is not None else None)
