"""What the parse-time builder's modules share: the limits, the part type, span helpers.

>>> _unquote(Token("STRING", "'it''s'"), "'")
"it's"
"""

from __future__ import annotations

import re
import sys
from decimal import Decimal
from typing import Any

from lark import Token

from caveql.errors import InvalidLiteralError, Span
from caveql.syntax import ast as A

__all__ = ["DOUBLE_MAX", "FILE_FUNCTIONS", "INT32_MAX", "INT64_MAX", "MAX_DEPTH", "TAIL_CLAUSES",
           "UINT64_MAX"]

#: The largest integer literal CQL accepts (root ids are uint64).
UINT64_MAX = 2**64 - 1

#: The largest LIMIT, OFFSET and AT VERSION: DuckDB and the service take them as signed 64-bit.
INT64_MAX = 2**63 - 1

#: The largest finite double: a number literal beyond it would become infinity.
DOUBLE_MAX = Decimal(sys.float_info.max)

#: The deepest expression tree the parser accepts (operators, not parentheses, count).
MAX_DEPTH = 200

_OPS = {
    "OR": "OR", "AND": "AND", "EQ": "=", "NE": "!=", "LT": "<", "LE": "<=", "GT": ">",
    "GE": ">=", "PLUS": "+", "MINUS": "-", "STAR": "*", "SLASH": "/", "PERCENT": "%",
}

# ORDER BY and the clauses after it, in canonical order, with the words used in messages
TAIL_CLAUSES = {
    "order_by": "ORDER BY", "limit": "LIMIT", "offset": "OFFSET", "resolution": "AT RESOLUTION",
    "version": "AT VERSION", "timestamp": "AT TIMESTAMP", "live": "AT LIVE", "split": "SPLIT POSITIONS",
}


class _Part:
    """A clause or modifier on its way into its parent node (never part of the AST)."""

    __slots__ = ("kind", "value", "span")

    def __init__(self, kind: str, value: Any, span: Span | None) -> None:
        self.kind = kind
        self.value = value
        self.span = span


def _tspan(tok: Token) -> Span:
    return Span(tok.start_pos, tok.end_pos, tok.line, tok.column)  # type: ignore[arg-type]


def _sp(x: Any) -> Span | None:
    if isinstance(x, Token):
        return _tspan(x)
    if isinstance(x, Span):
        return x
    return getattr(x, "span", None)


def _cover(first: Any, last: Any) -> Span | None:
    a, b = _sp(first), _sp(last)
    if a is None:
        return b
    return a.merge(b)


def _cov(children: list[Any]) -> Span | None:
    return _cover(children[0], children[-1])


def _drop_tokens(children: list[Any]) -> tuple[Any, ...]:
    return tuple(c for c in children if not isinstance(c, Token))


_DIGITS = re.compile(r"[0-9]+|\n")
_TYPE_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

#: The table functions that read a file (``FROM read_csv('cells.csv', header = true)``).
FILE_FUNCTIONS = ("read_csv", "read_csv_auto", "read_parquet", "parquet_scan", "read_json",
                  "read_json_auto", "read_ndjson")

#: The largest type argument (``VARCHAR(n)``, ``DECIMAL(p, s)``).
INT32_MAX = 2**31 - 1


def _word(part: _Part) -> str:
    return TAIL_CLAUSES[part.kind]


def _alias(c: list[Any]) -> str | None:
    return next((x.value for x in c if isinstance(x, _Part) and x.kind == "alias"), None)


def _nodes_in(values: Any) -> list[Any]:
    """The nodes among clause values (a node, a tuple of nodes, or tuples of those)."""
    out: list[Any] = []
    stack = list(values)
    while stack:
        v = stack.pop()
        if isinstance(v, (tuple, list)):
            stack.extend(v)
        elif isinstance(v, A.Node):
            out.append(v)
    return out


def _split_ints(tok: Token) -> list[A.Integer]:
    """The Integer nodes of an INT_LIST token, each with its own span."""
    text = str(tok)
    base, line = tok.start_pos, tok.line
    line_start = base - (tok.column - 1)  # type: ignore[operator]
    out = []
    for m in _DIGITS.finditer(text):
        s, e = m.span()
        if m.group() == "\n":
            line += 1  # type: ignore[operator]
            line_start = base + e  # type: ignore[operator]
            continue
        digits = m.group()
        start = base + s  # type: ignore[operator]
        span = Span(start, base + e, line, start - line_start + 1)  # type: ignore[arg-type,operator]
        if len(digits) > 20 or int(digits) > UINT64_MAX:
            raise InvalidLiteralError(
                f"integer literal {_short(digits)} is out of range (the largest is {UINT64_MAX}, 2^64-1)",
                span=span,
            )
        out.append(A.Integer(int(digits), span=span))
    return out


def _first_last(parts: list[_Part]) -> tuple[Any, Any]:
    return (parts[0], parts[-1]) if parts else (None, None)


def _unquote(tok: Token, q: str) -> str:
    return str(tok)[1:-1].replace(q + q, q)


def _short(text: str) -> str:
    return text if len(text) <= 40 else text[:20] + "…" + text[-8:]


def _check_double(value: Decimal, text: str, span: Span) -> None:
    """A number literal must be a finite double, and not a non-zero one that rounds to 0:
    it is compared and computed as one (locally and by the service)."""
    if abs(value) > DOUBLE_MAX:
        raise InvalidLiteralError(
            f"number {_short(text)} is out of range (the largest is about 1.8e308)", span=span,
            hint="numbers are 64-bit floating point; this one would become infinity",
        )
    if value and not float(value):
        raise InvalidLiteralError(
            f"number {_short(text)} is too small to represent (the smallest is about 4.9e-324)",
            span=span, hint="numbers are 64-bit floating point; this one would become 0; write 0",
        )


def _count(v: Any, clause: str) -> Any:
    """LIMIT / OFFSET / AT VERSION take an integer literal in ``[0, 2^63-1]`` or a parameter."""
    if isinstance(v, A.Integer) and 0 <= v.value <= INT64_MAX:
        return v
    if isinstance(v, A.Param):
        return v
    if isinstance(v, A.Integer) and v.value > INT64_MAX:
        raise InvalidLiteralError(
            f"{clause} {v.value} is out of range (the largest is {INT64_MAX}, 2^63-1)", span=v.span,
            hint=f"{clause} is a signed 64-bit integer" + (
                "; to read every row, leave LIMIT out" if clause == "LIMIT" else ""),
        )
    raise InvalidLiteralError(
        f"{clause} takes a non-negative integer or a :parameter", span=v.span,
        hint=f"for example {clause} 10" if clause != "AT VERSION" else "for example AT VERSION 1078",
    )
