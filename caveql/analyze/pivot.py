"""PIVOT and UNPIVOT as ordinary blocks, their output columns known at analysis.

``source PIVOT (agg [AS a], ... FOR col IN (v [AS n], ...))`` is the aggregate block
``SELECT <the source's other columns>, agg(CASE WHEN col = v THEN x END) AS <n>[_<a>], ...
FROM source GROUP BY <the other columns>`` (``COUNT(*)`` counts ``CASE WHEN col = v THEN 1
END``): DuckDB's PIVOT with a static IN list, groups without a matching value included. Output
names as DuckDB gives them: the value (or its alias), then ``_`` and the aggregate's alias when
it has one (two aggregates need aliases).

``source UNPIVOT [INCLUDE NULLS] (val FOR name IN (c1 [AS n1], ...))`` is ``UNION ALL`` of one
``SELECT <other columns>, 'n1' AS name, c1 AS val FROM source [WHERE c1 IS NOT NULL]`` per column.

Being blocks, both get every rule: a filter on a grouping column reaches the service, columns
are pruned, the rows come from the source's remote calls.

>>> _label(ast.String("BC")), _label(ast.Integer(3))
('BC', '3')
"""

from __future__ import annotations

from functools import reduce
from typing import Any

from caveql.errors import CqlSemanticError
from caveql.syntax import ast

__all__ = ["pivot_query"]


def _label(v: ast.Node) -> str:
    if isinstance(v, (ast.String, ast.Integer, ast.Float, ast.Boolean)):
        return str(v.value) if not isinstance(v, ast.Boolean) else ("true" if v.value else "false")
    if isinstance(v, ast.Unary) and v.op == "-" and isinstance(v.operand, (ast.Integer, ast.Float)):
        return f"-{v.operand.value}"
    if isinstance(v, ast.Null):
        return "NULL"
    raise CqlSemanticError("a PIVOT IN list holds constants (a value per output column)",
                           span=getattr(v, "span", None))


def _columns_in(node: Any) -> set[str]:
    out: set[str] = set()
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, ast.Column):
            out.add(n.name)
        elif isinstance(n, tuple):
            stack.extend(n)
        elif isinstance(n, ast.Node):
            stack.extend(getattr(n, f) for f in getattr(n, "__dataclass_fields__", {}) if f != "span")
    return out


def _pivot(p: ast.Pivot, names: list[str]) -> ast.Node:
    if p.column.name not in names:
        raise CqlSemanticError(f"PIVOT column '{p.column.name}' is not a column of its source",
                               span=p.column.span or p.span)
    if len(p.aggregates) > 1 and any(a.alias is None for a in p.aggregates):
        raise CqlSemanticError("a PIVOT with several aggregates needs an alias for each (AS name)",
                               span=p.span)
    used = {p.column.name} | _columns_in(tuple(a.expr for a in p.aggregates))
    groups = [n for n in names if n not in used]
    items = [ast.SelectItem(ast.Column(g)) for g in groups]
    for v in p.values:
        label = v.alias or _label(v.value)
        for a in p.aggregates:
            f = a.expr
            if not isinstance(f, ast.FuncCall):
                raise CqlSemanticError("PIVOT takes aggregates (SUM(x), COUNT(*), ...)",
                                       span=getattr(f, "span", None) or p.span)
            cond = ast.Binary("=", ast.Column(p.column.name, p.column.table), v.value)
            if f.star:
                args: tuple[Any, ...] = (ast.Case(None, ((cond, ast.Integer(1)),), None),)
            else:
                args = tuple(ast.Case(None, ((cond, x),), None) for x in f.args[:1]) + tuple(f.args[1:])
            call = ast.FuncCall(f.name, args, distinct=f.distinct, span=f.span, filter=f.filter)
            items.append(ast.SelectItem(call, alias=label + (f"_{a.alias}" if a.alias else "")))
    return ast.Select(items=tuple(items), source=p.source,
                      group_by=tuple(ast.Column(g) for g in groups), span=p.span)


def _unpivot(u: ast.Unpivot, names: list[str]) -> ast.Node:
    listed = [c.name for c, _a in u.columns]
    for c, _a in u.columns:
        if c.name not in names:
            raise CqlSemanticError(f"UNPIVOT column '{c.name}' is not a column of its source",
                                   span=c.span or u.span)
    others = [n for n in names if n not in listed]
    branches = []
    for c, alias in u.columns:
        items = [ast.SelectItem(ast.Column(o)) for o in others]
        items += [ast.SelectItem(ast.String(alias or c.name), alias=u.name_name),
                  ast.SelectItem(ast.Column(c.name), alias=u.value_name)]
        where = None if u.include_nulls else ast.IsNull(ast.Column(c.name), negated=True)
        branches.append(ast.Select(items=tuple(items), source=u.source, where=where, span=u.span))
    return reduce(lambda a, b: ast.SetOp("UNION", a, b, all=True, span=u.span), branches)


def pivot_query(ref: ast.Pivot | ast.Unpivot, names: list[str]) -> ast.Node:
    """The query a PIVOT / UNPIVOT over a source with columns ``names`` stands for (see the
    module docstring).

    >>> u = ast.Unpivot(ast.TableRef("t"), "v", "k", ((ast.Column("a"), None), (ast.Column("b"), "bee")))
    >>> type(pivot_query(u, ["id", "a", "b"])).__name__
    'SetOp'
    """
    return _pivot(ref, names) if isinstance(ref, ast.Pivot) else _unpivot(ref, names)
