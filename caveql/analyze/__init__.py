"""Analysis: names and types against the catalog; one entry, :func:`analyze`.

``analyze(statement, catalog, settings, params) -> Query`` (the logical plan).
The statement's CAVE clauses (AT VERSION / TIMESTAMP / LIVE / RESOLUTION, SPLIT
POSITIONS) override the session :class:`Settings`.

>>> from caveql.analyze import Settings
>>> Settings(version=661).version
661
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from caveql.analyze.catalog import Catalog
from caveql.analyze.resolve import _Resolver, constant_value
from caveql.analyze.settings import Settings
from caveql.errors import CqlSemanticError, CqlTypeError
from caveql.logical import Query
from caveql.syntax import ast

__all__ = ["Catalog", "Settings", "analyze", "parse_timestamp", "statement_options"]


def parse_timestamp(value: Any, span: Any = None) -> datetime:
    """An ISO-8601 timestamp as a naive UTC datetime.

    >>> parse_timestamp("2023-04-06T20:17:09+00:00")
    datetime.datetime(2023, 4, 6, 20, 17, 9)
    """
    if isinstance(value, datetime):
        ts = value
    else:
        try:
            ts = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise CqlTypeError(f"'{value}' is not an ISO-8601 timestamp "
                               "(e.g. '2023-04-06T20:17:09Z')", span=span) from None
    if ts.tzinfo is not None:
        ts = ts.astimezone(UTC).replace(tzinfo=None)
    return ts


def statement_options(select: ast.Select, settings: Settings, params: Mapping[str, Any]
                      ) -> tuple[int | None, datetime | None, tuple[float, float, float] | None]:
    """``(version, timestamp, resolution)`` a SELECT runs at: its clauses, else the settings.

    >>> from caveql.syntax import ast
    >>> s = ast.Select(items=(), source=ast.TableRef("t"),
    ...                cave=ast.CaveClauses(version=ast.Integer(343)))
    >>> statement_options(s, Settings(version=661), {})
    (343, None, None)
    """
    cave = select.cave
    version = settings.version
    timestamp = settings.timestamp
    if settings.live and timestamp is None:
        timestamp = datetime.now(UTC).replace(tzinfo=None)
    resolution = settings.resolution
    if cave.version is not None:
        v = _const(cave.version, params)
        if isinstance(v, bool) or not isinstance(v, int):
            raise CqlTypeError("AT VERSION takes a whole number", span=cave.version.span)
        version, timestamp = v, None
    if cave.timestamp is not None:
        if cave.version is not None:
            raise CqlSemanticError("AT VERSION and AT TIMESTAMP cannot be combined", span=cave.span)
        timestamp = parse_timestamp(_const(cave.timestamp, params), cave.timestamp.span)
    if cave.live:
        if cave.version is not None or cave.timestamp is not None:
            raise CqlSemanticError("AT LIVE cannot be combined with AT VERSION or AT TIMESTAMP",
                                   span=cave.span)
        timestamp = datetime.now(UTC).replace(tzinfo=None)
    if cave.resolution is not None:
        vals = [_const(c, params) for c in cave.resolution]
        for v, c in zip(vals, cave.resolution, strict=True):
            if isinstance(v, bool) or not isinstance(v, (int, float, Decimal)) or v <= 0:
                raise CqlTypeError("AT RESOLUTION takes three positive numbers (nm per unit)",
                                   span=c.span or cave.span)
        resolution = (float(vals[0]), float(vals[1]), float(vals[2]))
    return version, timestamp, resolution


def _const(e: ast.Node, params: Mapping[str, Any]) -> Any:
    try:
        return constant_value(e, params)
    except ValueError:
        raise CqlTypeError("expected a constant", span=getattr(e, "span", None)) from None


def _apply(q: Query, timestamp: datetime | None, resolution: Any, split: bool) -> Query:
    # subqueries keep the instant and resolution they were resolved at (their own AT clauses,
    # else their enclosing block's): only SPLIT POSITIONS is the statement's alone
    subs = tuple(_apply(s, s.timestamp, s.resolution, split) for s in q.subqueries)
    return replace(q, timestamp=timestamp, resolution=resolution, split_positions=split,
                   subqueries=subs)


def analyze(statement: ast.Node, catalog: Catalog, settings: Settings,
            params: Mapping[str, Any] | None = None, *, tables: Any = None,
            catalogs: Callable[[int | None, datetime | None], Catalog] | None = None) -> Query:
    """Resolve a query (a SELECT, a set operation, a WITH) into the logical plan.

    ``catalog`` is at the version of the statement's leftmost SELECT; ``catalogs(version,
    timestamp)`` gives the catalog of a block that reads another (``... AT VERSION 343 EXCEPT
    ... AT VERSION 661``); ``tables`` (a ``caveql.analyze.local_tables.LocalTables``) the
    local tables a FROM may name.

    >>> analyze.__name__
    'analyze'
    """
    from caveql.analyze.blocks import Context, resolve_query, root_select, wrap
    from caveql.logical import SetOp
    params = dict(params or {})
    if not isinstance(statement, (ast.Select, ast.SetOp, ast.With)):
        raise CqlSemanticError(f"cannot analyze a {type(statement).__name__} statement",
                               span=getattr(statement, "span", None))
    if settings.live and settings.timestamp is None:  # one "now" for every block
        settings = replace(settings, timestamp=datetime.now(UTC).replace(tzinfo=None), live=False)
    root = root_select(statement)
    version, timestamp, resolution = statement_options(root, settings, params)
    ctx = Context(catalog, settings, params, tables=tables, catalogs=catalogs, root=(version, timestamp),
                  root_node=root, root_opts=(version, timestamp, resolution), make=_Resolver,
                  options=statement_options)
    q = resolve_query(statement, ctx, settings)
    if isinstance(q, SetOp):
        q = wrap(q, ctx, settings)
    if ctx.shared:
        q = replace(q, ctes=tuple(ctx.shared.items()))
    return _apply(q, timestamp, resolution, root.cave.split_positions)
