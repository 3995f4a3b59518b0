"""The logical plan: a resolved, typed query as frozen dataclasses.

This module is the IR between analysis (which produces it from the AST and the
catalog) and the planner (whose rules rewrite it). It lives outside both stage
packages, which both import it, so analysis does not depend on planning.

Expressions are resolved: every column is a :class:`Col` naming its source alias
and catalog column, every parameter is bound into a :class:`Lit`. A position
column has type ``position`` and stands for its three ``_x/_y/_z`` columns.

>>> c = Col("s", "size", "float")
>>> Call(">", (c, Lit(1000, "int")), "bool").type
'bool'
>>> print(show(Call(">", (c, Lit(1000, "int")), "bool")))
s.size > 1000
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

from caveql.errors import Span

__all__ = [
    "Agg", "Box", "Call", "Col", "Expr", "Filter", "InList", "InSub", "JoinClause", "Lit",
    "OrderSpec", "Output", "Query", "Scan", "columns_of", "conjuncts", "has_agg", "show", "walk",
]


def _span() -> Any:
    return field(default=None, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True, slots=True)
class Col:
    """A column of source ``source`` (an alias); ``name`` is the catalog name
    (``pt_position`` for a whole position, ``pt_position_x`` for a component)."""

    source: str
    name: str
    type: str
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class Lit:
    """A literal or bound parameter value (``None`` is NULL)."""

    value: Any
    type: str
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class Call:
    """An operator or scalar function: comparisons, ``AND``/``OR``/``NOT``,
    arithmetic, ``NEG``, ``IS NULL``, ``LIKE``, ``REGEX``, ``BETWEEN`` and the
    scalar functions (``ABS``, ``ROUND``, ``DISTANCE``, ...); ``negated`` flips
    the predicates that have a ``NOT`` form."""

    op: str
    args: tuple[Expr, ...]
    type: str
    negated: bool = False
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class InList:
    """``expr [NOT] IN (v, ...)`` over literal values."""

    expr: Expr
    values: tuple[Any, ...]
    negated: bool = False
    span: Span | None = _span()
    type: str = "bool"


@dataclass(frozen=True, slots=True)
class InSub:
    """``expr [NOT] IN (SELECT ...)``; ``index`` numbers the statement's subqueries."""

    expr: Expr
    query: Query
    index: int
    negated: bool = False
    span: Span | None = _span()
    type: str = "bool"


@dataclass(frozen=True, slots=True)
class Box:
    """``P WITHIN BOX(low, high)``; corners in the statement's resolution (inclusive)."""

    col: Col
    low: tuple[Any, Any, Any]
    high: tuple[Any, Any, Any]
    span: Span | None = _span()
    type: str = "bool"


@dataclass(frozen=True, slots=True)
class Agg:
    """An aggregate: ``COUNT`` (``arg`` None for ``COUNT(*)``), ``SUM``, ``AVG``, ``MIN``, ``MAX``."""

    name: str
    arg: Expr | None
    type: str
    distinct: bool = False
    span: Span | None = _span()


Expr = Union[Col, Lit, Call, InList, InSub, Box, Agg]


@dataclass(frozen=True, slots=True)
class Filter:
    """A filter pushed into a remote call: ``kind`` is a service filter kind
    (``equal``, ``in``, ``greater``, ... ``spatial``, ``regex``), ``table`` the
    service table owning ``column``; ``exact`` False keeps a local re-check."""

    kind: str
    table: str
    column: str
    value: Any
    origin: Expr | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Scan:
    """One source of the query: a table, view or merged reference table.

    Rules fill ``filters`` (pushed), ``columns`` (pruned catalog names to fetch),
    ``limit``/``offset`` (pushed) and ``feeds`` (``(from_alias_or_subquery,
    from_column, to_column)`` key feeds from sources fetched earlier).
    """

    alias: str
    table: str
    kind: str
    voxel_resolution: tuple[float, float, float]
    target: str | None = None
    filters: tuple[Filter, ...] = ()
    columns: tuple[str, ...] | None = None
    limit: int | None = None
    offset: int | None = None
    feeds: tuple[tuple[str, str, str], ...] = ()
    nullable: bool = False  # right side of a LEFT JOIN: WHERE conjuncts stay local
    est_rows: int | None = None
    count: bool = False  # the service counts the rows (``count=True``); COUNT(*) sums the counts


@dataclass(frozen=True, slots=True)
class JoinClause:
    """``[INNER|LEFT] JOIN alias ON left = right [AND ...]`` (``extra``: other ON conjuncts)."""

    kind: str
    alias: str
    pairs: tuple[tuple[Col, Col], ...]
    extra: tuple[Expr, ...] = ()


@dataclass(frozen=True, slots=True)
class Output:
    """One output column: its name and expression (positions expand on output)."""

    name: str
    expr: Expr


@dataclass(frozen=True, slots=True)
class OrderSpec:
    """An ORDER BY item."""

    expr: Expr
    descending: bool = False
    nulls: str | None = None


@dataclass(frozen=True)
class Query:
    """A resolved SELECT: the logical plan.

    ``where`` holds the conjuncts still evaluated locally (rules move the pushed
    ones into the scans); ``order`` is the fetch order of the scans (aliases);
    ``star_tail`` lists the indices of outputs that are positions from ``*``
    (packed at the end of the frame, where caveclient puts them).
    """

    scans: tuple[Scan, ...]
    joins: tuple[JoinClause, ...]
    outputs: tuple[Output, ...]
    where: tuple[Expr, ...] = ()
    group_by: tuple[Expr, ...] = ()
    having: Expr | None = None
    order_by: tuple[OrderSpec, ...] = ()
    limit: int | None = None
    offset: int | None = None
    distinct: bool = False
    aggregate: bool = False
    version: int | None = None
    timestamp: Any = None
    resolution: tuple[float, float, float] | None = None
    split_positions: bool = False
    datastack: str = ""
    synapse_table: str | None = None
    order: tuple[str, ...] = ()
    subqueries: tuple[Query, ...] = ()
    star_tail: tuple[int, ...] = ()

    def scan(self, alias: str) -> Scan:
        """The scan with this alias."""
        for s in self.scans:
            if s.alias == alias:
                return s
        raise KeyError(alias)

    def with_scan(self, scan: Scan) -> Query:
        """A copy with ``scan`` replacing the scan of the same alias."""
        from dataclasses import replace
        return replace(self, scans=tuple(scan if s.alias == scan.alias else s for s in self.scans))


# ------------------------------------------------------------------ helpers


def walk(e: Any):
    """Every expression node in ``e``, depth first (not into subqueries).

    >>> [type(n).__name__ for n in walk(Call("=", (Col("t", "a", "int"), Lit(1, "int")), "bool"))]
    ['Call', 'Col', 'Lit']
    """
    yield e
    if isinstance(e, Call):
        for a in e.args:
            yield from walk(a)
    elif isinstance(e, (InList, InSub)):
        yield from walk(e.expr)
    elif isinstance(e, Box):
        yield e.col
    elif isinstance(e, Agg) and e.arg is not None:
        yield from walk(e.arg)


def columns_of(e: Any) -> list[Col]:
    """The columns an expression reads."""
    return [n for n in walk(e) if isinstance(n, Col)]


def has_agg(e: Any) -> bool:
    """Whether an expression contains an aggregate."""
    return any(isinstance(n, Agg) for n in walk(e))


def conjuncts(e: Expr | None) -> tuple[Expr, ...]:
    """The AND-ed parts of a condition.

    >>> a = Call("=", (Col("t", "a", "int"), Lit(1, "int")), "bool")
    >>> len(conjuncts(Call("AND", (a, Call("AND", (a, a), "bool")), "bool")))
    3
    """
    if e is None:
        return ()
    if isinstance(e, Call) and e.op == "AND":
        return tuple(x for a in e.args for x in conjuncts(a))
    return (e,)


_INFIX = {"=", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/", "%", "AND", "OR"}


def _lit(v: Any) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, str):
        return "'" + v.replace("'", "''") + "'"
    return str(v)


def show(e: Any) -> str:
    """A readable one-line form of an expression, for EXPLAIN."""
    if isinstance(e, Col):
        return f"{e.source}.{e.name}"
    if isinstance(e, Lit):
        return _lit(e.value)
    if isinstance(e, Call):
        if e.op in _INFIX:
            return f"({show(e.args[0])} {e.op} {show(e.args[1])})" if e.op in ("AND", "OR") else \
                f"{show(e.args[0])} {e.op} {show(e.args[1])}"
        if e.op == "NOT":
            return f"NOT ({show(e.args[0])})"
        if e.op == "NEG":
            return f"-{show(e.args[0])}"
        if e.op == "IS NULL":
            return f"{show(e.args[0])} IS {'NOT ' if e.negated else ''}NULL"
        if e.op in ("LIKE", "REGEX"):
            op = "LIKE" if e.op == "LIKE" else "~"
            return f"{show(e.args[0])} {'NOT ' if e.negated else ''}{op} {show(e.args[1])}"
        if e.op == "BETWEEN":
            return (f"{show(e.args[0])} {'NOT ' if e.negated else ''}BETWEEN "
                    f"{show(e.args[1])} AND {show(e.args[2])}")
        return f"{e.op}({', '.join(show(a) for a in e.args)})"
    if isinstance(e, InList):
        vals = ", ".join(_lit(v) for v in e.values[:5]) + (f", ... ({len(e.values)} values)"
                                                         if len(e.values) > 5 else "")
        return f"{show(e.expr)} {'NOT ' if e.negated else ''}IN ({vals})"
    if isinstance(e, InSub):
        return f"{show(e.expr)} {'NOT ' if e.negated else ''}IN (subquery {e.index})"
    if isinstance(e, Box):
        return f"{show(e.col)} WITHIN BOX({tuple(e.low)}, {tuple(e.high)})"
    if isinstance(e, Agg):
        inner = "*" if e.arg is None else ("DISTINCT " if e.distinct else "") + show(e.arg)
        return f"{e.name}({inner})"
    return repr(e)
