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
    "Agg", "Block", "Box", "Call", "Case", "Cast", "Col", "WinFrame", "Window", "has_window",
    "map_children", "Derived", "Exists", "Expr", "Filter", "InList", "InSub",
    "JoinClause", "Lit", "LocalSource", "OrderSpec", "Output", "Query", "Scan", "ScalarSub", "SetOp",
    "blocks", "columns_of", "conjuncts", "equi_pairs", "has_agg", "show", "walk",
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
    extra: tuple[Expr, ...] = ()  # arguments after the first (QUANTILE_CONT(x, 0.9), STRING_AGG(x, ','))
    filter: Expr | None = None  # FILTER (WHERE c): only the group's rows where c is true


@dataclass(frozen=True, slots=True)
class Exists:
    """``[NOT] EXISTS (query)``; ``index`` numbers the statement's subqueries (as :class:`InSub`).
    ``outer`` lists the enclosing block's columns a correlated subquery reads (then it runs in
    DuckDB as a correlated subquery over its own fetched rows; else its rows are a sub-plan
    relation)."""

    query: Query
    index: int
    negated: bool = False
    outer: tuple[Col, ...] = ()
    span: Span | None = _span()
    type: str = "bool"


@dataclass(frozen=True, slots=True)
class ScalarSub:
    """A scalar subquery ``(SELECT one value ...)``: its only output's value (NULL without rows;
    more than one row is an error). ``outer`` as :class:`Exists`."""

    query: Query
    index: int
    type: str
    outer: tuple[Col, ...] = ()
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class Case:
    """``CASE WHEN c THEN v ... [ELSE e] END`` (a simple CASE is analysed into this searched
    form: each ``operand = w``); ``type`` is the unified type of the results."""

    whens: tuple[tuple[Expr, Expr], ...]
    else_: Expr | None
    type: str
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class Cast:
    """``CAST(e AS t)`` / ``TRY_CAST`` (``try_``: NULL where the value does not convert);
    ``type`` is the CQL type, ``sql`` the DuckDB type it lowers to (``BIGINT``, ``DECIMAL(10,2)``)."""

    expr: Expr
    sql: str
    type: str
    try_: bool = False
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class WinFrame:
    """A window frame: ``unit`` ROWS / RANGE / GROUPS; each bound ``(kind, offset)`` with kind
    ``UNBOUNDED PRECEDING``, ``PRECEDING``, ``CURRENT ROW``, ``FOLLOWING``, ``UNBOUNDED
    FOLLOWING`` and a constant offset (or None); ``exclude`` as written (or None)."""

    unit: str
    start: tuple[str, Any]
    end: tuple[str, Any]
    exclude: str | None = None


@dataclass(frozen=True, slots=True)
class Window:
    """A window function call ``name(args) [FILTER (WHERE f)] OVER (PARTITION BY ... ORDER BY
    ... frame)``: a window-only function (``ROW_NUMBER``, ``LAG``, ...) or an aggregate. Evaluated
    after WHERE, GROUP BY and HAVING, before QUALIFY, DISTINCT, ORDER BY and LIMIT; never by
    the service."""

    name: str
    args: tuple[Expr, ...]
    type: str
    partition_by: tuple[Expr, ...] = ()
    order_by: tuple[OrderSpec, ...] = ()
    frame: WinFrame | None = None
    distinct: bool = False
    star: bool = False  # COUNT(*) OVER (...)
    filter: Expr | None = None
    span: Span | None = _span()


Expr = Union[Col, Lit, Call, InList, InSub, Box, Agg, Exists, ScalarSub, Case, Cast, Window]


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
class Derived:
    """A source that is a block of its own: a derived table ``(query) AS alias`` or a CTE
    reference. ``columns`` are ``(name, type)`` as the outer block sees them; ``body`` is the
    block (a :class:`Query` or :class:`SetOp`), or None for a CTE used more than once, planned
    once in ``Query.ctes`` of the statement and read by name (``cte``)."""

    alias: str
    body: Block | None
    columns: tuple[tuple[str, str], ...]
    cte: str | None = None
    nullable: bool = False

    @property
    def shared(self) -> bool:
        """A reference to a CTE planned once for all its uses."""
        return self.body is None


@dataclass(frozen=True)
class LocalSource:
    """A local table (a file of the user's, a DataFrame; ``caveql.analyze.local_tables``):
    its rows are read before any remote call, so its keys can feed them. ``columns`` are
    those the query reads (None: all)."""

    alias: str
    table: Any
    columns: tuple[str, ...] | None = None
    nullable: bool = False

    @property
    def name(self) -> str:
        return str(self.table.name)


@dataclass(frozen=True)
class SetOp:
    """``left UNION|INTERSECT|EXCEPT [ALL] right``; ``outputs`` name and type the result columns
    (the left branch's names; each expression a :class:`Col` of source ``""``). ORDER BY /
    LIMIT / OFFSET written after a set operation belong to the block that reads it (analysis
    wraps it in a :class:`Query` whose only source is the set operation)."""

    op: str
    all: bool
    left: Block
    right: Block
    outputs: tuple[Output, ...]


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
    qualify: Expr | None = None  # QUALIFY: a filter on window results, after the windows
    # sources that are not CAVE tables (derived tables, CTE references, local tables), and the
    # FROM order of every source by alias (empty: the scans' order, the only sources)
    derived: tuple[Derived, ...] = ()
    locals: tuple[LocalSource, ...] = ()
    sources: tuple[str, ...] = ()
    # the statement's CTEs used more than once (on the top block only): planned once, fetched once
    ctes: tuple[tuple[str, Block], ...] = ()
    # this block's catalog when its version differs from the statement's (a set-operation branch
    # AT VERSION 343): the planner reads its tables there
    catalog: Any = field(default=None, compare=False, repr=False)

    def from_order(self) -> tuple[str, ...]:
        """Every source's alias in FROM order."""
        return self.sources or tuple(s.alias for s in self.scans)

    def source_kind(self, alias: str) -> str:
        """``scan``, ``derived`` or ``local`` for a source alias."""
        if any(s.alias == alias for s in self.scans):
            return "scan"
        if any(d.alias == alias for d in self.derived):
            return "derived"
        return "local"

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


Block = Union[Query, SetOp]


# ------------------------------------------------------------------ helpers


def blocks(b: Block) -> list[Query]:
    """Every SELECT block of ``b`` (derived sources and set-operation branches; not IN/EXISTS
    subqueries), outer first.

    >>> len(blocks(Query(scans=(), joins=(), outputs=())))
    1
    """
    if isinstance(b, SetOp):
        return blocks(b.left) + blocks(b.right)
    out = [b]
    for _name, c in b.ctes:
        out += blocks(c)
    for d in b.derived:
        if d.body is not None:
            out += blocks(d.body)
    return out


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
    elif isinstance(e, Agg):
        for a in (e.arg, *e.extra, e.filter):
            if a is not None:
                yield from walk(a)
    elif isinstance(e, Case):
        for c, v in e.whens:
            yield from walk(c)
            yield from walk(v)
        if e.else_ is not None:
            yield from walk(e.else_)
    elif isinstance(e, Cast):
        yield from walk(e.expr)
    elif isinstance(e, Window):
        for a in (*e.args, *e.partition_by, *(o.expr for o in e.order_by), e.filter):
            if a is not None:
                yield from walk(a)
    elif isinstance(e, (Exists, ScalarSub)):
        yield from e.outer  # a correlated subquery reads these columns of the enclosing block


def columns_of(e: Any) -> list[Col]:
    """The columns an expression reads."""
    return [n for n in walk(e) if isinstance(n, Col)]


def map_children(e: Any, f: Any) -> Any:
    """``e`` with ``f`` applied to its direct sub-expressions (the same object when none changed).

    >>> c = Call("ABS", (Col("t", "a", "int"),), "int")
    >>> map_children(c, lambda x: x) is c
    True
    """
    from dataclasses import replace
    m = lambda xs: tuple(f(x) for x in xs)  # noqa: E731
    if isinstance(e, Call):
        new = replace(e, args=m(e.args))
    elif isinstance(e, InList):
        new = replace(e, expr=f(e.expr))
    elif isinstance(e, Agg):
        new = replace(e, arg=None if e.arg is None else f(e.arg), extra=m(e.extra),
                      filter=None if e.filter is None else f(e.filter))
    elif isinstance(e, Case):
        new = replace(e, whens=tuple((f(c), f(v)) for c, v in e.whens),
                      else_=None if e.else_ is None else f(e.else_))
    elif isinstance(e, Cast):
        new = replace(e, expr=f(e.expr))
    elif isinstance(e, Window):
        new = replace(e, args=m(e.args), partition_by=m(e.partition_by),
                      order_by=tuple(replace(o, expr=f(o.expr)) for o in e.order_by),
                      filter=None if e.filter is None else f(e.filter))
    else:
        return e
    return e if new == e else new


def has_window(e: Any) -> bool:
    """Whether an expression contains a window function."""
    return any(isinstance(n, Window) for n in walk(e))


def has_agg(e: Any) -> bool:
    """Whether an expression contains an aggregate."""
    return any(isinstance(n, Agg) for n in walk(e))


def equi_pairs(conds: Any, right: str) -> tuple[tuple[tuple[Col, Col], ...], tuple[Expr, ...]]:
    """A join's ON conjuncts split into ``(other, right)`` column equalities and the rest.

    >>> a, b = Col("s", "pre_pt_root_id", "int"), Col("c", "pt_root_id", "int")
    >>> equi_pairs([Call("=", (b, a), "bool")], "c")[0] == ((a, b),)
    True
    """
    pairs, extra = [], []
    for c in conds:
        if (isinstance(c, Call) and c.op == "=" and len(c.args) == 2 and isinstance(c.args[0], Col)
                and isinstance(c.args[1], Col) and c.args[0].type != "position"):
            a, b = c.args
            if b.source == right and a.source != right:
                pairs.append((a, b))
                continue
            if a.source == right and b.source != right:
                pairs.append((b, a))
                continue
        extra.append(c)
    return tuple(pairs), tuple(extra)


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


def show_window(w: Window) -> str:
    """A window call as EXPLAIN prints it.

    >>> show_window(Window("ROW_NUMBER", (), "int", partition_by=(Col("t", "a", "int"),)))
    'ROW_NUMBER() OVER (PARTITION BY t.a)'
    """
    inner = "*" if w.star else ("DISTINCT " if w.distinct else "") + ", ".join(show(a) for a in w.args)
    parts = []
    if w.partition_by:
        parts.append("PARTITION BY " + ", ".join(show(p) for p in w.partition_by))
    if w.order_by:
        parts.append("ORDER BY " + ", ".join(
            show(o.expr) + (" DESC" if o.descending else "") + (f" NULLS {o.nulls}" if o.nulls else "")
            for o in w.order_by))
    if w.frame is not None:
        f = w.frame
        bound = lambda b: b[0] if b[1] is None else f"{_lit(b[1])} {b[0]}"  # noqa: E731
        parts.append(f"{f.unit} BETWEEN {bound(f.start)} AND {bound(f.end)}"
                     + (f" EXCLUDE {f.exclude}" if f.exclude else ""))
    filt = f" FILTER (WHERE {show(w.filter)})" if w.filter is not None else ""
    return f"{w.name}({inner}){filt} OVER ({' '.join(parts)})"


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
        inner += "".join(", " + show(x) for x in e.extra)
        return f"{e.name}({inner})" + (f" FILTER (WHERE {show(e.filter)})" if e.filter is not None else "")
    if isinstance(e, Case):
        whens = " ".join(f"WHEN {show(c)} THEN {show(v)}" for c, v in e.whens)
        return f"CASE {whens}" + (f" ELSE {show(e.else_)}" if e.else_ is not None else "") + " END"
    if isinstance(e, Cast):
        return f"{'TRY_CAST' if e.try_ else 'CAST'}({show(e.expr)} AS {e.sql})"
    if isinstance(e, Window):
        return show_window(e)
    if isinstance(e, Exists):
        return f"{'NOT ' if e.negated else ''}EXISTS (subquery {e.index})"
    if isinstance(e, ScalarSub):
        return f"(subquery {e.index})"
    return repr(e)
