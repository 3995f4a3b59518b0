"""The CQL abstract syntax tree: frozen dataclasses with tuple children.

Every node has a ``span`` (half-open source offsets) that takes no part in
equality, so ``parse(format(ast)) == ast`` holds although positions differ.
Rewrites use :func:`dataclasses.replace`.

Conventions the parser guarantees (and hypothesis strategies must respect):

- keywords and function names are upper-cased (``FuncCall.name == "COUNT"``);
- identifiers keep their case (CAVE names are case-sensitive);
- ``<>`` is read as ``!=``;
- a parenthesised expression leaves no node of its own;
- ``- 5`` (unary minus applied to a number literal) is folded into ``Integer(-5)`` /
  ``Float(-5.0)``; on anything else it stays ``Unary("-", ...)``;
- ``Integer.value`` is within ``[-(2**64 - 1), 2**64 - 1]``;
- ``Select.limit`` / ``offset`` / ``cave.version`` are ``Integer(0 <= n <= 2**63 - 1)`` or ``Param``;
- ``Float.value`` is a finite ``Decimal`` within the double range (0 or at least ~4.9e-324 in magnitude);
  ``cave.resolution`` items are positive ``Integer`` / ``Float`` or ``Param``;
  ``cave.timestamp`` is a ``String`` that ``datetime.fromisoformat`` accepts (a trailing ``Z``
  allowed) or a ``Param``;
- ``Star`` appears only as a ``SelectItem.expr``; ``Subquery`` only as an ``In.target``;
  a general ``ListExpr`` has two or more items, an IN list one or more;
- ``Join.kind`` is ``"INNER"`` unless ``LEFT [OUTER]`` was written; ``Set.name`` is
  lower-cased and several ``SET`` values make a ``ListExpr``; a bare word as a ``SET`` value
  (``SET datastack = minnie65_public``) is a ``Column``;
- function names are not checked against a list (analysis does that);
- no expression is nested more than ``caveql.syntax.builder.MAX_DEPTH`` (200) nodes deep, so
  later stages may recurse over expressions (a few frames per level) safely.

>>> Integer(1) == Integer(1, span=None)
True
>>> Column("cell_type") == Column("cell_type", table=None)
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal as L
from typing import Union

from caveql.errors import Span

__all__ = [
    "With",
    "WindowSpec",
    "WindowCall",
    "Unpivot",
    "TypeName",
    "TableSource",
    "SetOp",
    "QueryExpr",
    "PivotValue",
    "Pivot",
    "ParamTable",
    "FrameBound",
    "Frame",
    "FileRef",
    "Exists",
    "Derived",
    "Cte",
    "Cast",
    "Case",
    "BINARY_OPS",
    "Between",
    "Binary",
    "Boolean",
    "CaveClauses",
    "Column",
    "Describe",
    "Explain",
    "Expr",
    "Float",
    "FuncCall",
    "In",
    "Integer",
    "IsNull",
    "Join",
    "Like",
    "ListExpr",
    "Node",
    "Null",
    "OrderItem",
    "Param",
    "Regex",
    "Script",
    "Select",
    "SelectItem",
    "Set",
    "Show",
    "Star",
    "Statement",
    "String",
    "Subquery",
    "TableRef",
    "Unary",
    "Use",
    "WithinBox",
]


def _span() -> Span | None:
    return field(default=None, compare=False, repr=False, kw_only=True)  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class Node:
    """Base of every node."""


# --------------------------------------------------------------------------- expressions


@dataclass(frozen=True, slots=True)
class Integer(Node):
    """An exact integer literal (any size up to uint64; never routed through float)."""

    value: int
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class Float(Node):
    """A decimal literal such as ``1.5`` or ``2e3``. Kept as :class:`~decimal.Decimal`
    so the printed text round-trips exactly."""

    value: Decimal
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class String(Node):
    """A ``'string'`` literal (``''`` in the source is one quote in ``value``)."""

    value: str
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class Boolean(Node):
    """``TRUE`` or ``FALSE``."""

    value: bool
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class Null(Node):
    """``NULL``."""

    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class Param(Node):
    """A ``:name`` parameter, bound at run time."""

    name: str
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class Column(Node):
    """A column reference, ``name`` or ``table.name`` (``table`` is a table name or alias)."""

    name: str
    table: str | None = None
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class Star(Node):
    """``*`` or ``t.*`` in a select list."""

    table: str | None = None
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class ListExpr(Node):
    """A parenthesised list ``(a, b, c)`` of two or more items (or the items of an IN list)."""

    items: tuple[Expr, ...]
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class Unary(Node):
    """``NOT e``, ``-e`` or ``+e``."""

    op: L["NOT", "-", "+"]
    operand: Expr
    span: Span | None = _span()


BINARY_OPS = ("OR", "AND", "=", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/", "%")


@dataclass(frozen=True, slots=True)
class Binary(Node):
    """A binary operator; ``op`` is one of :data:`BINARY_OPS`."""

    op: str
    left: Expr
    right: Expr
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class Subquery(Node):
    """A parenthesised query: a value set (``x IN (SELECT ...)``) or, anywhere an expression
    may stand, a scalar subquery (``(SELECT max(size) FROM t)``). ``select`` is any
    :data:`QueryExpr` (a SELECT, a set operation or a WITH)."""

    select: QueryExpr
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class In(Node):
    """``expr [NOT] IN target``: target is a :class:`ListExpr`, a :class:`Param`
    (a list bound at run time), a :class:`Subquery` or a list-valued :class:`FuncCall`
    (``IN LATEST_ROOTS(r)``)."""

    expr: Expr
    target: ListExpr | Param | Subquery | FuncCall
    negated: bool = False
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class Between(Node):
    """``expr [NOT] BETWEEN low AND high`` (inclusive)."""

    expr: Expr
    low: Expr
    high: Expr
    negated: bool = False
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class Like(Node):
    """``expr [NOT] LIKE pattern`` (SQL ``%`` and ``_``)."""

    expr: Expr
    pattern: Expr
    negated: bool = False
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class Regex(Node):
    """``expr ~ pattern`` (POSIX, case-sensitive, unanchored) or ``expr !~ pattern``."""

    expr: Expr
    pattern: Expr
    negated: bool = False
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class IsNull(Node):
    """``expr IS [NOT] NULL``."""

    expr: Expr
    negated: bool = False
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class WithinBox(Node):
    """``P WITHIN BOX((x0, y0, z0), (x1, y1, z1))``, corners in the statement's resolution."""

    expr: Expr
    low: tuple[Expr, Expr, Expr]
    high: tuple[Expr, Expr, Expr]
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class FuncCall(Node):
    """A function or aggregate call; ``name`` upper-cased; ``COUNT(*)`` has ``star``; an
    aggregate's ``FILTER (WHERE c)`` is ``filter`` (a window call's is :class:`WindowCall`'s)."""

    name: str
    args: tuple[Expr, ...] = ()
    distinct: bool = False
    star: bool = False
    span: Span | None = _span()
    filter: Expr | None = None


@dataclass(frozen=True, slots=True)
class Case(Node):
    """``CASE [operand] WHEN w THEN t ... [ELSE e] END``: searched when ``operand`` is None,
    simple otherwise (each ``w`` compared with ``operand``)."""

    operand: Expr | None
    whens: tuple[tuple[Expr, Expr], ...]
    else_: Expr | None = None
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class TypeName(Node):
    """A type in ``CAST``/``TRY_CAST``/``::``: ``name`` upper-cased as written (``BIGINT``,
    ``VARCHAR``, ``TIMESTAMP``, ...; analysis maps it to a CQL type or says it is unknown),
    ``args`` its parenthesised integers (``DECIMAL(10, 2)``), ``array`` the number of ``[]``
    suffixes (``BIGINT[]`` is a list of BIGINT)."""

    name: str
    args: tuple[int, ...] = ()
    array: int = 0
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class Cast(Node):
    """``CAST(e AS t)``, ``TRY_CAST(e AS t)`` (``try_`` True: NULL instead of an error) or
    ``e::t`` (``shorthand`` True; the same meaning as CAST, kept only so the formatter
    prints what was written)."""

    expr: Expr
    type: TypeName
    try_: bool = False
    shorthand: bool = False
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class Exists(Node):
    """``[NOT] EXISTS (query)``."""

    query: QueryExpr
    negated: bool = False
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class FrameBound(Node):
    """One end of a window frame: ``kind`` is ``UNBOUNDED PRECEDING``, ``PRECEDING``,
    ``CURRENT ROW``, ``FOLLOWING`` or ``UNBOUNDED FOLLOWING``; ``offset`` the ``n`` of
    ``n PRECEDING`` / ``n FOLLOWING`` (None otherwise)."""

    kind: L["UNBOUNDED PRECEDING", "PRECEDING", "CURRENT ROW", "FOLLOWING", "UNBOUNDED FOLLOWING"]
    offset: Expr | None = None
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class Frame(Node):
    """``ROWS|RANGE|GROUPS BETWEEN start AND end`` (``end`` None for the one-bound form
    ``ROWS n PRECEDING``); ``exclude`` is ``CURRENT ROW``, ``GROUP``, ``TIES`` or
    ``NO OTHERS`` when written."""

    unit: L["ROWS", "RANGE", "GROUPS"]
    start: FrameBound
    end: FrameBound | None = None
    exclude: str | None = None
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class WindowSpec(Node):
    """``(base PARTITION BY ... ORDER BY ... frame)``; ``base`` names a window of the
    WINDOW clause that this one refines (every part optional)."""

    base: str | None = None
    partition_by: tuple[Expr, ...] = ()
    order_by: tuple[OrderItem, ...] = ()
    frame: Frame | None = None
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class WindowCall(Node):
    """``f(args) [FILTER (WHERE c)] OVER window``: ``window`` is an inline :class:`WindowSpec`
    or the name of a window of the WINDOW clause (``OVER w``)."""

    func: FuncCall
    window: WindowSpec | str
    filter: Expr | None = None
    span: Span | None = _span()


Expr = Union[
    Integer, Float, String, Boolean, Null, Param, Column, Star, ListExpr, Unary, Binary,
    Subquery, In, Between, Like, Regex, IsNull, WithinBox, FuncCall, Case, Cast, Exists,
    WindowCall,
]

# --------------------------------------------------------------------------- SELECT


@dataclass(frozen=True, slots=True)
class SelectItem(Node):
    """One item of the select list, with an optional ``AS alias``."""

    expr: Expr
    alias: str | None = None
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class TableRef(Node):
    """A table or view name with an optional alias."""

    name: str
    alias: str | None = None
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class FileRef(Node):
    """A file of the user's as a table: ``FROM 'cells.csv' [AS c]`` (``function`` None; the
    format from the extension) or ``FROM read_csv('cells.csv', header = true) [AS c]``
    (``function`` lower-cased: ``read_csv``, ``read_parquet``, ``read_json``; ``options``
    the ``name = constant`` arguments in order). ``path`` is as written; analysis resolves
    it against the .cql file's folder or the working directory."""

    path: str
    alias: str | None = None
    function: str | None = None
    options: tuple[tuple[str, Expr], ...] = ()
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class ParamTable(Node):
    """A table bound at run time: ``FROM :cells [AS c]`` (a DataFrame or Arrow table passed
    as the parameter ``cells``)."""

    name: str
    alias: str | None = None
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class Derived(Node):
    """A derived table ``(query) AS alias [(c1, c2, ...)]``; the alias is required."""

    query: QueryExpr
    alias: str
    columns: tuple[str, ...] = ()
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class PivotValue(Node):
    """One value of a PIVOT's ``IN`` list, with an optional output name."""

    value: Expr
    alias: str | None = None
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class Pivot(Node):
    """``source PIVOT (agg [AS a], ... FOR column IN (v [AS n], ...)) [AS alias]``: one
    output column per value (× aggregate), grouped by the source's other columns."""

    source: TableSource
    aggregates: tuple[SelectItem, ...]
    column: Column
    values: tuple[PivotValue, ...]
    alias: str | None = None
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class Unpivot(Node):
    """``source UNPIVOT [INCLUDE NULLS] (value_name FOR name_name IN (c1 [AS n1], ...))
    [AS alias]``: each listed column becomes a row (its name or alias in ``name_name``,
    its value in ``value_name``)."""

    source: TableSource
    value_name: str
    name_name: str
    columns: tuple[tuple[Column, str | None], ...]
    include_nulls: bool = False
    alias: str | None = None
    span: Span | None = _span()


TableSource = Union[TableRef, FileRef, ParamTable, Derived, Pivot, Unpivot]


@dataclass(frozen=True, slots=True)
class Join(Node):
    """``[INNER | LEFT [OUTER] | RIGHT [OUTER] | FULL [OUTER]] JOIN source ON condition``,
    ``... JOIN source USING (c, ...)`` or ``CROSS JOIN source`` (``on`` None, ``using``
    empty)."""

    source: TableSource
    on: Expr | None
    kind: L["INNER", "LEFT", "RIGHT", "FULL", "CROSS"] = "INNER"
    using: tuple[str, ...] = ()
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class OrderItem(Node):
    """``expr [ASC | DESC] [NULLS FIRST | NULLS LAST]``."""

    expr: Expr
    descending: bool = False
    nulls: L["FIRST", "LAST"] | None = None
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class CaveClauses(Node):
    """The CAVE clauses after the standard ones (any order in the source, each once).

    ``resolution`` is three expressions (nm per unit), ``version`` an integer
    expression, ``timestamp`` a string expression (ISO-8601), ``live`` is AT LIVE.
    """

    resolution: tuple[Expr, Expr, Expr] | None = None
    version: Expr | None = None
    timestamp: Expr | None = None
    live: bool = False
    split_positions: bool = False
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class Select(Node):
    """A SELECT block. ``source`` is None for a SELECT without FROM (``SELECT 1 + 1``);
    ``group_by_all`` is ``GROUP BY ALL`` (then ``group_by`` is empty); ``windows`` the
    ``WINDOW name AS (...)`` definitions; ``qualify`` filters on window functions."""

    items: tuple[SelectItem, ...]
    source: TableSource | None
    joins: tuple[Join, ...] = ()
    where: Expr | None = None
    group_by: tuple[Expr, ...] = ()
    having: Expr | None = None
    order_by: tuple[OrderItem, ...] = ()
    limit: Expr | None = None
    offset: Expr | None = None
    distinct: bool = False
    cave: CaveClauses = CaveClauses()
    group_by_all: bool = False
    windows: tuple[tuple[str, WindowSpec], ...] = ()
    qualify: Expr | None = None
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class SetOp(Node):
    """``left UNION [ALL] | INTERSECT [ALL] | EXCEPT [ALL] right`` with the ORDER BY, LIMIT
    and OFFSET written after the last branch, which apply to the whole (a branch with its
    own ORDER BY/LIMIT is parenthesised). INTERSECT binds tighter than UNION and EXCEPT;
    each branch keeps its own CAVE clauses (``... AT VERSION 343 EXCEPT ... AT VERSION 661``)."""

    op: L["UNION", "INTERSECT", "EXCEPT"]
    left: QueryExpr
    right: QueryExpr
    all: bool = False
    order_by: tuple[OrderItem, ...] = ()
    limit: Expr | None = None
    offset: Expr | None = None
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class Cte(Node):
    """``name [(c1, ...)] AS (query)`` in a WITH clause."""

    name: str
    query: QueryExpr
    columns: tuple[str, ...] = ()
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class With(Node):
    """``WITH [RECURSIVE] cte, ... body``: each CTE may use the ones before it (and itself,
    with RECURSIVE)."""

    ctes: tuple[Cte, ...]
    body: QueryExpr
    recursive: bool = False
    span: Span | None = _span()


QueryExpr = Union[Select, SetOp, With]


# --------------------------------------------------------------------------- other statements


@dataclass(frozen=True, slots=True)
class Show(Node):
    """``SHOW TABLES [LIKE 'p'] | VIEWS | VERSIONS | DATASTACK``."""

    what: L["TABLES", "VIEWS", "VERSIONS", "DATASTACK"]
    like: str | None = None
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class Describe(Node):
    """``DESCRIBE name`` — a table or view."""

    name: str
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class Explain(Node):
    """``EXPLAIN [ANALYZE] query``."""

    statement: QueryExpr
    analyze: bool = False
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class Set(Node):
    """``SET name = value``; ``name`` lower-cased; a resolution may be a :class:`ListExpr`."""

    name: str
    value: Expr
    span: Span | None = _span()


@dataclass(frozen=True, slots=True)
class Use(Node):
    """``USE datastack_name``."""

    name: str
    span: Span | None = _span()


Statement = Union[Select, SetOp, With, Show, Describe, Explain, Set, Use]


@dataclass(frozen=True, slots=True)
class Script(Node):
    """One or more statements separated by ``;``."""

    statements: tuple[Statement, ...]
    span: Span | None = _span()
