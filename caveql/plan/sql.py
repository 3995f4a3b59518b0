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
from typing import Any

from caveql.errors import UnsupportedError
from caveql.logical import Agg, Box, Call, Col, Expr, InList, InSub, Lit

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
            if e.arg is None:
                if self.count_source is not None:
                    return f"CAST(coalesce(sum({quote(self.count_source)}.{quote('count')}), 0) AS BIGINT)"
                return "count(*)"
            inner = ("DISTINCT " if e.distinct else "") + self.expr(e.arg)
            fn = e.name.lower()
            if e.name == "SUM" and e.type == "int":
                return f"CAST(sum({inner}) AS BIGINT)"
            if e.name == "AVG":
                return f"avg({inner})"
            return f"{fn}({inner})"
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
            return f"({self.expr(e.expr)} {neg}IN (SELECT {quote('v')} FROM sub{e.index}))"
        if isinstance(e, Box):
            parts = []
            for axis, lo, hi in zip(self.position(e.col), e.low, e.high, strict=True):
                parts.append(f"{axis} BETWEEN {self.param(lo, '')} AND {self.param(hi, '')}")
            return "(" + " AND ".join(parts) + ")"
        if isinstance(e, Call):
            return self._call(e)
        raise UnsupportedError(f"cannot run {type(e).__name__} locally")

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
        if op in ("ABS", "SQRT", "LOWER", "UPPER", "COALESCE", "LENGTH", "FLOOR", "CEIL"):
            args = ", ".join(self.expr(x) for x in a)
            fn = op.lower()
            if op in ("FLOOR", "CEIL"):
                return f"CAST({fn}({args}) AS BIGINT)"
            return f"{fn}({args})"
        if op == "ROUND":
            x = self.expr(a[0])
            if len(a) == 1:
                return f"round({x})" if e.type != "int" else f"CAST(round({x}) AS BIGINT)"
            return f"round({x}, CAST({self.expr(a[1])} AS INTEGER))"
        raise UnsupportedError(f"operator {op} cannot run locally", span=e.span)
