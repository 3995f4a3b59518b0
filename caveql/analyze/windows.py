"""Analysis of window functions, named windows, QUALIFY and GROUP BY ALL.

A window call is allowed where window results exist: the select list, ORDER BY and QUALIFY
(windows are computed after WHERE, GROUP BY and HAVING). Its function is a window function
of the table (``ROW_NUMBER``, ``LAG``, ...) or an aggregate; PARTITION BY / ORDER BY are
resolved in the block's scope (over groups in an aggregate query); a named window (``WINDOW
w AS (...)``) may be refined by ``OVER (w ORDER BY ...)`` as SQL allows (no second PARTITION
BY; ORDER BY only if the base has none; the base has no frame).

``ROW_NUMBER``, ``NTILE``, ``LAG`` and ``LEAD`` do not depend on the frame or on peers, so
their ORDER BY gets the sources' ids as a last key: rows tied on ORDER BY get numbers in id
order, the same on every run (any order among ties is SQL's answer; this one is repeatable).

>>> frame_bound_rank("CURRENT ROW")
2
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from caveql.analyze.exprs import check_constants, typed, unknown_function
from caveql.analyze.functions import lookup
from caveql.errors import AggregateError, CqlSemanticError, CqlTypeError, did_you_mean
from caveql.logical import (
    Col, Expr, Lit, OrderSpec, Output, WinFrame, Window, has_agg, has_window, map_children,
)
from caveql.syntax import ast

__all__ = ["frame_bound_rank", "group_by_all", "named_windows", "resolve_qualify", "resolve_window",
           "tie_break"]

_RANKS = {"UNBOUNDED PRECEDING": 0, "PRECEDING": 1, "CURRENT ROW": 2, "FOLLOWING": 3,
          "UNBOUNDED FOLLOWING": 4}
_TIE_BROKEN = ("ROW_NUMBER", "NTILE", "LAG", "LEAD")
_WHERE = {"where": "WHERE", "group": "GROUP BY", "having": "HAVING", "on": "JOIN ... ON"}


def frame_bound_rank(kind: str) -> int:
    """Where a frame bound lies, from UNBOUNDED PRECEDING (0) to UNBOUNDED FOLLOWING (4)."""
    return _RANKS[kind]


def named_windows(s: ast.Select) -> dict[str, ast.WindowSpec]:
    """The WINDOW clause's definitions by name, each with its base (an earlier definition)
    merged in."""
    out: dict[str, ast.WindowSpec] = {}
    for name, spec in getattr(s, "windows", ()):
        if name in out:
            raise CqlSemanticError(f"window '{name}' is defined twice", span=spec.span)
        out[name] = _merge(spec, out, spec.span)
    return out


def _merge(spec: ast.WindowSpec, named: dict[str, ast.WindowSpec], span: Any) -> ast.WindowSpec:
    if spec.base is None:
        return spec
    base = named.get(spec.base)
    if base is None:
        cands = did_you_mean(spec.base, list(named))
        raise CqlSemanticError(f"unknown window '{spec.base}'", span=spec.span or span,
                               hint=f"did you mean '{cands[0]}'?" if cands else
                               "define it in a WINDOW clause: WINDOW w AS (PARTITION BY ...)")
    if spec.partition_by:
        raise CqlSemanticError(f"a window based on '{spec.base}' cannot have its own PARTITION BY",
                               span=spec.span or span)
    if spec.order_by and base.order_by:
        raise CqlSemanticError(f"window '{spec.base}' already has an ORDER BY", span=spec.span or span)
    if base.frame is not None:
        raise CqlSemanticError(f"window '{spec.base}' has a frame, so it cannot be refined",
                               span=spec.span or span)
    return ast.WindowSpec(None, base.partition_by, spec.order_by or base.order_by, spec.frame,
                          span=spec.span)


def _window_context_error(r: Any, e: ast.WindowCall) -> None:
    if getattr(r, "in_aggregate", False):
        raise AggregateError("a window function cannot be inside an aggregate", span=e.span,
                             hint="compute the window in a derived table or CTE first")
    if getattr(r, "in_window", False):
        raise CqlSemanticError("window functions cannot be nested", span=e.span)
    if r.context not in ("select", "order", "qualify"):
        where = _WHERE.get(r.context, "here")
        raise CqlSemanticError(
            f"window function {e.func.name}() is not allowed in {where}", span=e.span,
            hint=("windows are computed after WHERE; filter on them with QUALIFY"
                  if r.context in ("where", "having") else None))


def resolve_window(r: Any, e: ast.WindowCall, agg_ok: bool, alias_ok: bool) -> Expr:
    """``f(args) [FILTER (WHERE c)] OVER window`` (see the module docstring)."""
    _window_context_error(r, e)
    f = e.func
    fn = lookup(f.name)
    if fn is None:
        raise unknown_function(f.name.upper(), f.span or e.span)
    if fn.kind == "scalar":
        raise CqlSemanticError(
            f"{fn.name}() is not a window function or an aggregate, so it cannot take OVER", span=e.span,
            hint="OVER applies to ROW_NUMBER(), RANK(), LAG(), ... and to aggregates such as SUM()")
    named: dict[str, ast.WindowSpec] = getattr(r, "named_windows", {})
    if isinstance(e.window, str):
        if e.window not in named:
            cands = did_you_mean(e.window, list(named))
            raise CqlSemanticError(f"unknown window '{e.window}'", span=e.span,
                                   hint=f"did you mean '{cands[0]}'?" if cands else
                                   "define it in a WINDOW clause: WINDOW w AS (PARTITION BY ...)")
        spec = named[e.window]
    else:
        spec = _merge(e.window, named, e.span)
    if fn.kind == "window" and (f.distinct or e.filter is not None):
        raise CqlSemanticError(f"DISTINCT and FILTER apply to aggregates, not to {fn.name}()",
                               span=e.span)
    r.in_window = True
    try:
        if f.star:
            if not fn.star:
                raise CqlSemanticError(f"{fn.name}(*) is not valid; only COUNT(*)", span=f.span or e.span)
            args: tuple[Expr, ...] = ()
            t = "int"
        else:
            # over the block's rows, or its groups (SUM(COUNT(*)) OVER (...)) in an aggregate block
            args = tuple(r._expr(a, agg_ok, False) for a in f.args)
            for a, src in zip(args, f.args, strict=True):
                r._no_position(a, f"{fn.name}()", src.span or e.span)
            t = typed(fn, args, f.args, f.span or e.span)
            check_constants(fn, args, f.args, f.span or e.span)
        filt = None
        if e.filter is not None:
            filt = r._expr(e.filter, agg_ok, False)
            r._want(filt, ("bool",), "FILTER (WHERE ...)", e.filter.span or e.span)
        parts = tuple(r._expr(p, agg_ok, False) for p in spec.partition_by)
        for p, src in zip(parts, spec.partition_by, strict=True):
            r._no_position(p, "PARTITION BY", src.span or e.span)
        order = tuple(OrderSpec(r._expr(o.expr, agg_ok, False), o.descending, o.nulls)
                      for o in spec.order_by)
        for o, src in zip(order, spec.order_by, strict=True):
            r._no_position(o.expr, "a window's ORDER BY", src.span or e.span)
    finally:
        r.in_window = False
    frame = _frame(r, spec.frame, order, e) if spec.frame is not None else None
    return Window(fn.name, args, t, parts, order, frame, distinct=f.distinct, star=f.star,
                  filter=filt, span=e.span)


def _ids(r: Any) -> list[Col]:
    """The sources' ``id`` columns (FROM order): the tie-break of a row-order window."""
    out = []
    for alias, info in r.scope.sources:
        col = getattr(info, "column", lambda _n: None)("id")
        if col is not None and getattr(col, "type", None) == "int":
            out.append(Col(alias, "id", "int"))
    return out


def _frame(r: Any, f: ast.Frame, order: tuple[OrderSpec, ...], e: ast.WindowCall) -> WinFrame:
    end = f.end or ast.FrameBound("CURRENT ROW")
    if f.start.kind == "UNBOUNDED FOLLOWING" or end.kind == "UNBOUNDED PRECEDING":
        raise CqlSemanticError("a frame cannot start at UNBOUNDED FOLLOWING or end at UNBOUNDED "
                               "PRECEDING", span=f.span or e.span)
    if _RANKS[f.start.kind] > _RANKS[end.kind]:
        raise CqlSemanticError(f"a frame cannot start at {f.start.kind} and end at {end.kind}",
                               span=f.span or e.span)
    bounds = []
    for b in (f.start, end):
        off = None
        if b.offset is not None:
            off = _offset(r, b, f, order, e)
        bounds.append((b.kind, off))
    if f.exclude is not None and f.exclude.upper() not in ("CURRENT ROW", "GROUP", "TIES", "NO OTHERS"):
        raise CqlSemanticError(f"EXCLUDE {f.exclude} is not a frame exclusion", span=f.span or e.span)
    if f.unit in ("RANGE", "GROUPS") and not order and any(o is not None for _k, o in bounds):
        raise CqlSemanticError(f"a {f.unit} frame with an offset needs ORDER BY in the window",
                               span=f.span or e.span)
    return WinFrame(f.unit, bounds[0], bounds[1], f.exclude.upper() if f.exclude else None)


def _offset(r: Any, b: ast.FrameBound, f: ast.Frame, order: tuple[OrderSpec, ...],
            e: ast.WindowCall) -> Any:
    lit = r._expr(b.offset, False, False)  # literals and :params fold into a Lit
    if not isinstance(lit, Lit):
        raise CqlTypeError("a frame offset must be a constant", span=b.offset.span or e.span)
    v = lit.value
    if f.unit == "RANGE":
        if len(order) != 1 or order[0].expr.type not in ("int", "float"):
            raise CqlSemanticError("a RANGE frame with an offset needs exactly one numeric ORDER BY "
                                   "key", span=f.span or e.span)
        ok = isinstance(v, (int, float, Decimal)) and not isinstance(v, bool) and v >= 0
        if ok and isinstance(v, Decimal):
            v = float(v)
    else:
        ok = isinstance(v, int) and not isinstance(v, bool) and v >= 0
    if not ok:
        raise CqlTypeError(f"a {f.unit} frame offset must be a "
                           + ("number" if f.unit == "RANGE" else "whole number") + f" >= 0, not {v!r}",
                           span=b.offset.span or e.span)
    return v


def group_by_all(outputs: list[Output]) -> tuple[Expr, ...]:
    """GROUP BY ALL: every select item with no aggregate or window (nor a bare constant), as
    DuckDB groups."""
    out: list[Expr] = []
    for o in outputs:
        if has_agg(o.expr) or has_window(o.expr) or isinstance(o.expr, Lit):
            continue
        if not any(o.expr == g for g in out):
            out.append(o.expr)
    return tuple(out)


def resolve_qualify(r: Any, s: ast.Select, outputs: list[Output]) -> Expr | None:
    """QUALIFY: a condition over window results (select aliases allowed), evaluated after the
    windows. It needs a window function, in itself or in the select list (as DuckDB)."""
    if s.qualify is None:
        return None
    q = r.expr(s.qualify, agg_ok=True, alias_ok=True)
    r._want(q, ("bool",), "QUALIFY", s.qualify.span)
    if not has_window(q) and not any(has_window(o.expr) for o in outputs):
        raise CqlSemanticError("QUALIFY filters on window functions, and this query has none",
                               span=s.qualify.span, hint="filter rows with WHERE (groups with HAVING)")
    return q


def tie_break(r: Any, outputs: list[Output], order: tuple[OrderSpec, ...], qualify: Expr | None
              ) -> tuple[list[Output], tuple[OrderSpec, ...], Expr | None]:
    """Row-order windows (ROW_NUMBER, NTILE, LAG, LEAD) of a non-aggregate block get the
    sources' ids as their last ORDER BY keys (see the module docstring)."""
    ids = _ids(r)
    if not ids:
        return outputs, order, qualify

    def fix(e: Expr) -> Expr:
        e = map_children(e, fix)
        if isinstance(e, Window) and e.name in _TIE_BROKEN:
            extra = tuple(OrderSpec(k) for k in ids if not any(o.expr == k for o in e.order_by))
            if extra:
                from dataclasses import replace
                e = replace(e, order_by=e.order_by + extra)
        return e

    from dataclasses import replace as rep
    return ([rep(o, expr=fix(o.expr)) for o in outputs],
            tuple(rep(o, expr=fix(o.expr)) for o in order),
            fix(qualify) if qualify is not None else None)
