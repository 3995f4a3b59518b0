"""Rule: a 32-bit float column compared with a number compares in 32 bits, pushed or local.

The service answers a table's ``Float`` columns as ``Float32`` although it stores and
filters them as doubles (materialization-server.md §1.3), so ``x = v`` evaluated by the
service (on the double) and ``NOT (x = v)`` evaluated locally (on the returned float32) could
both hold for one row. Only table columns (a merged reference's included) whose schema
declares ``Float`` are such columns: a view's floats come back as the doubles the service
filters (``Float64``: the engine's reflected view columns are not in its ``dtype_map``), so
they compare as doubles everywhere and the rule leaves them alone. The rule
fixes one meaning everywhere: **the value as returned (float32) against the number
rounded to float32** (round to nearest, ties to even). The number is rewritten to
its float32 value (a :class:`Lit` of type ``float32``), which the local SQL compares
exactly (in every expression: WHERE, ON, the select list, GROUP BY, HAVING, ORDER BY);
:func:`edge_filters` pushes the exact double range whose values round into the answer
(``x >= v`` becomes ``x >= m`` or ``x > m``, ``m`` the midpoint between ``v`` and the
float32 below it), so pushed and local agree on every row.

>>> f32(9625.333333333334)
9625.3330078125
>>> edge_filters(">=", 1.0)
[('greater_equal', 0.9999999701976776)]
>>> edge_filters("=", 1.0)
[('greater_equal', 0.9999999701976776), ('less_equal', 1.0000000596046448)]
"""

from __future__ import annotations

import struct
from dataclasses import replace
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa

from caveql.analyze.catalog import Catalog
from caveql.logical import Agg, Call, Case, Cast, Col, Expr, InList, Lit, Query, Window, map_children

__all__ = ["edge_filters", "f32", "float32_compare"]

_CMP = ("=", "!=", "<", "<=", ">", ">=")
_FLIP = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "=": "=", "!=": "!="}
_MAX = float(np.finfo(np.float32).max)
_OVER = float(2**128 - 2**103)  # max float32 + half an ulp: the double where rounding reaches inf


def f32(v: float) -> float:
    """``v`` rounded to the nearest float32 (ties to even), as a Python float (±inf past the range).

    >>> f32(0.1), f32(16777217)
    (0.10000000149011612, 16777216.0)
    """
    with np.errstate(over="ignore"):
        return float(np.float32(float(v)))


def _even(f: float) -> bool:
    return struct.unpack("<I", struct.pack("<f", f))[0] & 1 == 0


def _step(f: float, up: bool) -> float:
    with np.errstate(over="ignore"):  # past the largest float32 is inf, which callers handle
        return float(np.nextafter(np.float32(f), np.float32(np.inf if up else -np.inf)))


def _mid(a: float, b: float) -> float:
    """The midpoint of two adjacent float32 values, exact in double (inf stands for the overflow edge)."""
    if b == np.inf:
        return _OVER
    if a == -np.inf:
        return -_OVER
    return (a + b) / 2  # 25 significant bits at most: exact


def _lower(f: float) -> tuple[str, float]:
    """The pushed filter for ``float32(d) >= f`` (``f`` a finite float32 value)."""
    return ("greater_equal" if _even(f) else "greater", _mid(_step(f, False), f))


def _upper(f: float) -> tuple[str, float]:
    """The pushed filter for ``float32(d) <= f``."""
    return ("less_equal" if _even(f) else "less", _mid(f, _step(f, True)))


def edge_filters(op: str, f: float, hi: float | None = None) -> list[tuple[str, float]]:
    """``[(kind, double)]`` service filters selecting exactly the doubles ``d`` with
    ``float32(d) op f`` (``op`` one of ``= < <= > >=``, or ``BETWEEN`` f AND ``hi``);
    ``[]`` when a bound is infinite (such a comparison stays local).

    >>> edge_filters(">", 1.0)
    [('greater', 1.0000000596046448)]
    >>> edge_filters("<", 1.0)
    [('less', 0.9999999701976776)]
    """
    vals = [f] + ([hi] if hi is not None else [])
    if any(abs(x) > _MAX or x != x for x in vals):  # type: ignore[operator]
        return []
    if op == ">=":
        return [_lower(f)]
    if op == "<=":
        return [_upper(f)]
    if op == ">":
        g = _step(f, True)
        return [] if g == np.inf else [_lower(g)]
    if op == "<":
        g = _step(f, False)
        return [] if g == -np.inf else [_upper(g)]
    if op == "=":
        return [_lower(f), _upper(f)]
    if op == "BETWEEN" and hi is not None:
        return [_lower(f), _upper(hi)]
    return []


def _number(v: Any) -> bool:
    return isinstance(v, (int, float, Decimal)) and not isinstance(v, bool)


def _lit32(x: Lit) -> Lit:
    return Lit(f32(x.value), "float32", span=x.span)


class _Rewriter:
    def __init__(self, q: Query, catalog: Catalog) -> None:
        # (alias, column) of every float32 column of the query's tables (never a view's: the
        # service answers a view's floats as the doubles it filters)
        self.f32 = {(s.alias, c.name) for s in q.scans
                    for info in (catalog.source(s.table),) if info.kind != "view"
                    for c in info.columns if c.type == "float" and c.arrow == pa.float32()}

    def is32(self, e: Expr) -> bool:
        return isinstance(e, Col) and e.type == "float" and (e.source, e.name) in self.f32

    def num(self, e: Expr) -> bool:
        return isinstance(e, Lit) and _number(e.value) and e.type != "float32"

    def expr(self, e: Expr) -> Expr:
        if isinstance(e, Call):
            a = e.args
            if e.op in _CMP and len(a) == 2:
                if self.is32(a[0]) and self.num(a[1]):
                    return replace(e, args=(a[0], _lit32(a[1])))  # type: ignore[arg-type]
                if self.num(a[0]) and self.is32(a[1]):
                    return replace(e, op=_FLIP[e.op], args=(a[1], _lit32(a[0])))  # type: ignore[arg-type]
            elif e.op == "BETWEEN" and self.is32(a[0]):
                args = tuple(_lit32(x) if self.num(x) else x for x in a[1:])  # type: ignore[arg-type]
                return replace(e, args=(a[0],) + args)
            args = tuple(self.expr(x) for x in a)
            return e if all(x is y for x, y in zip(args, a, strict=True)) else replace(e, args=args)
        if isinstance(e, InList):
            if self.is32(e.expr):
                return replace(e, values=tuple(f32(v) if _number(v) else v for v in e.values))
            inner = self.expr(e.expr)
            return e if inner is e.expr else replace(e, expr=inner)
        if isinstance(e, (Agg, Case, Cast, Window)):  # (an aggregate's argument and FILTER too)
            return map_children(e, self.expr)
        return e


def float32_compare(plan: Query, *, catalog: Catalog) -> Query:
    """Round the numbers compared with float32 columns to float32 (see the module docstring)."""
    subs = tuple(float32_compare(s, catalog=catalog) for s in plan.subqueries)
    rw = _Rewriter(plan, catalog)
    if not rw.f32:
        return replace(plan, subqueries=subs) if plan.subqueries else plan
    ex = rw.expr

    def keep(old: tuple[Any, ...], new: tuple[Any, ...]) -> tuple[Any, ...]:
        return old if all(x is y for x, y in zip(old, new, strict=True)) else new

    # every expression, so that a comparison in the select list, GROUP BY or ORDER BY means
    # what it means in WHERE (and GROUP BY items still match their select items)
    fields = dict(
        where=keep(plan.where, tuple(ex(w) for w in plan.where)),
        joins=keep(plan.joins, tuple(j if not j.extra else replace(j, extra=tuple(ex(x) for x in j.extra))
                                     for j in plan.joins)),
        outputs=keep(plan.outputs, tuple(o if ex(o.expr) is o.expr else replace(o, expr=ex(o.expr))
                                         for o in plan.outputs)),
        group_by=keep(plan.group_by, tuple(ex(g) for g in plan.group_by)),
        having=ex(plan.having) if plan.having is not None else None,
        qualify=ex(plan.qualify) if plan.qualify is not None else None,
        order_by=keep(plan.order_by, tuple(o if ex(o.expr) is o.expr else replace(o, expr=ex(o.expr))
                                           for o in plan.order_by)),
        subqueries=keep(plan.subqueries, subs))
    if all(v is getattr(plan, k) for k, v in fields.items()):
        return plan
    return replace(plan, **fields)
