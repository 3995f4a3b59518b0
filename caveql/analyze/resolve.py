"""Names and types: a parsed SELECT plus the catalog become a logical plan.

:func:`resolve_select` binds every name (sources, aliases, columns, ``P_x``
components, select-list aliases in GROUP BY / HAVING / ORDER BY) and every
``:param``, type-checks every expression, expands ``*``, and checks aggregate
use. Errors carry the span of the offending text.

>>> from caveql.analyze.resolve import constant_value
>>> from caveql.syntax import ast
>>> constant_value(ast.Integer(5), {})
5
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from caveql import surface
from caveql.analyze.catalog import LIVE_ABSENT, REF_SUFFIX, Catalog, SourceInfo
from caveql.analyze.local_tables import is_table_value
from caveql.analyze.resolution import column_type
from caveql.errors import (
    AggregateError,
    AmbiguousColumnError,
    CqlSemanticError,
    CqlTypeError,
    ParameterError,
    Span,
    UnknownColumnError,
    UnsupportedError,
    did_you_mean,
)
from caveql.logical import (
    Agg, Box, Call, Col, Exists, Expr, InList, InSub, Lit, OrderSpec, Output, Query, ScalarSub,
    columns_of, conjuncts, has_agg, walk,
)
from caveql.analyze.exprs import default_name, resolve_call, resolve_case, resolve_cast
from caveql.analyze.windows import (
    group_by_all, named_windows, resolve_qualify, resolve_window, tie_break,
)
from caveql.logical import Case, Cast, Window, map_children
from caveql.syntax import ast

__all__ = ["Scope", "constant_value", "resolve_select"]

NUMERIC = ("int", "float")


def _pytype(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, (float, Decimal)):
        return "float"
    if isinstance(v, str):
        return "string"
    if isinstance(v, datetime):
        return "timestamp"
    raise TypeError(type(v).__name__)


def _norm_param(name: str, v: Any, span: Span | None) -> Any:
    """A parameter value as a Python scalar or a tuple of scalars."""
    if is_table_value(v):  # a DataFrame binds a table (FROM :name), not a value
        raise ParameterError(
            f"parameter :{name} is a table ({type(v).__name__}) used where a value is expected",
            span=span, hint=f"use it as a table: FROM :{name} / JOIN :{name}; for its column c as "
                            f"a list: IN (SELECT c FROM :{name})")
    if hasattr(v, "tolist") and not isinstance(v, (str, bytes)):
        v = v.tolist()  # numpy scalars and arrays, pandas Series
    if isinstance(v, (list, tuple, set, frozenset)):
        items = sorted(v, key=repr) if isinstance(v, (set, frozenset)) else list(v)
        out = tuple(_norm_param(name, x, span) for x in items)
        if any(isinstance(x, tuple) for x in out):
            raise ParameterError(f"parameter :{name} holds a nested list", span=span)
        return out
    try:
        _pytype(v)
    except TypeError:
        raise ParameterError(
            f"parameter :{name} has a value of type {type(v).__name__}; use a number, string, "
            "boolean, None, timestamp or a list of those", span=span) from None
    return v


def constant_value(e: ast.Node, params: Mapping[str, Any]) -> Any:
    """The value of a constant AST expression (literal, parameter, ``-literal``).

    Raises :class:`ParameterError` for an unbound parameter and ``ValueError`` for
    a non-constant expression.
    """
    if isinstance(e, ast.Integer):
        return e.value
    if isinstance(e, ast.Float):
        return e.value
    if isinstance(e, ast.String):
        return e.value
    if isinstance(e, ast.Boolean):
        return e.value
    if isinstance(e, ast.Null):
        return None
    if isinstance(e, ast.Param):
        if e.name not in params:
            raise ParameterError(f"parameter :{e.name} has no value", span=e.span, hint=surface.hint(
                python=f"bind it: query(..., {e.name}=...) or SET {e.name} = ...",
                cli=f"bind it: --param {e.name}=VALUE (-p) or SET {e.name} = ...",
                repl=f"bind it: \\set {e.name} VALUE or SET {e.name} = ...",
                magic=f"bind it: a notebook variable {e.name} = ... or SET {e.name} = ..."))
        return _norm_param(e.name, params[e.name], e.span)
    if isinstance(e, ast.Unary) and e.op in ("-", "+"):
        v = constant_value(e.operand, params)
        if isinstance(v, (int, float, Decimal)) and not isinstance(v, bool):
            return -v if e.op == "-" else v
    raise ValueError("not a constant")


class Scope:
    """The sources visible to one SELECT, by alias, in FROM/JOIN order."""

    def __init__(self, resolution: tuple[float, float, float] | None = None, live: bool = False) -> None:
        self.sources: list[tuple[str, SourceInfo]] = []
        self.resolution = resolution  # a position component's type depends on it
        self.live = live  # a live statement: tables have a live answer's columns

    def live_hint(self, name: str) -> dict[str, str]:
        """The hint for a column a live answer lacks (``valid``, ``superceded_id``, ...)."""
        base = name[:-len(REF_SUFFIX)] if name.endswith(REF_SUFFIX) else name
        if self.live and base in LIVE_ABSENT:
            return {"hint": f"a live answer (AT TIMESTAMP, AT LIVE) has no '{base}' column: every row "
                            "it returns is valid at that time"}
        return {}

    def add(self, alias: str, info: SourceInfo, span: Span | None) -> None:
        if any(a == alias for a, _ in self.sources):
            raise CqlSemanticError(f"the name '{alias}' is used for two sources; give one an alias",
                                   span=span)
        self.sources.append((alias, info))

    def lookup(self, col: ast.Column) -> Col | None:
        if col.table is not None:
            for alias, info in self.sources:
                if alias == col.table:
                    c = info.column(col.name)
                    if c is None:
                        raise UnknownColumnError(
                            f"unknown column '{col.name}' in {info.name}"
                            + (f" (as {alias})" if alias != info.name else ""),
                            span=col.span, candidates=did_you_mean(col.name, info.names()),
                            **self.live_hint(col.name))
                    return Col(alias, col.name, _ctype(info, c, self.resolution), span=col.span)
            raise UnknownColumnError(
                f"unknown table or alias '{col.table}'", span=col.span,
                candidates=did_you_mean(col.table, [a for a, _ in self.sources]))
        hits = [(alias, info.column(col.name)) for alias, info in self.sources]
        hits = [(a, c) for a, c in hits if c is not None]
        if len(hits) > 1:
            raise AmbiguousColumnError(
                f"column '{col.name}' is in " + " and ".join(a for a, _ in hits)
                + "; qualify it", span=col.span,
                hint="write " + " or ".join(f"{a}.{col.name}" for a, _ in hits))
        if hits:
            alias, c = hits[0]
            info = next(i for a, i in self.sources if a == alias)
            return Col(alias, col.name, _ctype(info, c, self.resolution), span=col.span)
        return None

    def all_names(self) -> list[str]:
        return [n for _, info in self.sources for n in info.names()]


def _ctype(info: Any, c: Any, res: Any) -> str:
    """A column's type: a CAVE source's at the statement's resolution, else as the source says."""
    return column_type(info, c, res) if isinstance(info, SourceInfo) else c.type


class _Resolver:
    def __init__(self, catalog: Catalog, params: Mapping[str, Any], sub_counter: list[int],
                 outer: Scope | None = None, resolution: tuple[float, float, float] | None = None,
                 *, ctx: Any = None, settings: Any = None, refs: list[Col] | None = None,
                 in_sub: bool = False) -> None:
        self.catalog = catalog
        self.params = params
        self.resolution = resolution
        self.scope = Scope(resolution, live=catalog.live)
        self.outer = outer
        self.sub_counter = sub_counter
        self.subqueries: list[Query] = []
        self.aliases: dict[str, Expr] = {}
        self.context = "select"
        # relations (caveql.analyze.blocks): the statement's context, this block's settings, the
        # enclosing block's columns a correlated subquery reads (None: not correlated)
        self.ctx = ctx
        self.settings = settings
        self.refs = refs
        self.in_sub = in_sub
        self.using: dict[str, Expr] = {}
        self.hidden: set[tuple[str, str]] = set()
        self.star: dict[tuple[str, str], Expr] = {}

    # ------------------------------------------------------------------ columns
    def column(self, c: ast.Column, allow_alias: bool = False) -> Expr:
        if c.table is None and c.name in self.using:
            return self.using[c.name]
        if allow_alias and c.table is None and c.name in self.aliases:
            hit = self.scope.lookup(c) if self.context == "group" else None
            if hit is None:
                return self.aliases[c.name]
        try:
            col = self.scope.lookup(c)
        except UnknownColumnError:
            # t.col with t not a source here: in a correlated subquery, an enclosing block's
            if self.refs is None or c.table is None or any(a == c.table for a, _ in self.scope.sources):
                raise
            col = None
        if col is not None:
            return col
        if allow_alias and c.table is None and c.name in self.aliases:
            return self.aliases[c.name]
        if self.refs is not None and self.outer is not None:
            try:
                hit = self.outer.lookup(c)
            except UnknownColumnError:
                hit = None
            if hit is not None:  # a correlated reference to the enclosing block
                self.refs.append(hit)
                return hit
        cands = did_you_mean(c.name, self.scope.all_names() + (list(self.aliases) if allow_alias else []))
        hint = None
        if self.outer is not None and c.table is None:
            try:
                if self.outer.lookup(c) is not None:
                    hint = "correlated subqueries are not supported: a subquery sees only its own FROM"
            except CqlSemanticError:
                pass
        extra = {"hint": hint} if hint else self.scope.live_hint(c.name)
        raise UnknownColumnError(f"unknown column '{c.name}'", span=c.span, candidates=cands, **extra)

    # ------------------------------------------------------------------ expressions
    def expr(self, e: ast.Node, *, agg_ok: bool = False, alias_ok: bool = False) -> Expr:
        r = self._expr(e, agg_ok, alias_ok)
        return r

    def _lit(self, v: Any, span: Span | None) -> Expr:
        if isinstance(v, tuple):
            raise ParameterError("a list value is only allowed in IN (...) or = :param",
                                 span=span)
        return Lit(v, _pytype(v), span=span)

    def _expr(self, e: ast.Node, agg_ok: bool, alias_ok: bool) -> Expr:
        sub = lambda x: self._expr(x, agg_ok, alias_ok)  # noqa: E731
        if isinstance(e, (ast.Integer, ast.Float, ast.String, ast.Boolean, ast.Null, ast.Param)):
            return self._lit(constant_value(e, self.params), e.span)
        if isinstance(e, ast.Column):
            return self.column(e, allow_alias=alias_ok)
        if isinstance(e, ast.Star):
            raise CqlSemanticError("'*' is only allowed in the select list or COUNT(*)", span=e.span)
        if isinstance(e, ast.Unary):
            inner = sub(e.operand)
            if e.op == "NOT":
                self._want(inner, ("bool",), "NOT", e.span)
                return Call("NOT", (inner,), "bool", span=e.span)
            self._want(inner, NUMERIC, f"unary {e.op}", e.span)
            if isinstance(inner, Lit):
                return Lit(-inner.value if e.op == "-" else inner.value, inner.type, span=e.span)
            return inner if e.op == "+" else Call("NEG", (inner,), inner.type, span=e.span)
        if isinstance(e, ast.Binary):
            if e.op == "=" and isinstance(e.right, ast.Param) and e.right.name in self.params:
                v = constant_value(e.right, self.params)
                if isinstance(v, tuple):  # x = :ids with a list binds as IN
                    left = sub(e.left)
                    for x in v:
                        _float_id(left, Lit(x, "float"), e.right, e.span)
                    return self._in_list(left, v, False, e.span)
            left, right = sub(e.left), sub(e.right)
            if e.op in ("=", "!="):
                _float_id(left, right, e.right, e.span)
                _float_id(right, left, e.left, e.span)
            return self.binary(e.op, left, right, e.span)
        if isinstance(e, ast.In):
            left = sub(e.expr)
            self._no_position(left, "IN", e.span)
            t = e.target
            if isinstance(t, ast.Subquery):
                return self.subquery(left, t, e.negated, e.span)
            if isinstance(t, ast.FuncCall):
                return self._in_call(left, t, e.negated, e.span, sub)
            if isinstance(t, ast.Param):
                v = constant_value(t, self.params)
                for x in v if isinstance(v, tuple) else (v,):
                    _float_id(left, Lit(x, "float"), t, e.span)
                return self._in_list(left, v if isinstance(v, tuple) else (v,), e.negated, e.span)
            items = t.items if isinstance(t, ast.ListExpr) else (t,)
            try:
                vals = tuple(constant_value(x, self.params) for x in items)
            except ValueError:
                vals = None
            if vals is not None:
                flat: list[Any] = []
                for x, v in zip(items, vals):
                    flat.extend(v if isinstance(v, tuple) else (v,))
                    for one in v if isinstance(v, tuple) else (v,):
                        _float_id(left, Lit(one, "float"), x, e.span)
                return self._in_list(left, tuple(flat), e.negated, e.span)
            # non-constant items: an OR of equalities, evaluated locally
            eqs = [self.binary("=", left, sub(x), e.span) for x in items]
            out: Expr = eqs[0]
            for q in eqs[1:]:
                out = Call("OR", (out, q), "bool", span=e.span)
            return Call("NOT", (out,), "bool", span=e.span) if e.negated else out
        if isinstance(e, ast.Between):
            x, lo, hi = sub(e.expr), sub(e.low), sub(e.high)
            self._comparable(x, lo, e.span)
            self._comparable(x, hi, e.span)
            lo, hi = self._as_time(lo, x), self._as_time(hi, x)
            return Call("BETWEEN", (x, lo, hi), "bool", negated=e.negated, span=e.span)
        if isinstance(e, ast.Like):
            x, p = sub(e.expr), sub(e.pattern)
            self._want(x, ("string",), "LIKE", e.expr.span or e.span)
            self._want(p, ("string",), "LIKE pattern", e.pattern.span or e.span)
            return Call("LIKE", (x, p), "bool", negated=e.negated, span=e.span)
        if isinstance(e, ast.Regex):
            x, p = sub(e.expr), sub(e.pattern)
            if x.type not in ("string", "null"):
                raise CqlTypeError(
                    f"regex match '~' needs a string column, but {_what(x)} is {x.type}",
                    span=e.expr.span or e.span, hint="'~' matches text; compare numbers with = < >")
            self._want(p, ("string",), "regex pattern", e.pattern.span or e.span)
            return Call("REGEX", (x, p), "bool", negated=e.negated, span=e.span)
        if isinstance(e, ast.IsNull):
            x = sub(e.expr)
            if isinstance(x, Col) and x.type == "position":
                x = Col(x.source, x.name + "_x", "int", span=x.span)
            return Call("IS NULL", (x,), "bool", negated=e.negated, span=e.span)
        if isinstance(e, ast.WithinBox):
            x = sub(e.expr)
            if not (isinstance(x, Col) and x.type == "position"):
                raise CqlTypeError(f"WITHIN BOX needs a position column, not {_what(x)}",
                                   span=e.expr.span or e.span)
            try:
                lo = tuple(constant_value(c, self.params) for c in e.low)
                hi = tuple(constant_value(c, self.params) for c in e.high)
            except ValueError:
                raise CqlTypeError("the corners of a box must be numbers", span=e.span) from None
            for v in lo + hi:
                if isinstance(v, bool) or not isinstance(v, (int, float, Decimal)):
                    raise CqlTypeError("the corners of a box must be numbers", span=e.span)
            return Box(x, lo, hi, span=e.span)  # type: ignore[arg-type]
        if isinstance(e, ast.FuncCall):
            return resolve_call(self, e, agg_ok, alias_ok)  # by the function table (functions.py)
        if isinstance(e, ast.WindowCall):
            return resolve_window(self, e, agg_ok, alias_ok)
        if isinstance(e, ast.Case):
            return resolve_case(self, e, agg_ok, alias_ok)
        if isinstance(e, ast.Cast):
            return resolve_cast(self, e, agg_ok, alias_ok)
        if isinstance(e, ast.Subquery):
            from caveql.analyze.blocks import scalar_expr
            return scalar_expr(self, e)
        if isinstance(e, ast.Exists):
            from caveql.analyze.blocks import exists_expr
            return exists_expr(self, e)
        if isinstance(e, ast.ListExpr):
            raise CqlTypeError("a list is only allowed after IN", span=e.span)
        raise UnsupportedError(f"unsupported expression {type(e).__name__}",
                               span=getattr(e, "span", None))

    def _in_call(self, left: Expr, t: ast.FuncCall, negated: bool, span: Span | None, sub: Any) -> Expr:
        """``x IN f(...)`` with a list-valued call (``LATEST_ROOTS(col)``): evaluated locally."""
        call = sub(t)
        if not call.type.endswith("[]") and call.type != "null":
            raise CqlTypeError(f"IN takes a list, but {t.name}() gives {call.type}", span=t.span,
                               hint="write x = f(...) for a single value")
        self._comparable(left, Lit(None, call.type[:-2] if call.type != "null" else "null", span=t.span), span)
        out: Expr = Call("LIST_CONTAINS", (call, left), "bool", span=span)
        return Call("NOT", (out,), "bool", span=span) if negated else out

    def _in_list(self, left: Expr, values: tuple[Any, ...], negated: bool, span: Span | None) -> Expr:
        out = []
        for v in values:
            lt = Lit(v, _pytype(v))
            self._comparable(left, lt, span)
            out.append(self._as_time(lt, left).value)  # type: ignore[union-attr]
        return InList(left, tuple(out), negated, span=span)

    def subquery(self, left: Expr, t: ast.Subquery, negated: bool, span: Span | None) -> Expr:
        cave = t.select.cave if isinstance(t.select, ast.Select) else None
        own = cave is not None and (cave.version is not None or cave.timestamp is not None
                                    or cave.live or cave.resolution is not None)
        if isinstance(t.select, ast.Select) and (not own or self.ctx is None):
            inner = _Resolver(self.catalog, self.params, self.sub_counter, outer=self.scope,
                              resolution=self.resolution, ctx=self.ctx, settings=self.settings,
                              in_sub=True)
            q = inner.select(t.select)
            # the enclosing block's instant and resolution (a block with its own AT clauses is
            # resolved below, at its own)
            if self.settings is not None:
                q = replace(q, timestamp=self.settings.timestamp, resolution=self.resolution)
        else:
            from caveql.analyze.blocks import sub_block
            q, _refs = sub_block(self, t.select, correlate=False)
        if len(q.outputs) != 1 or q.outputs[0].expr.type == "position":
            raise CqlSemanticError("a subquery after IN must select exactly one column",
                                   span=t.span)
        self._comparable(left, q.outputs[0].expr, span)
        idx = len(self.subqueries)
        node = InSub(left, q, idx, negated, span=span)
        self.subqueries.append(q)
        return node

    # ------------------------------------------------------------------ typing
    def binary(self, op: str, left: Expr, right: Expr, span: Span | None) -> Expr:
        if op in ("AND", "OR"):
            self._want(left, ("bool",), op, span)
            self._want(right, ("bool",), op, span)
            return Call(op, (left, right), "bool", span=span)
        if op in ("=", "!=", "<", "<=", ">", ">="):
            self._no_position(left, op, span)
            self._no_position(right, op, span)
            self._comparable(left, right, span)
            left, right = self._as_time(left, right), self._as_time(right, left)
            return Call(op, (left, right), "bool", span=span)
        # arithmetic
        self._want(left, NUMERIC, f"'{op}'", span)
        self._want(right, NUMERIC, f"'{op}'", span)
        t = "float" if "float" in (left.type, right.type) or op == "/" else "int"
        if isinstance(left, Lit) and isinstance(right, Lit) and left.value is None or \
                isinstance(right, Lit) and right.value is None:
            t = "null" if left.type == "null" and right.type == "null" else t
        return Call(op, (left, right), t, span=span)

    @staticmethod
    def _as_time(e: Expr, other: Expr) -> Expr:
        """A string literal compared with a timestamp, as a timestamp (naive UTC)."""
        if isinstance(e, Lit) and e.type == "string" and other.type == "timestamp":
            from caveql.analyze import parse_timestamp
            return Lit(parse_timestamp(e.value, e.span), "timestamp", span=e.span)
        return e

    def _no_position(self, e: Expr, what: str, span: Span | None) -> None:
        if e.type == "position":
            raise CqlTypeError(
                f"{_what(e)} is a position; use {what} on its components ({_what(e)}_x, _y, _z) "
                "or WITHIN BOX", span=getattr(e, "span", None) or span)

    def _want(self, e: Expr, types: Sequence[str], what: str, span: Span | None) -> None:
        if e.type not in types and e.type != "null":
            raise CqlTypeError(f"{what} needs {' or '.join(types)}, but {_what(e)} is {e.type}",
                               span=getattr(e, "span", None) or span)

    def _comparable(self, a: Expr, b: Expr, span: Span | None) -> None:
        ta, tb = a.type, b.type
        if "null" in (ta, tb) or ta == tb:
            return
        if ta in NUMERIC and tb in NUMERIC:
            return
        if {ta, tb} == {"timestamp", "string"}:
            return
        col, other = (a, b) if isinstance(a, Col) else (b, a)
        raise CqlTypeError(
            f"cannot compare {_what(col)} ({col.type}) with {_what(other)} ({other.type})",
            span=getattr(other, "span", None) or span,
            hint=("quote the value: '...'" if col.type == "string" and other.type in NUMERIC
                  else "remove the quotes" if col.type in NUMERIC and other.type == "string" else None))

    # ------------------------------------------------------------------ SELECT
    def select(self, s: ast.Select) -> Query:
        from caveql.analyze.blocks import from_clause
        if self.ctx is None:
            from caveql.analyze.blocks import Context
            from caveql.analyze import statement_options
            self.ctx = Context(self.catalog, self.settings or _settings(), self.params, make=_Resolver,
                               options=statement_options)
        frm = from_clause(self, s)
        scans, joins = frm.scans, frm.joins
        self.using, self.hidden, self.star = frm.using, frm.hidden, frm.star
        self.named_windows = named_windows(s)
        outputs: list[Output] = []
        star_tail: list[int] = []  # indices of packed positions that came from *
        from_star: list[bool] = []
        for item in s.items:
            if isinstance(item.expr, ast.Star):
                for alias, info in self._star_sources(item.expr):
                    for c in info.columns:
                        if (alias, c.name) in self.hidden:
                            continue
                        if (alias, c.name) in self.star:  # a RIGHT / FULL JOIN's USING column
                            outputs.append(Output(c.name, self.star[(alias, c.name)]))
                            from_star.append(True)
                            continue
                        if c.type == "position":
                            star_tail.append(len(outputs))
                        outputs.append(Output(c.name, Col(alias, c.name, c.type, span=item.expr.span)))
                        from_star.append(True)
                continue
            e = self.expr(item.expr, agg_ok=True)
            name = item.alias or _default_name(e)
            outputs.append(Output(name, e))
            from_star.append(False)
            if item.alias:
                self.aliases[item.alias] = e
        outputs = _unique_names(outputs, from_star)
        self.context = "where"
        where: tuple[Expr, ...] = ()
        if s.where is not None:
            w = self.expr(s.where)
            self._want(w, ("bool",), "WHERE", s.where.span)
            where = conjuncts(w)
        self.context = "group"
        group = tuple(self._group_item(g, outputs) for g in s.group_by)
        if s.group_by_all:
            group = group_by_all(outputs)
        self.context = "having"
        having = None
        if s.having is not None:
            having = self.expr(s.having, agg_ok=True, alias_ok=True)
            self._want(having, ("bool",), "HAVING", s.having.span)
        self.context = "qualify"
        qualify = resolve_qualify(self, s, outputs)
        self.context = "order"
        order = tuple(OrderSpec(self._order_item(o.expr, outputs), o.descending, o.nulls)
                      for o in s.order_by)
        aggregate = bool(group) or s.group_by_all or any(has_agg(o.expr) for o in outputs) or (
            having is not None and has_agg(having)) or (qualify is not None and has_agg(qualify))
        if aggregate:
            for o, item in zip(outputs, _item_spans(s, outputs), strict=False):
                self._check_grouped(o.expr, group, item)
            if having is not None:
                self._check_grouped(having, group, s.having.span if s.having else None)
            if qualify is not None:
                self._check_grouped(qualify, group, s.qualify.span if s.qualify else None)
            for o, src in zip(order, s.order_by, strict=True):
                if not any(o.expr == out.expr for out in outputs):
                    self._check_grouped(o.expr, group, src.span)
        elif having is not None:
            raise AggregateError("HAVING needs GROUP BY or an aggregate", span=s.having.span)
        if s.distinct:
            for o, src in zip(order, s.order_by, strict=True):
                if not any(o.expr == out.expr for out in outputs):
                    raise CqlSemanticError("with SELECT DISTINCT, ORDER BY items must be selected",
                                           span=src.span)
        if not aggregate:  # row-order windows get the sources' ids as a last key (windows.py)
            outputs, order, qualify = tie_break(self, outputs, order, qualify)
        limit = self._count(s.limit, "LIMIT")
        offset = self._count(s.offset, "OFFSET")
        return Query(
            scans=tuple(scans), joins=tuple(joins), outputs=tuple(outputs), where=where,
            group_by=group, having=having, order_by=order, limit=limit, offset=offset,
            distinct=s.distinct, aggregate=aggregate, subqueries=tuple(self.subqueries),
            version=self.catalog.version, datastack=self.catalog.datastack,
            synapse_table=self.catalog.synapse_table,
            star_tail=tuple(star_tail), qualify=qualify, derived=tuple(frm.derived), locals=tuple(frm.locals),
            sources=frm.sources(),
        )

    def _star_sources(self, star: ast.Star) -> list[tuple[str, SourceInfo]]:
        if star.table is None:
            return list(self.scope.sources)
        hit = [(a, i) for a, i in self.scope.sources if a == star.table]
        if not hit:
            raise UnknownColumnError(f"unknown table or alias '{star.table}'", span=star.span,
                                     candidates=did_you_mean(star.table, [a for a, _ in self.scope.sources]))
        return hit

    def _ordinal(self, e: ast.Node, outputs: list[Output], what: str) -> Expr | None:
        if isinstance(e, ast.Integer):
            if not 1 <= e.value <= len(outputs):
                raise CqlSemanticError(f"{what} position {e.value} is not in the select list "
                                       f"(1..{len(outputs)})", span=e.span)
            return outputs[e.value - 1].expr
        return None

    def _group_item(self, g: ast.Node, outputs: list[Output]) -> Expr:
        hit = self._ordinal(g, outputs, "GROUP BY")
        if hit is not None:
            return hit
        e = self.expr(g, alias_ok=True)
        if has_agg(e):
            raise AggregateError("aggregates are not allowed in GROUP BY", span=g.span)
        return e

    def _order_item(self, e: ast.Node, outputs: list[Output]) -> Expr:
        hit = self._ordinal(e, outputs, "ORDER BY")
        if hit is not None:
            return hit
        if isinstance(e, ast.Column) and e.table is None:
            for o in outputs:
                if o.name == e.name:
                    return o.expr
        return self.expr(e, agg_ok=True, alias_ok=True)

    def _check_grouped(self, e: Expr, group: tuple[Expr, ...], span: Span | None) -> None:
        if any(e == g for g in group) or isinstance(e, (Lit, Agg)):
            return
        if isinstance(e, Col):
            base = e.name[:-2] if e.name[-2:] in ("_x", "_y", "_z") else None
            if base is not None and any(isinstance(g, Col) and g.source == e.source and g.name == base
                                        for g in group):
                return
            raise AggregateError(
                f"column '{e.name}' must appear in GROUP BY or be used in an aggregate",
                span=e.span or span)
        if isinstance(e, InSub):
            self._check_grouped(e.expr, group, span)
            return
        if isinstance(e, (Exists, ScalarSub)):
            for c in e.outer:
                self._check_grouped(c, group, span)
            return
        children = {Call: lambda x: x.args, InList: lambda x: (x.expr,), Box: lambda x: (x.col,)}
        for kind, get in children.items():
            if isinstance(e, kind):
                for c in get(e):
                    self._check_grouped(c, group, span)
        if isinstance(e, (Case, Cast, Window)):  # every part evaluated over the groups
            map_children(e, lambda c: self._check_grouped(c, group, span) or c)

    def _count(self, e: ast.Node | None, what: str) -> int | None:
        if e is None:
            return None
        try:
            v = constant_value(e, self.params)
        except ValueError:
            raise CqlTypeError(f"{what} takes a whole number", span=e.span) from None
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            err = ParameterError if isinstance(e, ast.Param) else CqlTypeError
            raise err(f"{what} takes a whole number >= 0, not {v!r}", span=e.span)
        return v


def _settings() -> Any:
    from caveql.analyze.settings import Settings
    return Settings()


def _float_id(col: Expr, other: Expr, node: ast.Node, span: Span | None) -> None:
    """Refuse a float tested for equality (``=``, ``!=``, ``IN``) with an id column (``id``,
    ``..._id``) that cannot be an id: any above 2^53, where a float64 no longer holds every
    integer, or one with a fraction. Such a value matches nothing, or the wrong row, without a
    word: the pandas float-id pitfall (an id column read from CSV, or holding a NaN, becomes
    float64). ``node`` names the value. (A range bound may be any number.)

    >>> _float_id(Col("c", "pt_root_id", "int"), Lit(8.646911357716777e17, "float"),
    ...           ast.Param("r", span=Span(40, 42, 1, 41)), None)
    Traceback (most recent call last):
      ...
    caveql.errors.ParameterError: parameter :r is the float 8.646911357716777e+17, compared with the id column pt_root_id: ...
    """
    if not (isinstance(col, Col) and col.type == "int" and (col.name == "id" or col.name.endswith("_id"))):
        return
    v = other.value if isinstance(other, Lit) else None
    if isinstance(v, bool) or not isinstance(v, (float, Decimal)) or not (
            v == v or abs(v) < float("inf")):
        return
    if abs(v) > 2**53:  # (a decimal literal too: it is carried as a double)
        why = "above 2^53 a float cannot hold every 64-bit id, so it is not exactly the id meant"
    elif v != int(v):
        why = "it is not a whole number"
    else:
        return
    if isinstance(node, ast.Param):
        raise ParameterError(
            f"parameter :{node.name} is the float {v!r}, compared with the id column {col.name}: "
            f"{why}, and it would match nothing or the wrong rows", span=node.span or span,
            hint="keep ids as integers: int(x), or .astype('int64') in pandas (a column read "
                 "from CSV or holding NaN becomes float)")
    raise CqlTypeError(
        f"the decimal number {v}, compared with the id column {col.name}: {why}, and it would "
        "match nothing or the wrong rows", span=getattr(node, "span", None) or span,
        hint="write ids as integers, without a decimal point or exponent")


def _what(e: Expr) -> str:
    if isinstance(e, Col):
        return e.name
    if isinstance(e, Lit):
        return repr(e.value) if not isinstance(e.value, str) else f"'{e.value}'"
    return "the expression"


def _default_name(e: Expr) -> str:
    named = default_name(e)
    if named is not None:
        return named
    if isinstance(e, Col):
        return e.name
    if isinstance(e, Agg):
        inner = "*" if e.arg is None else ("distinct " if e.distinct else "") + _default_name(e.arg)
        return f"{e.name.lower()}({inner})" if e.arg is not None or e.name != "COUNT" else "count"
    if isinstance(e, Call) and e.op.isalpha() and e.op not in ("AND", "OR", "NOT", "BETWEEN"):
        return e.op.lower()
    if isinstance(e, Lit):
        return str(e.value)
    return "expr"


def _unique_names(outputs: list[Output], from_star: list[bool]) -> list[Output]:
    """``*`` over several sources: a name already taken gets ``_<alias>`` (explicit
    items keep their names, repeated or not, as in SQL)."""
    seen: set[str] = set()
    out = []
    for o, star in zip(outputs, from_star, strict=True):
        name = o.name
        if star and name in seen and isinstance(o.expr, Col):
            name = f"{name}_{o.expr.source}"
            while name in seen:
                name += "_"
        seen.add(name)
        out.append(replace(o, name=name))
    return out


def _item_spans(s: ast.Select, outputs: list[Output]) -> list[Span | None]:
    return [getattr(o.expr, "span", None) for o in outputs]


def resolve_select(select: ast.Select, catalog: Catalog, params: Mapping[str, Any],
                   resolution: tuple[float, float, float] | None = None) -> Query:
    """Resolve a SELECT against ``catalog`` with ``params`` bound; see the module docstring.

    ``resolution`` is the statement's (AT RESOLUTION): a position component whose axis does
    not scale to whole numbers there is a ``float`` (:mod:`caveql.analyze.resolution`)."""
    return _Resolver(catalog, params, [0], resolution=resolution).select(select)


# re-exported for rules that need to recompute the columns a query reads
__all__ += ["columns_of", "walk"]
