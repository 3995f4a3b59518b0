"""Hypothesis strategies for whole statements: each a CQL query and its oracle SQL.

Four families — single-table selects, aggregates, joins, IN-subqueries — over
both versions and the statement resolutions of ``generator.RESOLUTIONS``; see
:func:`cases`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from hypothesis import strategies as st

from tests.differential.generator import (
    RESOLUTIONS, Case, Src, X, _add_position, _Ctx, _in_list, _Select, _value, anchor, condition,
    select_list, whole_tables,
)
from tests.differential.oracle import Domain

__all__ = ["FAMILIES", "WHOLE_FAMILIES", "cases"]


# ----------------------------------------------------------------------------- statements


def _tables(ctx: _Ctx, candidates: Sequence[str]) -> list[str]:
    """The tables a family may draw from: all ``candidates``, or under ``ctx.whole`` the big
    ones it may read whole (a case whose table is read whole reads exactly one)."""
    if not ctx.whole:
        return list(candidates)
    whole = set(whole_tables(ctx.domain, ctx.version))
    return [t for t in candidates if t in whole]


def _source(ctx: _Ctx, table: str, alias: str | None, qual: str) -> Src:
    return Src(table, alias, qual, ctx.domain.columns(ctx.version, table))


def _from_sql(ctx: _Ctx, src: Src) -> str:
    return f"({ctx.domain.relation_sql(ctx.version, src.table, ctx.resolution)}) AS {src.qual}"


def _cave_clauses(ctx: _Ctx, split: bool) -> str:
    clauses = []
    if ctx.version != ctx.domain.default_version or ctx.draw(st.booleans()):
        clauses.append(f"AT VERSION {ctx.version}")
    if ctx.resolution is not None:
        r = ctx.resolution
        clauses.append(ctx.draw(st.sampled_from([f"AT RESOLUTION {r[0]}, {r[1]}, {r[2]}",
                                                 f"AT RESOLUTION ({r[0]}, {r[1]}, {r[2]})"])))
    if split:
        clauses.append("SPLIT POSITIONS")
    order = ctx.draw(st.permutations(clauses)) if clauses else []
    return (" " + " ".join(order)) if order else ""


def _where(terms: Sequence[X]) -> tuple[str, str]:
    if not terms:
        return "", ""
    return " WHERE " + " AND ".join(t.cql for t in terms), " WHERE " + " AND ".join(f"({t.sql})" for t in terms)


def _order_limit(ctx: _Ctx, sel: _Select, *, id_order: str | None, total_if: Callable[[list[str]], bool]
                 ) -> tuple[str, str, str, tuple[int, ...], bool]:
    """ORDER BY / LIMIT / OFFSET in both languages; returns (cql, sql, mode, key_columns, limited).

    ``id_order``: oracle ORDER BY that reproduces the engine's documented order when the
    query has no ORDER BY (single plain tables: by id), or None where none is promised.
    """
    keys: list[tuple[str, str]] = []
    if sel.sortable and ctx.draw(st.integers(0, 2)) > 0:
        names = ctx.draw(st.lists(st.sampled_from(sel.sortable), min_size=1, max_size=3, unique=True))
        keys = [(n, ctx.draw(st.sampled_from(["", " ASC", " DESC"]))) for n in names]
    limit = offset = None
    if (keys or id_order) and ctx.draw(st.integers(0, 2)) == 0:
        limit = ctx.draw(st.sampled_from([0, 1, 3, 10, 100, 1000, 5000]))
        if ctx.draw(st.booleans()):
            offset = ctx.draw(st.sampled_from([0, 1, 7, 150]))
    elif keys and ctx.draw(st.integers(0, 5)) == 0:
        offset = ctx.draw(st.sampled_from([1, 5]))
    cql = sql = ""
    if keys:
        cql = " ORDER BY " + ", ".join(f"{n}{d}" for n, d in keys)
        sql = " ORDER BY " + ", ".join(f'"{n}"{d}' for n, d in keys)
    elif limit is not None or offset is not None:
        sql = f" ORDER BY {id_order}"
    if limit is not None:
        cql += f" LIMIT {limit}"
        sql += f" LIMIT {limit}"
    if offset is not None:
        cql += f" OFFSET {offset}"
        sql += f" OFFSET {offset}"
    limited = limit is not None or offset is not None
    if keys:
        if total_if([n for n, _ in keys]):
            return cql, sql, "ordered", (), limited
        return cql, sql, "keys", tuple(sel.names.index(n) for n, _ in keys), limited
    return cql, sql, ("ordered" if limited else "set"), (), limited


def single_table(ctx: _Ctx) -> Case:
    """SELECT [DISTINCT] items|* FROM t WHERE ... [ORDER BY/LIMIT/OFFSET] + CAVE clauses."""
    dom = ctx.domain
    table = ctx.draw(st.sampled_from(_tables(ctx, dom.sources(ctx.version))))
    alias = ctx.draw(st.sampled_from([None, "t"]))
    src = _source(ctx, table, alias, "t0")
    split = ctx.draw(st.booleans())
    terms = anchor(ctx, src, whole=ctx.whole) + condition(ctx, [src])
    if ctx.draw(st.integers(0, 4)) == 0:
        sel = _Select()
        for column in dom.star_columns(ctx.version, table, split):
            if column.kind == "pos":
                _add_position(ctx, sel, src, column.name, split)
            else:
                c = src.col(column.name, column.kind)
                sel.add(c.cql, c.sql, column.name, sortable=column.not_null and column.kind != "float",
                        unique=column.unique)
        sel.cql = [f"{alias}.*" if alias and ctx.draw(st.booleans()) else "*"]
        distinct = False
    else:
        sel = select_list(ctx, [src], split, qualified=False)
        distinct = ctx.draw(st.integers(0, 4)) == 0
    sel.finish()
    plain = not distinct and not dom.is_reference(ctx.version, table) and any(
        c.name == "id" and c.unique for c in src.columns)
    o_cql, o_sql, mode, keys, limited = _order_limit(
        ctx, sel, id_order=f'{src.qual}."id"' if plain else None,
        total_if=lambda ks: bool(set(ks) & sel.unique) or (distinct and set(ks) == set(sel.names)))
    w_cql, w_sql = _where(terms)
    d = "DISTINCT " if distinct else ""
    alias_text = f" {alias}" if alias else ""
    cql = f"SELECT {d}{', '.join(sel.cql)} FROM {table}{alias_text}{w_cql}{o_cql}{_cave_clauses(ctx, split)}"
    head = f"SELECT {d}{', '.join(sel.sql)} FROM {_from_sql(ctx, src)}{w_sql}"
    return Case(cql, dict(ctx.params), head + o_sql, tuple(sel.names), mode, keys,
                unlimited_sql=head if limited else None, family="single", version=ctx.version,
                views=dom.is_view(ctx.version, table))


def _aggregates(ctx: _Ctx, srcs: Sequence[Src], sel: _Select, qualified: bool) -> list[X]:
    """Aggregate outputs added to ``sel``; returns extra aggregates usable in HAVING."""
    extra: list[X] = []
    for i in range(ctx.draw(st.integers(1, 3)) + 1):
        src = ctx.draw(st.sampled_from(list(srcs)))
        column = ctx.draw(st.sampled_from([c for c in src.columns if c.kind != "pos"]))
        c = src.col(column.name, column.kind)
        options = [X("COUNT(*)", "count(*)", "int"), X(f"COUNT({c.cql})", f"count({c.sql})", "int"),
                   X(f"COUNT(DISTINCT {c.cql})", f"count(DISTINCT {c.sql})", "int")]
        if column.kind in ("int", "float", "str"):
            options += [X(f"MIN({c.cql})", f"min({c.sql})", column.kind),
                        X(f"MAX({c.cql})", f"max({c.sql})", column.kind)]
        if column.kind == "float" or (column.kind == "int" and not column.is_id):
            options += [X(f"SUM({c.cql})", f"sum({_value(c, column)})", column.kind),
                        X(f"AVG({c.cql})", f"avg({_value(c, column)})", "float")]
        agg = ctx.draw(st.sampled_from(options))
        if i == 0 or ctx.draw(st.integers(0, 3)) > 0:
            out = ctx.alias()
            sel.add(f"{agg.cql} AS {out}", agg.sql, out, sortable=agg.kind in ("int", "str") and "COUNT" in agg.cql)
        extra.append(agg)
    return extra


def _having(ctx: _Ctx, aggs: Sequence[X]) -> tuple[str, str]:
    counts = [a for a in aggs if a.kind == "int" and a.cql.startswith("COUNT")]
    if not counts or ctx.draw(st.booleans()):
        return "", ""
    a = ctx.draw(st.sampled_from(counts))
    op = ctx.draw(st.sampled_from([">", ">=", "<", "="]))
    k = ctx.maybe_param(ctx.draw(st.sampled_from([0, 1, 2, 3, 10])))
    return f" HAVING {a.cql} {op} {k.cql}", f" HAVING {a.sql} {op} {k.sql}"


def grouped(ctx: _Ctx, srcs: list[Src], from_cql: str, from_sql: str, terms: list[X], family: str) -> Case:
    """SELECT g..., aggregates FROM ... WHERE ... GROUP BY g... [HAVING] [ORDER BY/LIMIT]."""
    qualified = len(srcs) > 1
    sel = _Select()
    groups_cql: list[str] = []
    groups_sql: list[str] = []
    group_outs: list[str] = []
    for _ in range(ctx.draw(st.integers(0, 2))):
        src = ctx.draw(st.sampled_from(srcs))
        cands = [c for c in src.columns if c.kind in ("str", "int", "bool")]
        column = ctx.draw(st.sampled_from(cands))
        out = f"{src.alias}_{column.name}" if qualified else column.name
        if out in sel.names:
            continue
        c = src.col(column.name, column.kind)
        by_alias = qualified and ctx.draw(st.booleans())
        sel.add(c.cql + (f" AS {out}" if out != column.name else ""), c.sql, out,
                sortable=column.not_null and column.kind != "float")
        groups_cql.append(out if by_alias else c.cql)
        groups_sql.append(c.sql)
        group_outs.append(out)
    aggs = _aggregates(ctx, srcs, sel, qualified)
    h_cql, h_sql = _having(ctx, aggs)
    # the order is total only when every group column is an order key (a nullable
    # group column is never sortable, so its groups may tie)
    o_cql, o_sql, mode, keys, limited = _order_limit(
        ctx, sel, id_order=None, total_if=lambda ks: set(group_outs) <= set(ks))
    w_cql, w_sql = _where(terms)
    g_cql = (" GROUP BY " + ", ".join(groups_cql)) if groups_cql else ""
    g_sql = (" GROUP BY " + ", ".join(groups_sql)) if groups_sql else ""
    cql = f"SELECT {', '.join(sel.cql)} FROM {from_cql}{w_cql}{g_cql}{h_cql}{o_cql}{_cave_clauses(ctx, False)}"
    head = f"SELECT {', '.join(sel.sql)} FROM {from_sql}{w_sql}{g_sql}{h_sql}"
    return Case(cql, dict(ctx.params), head + o_sql, tuple(sel.names), mode, keys,
                unlimited_sql=head if limited else None, family=family, version=ctx.version)


def aggregate(ctx: _Ctx) -> Case:
    """Aggregates over one table, with or without GROUP BY and HAVING."""
    table = ctx.draw(st.sampled_from(_tables(ctx, ctx.domain.sources(ctx.version))))
    src = _source(ctx, table, None, "t0")
    terms = anchor(ctx, src, whole=ctx.whole) + condition(ctx, [src], max_terms=2)
    case = grouped(ctx, [src], table, _from_sql(ctx, src), terms, "aggregate")
    return replace(case, views=ctx.domain.is_view(ctx.version, table))


def _join_sources(ctx: _Ctx) -> tuple[list[Src], str, str, list[X]]:
    """Synapses joined to cell-type tables on root ids, or a reference table to its target."""
    dom = ctx.domain
    refs = dom.root_tables(ctx.version)
    syn = dom.synapse_table(ctx.version)
    if ctx.draw(st.integers(0, 3)) > 0:
        s = _source(ctx, syn, "s", "t0")
        srcs = [s]
        from_cql, from_sql = f"{syn} s", _from_sql(ctx, s)
        sides = ctx.draw(st.lists(st.sampled_from(["pre", "post"]), min_size=1, max_size=2, unique=True))
        for i, side in enumerate(sides):
            table = ctx.draw(st.sampled_from(refs))
            a = "c" if i == 0 else "d"
            c = _source(ctx, table, a, f"t{i + 1}")
            how = ctx.draw(st.sampled_from(["JOIN", "INNER JOIN", "LEFT JOIN"]))
            from_cql += f" {how} {table} {a} ON s.{side}_pt_root_id = {a}.pt_root_id"
            from_sql += f" {how.replace('INNER ', '')} {_from_sql(ctx, c)} ON t0.\"{side}_pt_root_id\" = {c.qual}.\"pt_root_id\""
            srcs.append(c)
        return srcs, from_cql, from_sql, anchor(ctx, s)
    table = ctx.draw(st.sampled_from(refs))
    other = ctx.draw(st.sampled_from([t for t in dom.tables(ctx.version) if dom.has_nucleus_id(ctx.version, t)]))
    c, n = _source(ctx, table, "c", "t0"), _source(ctx, other, "n", "t1")
    how = ctx.draw(st.sampled_from(["JOIN", "LEFT JOIN"]))
    from_cql = f"{table} c {how} {other} n ON c.id = n.id"
    from_sql = f"{_from_sql(ctx, c)} {how} {_from_sql(ctx, n)} ON t0.\"id\" = t1.\"id\""
    return [c, n], from_cql, from_sql, anchor(ctx, c) or anchor(ctx, n)


def join(ctx: _Ctx) -> Case:
    """Joins (inner and left) with a qualified select list, or grouped (connectivity)."""
    srcs, from_cql, from_sql, terms = _join_sources(ctx)
    terms = terms + condition(ctx, srcs, max_terms=2)
    if ctx.draw(st.integers(0, 2)) == 0:
        return grouped(ctx, srcs, from_cql, from_sql, terms, "join-aggregate")
    split = ctx.draw(st.booleans())
    sel = select_list(ctx, srcs, split, qualified=True)
    distinct = ctx.draw(st.integers(0, 4)) == 0
    o_cql, o_sql, mode, keys, limited = _order_limit(
        ctx, sel, id_order=None, total_if=lambda ks: distinct and set(ks) == set(sel.names))
    w_cql, w_sql = _where(terms)
    d = "DISTINCT " if distinct else ""
    cql = f"SELECT {d}{', '.join(sel.cql)} FROM {from_cql}{w_cql}{o_cql}{_cave_clauses(ctx, split)}"
    head = f"SELECT {d}{', '.join(sel.sql)} FROM {from_sql}{w_sql}"
    return Case(cql, dict(ctx.params), head + o_sql, tuple(sel.names), mode, keys,
                unlimited_sql=head if limited else None, family="join", version=ctx.version)


def subquery(ctx: _Ctx) -> Case:
    """``col [NOT] IN (SELECT root FROM cell types WHERE ...)`` on an anchored outer table."""
    dom = ctx.domain
    syn = dom.synapse_table(ctx.version)
    inner_table = ctx.draw(st.sampled_from(_tables(ctx, dom.root_tables(ctx.version))))
    inner = _source(ctx, inner_table, None, "t9")
    inner_terms = anchor(ctx, inner, whole=ctx.whole) + condition(
        ctx, [inner], max_terms=2, exclude=[c.name for c in inner.columns if c.kind == "pos"])
    if ctx.draw(st.booleans()):
        outer = _source(ctx, syn, None, "t0")
        column = f"{ctx.draw(st.sampled_from(['pre', 'post']))}_pt_root_id"
        terms = anchor(ctx, outer)
    else:
        outer = _source(ctx, ctx.draw(st.sampled_from(dom.root_tables(ctx.version))), None, "t0")
        column = "pt_root_id"
        terms = anchor(ctx, outer)
    neg = "NOT " if ctx.draw(st.integers(0, 2)) == 0 else ""
    w_i_cql, w_i_sql = _where(inner_terms)
    c = outer.col(column, "int")
    sub = X(f"{c.cql} {neg}IN (SELECT pt_root_id FROM {inner_table}{w_i_cql})",
            f"{c.sql} {neg}IN (SELECT t9.\"pt_root_id\" FROM {_from_sql(ctx, inner)}{w_i_sql})", "bool")
    terms = terms + [sub] + condition(ctx, [outer], max_terms=1)
    split = ctx.draw(st.booleans())
    sel = select_list(ctx, [outer], split, qualified=False).finish()
    o_cql, o_sql, mode, keys, limited = _order_limit(
        ctx, sel, id_order='t0."id"' if not dom.is_reference(ctx.version, outer.table) else None,
        total_if=lambda ks: bool(set(ks) & sel.unique))
    w_cql, w_sql = _where(terms)
    cql = f"SELECT {', '.join(sel.cql)} FROM {outer.table}{w_cql}{o_cql}{_cave_clauses(ctx, split)}"
    head = f"SELECT {', '.join(sel.sql)} FROM {_from_sql(ctx, outer)}{w_sql}"
    return Case(cql, dict(ctx.params), head + o_sql, tuple(sel.names), mode, keys,
                unlimited_sql=head if limited else None, family="subquery", version=ctx.version)


FAMILIES = {"single": single_table, "aggregate": aggregate, "join": join, "subquery": subquery}
#: the families that can read one big table whole (``cases(..., whole=True)``): the table of a
#: single-table select or aggregate, the inner table of an IN-subquery (its outer is anchored)
WHOLE_FAMILIES = ("single", "aggregate", "subquery")


@st.composite
def cases(draw: Callable[[st.SearchStrategy[Any]], Any], domain: Domain,
          families: Sequence[str] = tuple(FAMILIES), whole: bool = False) -> Case:
    """A random :class:`Case` over ``domain`` from the given families.

    Every big source is anchored (see ``generator.anchor``) unless ``whole``: then the
    case reads one big table (not the synapse table, not a view) with no anchor.
    """
    if whole and not set(families) <= set(WHOLE_FAMILIES):
        raise ValueError(f"whole=True takes families from {WHOLE_FAMILIES}, got {tuple(families)}")
    version = draw(st.sampled_from([v for v in domain.versions if whole_tables(domain, v)]
                                   if whole else domain.versions))
    resolution = draw(st.sampled_from(RESOLUTIONS))
    ctx = _Ctx(draw, domain, version, resolution, whole=whole)
    family = draw(st.sampled_from(list(families)))
    return FAMILIES[family](ctx)
