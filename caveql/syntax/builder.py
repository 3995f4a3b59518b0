"""The parse-time transformer: lark reductions -> AST nodes (one method per grammar rule).

It runs inline in lark's LALR loop (``Lark(transformer=...)``), so no parse tree is ever
built and nothing here recurses: a 100,000-item IN list or 100,000 nested parentheses cost
no Python stack. Every method receives *all* tokens of its rule (``keep_all_tokens``), which
is how spans are computed without lark's ``meta``.

Checks that need no catalog live here and raise :class:`~caveql.errors.CqlSyntaxError`
subclasses with the offending span: integer range, literal kinds of LIMIT / AT clauses,
duplicate clauses, BOX corners, and a nesting limit (:data:`MAX_DEPTH`) so later stages,
which do recurse, never meet a tree deep enough for a ``RecursionError``. Number literals
must be finite doubles (no overflow to infinity, no underflow to 0) and LIMIT / OFFSET /
AT VERSION at most 2^63-1: what DuckDB and the service accept.

Each statement built checks the current cancel token (:mod:`caveql.cancel`): a call cancelled
while a long script is parsed stops within a statement.
"""

from __future__ import annotations

import re
import sys
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from lark import Token

from caveql.cancel import check as _cancelled
from caveql.errors import CqlSyntaxError, InvalidLiteralError, Span
from caveql.syntax import ast as A

__all__ = ["DOUBLE_MAX", "INT64_MAX", "MAX_DEPTH", "Builder", "UINT64_MAX"]

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

# the clauses after ORDER BY, in canonical order, with the words used in messages
TAIL_CLAUSES = {
    "limit": "LIMIT", "offset": "OFFSET", "resolution": "AT RESOLUTION", "version": "AT VERSION",
    "timestamp": "AT TIMESTAMP", "live": "AT LIVE", "split": "SPLIT POSITIONS",
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


class Builder:
    """Callbacks for lark, named after the grammar's rules and aliases.

    One instance per parser; :meth:`reset` before each parse (it keeps the depth table).

    >>> from caveql.syntax import parse
    >>> parse("a + 1", start="expression")
    Binary(op='+', left=Column(name='a', table=None), right=Integer(value=1))
    """

    def __init__(self) -> None:
        # depth of every expression node deeper than 1, keyed by id (nodes outlive the parse)
        self._depth: dict[int, int] = {}

    def reset(self) -> None:
        self._depth.clear()

    def _deep(self, node: Any, *children: Any) -> Any:
        get = self._depth.get
        d = 1 + max((get(id(c), 1) for c in children if c is not None), default=0)
        if d > MAX_DEPTH:
            raise CqlSyntaxError(
                f"expression nested too deeply (more than {MAX_DEPTH} levels)",
                # point at where the expression starts: underlining all of it can be megabytes
                span=Span(node.span.start, node.span.start + 1, node.span.line, node.span.column),
                hint="split it up; long OR chains of equalities are better written as x IN (...)",
            )
        if d > 1:
            self._depth[id(node)] = d
        return node

    # ------------------------------------------------------------------ start rules
    def script(self, c: list[Any]) -> A.Script:
        stmts = _drop_tokens(c)
        return A.Script(stmts, span=_cover(stmts[0], stmts[-1]))

    def single_statement(self, c: list[Any]) -> A.Node:
        return c[0]

    def single_expression(self, c: list[Any]) -> A.Node:
        return c[0]

    # ------------------------------------------------------------------ SELECT
    def select(self, c: list[Any]) -> A.Select:
        _cancelled()  # each statement of a long script: a cancelled call stops parsing it
        kw: dict[str, Any] = {}
        joins: list[A.Join] = []
        seen: dict[str, _Part] = {}
        depth_of = [x for x in c if not isinstance(x, Token)]
        for x in c:
            if isinstance(x, A.TableRef):
                kw["source"] = x
            elif isinstance(x, A.Join):
                joins.append(x)
            elif isinstance(x, _Part):
                if x.kind in TAIL_CLAUSES:
                    if x.kind in seen:
                        raise CqlSyntaxError(
                            f"{TAIL_CLAUSES[x.kind]} given twice", span=x.span,
                            hint="LIMIT, OFFSET and each CAVE clause may appear once per SELECT",
                        )
                    seen[x.kind] = x
                kw[x.kind] = x.value
        cave = A.CaveClauses(
            resolution=kw.pop("resolution", None), version=kw.pop("version", None),
            timestamp=kw.pop("timestamp", None), live=kw.pop("live", False),
            split_positions=kw.pop("split", False),
            span=_cover(*_first_last([seen[k] for k in TAIL_CLAUSES if k in seen and k not in
                                       ("limit", "offset")])),
        )
        node = A.Select(
            items=kw.pop("items"), source=kw.pop("source"), joins=tuple(joins), cave=cave,
            span=_cov(c), **kw,
        )
        parts: list[Any] = []
        for x in depth_of:
            v = x.value if isinstance(x, _Part) else x
            if isinstance(v, tuple):
                parts.extend(v)
            else:
                parts.append(v)
        return self._deep(node, *parts)

    def distinct(self, c: list[Any]) -> _Part:
        return _Part("distinct", True, _sp(c[0]))

    def select_list(self, c: list[Any]) -> _Part:
        return _Part("items", _drop_tokens(c), _cov(c))

    def item_plain(self, c: list[Any]) -> A.SelectItem:
        return self._deep(A.SelectItem(c[0], span=_sp(c[0])), c[0])

    def item_as(self, c: list[Any]) -> A.SelectItem:
        return self._deep(A.SelectItem(c[0], c[2].value, span=_cov(c)), c[0])

    def item_implicit(self, c: list[Any]) -> A.SelectItem:
        return self._deep(A.SelectItem(c[0], c[1].value, span=_cov(c)), c[0])

    def item_star(self, c: list[Any]) -> A.SelectItem:
        return A.SelectItem(A.Star(span=_sp(c[0])), span=_sp(c[0]))

    def item_table_star(self, c: list[Any]) -> A.SelectItem:
        return A.SelectItem(A.Star(c[0].value, span=_cov(c)), span=_cov(c))

    def implicit_alias(self, c: list[Any]) -> _Part:
        return self.name(c)

    def table_plain(self, c: list[Any]) -> A.TableRef:
        return A.TableRef(c[0].value, span=_cov(c))

    def table_as(self, c: list[Any]) -> A.TableRef:
        return A.TableRef(c[0].value, c[2].value, span=_cov(c))

    def table_implicit(self, c: list[Any]) -> A.TableRef:
        return A.TableRef(c[0].value, c[1].value, span=_cov(c))

    def join(self, c: list[Any]) -> A.Join:
        kind = c[0].value if isinstance(c[0], _Part) else "INNER"
        return self._deep(A.Join(c[-3], c[-1], kind, span=_cov(c)), c[-1])

    def join_inner(self, c: list[Any]) -> _Part:
        return _Part("kind", "INNER", _cov(c))

    def join_left(self, c: list[Any]) -> _Part:
        return _Part("kind", "LEFT", _cov(c))

    def where(self, c: list[Any]) -> _Part:
        return _Part("where", c[1], _cov(c))

    def group_by(self, c: list[Any]) -> _Part:
        return _Part("group_by", _drop_tokens(c[2:]), _cov(c))

    def having(self, c: list[Any]) -> _Part:
        return _Part("having", c[1], _cov(c))

    def order_by(self, c: list[Any]) -> _Part:
        return _Part("order_by", _drop_tokens(c[2:]), _cov(c))

    def order_item(self, c: list[Any]) -> A.OrderItem:
        desc, nulls = False, None
        for x in c[1:]:
            if x.kind == "direction":
                desc = x.value
            else:
                nulls = x.value
        return self._deep(A.OrderItem(c[0], desc, nulls, span=_cov(c)), c[0])

    def direction(self, c: list[Any]) -> _Part:
        return _Part("direction", c[0].type == "DESC", _sp(c[0]))

    def nulls(self, c: list[Any]) -> _Part:
        return _Part("nulls", c[1].type, _cov(c))

    def limit(self, c: list[Any]) -> _Part:
        return _Part("limit", _count(c[1], "LIMIT"), _cov(c))

    def offset(self, c: list[Any]) -> _Part:
        return _Part("offset", _count(c[1], "OFFSET"), _cov(c))

    def at_resolution(self, c: list[Any]) -> _Part:
        values = _drop_tokens(c[2:])
        if len(values) == 1 and isinstance(values[0], A.ListExpr):
            values = values[0].items
        if len(values) != 3:
            raise CqlSyntaxError(
                f"AT RESOLUTION takes three numbers (x, y, z), got {len(values)}", span=_cov(c),
                hint="nanometres per unit along x, y and z, e.g. AT RESOLUTION 4, 4, 40",
            )
        for v in values:
            if not (isinstance(v, A.Param) or (isinstance(v, (A.Integer, A.Float)) and v.value > 0)):
                raise InvalidLiteralError(
                    "a resolution is a positive number or a :parameter", span=v.span,
                    hint="nanometres per unit, e.g. AT RESOLUTION 4, 4, 40",
                )
        return _Part("resolution", tuple(values), _cov(c))

    def at_version(self, c: list[Any]) -> _Part:
        return _Part("version", _count(c[2], "AT VERSION"), _cov(c))

    def at_timestamp(self, c: list[Any]) -> _Part:
        v = c[2]
        if isinstance(v, A.String):
            try:
                datetime.fromisoformat(v.value.replace("Z", "+00:00"))
            except ValueError:
                raise InvalidLiteralError(
                    f"'{v.value}' is not an ISO-8601 timestamp", span=v.span,
                    hint="for example AT TIMESTAMP '2023-04-20T12:00:00Z'",
                ) from None
        elif not isinstance(v, A.Param):
            raise InvalidLiteralError(
                "AT TIMESTAMP takes a 'string' (ISO-8601) or a :parameter", span=v.span,
                hint="for example AT TIMESTAMP '2023-04-20T12:00:00Z'",
            )
        return _Part("timestamp", v, _cov(c))

    def at_live(self, c: list[Any]) -> _Part:
        return _Part("live", True, _cov(c))

    def split_positions(self, c: list[Any]) -> _Part:
        return _Part("split", True, _cov(c))

    # ------------------------------------------------------------------ other statements
    def show_tables(self, c: list[Any]) -> A.Show:
        _cancelled()
        return A.Show("TABLES", _unquote(c[3], "'") if len(c) > 2 else None, span=_cov(c))

    def show_views(self, c: list[Any]) -> A.Show:
        _cancelled()
        return A.Show("VIEWS", _unquote(c[3], "'") if len(c) > 2 else None, span=_cov(c))

    def show_versions(self, c: list[Any]) -> A.Show:
        _cancelled()
        return A.Show("VERSIONS", span=_cov(c))

    def show_datastack(self, c: list[Any]) -> A.Show:
        _cancelled()
        return A.Show("DATASTACK", span=_cov(c))

    def describe(self, c: list[Any]) -> A.Describe:
        _cancelled()
        return A.Describe(c[1].value, span=_cov(c))

    def explain(self, c: list[Any]) -> A.Explain:
        return A.Explain(c[-1], analyze=len(c) == 3, span=_cov(c))

    def set_stmt(self, c: list[Any]) -> A.Set:
        _cancelled()
        values = _drop_tokens(c[3:])
        value = values[0] if len(values) == 1 else A.ListExpr(values, span=_cover(values[0], values[-1]))
        return self._deep(A.Set(c[1].value.lower(), value, span=_cov(c)), *values)

    def use_stmt(self, c: list[Any]) -> A.Use:
        _cancelled()
        return A.Use(c[1].value, span=_cov(c))

    # ------------------------------------------------------------------ expressions
    def binary(self, c: list[Any]) -> A.Binary:
        left, op, right = c
        return self._deep(A.Binary(_OPS[op.type], left, right, span=_cov(c)), left, right)

    def unary(self, c: list[Any]) -> A.Node:
        op, operand = c
        span = _cov(c)
        if op.type == "MINUS":
            # fold `-5` into a literal so `-5` prints and re-parses as the same node
            if isinstance(operand, A.Integer):
                return A.Integer(-operand.value, span=span)
            if isinstance(operand, A.Float):
                return A.Float(operand.value.copy_negate(), span=span)  # exact, no context rounding
            return self._deep(A.Unary("-", operand, span=span), operand)
        return self._deep(A.Unary("NOT" if op.type == "NOT" else "+", operand, span=span), operand)

    def in_expr(self, c: list[Any]) -> A.In:
        negated = c[1].type == "NOT"
        return self._deep(A.In(c[0], c[-1], negated, span=_cov(c)), c[0], c[-1])

    def in_list(self, c: list[Any]) -> A.ListExpr:
        items = _drop_tokens(c)
        return self._deep(A.ListExpr(items, span=_cov(c)), *items)

    def in_subquery(self, c: list[Any]) -> A.Subquery:
        return self._deep(A.Subquery(c[1], span=_cov(c)), c[1])

    def in_param(self, c: list[Any]) -> A.Param:
        return self.param(c)

    def between(self, c: list[Any]) -> A.Between:
        negated = c[1].type == "NOT"
        e, low, high = c[0], c[-3], c[-1]
        return self._deep(A.Between(e, low, high, negated, span=_cov(c)), e, low, high)

    def like(self, c: list[Any]) -> A.Like:
        negated = c[1].type == "NOT"
        return self._deep(A.Like(c[0], c[-1], negated, span=_cov(c)), c[0], c[-1])

    def regex(self, c: list[Any]) -> A.Regex:
        negated = c[1].type == "NOT_TILDE"
        return self._deep(A.Regex(c[0], c[2], negated, span=_cov(c)), c[0], c[2])

    def is_null(self, c: list[Any]) -> A.IsNull:
        negated = len(c) == 4
        return self._deep(A.IsNull(c[0], negated, span=_cov(c)), c[0])

    def within_box(self, c: list[Any]) -> A.WithinBox:
        corners = []
        for corner in (c[4], c[6]):
            if not (isinstance(corner, A.ListExpr) and len(corner.items) == 3):
                raise CqlSyntaxError(
                    "a BOX corner is a point (x, y, z)", span=corner.span,
                    hint="WITHIN BOX((x0, y0, z0), (x1, y1, z1))",
                )
            corners.append(corner.items)
        node = A.WithinBox(c[0], corners[0], corners[1], span=_cov(c))
        return self._deep(node, c[0], c[4], c[6])

    def integer(self, c: list[Any]) -> A.Integer:
        tok = c[0]
        # check the length first: int() refuses strings over 4,300 digits with a ValueError
        if len(tok) > 20 or int(tok) > UINT64_MAX:
            raise InvalidLiteralError(
                f"integer literal {_short(tok)} is out of range (the largest is {UINT64_MAX}, 2^64-1)",
                span=_tspan(tok),
            )
        return A.Integer(int(tok), span=_tspan(tok))

    def decimal(self, c: list[Any]) -> A.Float:
        tok = c[0]
        try:
            value = Decimal(str(tok))
        except InvalidOperation:  # the DECIMAL terminal only matches valid numbers; belt and braces
            raise InvalidLiteralError(f"bad number {_short(tok)}", span=_tspan(tok)) from None
        _check_double(value, str(tok), _tspan(tok))
        return A.Float(value, span=_tspan(tok))

    def string(self, c: list[Any]) -> A.String:
        return A.String(_unquote(c[0], "'"), span=_tspan(c[0]))

    def true(self, c: list[Any]) -> A.Boolean:
        return A.Boolean(True, span=_tspan(c[0]))

    def false(self, c: list[Any]) -> A.Boolean:
        return A.Boolean(False, span=_tspan(c[0]))

    def null(self, c: list[Any]) -> A.Null:
        return A.Null(span=_tspan(c[0]))

    def param(self, c: list[Any]) -> A.Param:
        return A.Param(str(c[0])[1:], span=_tspan(c[0]))

    def column(self, c: list[Any]) -> A.Column:
        if len(c) == 3:
            return A.Column(c[2].value, c[0].value, span=_cov(c))
        return A.Column(c[0].value, span=_cov(c))

    def call(self, c: list[Any]) -> A.FuncCall:
        distinct = len(c) > 2 and isinstance(c[2], Token) and c[2].type == "DISTINCT"
        args = _drop_tokens(c[2:])
        node = A.FuncCall(str(c[0]).upper(), args, distinct, span=_cov(c))
        return self._deep(node, *args)

    def call_star(self, c: list[Any]) -> A.FuncCall:
        return A.FuncCall(str(c[0]).upper(), star=True, span=_cov(c))

    def int_list(self, c: list[Any]) -> A.ListExpr:
        tok = c[0]
        return A.ListExpr(tuple(_split_ints(tok)), span=_tspan(tok))

    def call_int_list(self, c: list[Any]) -> A.FuncCall:
        args = tuple(_split_ints(c[1]))
        return A.FuncCall(str(c[0]).upper(), args, span=_cov(c))

    def paren(self, c: list[Any]) -> A.Node:
        return c[1]

    def list_expr(self, c: list[Any]) -> A.ListExpr:
        return self.in_list(c)

    def name(self, c: list[Any]) -> _Part:
        tok = c[0]
        if tok.type == "QUOTED_NAME":
            value = _unquote(tok, '"')
            if not value:
                raise InvalidLiteralError("empty quoted identifier \"\"", span=_tspan(tok))
            return _Part("name", value, _tspan(tok))
        return _Part("name", str(tok), _tspan(tok))


_DIGITS = re.compile(r"[0-9]+|\n")


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
