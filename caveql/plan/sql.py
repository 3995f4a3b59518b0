"""Local SQL: the logical plan's local part as one parameterised DuckDB statement.

Remote results are registered as relations ``c_<alias>`` (and ``sub<i>`` for
subquery results); every literal travels as a ``$n`` parameter with an explicit
cast, never pasted into the text. Long IN lists become registered one-column
relations (``inlist<i>``), which keeps SQL's NULL semantics of IN.

>>> b = SqlBuilder()
>>> from caveql.logical import Call, Col, Lit
>>> b.expr(Call(">", (Col("s", "size", "float"), Lit(1000, "int")), "bool"))
'("s"."size" > CAST($1 AS BIGINT))'
>>> b.params
[1000]
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from collections.abc import Callable
from typing import Any

from caveql.analyze.functions import lookup, render
from caveql.errors import UnsupportedError
from caveql.logical import (
    Agg, Box, Call, Case, Cast, Col, Exists, Expr, InList, InSub, Lit, ScalarSub, Window,
)

__all__ = ["INLINE_IN", "SqlBuilder", "quote"]

#: IN lists longer than this are bound as a registered relation, not as parameters.
INLINE_IN = 64

_I64 = (-(2**63), 2**63 - 1)


def quote(name: str) -> str:
    """A DuckDB quoted identifier.

    >>> quote('we"ird')
    '"we""ird"'
    """
    return '"' + name.replace('"', '""') + '"'


class SqlBuilder:
    """Collects parameters and extra relations while rendering expressions."""

    def __init__(self) -> None:
        self.params: list[Any] = []
        self.lists: dict[str, list[Any]] = {}  # relation name -> values (one column "v")
        self._memo: dict[tuple[type, Any], str] = {}
        self.count_source: str | None = None  # COUNT(*) sums this source's service counts
        # relations (caveql.plan.tree): the registered name of a block's subquery results by the
        # block's subquery index, and how a correlated subquery renders (inline, in DuckDB)
        self.sub_names: dict[int, str] = {}
        self.correlated: Callable[[Exists | ScalarSub], str] | None = None

    def param(self, value: Any, typ: str) -> str:
        if value is None:
            return "NULL"
        key = (type(value), value)
        hit = self._memo.get(key)
        if hit is not None:  # one placeholder per value: GROUP BY x * 2 matches SELECT x * 2
            return hit
        text = self._param(value)
        self._memo[key] = text
        return text

    def _param(self, value: Any) -> str:
        if isinstance(value, bool):
            cast = "BOOLEAN"
        elif isinstance(value, int):
            cast = "BIGINT" if _I64[0] <= value <= _I64[1] else "HUGEINT"
            if not -(2**127) <= value < 2**127:
                cast = "DOUBLE"
                value = float(value)
        elif isinstance(value, (float, Decimal)):
            cast, value = "DOUBLE", float(value)
        elif isinstance(value, datetime):
            cast = "TIMESTAMP"
        elif isinstance(value, str):
            cast = "VARCHAR"
        else:
            raise UnsupportedError(f"cannot bind a value of type {type(value).__name__}")
        self.params.append(value)
        return f"CAST(${len(self.params)} AS {cast})"

    def col(self, c: Col, name: str | None = None) -> str:
        return f"{quote(c.source)}.{quote(name or c.name)}"

    def position(self, c: Col) -> list[str]:
        return [self.col(c, f"{c.name}_{a}") for a in "xyz"]

    def expr(self, e: Expr) -> str:
        if isinstance(e, Col):
            if e.type == "position":
                raise UnsupportedError(f"position {e.name} cannot be used as a single value",
                                       span=e.span)
            return self.col(e)
        if isinstance(e, Lit):
            return self.param(e.value, e.type)
        if isinstance(e, Agg):
            filt = f" FILTER (WHERE {self.expr(e.filter)})" if e.filter is not None else ""
            if e.arg is None:
                if self.count_source is not None and not filt:
                    return f"CAST(coalesce(sum({quote(self.count_source)}.{quote('count')}), 0) AS BIGINT)"
                return "count(*)" + filt
            # (right after the call: a function rendered inside a cast takes it there too)
            return self._function(e.name, (e.arg, *e.extra), e.distinct, filt)
        if isinstance(e, InList):
            left = self.expr(e.expr)
            neg = "NOT " if e.negated else ""
            if not e.values:
                # x IN () is false, x NOT IN () true, even for NULL x
                return "FALSE" if not e.negated else "TRUE"
            if len(e.values) <= INLINE_IN:
                vals = ", ".join(self.param(v, "") for v in e.values)
                return f"({left} {neg}IN ({vals}))"
            name = f"inlist{len(self.lists)}"
            self.lists[name] = list(e.values)
            return f"({left} {neg}IN (SELECT v FROM {name}))"
        if isinstance(e, InSub):
            neg = "NOT " if e.negated else ""
            return f"({self.expr(e.expr)} {neg}IN (SELECT {quote('v')} FROM {self.sub_name(e.index)}))"
        if isinstance(e, (Exists, ScalarSub)):
            if e.outer and self.correlated is not None:
                return self.correlated(e)
            rel = self.sub_name(e.index)
            if isinstance(e, Exists):
                return f"({'NOT ' if e.negated else ''}EXISTS (SELECT 1 FROM {rel}))"
            return f"(SELECT {quote('v')} FROM {rel})"
        if isinstance(e, Box):
            parts = []
            for axis, lo, hi in zip(self.position(e.col), e.low, e.high, strict=True):
                parts.append(f"{axis} BETWEEN {self.param(lo, '')} AND {self.param(hi, '')}")
            return "(" + " AND ".join(parts) + ")"
        if isinstance(e, Call):
            return self._call(e)
        if isinstance(e, Case):
            whens = " ".join(f"WHEN {self.expr(c)} THEN {self.expr(v)}" for c, v in e.whens)
            tail = f" ELSE {self.expr(e.else_)}" if e.else_ is not None else ""
            return f"(CASE {whens}{tail} END)"
        if isinstance(e, Cast):
            return f"{'TRY_CAST' if e.try_ else 'CAST'}({self.expr(e.expr)} AS {e.sql})"
        if isinstance(e, Window):
            return self._window(e)
        raise UnsupportedError(f"cannot run {type(e).__name__} locally")

    def sub_name(self, index: int) -> str:
        """The relation holding the values of subquery ``index`` of the block being rendered."""
        return self.sub_names.get(index, f"sub{index}")

    def _function(self, name: str, args: tuple[Expr, ...], distinct: bool = False, over: str = "") -> str:
        """A function of the table (caveql.analyze.functions) over rendered arguments; ``over``
        (a window's ``FILTER (...) OVER (...)``) goes right after the call."""
        fn = lookup(name)
        if fn is None:
            raise UnsupportedError(f"function {name}() cannot run locally")
        return render(fn, [self.expr(a) for a in args], [a.type for a in args], distinct, over)

    def _window(self, w: Window) -> str:
        parts = []
        if w.partition_by:
            parts.append("PARTITION BY " + ", ".join(self.expr(p) for p in w.partition_by))
        if w.order_by:
            parts.append("ORDER BY " + ", ".join(
                self.expr(o.expr) + (" DESC" if o.descending else " ASC")
                + (f" NULLS {o.nulls}" if o.nulls else "") for o in w.order_by))
        if w.frame is not None:
            f = w.frame

            def bound(b: tuple[str, Any]) -> str:
                if b[1] is None:
                    return b[0]
                return f"{self.param(b[1], '')} {b[0]}"

            parts.append(f"{f.unit} BETWEEN {bound(f.start)} AND {bound(f.end)}"
                         + (f" EXCLUDE {f.exclude}" if f.exclude else ""))
        over = (f" FILTER (WHERE {self.expr(w.filter)})" if w.filter is not None else "") + \
            f" OVER ({' '.join(parts)})"
        if w.star:
            return f"count(*){over}"
        return self._function(w.name, w.args, w.distinct, over)

    def _call(self, e: Call) -> str:
        a = e.args
        op = e.op
        if op in ("=", "!=", "<", "<=", ">", ">=", "+", "-", "*", "%"):
            return f"({self.expr(a[0])} {op} {self.expr(a[1])})"
        if op == "/":
            return f"(CAST({self.expr(a[0])} AS DOUBLE) / {self.expr(a[1])})"
        if op in ("AND", "OR"):
            return f"({self.expr(a[0])} {op} {self.expr(a[1])})"
        if op == "NOT":
            return f"(NOT {self.expr(a[0])})"
        if op == "NEG":
            return f"(- {self.expr(a[0])})"
        if op == "IS NULL":
            return f"({self.expr(a[0])} IS {'NOT ' if e.negated else ''}NULL)"
        if op == "LIKE":
            return f"({self.expr(a[0])} {'NOT ' if e.negated else ''}LIKE {self.expr(a[1])})"
        if op == "REGEX":
            m = f"regexp_matches({self.expr(a[0])}, {self.expr(a[1])})"
            return f"(NOT {m})" if e.negated else m
        if op == "BETWEEN":
            return (f"({self.expr(a[0])} {'NOT ' if e.negated else ''}BETWEEN "
                    f"{self.expr(a[1])} AND {self.expr(a[2])})")
        if op == "DISTANCE":
            p, q = (self.position(x) for x in a)  # type: ignore[arg-type]
            terms = " + ".join(f"pow(CAST({u} AS DOUBLE) - {v}, 2)" for u, v in zip(p, q, strict=True))
            return f"sqrt({terms})"
        if lookup(op) is not None:
            return self._function(op, a)
        raise UnsupportedError(f"operator {op} cannot run locally", span=e.span)
