"""Analytic families of relation-level constructs: CTE chains (``cte``), set operations with
ORDER BY/LIMIT on the whole and across versions (``setop``), derived tables (``derived``),
EXISTS / NOT EXISTS / scalar subqueries (``exists``), PIVOT / UNPIVOT (``pivot``).

Every CAVE source is an anchored base (``analytic_base.base``), so the engine's remote calls
stay small uncapped and at row cap 1,000. The oracle writes the same relations in plain
DuckDB SQL: CTEs as CTEs, PIVOT as FILTERed aggregates, UNPIVOT as a UNION ALL, set operations
parenthesised as CQL binds them (INTERSECT tighter than UNION and EXCEPT).
"""

from __future__ import annotations

from hypothesis import strategies as st

from tests.differential.analytic_base import (
    Base, Out, agg_of, base, cell_tables, dpred, groupable, q, scalar_columns, typed_roots, where,
)
from tests.differential.generator import Case, _Ctx, _in_list, lit
from tests.differential.oracle import Column

__all__ = ["cte_family", "derived_family", "exists_family", "pivot_family", "setop_family"]


def _with_group(ctx: _Ctx) -> tuple[str, Column]:
    """A source and a groupable column of it."""
    dom = ctx.domain
    tables = [t for t in dom.sources(ctx.version) if groupable(dom.columns(ctx.version, t))]
    table = ctx.draw(st.sampled_from(tables))
    return table, ctx.draw(st.sampled_from(groupable(dom.columns(ctx.version, table))))


# ----------------------------------------------------------------------------- CTEs


def cte_family(ctx: _Ctx) -> Case:
    """``WITH s AS (anchored select) [, g AS (SELECT ... FROM s GROUP BY ...)] [, h AS (... FROM g)]``
    and a body reading them: one CTE, a chain, or a CTE used twice (itself and through another)."""
    table, gcol = _with_group(ctx)
    b = base(ctx, table, "t0", must=[gcol.name])
    shape = ctx.draw(st.sampled_from(["plain", "chain", "twice", "chain3"]))
    renamed = shape == "plain" and ctx.draw(st.booleans())
    names = [f"k{i}" if renamed else c.name for i, c in enumerate(b.columns)]
    head = f"s({', '.join(names)})" if renamed else "s"
    ctes_cql, ctes_sql = [f"{head} AS ({b.cql})"], [f"{head} AS ({b.sql})"]
    g = names[0]
    others = [(n, c) for n, c in zip(names[1:], b.columns[1:])]
    if shape == "plain":
        out = Out()
        for n in ctx.draw(st.permutations(names))[:ctx.draw(st.integers(1, len(names)))]:
            out.add(n, q(n), n, bare=True)
        terms = [dpred(ctx, table, c, n, q(n)) for n, c in list(zip(names, b.columns))[:1]
                 if ctx.draw(st.integers(0, 2)) == 0]
        w_cql, w_sql = where(terms)
        body_cql = f"SELECT {', '.join(out.cql)} FROM s{w_cql}"
        body_sql = f"SELECT {', '.join(out.sql)} FROM s{w_sql}"
        mode = "set"
    else:
        # g: one row per group of s
        agg_out = Out().add(g, q(g), g, bare=True)
        agg_out.add("COUNT(*)", "count(*)", "n")
        if others:
            n, c = ctx.draw(st.sampled_from(others))
            a = agg_of(ctx, c, n, q(n))
            agg_out.add(a.cql, a.sql, "m")
        terms = [dpred(ctx, table, c, n, q(n)) for n, c in others[:1] if ctx.draw(st.integers(0, 2)) == 0]
        w_cql, w_sql = where(terms)
        ctes_cql.append(f"g AS (SELECT {', '.join(agg_out.cql)} FROM s{w_cql} GROUP BY {g})")
        ctes_sql.append(f"g AS (SELECT {', '.join(agg_out.sql)} FROM s{w_sql} GROUP BY {q(g)})")
        src_name = "g"
        if shape == "chain3":  # a third CTE on the second
            k = ctx.draw(st.sampled_from([1, 2, 3]))
            ctes_cql.append(f"h AS (SELECT {g}, n FROM g WHERE n >= {k})")
            ctes_sql.append(f"h AS (SELECT {q(g)}, n FROM g WHERE n >= {k})")
            src_name = "h"
        if shape == "twice":  # s itself and s through g
            out = Out().add(f"s.{g}", f"s.{q(g)}", g, bare=True).add("g.n", "g.n", "n", bare=True)
            for n, _c in others[:1]:
                out.add(f"s.{n}", f"s.{q(n)}", n, bare=True)
            body_cql = f"SELECT {', '.join(out.cql)} FROM s JOIN g ON s.{g} = g.{g}"
            body_sql = f"SELECT {', '.join(out.sql)} FROM s JOIN g ON s.{q(g)} = g.{q(g)}"
            mode = "set"
        else:
            cols = [g, "n"] + (["m"] if src_name == "g" and len(agg_out.names) > 2 else [])
            out = Out()
            for n in cols:
                out.add(n, q(n), n, bare=True)
            body_cql = f"SELECT {', '.join(out.cql)} FROM {src_name}"
            body_sql = f"SELECT {', '.join(out.sql)} FROM {src_name}"
            mode = "set"
            if gcol.not_null and ctx.draw(st.booleans()):  # one row per group: a total order
                d = ctx.draw(st.sampled_from(["", " DESC"]))
                lim = ctx.draw(st.sampled_from(["", " LIMIT 3", " LIMIT 10 OFFSET 1"]))
                body_cql += f" ORDER BY {g}{d}{lim}"
                body_sql += f" ORDER BY {q(g)}{d}{lim}"
                mode = "ordered"
    cql = "WITH " + ", ".join(ctes_cql) + " " + body_cql
    sql = "WITH " + ", ".join(ctes_sql) + " " + body_sql
    return Case(cql, dict(ctx.params), sql, tuple(out.names), mode, family="cte", version=ctx.version,
                views=b.view)


# ----------------------------------------------------------------------------- set operations


def _branch(ctx: _Ctx, table: str, cols: list[str], qual: str) -> Base:
    return base(ctx, table, qual, must=cols, n=(len(cols), len(cols)))


def setop_family(ctx: _Ctx) -> Case:
    """Two or three anchored branches joined by UNION [ALL] / INTERSECT [ALL] / EXCEPT [ALL], with
    ORDER BY (every output: a total order of rows) / LIMIT on the whole; or a table's changes
    between the demo's two versions (``... AT VERSION 343 EXCEPT ... AT VERSION 661``)."""
    dom = ctx.domain
    if len(dom.versions) > 1 and ctx.draw(st.integers(0, 3)) == 0:
        return _cross_version(ctx)
    cells = cell_tables(ctx)
    if cells and ctx.draw(st.booleans()):  # different cell-type tables, the same columns
        tables = [ctx.draw(st.sampled_from(cells)) for _ in range(3)]
        cols = ctx.draw(st.sampled_from([["pt_root_id"], ["pt_root_id", "cell_type"], ["cell_type"], ["id"]]))
    else:
        table = ctx.draw(st.sampled_from(dom.sources(ctx.version)))
        pool = [c.name for c in scalar_columns(dom.columns(ctx.version, table)) if c.not_null]
        cols = ctx.draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique=True))
        tables = [table] * 3
    n = ctx.draw(st.sampled_from([2, 2, 3]))
    branches = [_branch(ctx, tables[i], cols, f"t{i}") for i in range(n)]
    ops = [(ctx.draw(st.sampled_from(["UNION", "INTERSECT", "EXCEPT"])), ctx.draw(st.booleans()))
           for _ in range(n - 1)]
    cql, sql = _combine(branches, ops)
    names = tuple(cols)
    mode = "set"
    if ctx.draw(st.booleans()):
        d = ctx.draw(st.sampled_from(["", " DESC"]))
        lim = ctx.draw(st.sampled_from(["", " LIMIT 5", " LIMIT 20 OFFSET 2", " OFFSET 1"]))
        cql += " ORDER BY " + ", ".join(f"{c}{d}" for c in cols) + lim
        sql = f"SELECT * FROM ({sql}) AS u ORDER BY " + ", ".join(f"{q(c)}{d}" for c in cols) + lim
        mode = "ordered"
    return Case(cql, dict(ctx.params), sql, names, mode, family="setop", version=ctx.version,
                views=any(b.view for b in branches))


def _combine(branches: list[Base], ops: list[tuple[str, bool]]) -> tuple[str, str]:
    """The branches joined left to right, INTERSECT binding tighter (the oracle parenthesises)."""
    cql = branches[0].cql
    terms_sql = [[f"({branches[0].sql})"]]  # UNION/EXCEPT-separated groups of INTERSECTs
    seps: list[str] = []
    for (op, all_), br in zip(ops, branches[1:]):
        word = op + (" ALL" if all_ else "")
        cql += f" {word} {br.cql}"
        if op == "INTERSECT":
            terms_sql[-1].append(f"{word} ({br.sql})")
        else:
            seps.append(word)
            terms_sql.append([f"({br.sql})"])
    groups = ["(" + " ".join(g) + ")" if len(g) > 1 else g[0] for g in terms_sql]
    sql = groups[0]
    for sep, grp in zip(seps, groups[1:]):
        sql = f"({sql} {sep} {grp})"
    return cql, f"SELECT * FROM {sql} AS b"


def _cross_version(ctx: _Ctx) -> Case:
    """A table's rows at one version that are not at the other (same id window in both)."""
    dom = ctx.domain
    v_old, v_new = dom.versions[0], dom.versions[-1]
    shared = [t for t in dom.tables(v_new) if t in dom.tables(v_old) and "pt_root_id" in
              {c.name for c in dom.columns(v_new, t)} and t != dom.synapse_table(v_new)]
    table = ctx.draw(st.sampled_from(shared))
    lo, hi = dom.id_window(v_new, table, ctx.draw(st.integers(0, 10_000)), per_mille=ctx.draw(
        st.sampled_from([2, 10])))
    cols = ctx.draw(st.sampled_from([["id", "pt_root_id"], ["pt_root_id"], ["id", "pt_root_id", "pt_supervoxel_id"]]))
    first, second = (v_old, v_new) if ctx.draw(st.booleans()) else (v_new, v_old)
    op = ctx.draw(st.sampled_from(["EXCEPT", "EXCEPT", "INTERSECT", "UNION"]))
    parts_cql, parts_sql = [], []
    for v in (first, second):
        rel = dom.relation_sql(v, table, None)
        parts_cql.append(f"SELECT {', '.join(cols)} FROM {table} WHERE id BETWEEN {lo} AND {hi} AT VERSION {v}")
        parts_sql.append(f"(SELECT {', '.join(q(c) for c in cols)} FROM ({rel}) AS t WHERE id BETWEEN {lo} AND {hi})")
    cql = f" {op} ".join(parts_cql)
    sql = f"SELECT * FROM ({parts_sql[0]} {op} {parts_sql[1]}) AS d"
    return Case(cql, {}, sql, tuple(cols), "set", family="setop", version=first)


# ----------------------------------------------------------------------------- derived tables


def derived_family(ctx: _Ctx) -> Case:
    """``FROM (anchored select [GROUP BY]) AS d [(cols)]`` filtered, aggregated, or joined with
    an (anchored) CAVE table on root ids."""
    dom = ctx.domain
    syn = dom.synapse_table(ctx.version)
    cells = cell_tables(ctx)
    if cells and ctx.draw(st.integers(0, 2)) == 0:
        # per-cell synapse counts joined with a cell-type table on the root id
        side = ctx.draw(st.sampled_from(["pre", "post"]))
        table = ctx.draw(st.sampled_from(cells))
        roots = typed_roots(ctx, table, side) + dom.anchor_roots(ctx.version, side)[:3]
        picked = ctx.draw(st.lists(st.sampled_from(roots), min_size=1, max_size=4, unique=True))
        cql_in, sql_in, _ = _in_list(ctx, picked)
        rel_s = dom.relation_sql(ctx.version, syn, None)
        rel_c = dom.relation_sql(ctx.version, table, None)
        col = f"{side}_pt_root_id"
        how = ctx.draw(st.sampled_from(["JOIN", "LEFT JOIN"]))
        d_cql = f"(SELECT {col} AS root, COUNT(*) AS n, MAX(size) AS biggest FROM {syn} " \
                f"WHERE {col} IN {cql_in} GROUP BY {col}) AS d"
        d_sql = f"(SELECT t0.{q(col)} AS root, count(*) AS n, max(t0.size) AS biggest FROM ({rel_s}) AS t0 " \
                f"WHERE t0.{q(col)} IN {sql_in} GROUP BY t0.{q(col)}) AS d"
        # the cell table keeps its own anchor (the roots): inner joins filter it directly, left
        # joins through a derived table (a filter on the null-extended side is not the same)
        cql_in2, sql_in2, _ = _in_list(ctx, picked)
        k = ctx.draw(st.sampled_from([1, 1, 2, 5]))
        c_sql = f"(SELECT * FROM ({rel_c}) AS c0 WHERE c0.pt_root_id IN {sql_in2}) AS c"
        if how == "JOIN":
            c_cql, c_where = f"{table} c", f" AND c.pt_root_id IN {cql_in2}"
        else:
            c_cql, c_where = f"(SELECT pt_root_id, cell_type FROM {table} WHERE pt_root_id IN {cql_in2}) AS c", ""
        cql = f"SELECT d.root, d.n, d.biggest, c.cell_type FROM {d_cql} {how} {c_cql} " \
              f"ON c.pt_root_id = d.root WHERE d.n >= {k}{c_where}"
        sql = f"SELECT d.root AS root, d.n AS n, d.biggest AS biggest, c.cell_type AS cell_type FROM {d_sql} " \
              f"{how} {c_sql} ON c.pt_root_id = d.root WHERE d.n >= {k}"
        return Case(cql, dict(ctx.params), sql, ("root", "n", "biggest", "cell_type"), "set",
                    family="derived", version=ctx.version)
    table, gcol = _with_group(ctx)
    b = base(ctx, table, "t0", must=[gcol.name])
    cols = list(b.columns)
    renamed = ctx.draw(st.booleans())
    names = [f"c{i}" for i in range(len(cols))] if renamed else [c.name for c in cols]
    alias_cols = f"({', '.join(names)})" if renamed else ""
    inner_sql = b.sql
    if renamed:
        inner_sql = f"SELECT * FROM ({b.sql}) AS r({', '.join(q(n) for n in names)})"
    terms = [dpred(ctx, table, c, f"d.{n}", f"d.{q(n)}") for n, c in list(zip(names, cols))[-1:]
             if ctx.draw(st.integers(0, 2)) == 0]
    w_cql, w_sql = where(terms)
    out = Out()
    if ctx.draw(st.booleans()):  # aggregate over the derived table
        out.add(f"d.{names[0]}", f"d.{q(names[0])}", names[0], bare=True)
        for i, (n, c) in enumerate(zip(names[1:] or names, cols[1:] or cols)):
            a = agg_of(ctx, c if ctx.draw(st.booleans()) else None, f"d.{n}", f"d.{q(n)}")
            out.add(a.cql, a.sql, f"a{i}")
        tail_cql, tail_sql = f" GROUP BY d.{names[0]}", f" GROUP BY d.{q(names[0])}"
    else:
        for n in names:
            out.add(f"d.{n}", f"d.{q(n)}", n, bare=True)
        tail_cql = tail_sql = ""
    cql = f"SELECT {', '.join(out.cql)} FROM ({b.cql}) AS d{alias_cols}{w_cql}{tail_cql}"
    sql = f"SELECT {', '.join(out.sql)} FROM ({inner_sql}) AS d{w_sql}{tail_sql}"
    return Case(cql, dict(ctx.params), sql, tuple(out.names), "set", family="derived", version=ctx.version,
                views=b.view)


# ----------------------------------------------------------------------------- EXISTS, scalar subqueries


def exists_family(ctx: _Ctx) -> Case:
    """Cells with / without synapses (correlated [NOT] EXISTS on the root id), uncorrelated
    scalar subqueries in the select list and WHERE, and a correlated COUNT(*) (0, never NULL,
    for a cell without synapses)."""
    dom = ctx.domain
    syn = dom.synapse_table(ctx.version)
    table = ctx.draw(st.sampled_from(cell_tables(ctx) or dom.root_tables(ctx.version)))
    side = ctx.draw(st.sampled_from(["pre", "post"]))
    anchors = typed_roots(ctx, table, side)
    others = [v for v in dom.samples(ctx.version, table, "pt_root_id") if v]
    picked = ctx.draw(st.lists(st.sampled_from(anchors), min_size=1, max_size=3, unique=True)) + \
        ctx.draw(st.lists(st.sampled_from(others or anchors), max_size=3, unique=True))
    c_in, s_in, _ = _in_list(ctx, picked)
    rel_c = dom.relation_sql(ctx.version, table, None)
    rel_s = dom.relation_sql(ctx.version, syn, None)
    col = f"{side}_pt_root_id"
    # the synapse side carries the same roots: bounded whether or not the engine feeds them
    s_cql_in, s_sql_in, _ = _in_list(ctx, picked)
    extra = ""
    extra_sql = ""
    if ctx.draw(st.booleans()):
        k = ctx.draw(st.sampled_from([100, 1000, 5000]))
        extra, extra_sql = f" AND s.size > {k}", f" AND s.size > CAST({k} AS FLOAT)"
    shape = ctx.draw(st.sampled_from(["exists", "exists", "count", "scalar"]))
    out = Out().add("c.id", "c.id", "id", bare=True).add("c.pt_root_id", "c.pt_root_id", "pt_root_id", bare=True)
    terms_cql = [f"c.pt_root_id IN {c_in}"]
    terms_sql = [f"c.pt_root_id IN {s_in}"]
    if shape == "exists":
        neg = "NOT " if ctx.draw(st.booleans()) else ""
        terms_cql.append(f"{neg}EXISTS (SELECT 1 FROM {syn} s WHERE s.{col} = c.pt_root_id "
                         f"AND s.{col} IN {s_cql_in}{extra})")
        terms_sql.append(f"{neg}EXISTS (SELECT 1 FROM ({rel_s}) AS s WHERE s.{q(col)} = c.pt_root_id "
                         f"AND s.{q(col)} IN {s_sql_in}{extra_sql})")
    elif shape == "count":
        out.add(f"(SELECT COUNT(*) FROM {syn} s WHERE s.{col} = c.pt_root_id AND s.{col} IN {s_cql_in}{extra})",
                f"(SELECT count(*) FROM ({rel_s}) AS s WHERE s.{q(col)} = c.pt_root_id "
                f"AND s.{q(col)} IN {s_sql_in}{extra_sql})", "n_syn")
    else:
        agg = ctx.draw(st.sampled_from([("COUNT(*)", "count(*)"), ("MAX(s.id)", "max(s.id)"),
                                        ("MIN(s.post_pt_root_id)", "min(s.post_pt_root_id)")]))
        sub_cql = f"(SELECT {agg[0]} FROM {syn} s WHERE s.{col} IN {s_cql_in}{extra})"
        sub_sql = f"(SELECT {agg[1]} FROM ({rel_s}) AS s WHERE s.{q(col)} IN {s_sql_in}{extra_sql})"
        out.add(sub_cql, sub_sql, "total")
        if ctx.draw(st.booleans()):  # a scalar subquery in WHERE
            op = ctx.draw(st.sampled_from(["<", ">=", "<>"]))
            terms_cql.append(f"c.id {op} (SELECT MAX(id) FROM {table} WHERE pt_root_id IN {c_in})")
            terms_sql.append(f"c.id {op.replace('<>', '!=')} (SELECT max(x.id) FROM ({rel_c}) AS x "
                             f"WHERE x.pt_root_id IN {s_in})")
    cql = f"SELECT {', '.join(out.cql)} FROM {table} c WHERE " + " AND ".join(terms_cql)
    sql = f"SELECT {', '.join(out.sql)} FROM ({rel_c}) AS c WHERE " + " AND ".join(terms_sql)
    return Case(cql, dict(ctx.params), sql, tuple(out.names), "set", family="exists", version=ctx.version)


# ----------------------------------------------------------------------------- PIVOT / UNPIVOT


def _ident(value: object, i: int) -> str:
    return f"v{i}"


def pivot_family(ctx: _Ctx) -> Case:
    """PIVOT of an anchored select (its other columns are the groups), or UNPIVOT of ints."""
    shape = ctx.draw(st.sampled_from(["pivot", "pivot", "matrix", "unpivot"]))
    if shape == "unpivot":
        return _unpivot(ctx)
    if shape == "matrix" and cell_tables(ctx):
        return _matrix(ctx)
    dom = ctx.domain
    table, gcol = _with_group(ctx)
    pcols = [c for c in groupable(dom.columns(ctx.version, table)) if c.name != gcol.name and c.kind == "str"]
    if not pcols:
        pcols = [c for c in groupable(dom.columns(ctx.version, table)) if c.name != gcol.name]
    if not pcols:
        return _unpivot(ctx)
    pcol = ctx.draw(st.sampled_from(pcols))
    nums = [c for c in scalar_columns(dom.columns(ctx.version, table), ("int", "float"))
            if c.name not in (gcol.name, pcol.name) and not c.is_id]
    acol = ctx.draw(st.sampled_from(nums)) if nums and ctx.draw(st.booleans()) else None
    must = [gcol.name, pcol.name] + ([acol.name] if acol else [])
    b = base(ctx, table, "t0", must=must, n=(len(must), len(must)))
    values = [v for v in dom.samples(ctx.version, table, pcol.name) if v is not None]
    default = "x" if pcol.kind == "str" else (True if pcol.kind == "bool" else -1)  # (an all-NULL column)
    picked = ctx.draw(st.lists(st.sampled_from(values or [default]), min_size=1, max_size=3, unique=True))
    if ctx.draw(st.integers(0, 3)) == 0:
        extra = "no such value" if pcol.kind == "str" else -1 if pcol.kind == "int" else False
        if extra not in picked:
            picked.append(extra)
    aggs = [("COUNT(*)", "count(*)", "n")]
    if acol is not None:
        v = f"CAST({q(acol.name)} AS DOUBLE)" if acol.kind == "float" else q(acol.name)
        aggs.append(ctx.draw(st.sampled_from([(f"SUM({acol.name})", f"sum({v})", "s"),
                                              (f"MAX({acol.name})", f"max({q(acol.name)})", "m")])))
        if ctx.draw(st.booleans()):
            aggs = aggs[1:]
    several = len(aggs) > 1
    agg_cql = ", ".join(f"{a} AS {alias}" if several else a for a, _s, alias in aggs)
    in_cql = ", ".join(f"{lit(v).cql} AS {_ident(v, i)}" for i, v in enumerate(picked))
    out = Out().add(gcol.name, q(gcol.name), gcol.name, bare=True)
    for i, v in enumerate(picked):
        for _a, a_sql, alias in aggs:
            name = f"{_ident(v, i)}_{alias}" if several else _ident(v, i)
            out.add("", f"{a_sql} FILTER (WHERE {q(pcol.name)} = {lit(v).sql})", name)
    alias = " AS p" if ctx.draw(st.booleans()) else ""
    cql = f"SELECT * FROM ({b.cql}) AS src PIVOT ({agg_cql} FOR {pcol.name} IN ({in_cql})){alias}"
    sql = f"SELECT {', '.join(out.sql)} FROM ({b.sql}) AS src GROUP BY {q(gcol.name)}"
    return Case(cql, dict(ctx.params), sql, tuple(out.names), "set", family="pivot", version=ctx.version,
                views=b.view)


def _unpivot(ctx: _Ctx) -> Case:
    """UNPIVOT [INCLUDE NULLS] of two or more int (or double) columns of one anchored source."""
    dom = ctx.domain
    cands = []
    for t in dom.sources(ctx.version):
        cols = dom.columns(ctx.version, t)
        ints = [c for c in cols if c.kind == "int" and not c.unique and c.name != "id"]
        if len(ints) >= 2:
            cands.append((t, ints))
    table, ints = ctx.draw(st.sampled_from(cands))
    chosen = ctx.draw(st.lists(st.sampled_from(ints), min_size=2, max_size=3, unique_by=lambda c: c.name))
    key = next((c for c in dom.columns(ctx.version, table) if c.unique), None)
    must = ([key.name] if key else []) + [c.name for c in chosen]
    b = base(ctx, table, "t0", must=must, n=(len(must), len(must)), kinds=("int",))
    nulls = ctx.draw(st.booleans())
    named = [(c, f"{c.name}_n" if ctx.draw(st.integers(0, 2)) == 0 else None) for c in chosen]
    in_cql = ", ".join(c.name + (f" AS {a}" if a else "") for c, a in named)
    keep = [key.name] if key else []
    parts = []
    for c, a in named:
        label = f"'{a or c.name}'"
        cond = "" if nulls else f" WHERE {q(c.name)} IS NOT NULL"
        keep_sql = "".join(f"{q(k)}, " for k in keep)
        parts.append(f"SELECT {keep_sql}{label} AS {q('n_name')}, {q(c.name)} AS {q('n_value')} FROM b{cond}")
    cql = f"SELECT * FROM ({b.cql}) AS src UNPIVOT {'INCLUDE NULLS ' if nulls else ''}" \
          f"(n_value FOR n_name IN ({in_cql}))"
    sql = f"WITH b AS ({b.sql}) " + " UNION ALL ".join(parts)
    return Case(cql, dict(ctx.params), sql, tuple(keep + ["n_name", "n_value"]), "set", family="pivot",
                version=ctx.version, views=b.view)



def _matrix(ctx: _Ctx) -> Case:
    """The cell type x cell type connectivity matrix of a few cells' synapses in one statement:
    a PIVOT of a three-way join (the synapse table anchored, the cell tables fed by it)."""
    dom = ctx.domain
    syn = dom.synapse_table(ctx.version)
    # the biggest cell-type tables: most synapses have a typed cell at both ends there
    tables = sorted(cell_tables(ctx), key=lambda t: -dom.row_count(ctx.version, t))[:2]
    table = ctx.draw(st.sampled_from(tables))
    roots = ctx.draw(st.lists(st.sampled_from(typed_roots(ctx, table, "pre")), min_size=1, max_size=4, unique=True))
    cql_in, sql_in, _ = _in_list(ctx, roots)
    types = [v for v in dom.samples(ctx.version, table, "cell_type") if v is not None] or ["x"]
    picked = ctx.draw(st.lists(st.sampled_from(types), min_size=1, max_size=4, unique=True))
    rel_s, rel_c = dom.relation_sql(ctx.version, syn, None), dom.relation_sql(ctx.version, table, None)
    in_cql = ", ".join(f"{lit(v).cql} AS t{i}" for i, v in enumerate(picked))
    cql = (f"SELECT * FROM (SELECT pre.cell_type AS pre_type, post.cell_type AS post_type FROM {syn} s "
           f"JOIN {table} pre ON s.pre_pt_root_id = pre.pt_root_id JOIN {table} post "
           f"ON s.post_pt_root_id = post.pt_root_id WHERE s.pre_pt_root_id IN {cql_in}) AS t "
           f"PIVOT (COUNT(*) FOR post_type IN ({in_cql}))")
    counts = ", ".join(f"count(*) FILTER (WHERE post_type = {lit(v).sql}) AS t{i}" for i, v in enumerate(picked))
    sql = (f"SELECT pre_type, {counts} FROM (SELECT pre.cell_type AS pre_type, post.cell_type AS post_type "
           f"FROM ({rel_s}) AS s JOIN ({rel_c}) AS pre ON s.pre_pt_root_id = pre.pt_root_id JOIN ({rel_c}) AS post "
           f"ON s.post_pt_root_id = post.pt_root_id WHERE s.pre_pt_root_id IN {sql_in}) AS t GROUP BY pre_type")
    return Case(cql, dict(ctx.params), sql, ("pre_type",) + tuple(f"t{i}" for i in range(len(picked))), "set",
                family="pivot", version=ctx.version)
