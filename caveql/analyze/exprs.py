"""Analysis of function calls, CASE and CAST against the function table.

The resolver (:mod:`caveql.analyze.resolve`) calls :func:`resolve_call`, :func:`resolve_case`
and :func:`resolve_cast` with itself as ``r``; they use its ``_expr``, ``binary``, ``_want``
and ``_no_position`` and its ``context`` (which clause is being analysed).

>>> cast_type(ast.TypeName("BIGINT", array=1))
('int[]', 'BIGINT[]')
>>> cast_type(ast.TypeName("DECIMAL", (10, 2)))
('float', 'DECIMAL(10,2)')
"""

from __future__ import annotations

from typing import Any

from caveql.analyze.functions import (
    UNSUPPORTED, ArgTypeError, ArityError, Function, check, common_type, lookup, names,
)
from caveql.errors import AggregateError, CqlSemanticError, CqlTypeError, UnsupportedError, did_you_mean
from caveql.logical import Agg, Call, Case, Cast, Col, Expr, Lit
from caveql.syntax import ast

__all__ = ["TYPE_NAMES", "aggregate_args", "cast_type", "check_constants", "default_name",
           "resolve_aggregate", "resolve_call", "resolve_case", "resolve_cast", "type_error", "typed",
           "unknown_function"]

#: CQL type names (as in CAST(x AS name)) → (CQL type, DuckDB type).
TYPE_NAMES: dict[str, tuple[str, str]] = {
    **{n: ("int", "TINYINT") for n in ("TINYINT", "INT1")},
    **{n: ("int", "SMALLINT") for n in ("SMALLINT", "INT2", "SHORT")},
    **{n: ("int", "INTEGER") for n in ("INTEGER", "INT", "INT4", "SIGNED")},
    **{n: ("int", "BIGINT") for n in ("BIGINT", "INT8", "LONG")},
    "UTINYINT": ("int", "UTINYINT"), "USMALLINT": ("int", "USMALLINT"),
    "UINTEGER": ("int", "UINTEGER"), "UBIGINT": ("int", "UBIGINT"),
    **{n: ("float", "FLOAT") for n in ("FLOAT", "FLOAT4", "REAL")},
    **{n: ("float", "DOUBLE") for n in ("DOUBLE", "FLOAT8")},
    **{n: ("float", "DECIMAL") for n in ("DECIMAL", "NUMERIC")},
    **{n: ("string", "VARCHAR") for n in ("VARCHAR", "TEXT", "STRING", "CHAR", "BPCHAR")},
    **{n: ("bool", "BOOLEAN") for n in ("BOOLEAN", "BOOL", "LOGICAL")},
    **{n: ("timestamp", "TIMESTAMP") for n in ("TIMESTAMP", "DATETIME")},
    "DATE": ("date", "DATE"),
}

#: The parts DATE_TRUNC / DATE_PART / DATE_DIFF take (a constant string).
DATE_PARTS = ("year", "quarter", "month", "week", "day", "dayofweek", "dayofyear", "hour", "minute",
              "second", "millisecond", "microsecond", "epoch", "decade", "century", "millennium",
              "isodow", "isoyear")
_TRUNC_PARTS = ("millennium", "century", "decade", "year", "quarter", "month", "week", "day", "hour",
                "minute", "second", "millisecond", "microsecond")


#: DuckDB types CQL has no values of, with what to use instead.
_REFUSED_TYPES = {
    "INTERVAL": "CQL has no interval type; DATE_DIFF counts part boundaries, EPOCH gives seconds",
    "TIMESTAMPTZ": "CQL's timestamps are UTC; use TIMESTAMP",
    "HUGEINT": "a 128-bit integer does not fit a frame's Int64; use BIGINT, UBIGINT or DOUBLE",
    "UHUGEINT": "a 128-bit integer does not fit a frame's Int64; use BIGINT, UBIGINT or DOUBLE",
    "BLOB": "CQL has no binary type; use VARCHAR",
}


def cast_type(t: ast.TypeName) -> tuple[str, str]:
    """``(CQL type, DuckDB type)`` of a type name; CqlTypeError for an unknown one."""
    hit = TYPE_NAMES.get(t.name.upper())
    if t.name.upper() in _REFUSED_TYPES:
        raise CqlTypeError(f"type {t.name} is not supported", span=t.span,
                           hint=_REFUSED_TYPES[t.name.upper()])
    if hit is None:
        cands = did_you_mean(t.name.upper(), TYPE_NAMES)
        raise CqlTypeError(f"unknown type {t.name}", span=t.span,
                           hint=(f"did you mean {cands[0]}?" if cands else
                                 "types: BIGINT, INTEGER, DOUBLE, FLOAT, DECIMAL(p, s), VARCHAR, "
                                 "BOOLEAN, TIMESTAMP, DATE, and lists such as BIGINT[]"))
    cql, sql = hit
    if sql == "DECIMAL":
        p, s = (t.args + (18, 3)[len(t.args):]) if len(t.args) <= 2 else (0, 0)
        if len(t.args) > 2 or not 1 <= p <= 38 or not 0 <= s <= p:
            raise CqlTypeError(f"{t.name}(p, s) needs 1 <= p <= 38 and 0 <= s <= p", span=t.span)
        sql = f"DECIMAL({p},{s})"
    elif t.args and sql != "VARCHAR":  # VARCHAR(n): the length is accepted and ignored, as DuckDB
        raise CqlTypeError(f"type {t.name} takes no arguments", span=t.span)
    return cql + "[]" * t.array, sql + "[]" * t.array


def _castable(src: str, dst: str) -> bool:
    if src in ("null", dst) or src == "string" or dst == "string":
        return src != "position"
    if src.endswith("[]") and dst.endswith("[]"):
        return _castable(src[:-2], dst[:-2])
    if src.endswith("[]") or dst.endswith("[]") or "position" in (src, dst):
        return False
    scalar = {"int", "float", "bool"}
    if src in scalar and dst in scalar:
        return True
    return {src, dst} <= {"timestamp", "date"}


def resolve_cast(r: Any, e: ast.Cast, agg_ok: bool, alias_ok: bool) -> Expr:
    """``CAST`` / ``TRY_CAST`` / ``::``: the value converted as DuckDB converts it."""
    x = r._expr(e.expr, agg_ok, alias_ok)
    cql, sql = cast_type(e.type)
    src = "float" if x.type == "float32" else x.type
    if src == "position":
        raise CqlTypeError(f"{_what(x)} is a position; cast its components ({_what(x)}_x, _y, _z)",
                           span=e.expr.span or e.span)
    if not _castable(src, cql):
        hint = ("EPOCH(x) gives a timestamp's seconds" if src in ("timestamp", "date") else None)
        raise CqlTypeError(f"cannot cast {_what(x)} ({src}) to {e.type.name.upper()}"
                           + "[]" * e.type.array, span=e.span, hint=hint)
    return Cast(x, sql, cql, try_=e.try_, span=e.span)


def resolve_case(r: Any, e: ast.Case, agg_ok: bool, alias_ok: bool) -> Expr:
    """A searched or simple CASE; every result must unify to one type."""
    operand = r._expr(e.operand, agg_ok, alias_ok) if e.operand is not None else None
    if operand is not None:
        r._no_position(operand, "CASE", e.operand.span or e.span)
    whens: list[tuple[Expr, Expr]] = []
    for w, then in e.whens:
        c = r._expr(w, agg_ok, alias_ok)
        if operand is not None:
            c = r.binary("=", operand, c, w.span or e.span)
        else:
            r._want(c, ("bool",), "CASE WHEN", w.span or e.span)
        whens.append((c, r._expr(then, agg_ok, alias_ok)))
    else_ = r._expr(e.else_, agg_ok, alias_ok) if e.else_ is not None else None
    results = [v for _c, v in whens] + ([else_] if else_ is not None else [])
    srcs = [t for _w, t in e.whens] + ([e.else_] if e.else_ is not None else [])
    for v, src in zip(results, srcs, strict=True):
        r._no_position(v, "CASE", src.span or e.span)
    t = common_type([v.type for v in results])
    if t is None and {v.type for v in results} - {"null"} == {"timestamp", "string"}:
        results = [r._as_time(v, Lit(None, "timestamp")) for v in results]  # ISO strings as timestamps
        whens = [(c, v) for (c, _old), v in zip(whens, results, strict=False)]
        else_ = results[-1] if else_ is not None else None
        t = common_type([v.type for v in results])
    if t is None:
        first = results[0]
        bad = next(i for i, v in enumerate(results) if common_type([first.type, v.type]) is None)
        raise CqlTypeError(
            f"CASE results must have one type, but {_what(first)} is {first.type} and "
            f"{_what(results[bad])} is {results[bad].type}", span=srcs[bad].span or e.span,
            hint="CAST one of them, e.g. CAST(x AS VARCHAR)")
    return Case(tuple(whens), else_, t, span=e.span)


def unknown_function(name: str, span: Any) -> CqlSemanticError:
    """The error for a name the table does not have (refused on purpose, or misspelt)."""
    if name in UNSUPPORTED:
        return UnsupportedError(f"{name}() is not supported: {UNSUPPORTED[name]}", span=span)
    cands = did_you_mean(name, names())
    return CqlSemanticError(f"unknown function {name}()", span=span,
                            hint=f"did you mean {cands[0]}()?" if cands else
                            "docs/functions.md lists every function")


def type_error(fn: Function, err: ArgTypeError, args: tuple[Expr, ...], srcs: tuple[Any, ...],
               span: Any) -> CqlTypeError:
    """A wrong argument type as a CqlTypeError pointing at the argument."""
    if err.index < 0:
        return CqlTypeError(f"{fn.name}() needs {err.wanted}", span=span)
    a = args[err.index]
    return CqlTypeError(f"argument {err.index + 1} of {fn.name}() must be {err.wanted}, but "
                        f"{_what(a)} is {a.type}", span=getattr(srcs[err.index], "span", None) or span)


def typed(fn: Function, args: tuple[Expr, ...], srcs: tuple[Any, ...], span: Any) -> str:
    """The result type of ``fn(args)``, or the error saying what is wrong."""
    try:
        return check(fn, [a.type for a in args])
    except ArityError as err:
        raise CqlSemanticError(str(err), span=span) from None
    except ArgTypeError as err:
        raise type_error(fn, err, args, srcs, span) from None


def check_constants(fn: Function, args: tuple[Expr, ...], srcs: tuple[Any, ...], span: Any) -> None:
    """Arguments that must be constants (DuckDB needs them so, or the check is cheap here)."""
    name = fn.name
    if name in ("DATE_TRUNC", "DATE_PART", "DATE_DIFF"):
        part = args[0]
        allowed = _TRUNC_PARTS if name == "DATE_TRUNC" else DATE_PARTS
        if not (isinstance(part, Lit) and isinstance(part.value, str)
                and part.value.lower() in allowed):
            raise CqlTypeError(f"the first argument of {name}() must be one of "
                               + ", ".join(f"'{p}'" for p in allowed),
                               span=getattr(srcs[0], "span", None) or span)
    if name in ("QUANTILE_CONT", "QUANTILE_DISC"):
        q = args[1]
        if not (isinstance(q, Lit) and isinstance(q.value, (int, float)) and not isinstance(q.value, bool)
                and 0 <= q.value <= 1) and not (isinstance(q, Lit) and q.type == "float"
                                                 and 0 <= float(q.value) <= 1):
            raise CqlTypeError(f"the quantile of {name}() must be a constant between 0 and 1",
                               span=getattr(srcs[1], "span", None) or span)
    if name == "STRING_AGG" and len(args) > 1 and not isinstance(args[1], Lit):
        raise CqlTypeError("the separator of STRING_AGG() must be a constant string",
                           span=getattr(srcs[1], "span", None) or span)


def resolve_call(r: Any, e: ast.FuncCall, agg_ok: bool, alias_ok: bool) -> Expr:
    """A function call (not OVER a window): scalar or aggregate, by the function table."""
    name = e.name.upper()
    fn = lookup(name)
    if fn is None:
        raise unknown_function(name, e.span)
    if fn.kind == "window":
        raise CqlSemanticError(f"{fn.name}() is a window function: it needs OVER (...)", span=e.span,
                               hint=f"e.g. {fn.example}")
    if fn.aggregate:
        return resolve_aggregate(r, fn, e, agg_ok, alias_ok)
    if e.filter is not None:
        raise CqlSemanticError(f"FILTER (WHERE ...) applies to aggregates; {fn.name}() is not one",
                               span=e.filter.span or e.span, hint="use the condition in WHERE or CASE WHEN")
    if e.distinct:
        raise CqlSemanticError(f"DISTINCT is only allowed in an aggregate, not in {fn.name}()",
                               span=e.span)
    if e.star:
        raise CqlSemanticError(f"{fn.name}(*) is not valid; only COUNT(*)", span=e.span)
    args = tuple(r._expr(a, agg_ok, alias_ok) for a in e.args)
    if fn.name != "DISTANCE":
        for a, src in zip(args, e.args, strict=True):
            r._no_position(a, f"{fn.name}()", src.span or e.span)
    elif len(args) == 2:
        for a, src in zip(args, e.args, strict=True):
            if a.type != "position":
                raise CqlTypeError(f"DISTANCE() takes two position columns, not {_what(a)}",
                                   span=src.span or e.span)
    t = typed(fn, args, e.args, e.span)
    check_constants(fn, args, e.args, e.span)
    return Call(fn.name, args, t, span=e.span)


def resolve_aggregate(r: Any, fn: Function, e: ast.FuncCall, agg_ok: bool, alias_ok: bool) -> Expr:
    """An aggregate over the group's rows."""
    name = fn.name
    if getattr(r, "in_aggregate", False):
        raise AggregateError("aggregates cannot be nested", span=e.span,
                             hint="aggregate in a derived table or CTE first, then aggregate its rows")
    if not agg_ok:
        where = {"where": "WHERE", "group": "GROUP BY", "on": "JOIN ... ON"}.get(r.context, "here")
        raise AggregateError(f"aggregate {name}() is not allowed in {where}", span=e.span,
                             hint="filter groups with HAVING" if r.context == "where" else None)
    filt = aggregate_filter(r, e, alias_ok)
    if e.star:
        if not fn.star:
            raise CqlSemanticError(f"{name}(*) is not valid; only COUNT(*)", span=e.span)
        return Agg("COUNT", None, "int", span=e.span, filter=filt)
    args = aggregate_args(r, e, alias_ok)
    t = typed(fn, args, e.args, e.span)
    check_constants(fn, args, e.args, e.span)
    return Agg(name, args[0], t, distinct=e.distinct, extra=args[1:], span=e.span, filter=filt)


def aggregate_filter(r: Any, e: ast.FuncCall, alias_ok: bool) -> Expr | None:
    """An aggregate's ``FILTER (WHERE c)``: a condition per row (no aggregate, window or position
    inside), or None."""
    if e.filter is None:
        return None
    r.in_aggregate = True
    try:
        cond = r._expr(e.filter, False, alias_ok)
    finally:
        r.in_aggregate = False
    r._want(cond, ("bool",), "FILTER (WHERE ...)", e.filter.span or e.span)
    return cond


def aggregate_args(r: Any, e: ast.FuncCall, alias_ok: bool) -> tuple[Expr, ...]:
    """An aggregate's arguments: evaluated per row, so no aggregate inside; no positions."""
    r.in_aggregate = True
    try:
        args = tuple(r._expr(a, False, alias_ok) for a in e.args)
    finally:
        r.in_aggregate = False
    for a, src in zip(args, e.args, strict=True):
        if a.type == "position":
            raise CqlTypeError(f"{e.name}() of a position; aggregate its components "
                               f"({_what(a)}_x, ...)", span=src.span or e.span)
    return args


def default_name(e: Expr) -> str | None:
    """The output name of an unaliased CASE / CAST / window item (None: not one of those)."""
    from caveql.logical import Window
    if isinstance(e, Cast):
        return e.expr.name if isinstance(e.expr, Col) else "cast"
    if isinstance(e, Case):
        return "case"
    if isinstance(e, Window):
        return e.name.lower()
    if isinstance(e, Call) and lookup(e.op) is not None:
        return e.op.lower()
    return None


def _what(e: Expr) -> str:
    if isinstance(e, Col):
        return e.name
    if isinstance(e, Lit):
        return repr(e.value) if not isinstance(e.value, str) else f"'{e.value}'"
    return "the expression"
