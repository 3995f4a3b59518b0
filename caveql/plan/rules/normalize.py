"""Rule: canonical conditions — column on the left, ORs of equalities on one column as IN.

``5 < s.size`` becomes ``s.size > 5``; ``c = 'a' OR c = 'b' OR c IN ('d')`` becomes
``c IN ('a', 'b', 'd')`` (which the service evaluates); other ORs stay as they are.

>>> from caveql.logical import Call, Col, Lit, Query, show
>>> c = Col("t", "cell_type", "string")
>>> w = Call("OR", (Call("=", (c, Lit("BC", "string")), "bool"),
...                 Call("=", (Lit("MC", "string"), c), "bool")), "bool")
>>> q = normalize(Query(scans=(), joins=(), outputs=(), where=(w,)))
>>> show(q.where[0])
"t.cell_type IN ('BC', 'MC')"
"""

from __future__ import annotations

from dataclasses import replace

from caveql.logical import Call, Col, Expr, InList, Lit, Query

__all__ = ["normalize"]

_FLIP = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "=": "=", "!=": "!="}


def _canon(e: Expr) -> Expr:
    if isinstance(e, Call) and e.op in _FLIP and isinstance(e.args[0], Lit) and isinstance(e.args[1], Col):
        return replace(e, op=_FLIP[e.op], args=(e.args[1], e.args[0]))
    if isinstance(e, Call) and e.op == "OR":
        terms = _or_terms(e)
        merged = _as_in(terms)
        if merged is not None:
            return merged
        return replace(e, args=tuple(_canon(a) for a in e.args))
    return e


def _or_terms(e: Expr) -> list[Expr]:
    if isinstance(e, Call) and e.op == "OR":
        return [t for a in e.args for t in _or_terms(a)]
    return [_canon(e)]


def _as_in(terms: list[Expr]) -> Expr | None:
    col = None
    values: list[object] = []
    for t in terms:
        if isinstance(t, Call) and t.op == "=" and isinstance(t.args[0], Col) and isinstance(t.args[1], Lit):
            c, v = t.args[0], [t.args[1].value]
        elif isinstance(t, InList) and not t.negated and isinstance(t.expr, Col):
            c, v = t.expr, list(t.values)
        else:
            return None
        if col is not None and c != col:
            return None
        col = c
        values.extend(x for x in v if x not in values)
    if col is None or col.type == "position":
        return None
    return InList(col, tuple(values), span=terms[0].span if hasattr(terms[0], "span") else None)


def normalize(plan: Query) -> Query:
    """Canonicalise every WHERE conjunct (see the module docstring)."""
    subs = tuple(normalize(s) for s in plan.subqueries)
    return replace(plan, where=tuple(_canon(w) for w in plan.where), subqueries=subs)
