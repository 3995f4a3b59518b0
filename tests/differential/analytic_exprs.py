"""Analytic families of expression-level constructs: CASE, CAST/TRY_CAST/``::``, COALESCE,
NULLIF, GREATEST/LEAST and a sample of the function table (``expr``); window functions with
PARTITION BY/ORDER BY/frames, named windows and QUALIFY (``window``); ``GROUP BY ALL``
(``groupall``). Each is one anchored demo source, built as CQL and as oracle SQL at once.

Windows whose answer depends on the order of peers (ROW_NUMBER, LAG, ROWS frames, ...) are
ordered by a unique ``id`` last, so every answer is determined; RANK/DENSE_RANK and RANGE
frames take peers as SQL defines them. QUALIFY is checked against a plain filter on the
window's value in a subquery (the oracle never uses QUALIFY itself).
"""

from __future__ import annotations

from hypothesis import strategies as st

from tests.differential.analytic_base import (
    Out, agg_of, groupable, numeric, q, scalar_columns, where,
)
from tests.differential.generator import Case, Src, X, _Ctx, anchor, condition, lit, predicate
from tests.differential.oracle import Column

__all__ = ["FUNCTIONS", "expr_family", "groupall_family", "window_family"]


def _src(ctx: _Ctx, tables: list[str]) -> Src:
    table = ctx.draw(st.sampled_from(tables))
    return Src(table, None, "t0", ctx.domain.columns(ctx.version, table))


def _value(c: X, column: Column) -> str:
    """A column's value in arithmetic: a table's Float32 widened to double (the local steps)."""
    return f"CAST({c.sql} AS DOUBLE)" if column.kind == "float" else c.sql


def _samples(ctx: _Ctx, src: Src, column: Column, default: object) -> list[object]:
    return [v for v in ctx.domain.samples(ctx.version, src.table, column.name) if v is not None] or [default]


#: a sample of the function table: (name, CQL template, oracle template, argument kind, result
#: kind); ``{x}`` is the argument (``{v}``: its value in arithmetic, floats widened)
FUNCTIONS = [
    ("LOWER", "LOWER({x})", "lower({x})", "str", "str"),
    ("UPPER", "UPPER({x})", "upper({x})", "str", "str"),
    ("LENGTH", "LENGTH({x})", "length({x})", "str", "int"),
    ("SUBSTRING", "SUBSTRING({x}, 2, 3)", "substring({x}, 2, 3)", "str", "str"),
    ("REPLACE", "REPLACE({x}, 'a', 'o')", "replace({x}, 'a', 'o')", "str", "str"),
    ("CONCAT", "CONCAT({x}, '_', 'x')", "concat({x}, '_', 'x')", "str", "str"),
    ("TRIM", "TRIM({x})", "trim({x})", "str", "str"),
    ("STARTS_WITH", "STARTS_WITH({x}, 'B')", "starts_with({x}, 'B')", "str", "bool"),
    ("ABS", "ABS({x} - 100)", "abs({v} - 100)", "num", "same"),
    ("ROUND", "ROUND({x}, 1)", "round({v}, 1)", "float", "float"),
    ("FLOOR", "FLOOR({x})", "floor({v})", "float", "float"),
    ("CEIL", "CEIL({x})", "ceil({v})", "float", "float"),
    ("SQRT", "SQRT({x})", "sqrt({v})", "num", "float"),
    ("LN", "LN({x} + 1)", "ln({v} + 1)", "num", "float"),
    ("POWER", "POWER({x}, 2)", "power({v}, 2)", "float", "float"),
    ("SIGN", "SIGN({x} - 500)", "sign({v} - 500)", "num", "int"),
    ("YEAR", "YEAR({x})", "year({x})", "ts", "int"),
    ("MONTH", "MONTH({x})", "month({x})", "ts", "int"),
    ("HOUR", "HOUR({x})", "hour({x})", "ts", "int"),
    ("DATE_TRUNC", "DATE_TRUNC('month', {x})", "date_trunc('month', {x})", "ts", "ts"),
    ("REGEXP_REPLACE", "REGEXP_REPLACE({x}, '[0-9]', '#')", "regexp_replace({x}, '[0-9]', '#')", "str", "str"),
    ("SPLIT_PART", "SPLIT_PART({x}, '_', 2)", "split_part({x}, '_', 2)", "str", "str"),
    ("LPAD", "LPAD({x}, 6, '*')", "lpad({x}, 6, '*')", "str", "str"),
    ("STRPOS", "STRPOS({x}, 'C')", "strpos({x}, 'C')", "str", "int"),
    ("REVERSE", "REVERSE({x})", "reverse({x})", "str", "str"),
    ("CONTAINS", "CONTAINS({x}, 'P')", "contains({x}, 'P')", "str", "bool"),
    ("CONCAT_WS", "CONCAT_WS('-', {x}, 'z')", "concat_ws('-', {x}, 'z')", "str", "str"),
    ("IFNULL", "IFNULL({x}, 'none')", "ifnull({x}, 'none')", "str", "str"),
    ("MOD", "MOD({x}, 7)", "mod({x}, 7)", "int", "int"),
    ("LOG10", "LOG10({x} + 1)", "log10({v} + 1)", "num", "float"),
    ("TRUNC", "TRUNC({x})", "trunc({v})", "float", "float"),
    ("LIST_VALUE", "LIST_VALUE({x}, {x})", "list_value({x}, {x})", "int", "list"),
]


def _fn(ctx: _Ctx, src: Src) -> X | None:
    """One function of :data:`FUNCTIONS` applied to a column of the matching kind."""
    name, cql_t, sql_t, arg, res = ctx.draw(st.sampled_from(FUNCTIONS))
    kinds = {"num": ("int", "float"), "float": ("float",)}.get(arg, (arg,))
    cols = [c for c in src.columns if c.kind in kinds and c.name not in ("valid", "valid_ref")]
    if arg == "num":
        cols = [c for c in cols if not c.is_id]
    if not cols:
        return None
    column = ctx.draw(st.sampled_from(cols))
    c = src.col(column.name, column.kind)
    kind = column.kind if res == "same" else res
    return X(cql_t.format(x=c.cql), sql_t.format(x=c.sql, v=_value(c, column)), kind)


def _result(ctx: _Ctx, kind: str, src: Src) -> X:
    """A THEN/ELSE result of the given kind: a literal, or a column of that kind."""
    if kind == "str":
        return lit(ctx.draw(st.sampled_from(["a", "b", "it's", ""])))
    cols = [c for c in src.columns if c.kind == "int" and not c.is_id]
    if cols and ctx.draw(st.booleans()):
        c = ctx.draw(st.sampled_from(cols))
        return src.col(c.name, "int")
    return lit(ctx.draw(st.integers(-3, 9)))


def _case(ctx: _Ctx, src: Src) -> X:
    """Searched CASE over predicates of the generator (float32 rule included), or simple CASE."""
    kind = ctx.draw(st.sampled_from(["str", "int"]))
    simple_cols = [c for c in src.columns if c.kind in ("str", "int") and c.name not in ("valid",)]
    if simple_cols and ctx.draw(st.booleans()):
        column = ctx.draw(st.sampled_from(simple_cols))
        c = src.col(column.name, column.kind)
        values = ctx.draw(st.lists(st.sampled_from(_samples(ctx, src, column, 0)), min_size=1, max_size=3,
                                   unique=True))
        whens = [(lit(v), _result(ctx, kind, src)) for v in values]
        head_cql, head_sql = f"CASE {c.cql}", f"CASE {c.sql}"
    else:
        whens = [(predicate(ctx, src), _result(ctx, kind, src)) for _ in range(ctx.draw(st.integers(1, 3)))]
        head_cql, head_sql = "CASE", "CASE"
    els = _result(ctx, kind, src) if ctx.draw(st.integers(0, 3)) > 0 else None
    cql = head_cql + "".join(f" WHEN {w.cql} THEN {t.cql}" for w, t in whens)
    sql = head_sql + "".join(f" WHEN {w.sql} THEN {t.sql}" for w, t in whens)
    if els is not None:
        cql, sql = cql + f" ELSE {els.cql}", sql + f" ELSE {els.sql}"
    return X(cql + " END", sql + " END", kind)


def _cast(ctx: _Ctx, src: Src) -> X | None:
    """CAST / TRY_CAST / ``::`` between ints, doubles and strings (never to a 32-bit type)."""
    shapes = []
    for c in src.columns:
        if c.name in ("valid", "valid_ref"):
            continue
        if c.kind == "int":
            shapes += [(c, "VARCHAR", "str"), (c, "DOUBLE", "float"), (c, "BIGINT", "int")]
        elif c.kind == "float":
            shapes += [(c, "BIGINT", "int"), (c, "DOUBLE", "float")]
        elif c.kind == "str":
            shapes += [(c, "BIGINT", "int"), (c, "VARCHAR", "str")]
    if not shapes:
        return None
    column, type_name, kind = ctx.draw(st.sampled_from(shapes))
    c = src.col(column.name, column.kind)
    # a string that is no number is an error for CAST: only TRY_CAST takes strings to numbers
    how = "TRY_CAST" if column.kind == "str" and type_name != "VARCHAR" else \
        ctx.draw(st.sampled_from(["CAST", "TRY_CAST", "::"]))
    sql = f"{'TRY_CAST' if how == 'TRY_CAST' else 'CAST'}({c.sql} AS {type_name})"
    if how == "::":
        return X(f"{c.cql}::{type_name}", sql, kind)
    return X(f"{how}({c.cql} AS {type_name})", sql, kind)


def _nullish(ctx: _Ctx, src: Src) -> X | None:
    """COALESCE, NULLIF, GREATEST, LEAST over ints (not ids: sums of ids overflow nothing here,
    but mean nothing) or strings."""
    kind = ctx.draw(st.sampled_from(["int", "str"]))
    cols = [c for c in src.columns if c.kind == kind and c.name not in ("valid",)]
    if not cols:
        return None
    a, b = ctx.draw(st.sampled_from(cols)), ctx.draw(st.sampled_from(cols))
    ca, cb = src.col(a.name, kind), src.col(b.name, kind)
    v = lit(ctx.draw(st.sampled_from(_samples(ctx, src, a, 0 if kind == "int" else "x"))))
    fn = ctx.draw(st.sampled_from(["COALESCE", "COALESCE3", "NULLIF", "GREATEST", "LEAST"]))
    if fn == "COALESCE3":
        return X(f"COALESCE({ca.cql}, {cb.cql}, {v.cql})", f"coalesce({ca.sql}, {cb.sql}, {v.sql})", kind)
    if fn in ("COALESCE", "NULLIF"):
        return X(f"{fn}({ca.cql}, {v.cql})", f"{fn.lower()}({ca.sql}, {v.sql})", kind)
    return X(f"{fn}({ca.cql}, {cb.cql}, {v.cql})", f"{fn.lower()}({ca.sql}, {cb.sql}, {v.sql})", kind)


def expr_family(ctx: _Ctx) -> Case:
    """``SELECT id, exprs... FROM t WHERE anchor [AND expr-predicate]`` (one anchored source)."""
    src = _src(ctx, ctx.domain.sources(ctx.version))
    terms = anchor(ctx, src) + condition(ctx, [src], max_terms=1)
    out = Out()
    keys = [c for c in src.columns if c.unique]
    if keys:
        k = src.col(keys[0].name, keys[0].kind)
        out.add(k.cql, k.sql, keys[0].name, bare=True)
    makers = [_case, _case, _cast, _nullish, _fn, _fn]
    for i in range(ctx.draw(st.integers(1, 4))):
        x = ctx.draw(st.sampled_from(makers))(ctx, src)
        if x is not None:
            out.add(x.cql, x.sql, f"x{i}")
    if len(out.names) == 0:
        x = _case(ctx, src)
        out.add(x.cql, x.sql, "x9")
    if ctx.draw(st.integers(0, 2)) == 0:  # an expression in WHERE
        x = _case(ctx, src) if ctx.draw(st.booleans()) else _nullish(ctx, src)
        if x is not None:
            v = lit("a") if x.kind == "str" else lit(ctx.draw(st.integers(0, 3)))
            op = ctx.draw(st.sampled_from(["=", "<>", ">="]))
            terms.append(X(f"{x.cql} {op} {v.cql}", f"{x.sql} {op.replace('<>', '!=')} {v.sql}", "bool"))
    w_cql, w_sql = where(terms)
    rel = ctx.domain.relation_sql(ctx.version, src.table, ctx.resolution)
    cql = f"SELECT {', '.join(out.cql)} FROM {src.table}{w_cql}"
    sql = f"SELECT {', '.join(out.sql)} FROM ({rel}) AS t0{w_sql}"
    return Case(cql, dict(ctx.params), sql, tuple(out.names), "set", family="expr", version=ctx.version,
                views=ctx.domain.is_view(ctx.version, src.table))


# ----------------------------------------------------------------------------- windows


def _frame(ctx: _Ctx, single_numeric_order: bool) -> tuple[str, bool]:
    """A frame clause and whether it needs a total order (ROWS: yes; RANGE/GROUPS: peers)."""
    k = ctx.draw(st.sampled_from([0, 1, 2, 5]))
    shapes = [
        (f"ROWS BETWEEN {k} PRECEDING AND CURRENT ROW", True),
        (f"ROWS BETWEEN UNBOUNDED PRECEDING AND {k} FOLLOWING", True),
        (f"ROWS BETWEEN {k} PRECEDING AND {k + 1} FOLLOWING", True),
        ("ROWS UNBOUNDED PRECEDING", True),
        ("RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW", False),
        ("RANGE BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING", False),
        (f"GROUPS BETWEEN {k} PRECEDING AND CURRENT ROW", False),
    ]
    if single_numeric_order:
        shapes.append((f"RANGE BETWEEN {k * 1000} PRECEDING AND {k * 1000} FOLLOWING", False))
    return ctx.draw(st.sampled_from(shapes))


def _window_call(ctx: _Ctx, src: Src, part: list[X], order_col: Column, uid: X) -> tuple[X, str, str]:
    """One window function call: (call without OVER, CQL window spec, oracle window spec)."""
    o = src.col(order_col.name, order_col.kind)
    desc = ctx.draw(st.sampled_from(["", " DESC"]))
    nums = [c for c in numeric(src.columns) if not c.is_id] or numeric(src.columns)
    arg_col = ctx.draw(st.sampled_from(nums))
    a = src.col(arg_col.name, arg_col.kind)
    av = _value(a, arg_col)
    fn = ctx.draw(st.sampled_from(["ROW_NUMBER", "RANK", "DENSE_RANK", "NTILE", "LAG", "LEAD",
                                   "FIRST_VALUE", "LAST_VALUE", "SUM", "COUNT", "AVG", "MIN", "MAX",
                                   "CUME_DIST", "PERCENT_RANK", "NTH_VALUE"]))
    # peers' order matters for all but the ranks
    total = fn not in ("RANK", "DENSE_RANK", "CUME_DIST", "PERCENT_RANK")
    frame_cql = ""
    valued = ("FIRST_VALUE", "LAST_VALUE", "NTH_VALUE")
    if fn in valued + ("SUM", "COUNT", "AVG", "MIN", "MAX") and ctx.draw(st.booleans()):
        single = order_col.kind in ("int", "float") and not desc
        frame_cql, needs_total = _frame(ctx, single and fn not in valued)
        if "000 PRECEDING" in frame_cql:
            total = False  # a RANGE offset takes exactly one ORDER BY key (aggregates only: peers agree)
        elif not needs_total:
            total = fn in valued
    order_cql = [f"{o.cql}{desc}"] + ([f"{uid.cql}"] if total else [])
    order_sql = [f"{o.sql}{desc}"] + ([f"{uid.sql}"] if total else [])
    p_cql = ("PARTITION BY " + ", ".join(p.cql for p in part) + " ") if part else ""
    p_sql = ("PARTITION BY " + ", ".join(p.sql for p in part) + " ") if part else ""
    ordered = fn not in ("SUM", "COUNT", "AVG", "MIN", "MAX") or frame_cql or ctx.draw(st.booleans())
    spec_cql = p_cql + (f"ORDER BY {', '.join(order_cql)}" if ordered else "")
    spec_sql = p_sql + (f"ORDER BY {', '.join(order_sql)}" if ordered else "")
    if frame_cql and ordered:
        spec_cql += " " + frame_cql
        spec_sql += " " + frame_cql
    if fn in ("ROW_NUMBER", "RANK", "DENSE_RANK", "CUME_DIST", "PERCENT_RANK"):
        call = X(f"{fn}()", f"{fn.lower()}()", "int")
    elif fn == "NTH_VALUE":
        n = ctx.draw(st.integers(1, 3))
        call = X(f"NTH_VALUE({a.cql}, {n})", f"nth_value({a.sql}, {n})", arg_col.kind)
    elif fn == "NTILE":
        n = ctx.draw(st.integers(1, 4))
        call = X(f"NTILE({n})", f"ntile({n})", "int")
    elif fn in ("LAG", "LEAD"):
        k = ctx.draw(st.sampled_from([None, 1, 2]))
        if k is None:
            call = X(f"{fn}({a.cql})", f"{fn.lower()}({a.sql})", arg_col.kind)
        else:
            call = X(f"{fn}({a.cql}, {k})", f"{fn.lower()}({a.sql}, {k})", arg_col.kind)
    elif fn in ("FIRST_VALUE", "LAST_VALUE"):
        call = X(f"{fn}({a.cql})", f"{fn.lower()}({a.sql})", arg_col.kind)
    elif fn == "COUNT":
        call = X("COUNT(*)", "count(*)", "int") if ctx.draw(st.booleans()) else \
            X(f"COUNT({a.cql})", f"count({a.sql})", "int")
    elif fn in ("SUM", "AVG"):
        call = X(f"{fn}({a.cql})", f"{fn.lower()}({av})", "float")
    else:
        call = X(f"{fn}({a.cql})", f"{fn.lower()}({a.sql})", arg_col.kind)
    return call, spec_cql.strip(), spec_sql.strip()


def window_family(ctx: _Ctx) -> Case:
    """Window functions over one anchored source, with optional named windows and QUALIFY."""
    dom = ctx.domain
    tables = [t for t in dom.tables(ctx.version)
              if any(c.name == "id" and c.unique for c in dom.columns(ctx.version, t))
              and groupable(dom.columns(ctx.version, t)) and numeric(dom.columns(ctx.version, t))]
    src = _src(ctx, tables)
    terms = anchor(ctx, src) + condition(ctx, [src], max_terms=1)
    uid = src.col("id", "int")
    parts = groupable(src.columns)
    part_cols = ctx.draw(st.lists(st.sampled_from(parts), max_size=2, unique_by=lambda c: c.name))
    part = [src.col(c.name, c.kind) for c in part_cols]
    # (not null: where NULLs sort is not what these cases are about)
    order_col = ctx.draw(st.sampled_from([c for c in scalar_columns(src.columns, ("int", "float", "str"))
                                          if c.not_null]))
    out = Out()
    out.add(uid.cql, uid.sql, "id", bare=True)
    for c in part_cols[:1]:
        x = src.col(c.name, c.kind)
        out.add(x.cql, x.sql, f"p_{c.name}")
    named: list[tuple[str, str]] = []  # (name, CQL spec) of the WINDOW clause
    calls: list[tuple[X, str]] = []  # (call OVER spec in CQL / SQL) for QUALIFY
    for i in range(ctx.draw(st.integers(1, 3))):
        call, spec_cql, spec_sql = _window_call(ctx, src, part, order_col, uid)
        over_cql = f"({spec_cql})"
        if ctx.draw(st.integers(0, 3)) == 0:  # a named window (the oracle inlines it)
            name = f"w{i}"
            named.append((name, spec_cql))
            over_cql = name
        cql = f"{call.cql} OVER {over_cql}"
        sql = f"{call.sql} OVER ({spec_sql})"
        out.add(cql, sql, f"w{i}_{call.cql.split('(')[0].lower()}")
        calls.append((X(cql, sql, call.kind), out.names[-1]))
    w_cql, w_sql = where(terms)
    rel = dom.relation_sql(ctx.version, src.table, ctx.resolution)
    cql = f"SELECT {', '.join(out.cql)} FROM {src.table}{w_cql}"
    inner_sql = f"SELECT {', '.join(out.sql)} FROM ({rel}) AS t0{w_sql}"
    sql = inner_sql
    if named:
        cql += " WINDOW " + ", ".join(f"{n} AS ({s})" for n, s in named)
    if ctx.draw(st.integers(0, 2)) == 0:  # QUALIFY on one of the windows
        x, name = ctx.draw(st.sampled_from(calls))
        op = ctx.draw(st.sampled_from(["<=", ">", "=", "IS NOT NULL"]))
        k = ctx.draw(st.integers(1, 3))
        cond_cql = f"{x.cql} IS NOT NULL" if op == "IS NOT NULL" else f"{x.cql} {op} {k}"
        cond_sql = f"{q(name)} IS NOT NULL" if op == "IS NOT NULL" else f"{q(name)} {op} {k}"
        cql += f" QUALIFY {cond_cql}"
        sql = f"SELECT * FROM ({inner_sql}) AS w WHERE {cond_sql}"
    mode = "set"
    if ctx.draw(st.integers(0, 2)) == 0:  # ORDER BY the unique id, perhaps with a LIMIT
        desc = ctx.draw(st.sampled_from(["", " DESC"]))
        limit = ctx.draw(st.sampled_from(["", " LIMIT 5", " LIMIT 100 OFFSET 3"]))
        cql += f" ORDER BY id{desc}{limit}"
        sql = f"SELECT * FROM ({sql}) AS o ORDER BY \"id\"{desc}{limit}"
        mode = "ordered"
    return Case(cql, dict(ctx.params), sql, tuple(out.names), mode, family="window", version=ctx.version)


# ----------------------------------------------------------------------------- GROUP BY ALL


def groupall_family(ctx: _Ctx) -> Case:
    """``SELECT g..., aggs FROM t WHERE anchor GROUP BY ALL [HAVING] [ORDER BY g]``."""
    dom = ctx.domain
    tables = [t for t in dom.sources(ctx.version) if groupable(dom.columns(ctx.version, t))]
    src = _src(ctx, tables)
    terms = anchor(ctx, src) + condition(ctx, [src], max_terms=1)
    out = Out()
    gcols = ctx.draw(st.lists(st.sampled_from(groupable(src.columns)), min_size=1, max_size=2,
                              unique_by=lambda c: c.name))
    for c in gcols:
        x = src.col(c.name, c.kind)
        if c.kind == "str" and ctx.draw(st.integers(0, 3)) == 0:  # a group key that is an expression
            out.add(f"LOWER({x.cql})", f"lower({x.sql})", f"g_{c.name}")
        else:
            out.add(x.cql, x.sql, f"g_{c.name}")
    group_sql = [s.rsplit(" AS ", 1)[0] for s in out.sql]
    for i in range(ctx.draw(st.integers(1, 3))):
        col = ctx.draw(st.sampled_from([None] + scalar_columns(src.columns)))
        ref = src.col(col.name, col.kind) if col is not None else None
        a = agg_of(ctx, col, ref.cql if ref else "", ref.sql if ref else "")
        if ctx.draw(st.integers(0, 2)) == 0:  # an aggregate over the rows a condition keeps
            cond = predicate(ctx, src)
            a = X(f"{a.cql} FILTER (WHERE {cond.cql})", f"{a.sql} FILTER (WHERE {cond.sql})", a.kind)
        out.add(a.cql, a.sql, f"a{i}")
    h_cql = h_sql = ""
    if ctx.draw(st.booleans()):
        k = ctx.draw(st.sampled_from([1, 2, 5]))
        h_cql, h_sql = f" HAVING COUNT(*) >= {k}", f" HAVING count(*) >= {k}"
    w_cql, w_sql = where(terms)
    rel = dom.relation_sql(ctx.version, src.table, ctx.resolution)
    cql = f"SELECT {', '.join(out.cql)} FROM {src.table}{w_cql} GROUP BY ALL{h_cql}"
    sql = f"SELECT {', '.join(out.sql)} FROM ({rel}) AS t0{w_sql} GROUP BY {', '.join(group_sql)}{h_sql}"
    mode = "set"
    if all(c.not_null for c in gcols) and ctx.draw(st.booleans()):  # group keys: a total order
        names = [n for n in out.names if n.startswith("g_")]
        cql += " ORDER BY " + ", ".join(names) + " LIMIT 50"
        sql += " ORDER BY " + ", ".join(q(n) for n in names) + " LIMIT 50"
        mode = "ordered"
    return Case(cql, dict(ctx.params), sql, tuple(out.names), mode, family="groupall", version=ctx.version,
                views=dom.is_view(ctx.version, src.table))
