"""Strict validation of query bodies and query strings, as the service's marshmallow schemas do.

Unknown body keys are rejected (``unknown=RAISE``), values are type-checked, and a
valid body becomes a :class:`~caveql.backends.base.QueryRequest`. Failures raise
:class:`BodyError`, which the app answers the way the service does: HTTP 500 with
``{"schema_errors": {field: [message]}}`` (or ``{"errors": ..., "message": ...}``
for query-string arguments).

>>> req = simple_request({"filter_equal_dict": {"t": {"a": 1}}, "limit": 5}, "t", 661)
>>> req.kind, req.filter_equal, req.limit
('table', {'t': {'a': 1}}, 5)
>>> simple_request({"filter_out_dict": {}}, "t", 661)
Traceback (most recent call last):
...
caveql.server.validate.BodyError: {'filter_out_dict': ['Unknown field.']}
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from caveql.backends.base import FILTER_KINDS, QueryRequest

__all__ = ["ArgError", "BodyError", "bool_arg", "join_request", "live_request", "simple_request"]

_FILTERS = tuple(f"filter_{k}_dict" for k in FILTER_KINDS)
_SIMPLE = frozenset({*_FILTERS, "select_columns", "offset", "limit", "desired_resolution"})
_COMPLEX = frozenset({*_FILTERS, "tables", "select_columns", "select_column_map", "offset", "limit",
                      "suffixes", "suffix_map", "desired_resolution"})
_LIVE = frozenset({*_FILTERS, "table", "timestamp", "join_tables", "select_columns", "offset", "limit",
                   "suffixes", "desired_resolution"})


class BodyError(ValueError):
    """The body does not fit the endpoint's schema; ``errors`` is marshmallow's dict."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__(errors)
        self.errors = errors


class ArgError(ValueError):
    """A query-string argument has a bad value."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message


def bool_arg(args: Mapping[str, str], name: str, default: bool) -> bool:
    """flask-restx ``inputs.boolean``: true/false/1/0 in any case.

    >>> bool_arg({"count": "True"}, "count", False), bool_arg({}, "count", False)
    (True, False)
    """
    if name not in args:
        return default
    value = args[name].strip().lower()
    if value in ("true", "1", "on"):
        return True
    if value in ("false", "0", "off", ""):
        return False
    raise ArgError(name, f"Invalid literal for boolean(): {args[name]}")


def positive_int_arg(args: Mapping[str, str], name: str) -> int | None:
    """An optional positive integer argument.

    >>> positive_int_arg({"random_sample": "50"}, "random_sample"), positive_int_arg({}, "random_sample")
    (50, None)
    """
    if name not in args:
        return None
    try:
        value = int(args[name])
    except ValueError:
        raise ArgError(name, f"invalid literal for int() with base 10: {args[name]!r}") from None
    if value <= 0:
        raise ArgError(name, "must be a positive integer")
    return value


def _check_keys(body: Any, allowed: frozenset[str]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BodyError({"_schema": ["Invalid input type."]})
    unknown = [k for k in body if k not in allowed]
    if unknown:
        raise BodyError({k: ["Unknown field."] for k in unknown})
    return body


def _filters(body: dict[str, Any], errors: dict[str, list[str]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in FILTER_KINDS:
        key = f"filter_{kind}_dict"
        value = body.get(key)
        if value is None:
            continue
        if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
            errors[key] = ["Not a valid mapping type."]
            continue
        out[f"filter_{kind}"] = value
    return out


def _int(body: dict[str, Any], key: str, errors: dict[str, list[str]]) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        errors[key] = ["Not a valid integer."]
        return None
    try:
        return int(value)
    except ValueError:
        errors[key] = ["Not a valid integer."]
        return None


def _str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _resolution(body: dict[str, Any], errors: dict[str, list[str]]) -> tuple[float, float, float] | None:
    value = body.get("desired_resolution")
    if value is None:
        return None
    if (not isinstance(value, list) or len(value) != 3
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
        errors["desired_resolution"] = ["Must be a list of three numbers."]
        return None
    x, y, z = (float(v) for v in value)
    if min(x, y, z) <= 0:
        errors["desired_resolution"] = ["Must be positive."]
        return None
    return (x, y, z)


def _raise(errors: dict[str, list[str]]) -> None:
    if errors:
        raise BodyError(errors)


def simple_request(body: Any, table: str, version: int, *, kind: str = "table", count: bool = False) -> QueryRequest:
    """A table or view query body (``SimpleQuerySchema``)."""
    body = _check_keys(body, _SIMPLE)
    errors: dict[str, list[str]] = {}
    filters = _filters(body, errors)
    cols = body.get("select_columns")
    if cols is not None and not _str_list(cols):
        errors["select_columns"] = ["Not a valid list of strings."]
    offset, limit = _int(body, "offset", errors), _int(body, "limit", errors)
    res = _resolution(body, errors)
    _raise(errors)
    return QueryRequest(kind=kind, table=table, version=version, **filters,  # type: ignore[arg-type]
                        select_columns={table: tuple(cols)} if cols is not None else None,
                        offset=offset, limit=limit, desired_resolution=res, count=count)


def join_request(body: Any, version: int, columns_of: Any = None) -> QueryRequest:
    """A join body (``ComplexQuerySchema``). ``columns_of(table)`` resolves the deprecated
    ``select_columns`` list (each name goes to the first table that has it).

    >>> join_request({"tables": [["s", "post_pt_root_id"], ["n", "pt_root_id"]],
    ...               "suffix_map": {"s": "", "n": "_n"}}, 661).join
    (('s', 'post_pt_root_id'), ('n', 'pt_root_id'))
    """
    body = _check_keys(body, _COMPLEX)
    errors: dict[str, list[str]] = {}
    tables = body.get("tables")
    if tables is None:
        errors["tables"] = ["Missing data for required field."]
    elif (not isinstance(tables, list) or len(tables) < 2
          or not all(isinstance(t, list) and len(t) == 2 and _str_list(t) for t in tables)):
        errors["tables"] = ["Must be a list of [table, column] pairs."]
    filters = _filters(body, errors)
    offset, limit = _int(body, "offset", errors), _int(body, "limit", errors)
    res = _resolution(body, errors)
    cmap = body.get("select_column_map")
    if cmap is not None and not (isinstance(cmap, dict) and all(_str_list(v) for v in cmap.values())):
        errors["select_column_map"] = ["Not a valid mapping of lists of strings."]
    cols = body.get("select_columns")
    if cols is not None and not _str_list(cols):
        errors["select_columns"] = ["Not a valid list of strings."]
    smap = body.get("suffix_map")
    if smap is not None and not (isinstance(smap, dict) and all(isinstance(v, str) for v in smap.values())):
        errors["suffix_map"] = ["Not a valid mapping of strings."]
    suffixes = body.get("suffixes")
    if suffixes is not None and not _str_list(suffixes):
        errors["suffixes"] = ["Not a valid list of strings."]
    _raise(errors)
    (t1, c1), (t2, c2) = tables[0], tables[1]  # the service joins only the first two
    select: dict[str, tuple[str, ...]] | None = None
    if cmap is not None:
        select = {t: tuple(c) for t, c in cmap.items()}
    elif cols is not None:
        select = {}
        for col in cols:
            for t in (t1, t2):
                if columns_of is None or col in columns_of(t):
                    select.setdefault(t, ())
                    select[t] += (col,)
                    break
            else:
                raise BodyError({"select_columns": [f"{col} not in model or models for {t1}, {t2}"]})
    suffix_map = dict(smap) if smap is not None else (
        dict(zip((t1, t2), suffixes, strict=False)) if suffixes is not None else None)
    return QueryRequest(kind="join", join=((t1, c1), (t2, c2)), version=version, **filters,  # type: ignore[arg-type]
                        select_columns=select, offset=offset, limit=limit, desired_resolution=res,
                        suffix_map=suffix_map)


def _timestamp(value: Any, errors: dict[str, list[str]]) -> datetime | None:
    if not isinstance(value, str):
        errors["timestamp"] = ["Not a valid datetime."]
        return None
    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        errors["timestamp"] = ["Not a valid datetime."]
        return None
    # naive means UTC; the backend compares naive UTC timestamps
    return ts.astimezone(UTC).replace(tzinfo=None) if ts.tzinfo else ts


def live_request(body: Any) -> QueryRequest:
    """A live_live body (``V2QuerySchema``); the timestamp becomes naive UTC.

    >>> live_request({"table": "t", "timestamp": "2024-01-01T01:00:00+01:00"}).timestamp
    datetime.datetime(2024, 1, 1, 0, 0)
    """
    body = _check_keys(body, _LIVE)
    errors: dict[str, list[str]] = {}
    table = body.get("table")
    if not isinstance(table, str):
        errors["table"] = ["Missing data for required field."] if table is None else ["Not a valid string."]
    ts = None
    if body.get("timestamp") is None:
        errors["timestamp"] = ["Missing data for required field."]
    else:
        ts = _timestamp(body["timestamp"], errors)
    joins = body.get("join_tables") or []
    if not isinstance(joins, list) or not all(isinstance(j, list) and len(j) == 4 and _str_list(j) for j in joins):
        errors["join_tables"] = ["Must be a list of [table, column, table, column] lists."]
    filters = _filters(body, errors)
    offset, limit = _int(body, "offset", errors), _int(body, "limit", errors)
    res = _resolution(body, errors)
    cols = body.get("select_columns")
    if cols is not None and not (isinstance(cols, dict) and all(_str_list(v) for v in cols.values())):
        errors["select_columns"] = ["Not a valid mapping of lists of strings."]
    suffixes = body.get("suffixes")
    if suffixes is not None and not (isinstance(suffixes, dict) and all(isinstance(v, str) for v in suffixes.values())):
        errors["suffixes"] = ["Not a valid mapping of strings."]
    _raise(errors)
    return QueryRequest(kind="live", table=table, timestamp=ts,
                        live_joins=tuple((a, b, c, d) for a, b, c, d in joins), **filters,  # type: ignore[arg-type]
                        select_columns={t: tuple(c) for t, c in cols.items()} if cols is not None else None,
                        offset=offset, limit=limit, desired_resolution=res,
                        suffix_map=dict(suffixes) if suffixes is not None else None)
