"""Shared pieces of the analytic families (issue 10): anchored base selects, predicates on
derived columns, output lists — each built as CQL and as oracle SQL at once, as in
``generator.py``.

A *base* is an anchored select over one demo source (``generator.anchor`` keeps it to a few
thousand rows, so every case stays cheap at row cap 1,000 too) that the analytic constructs
build on: the body of a CTE, a derived table, a branch of a set operation, the input of a
window or a PIVOT. Its columns keep their table's names, so sampled values (``Domain.samples``)
still find them.

>>> Out().add("a", "t0.\\"a\\"", "a").sql
['t0."a" AS "a"']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from hypothesis import strategies as st

from tests.differential.generator import Src, X, _Ctx, _in_list, anchor, condition, lit
from tests.differential.oracle import Column

__all__ = ["Base", "Out", "agg_of", "base", "cell_tables", "dpred", "groupable", "numeric", "q", "scalar_columns",
           "typed_roots", "where"]

#: kinds a base may select (positions and timestamps are the older families' business)
SCALAR = ("int", "float", "str", "bool")


def q(name: str) -> str:
    """A quoted SQL identifier.

    >>> q("size")
    '"size"'
    """
    return '"' + name.replace('"', '""') + '"'


def scalar_columns(columns: Sequence[Column], kinds: Sequence[str] = SCALAR) -> list[Column]:
    """The columns of the given kinds (never ``valid``: constant, and a table-only flag)."""
    return [c for c in columns if c.kind in kinds and c.name not in ("valid", "valid_ref")]


def groupable(columns: Sequence[Column]) -> list[Column]:
    """Columns worth grouping or partitioning by: strings, booleans, non-unique ints."""
    return [c for c in scalar_columns(columns, ("int", "str", "bool")) if not c.unique]


def numeric(columns: Sequence[Column]) -> list[Column]:
    return scalar_columns(columns, ("int", "float"))


@dataclass
class Out:
    """An output list under construction: CQL items, oracle items, output names."""

    cql: list[str] = field(default_factory=list)
    sql: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)

    def add(self, cql: str, sql: str, name: str, *, bare: bool = False) -> Out:
        """Add an output ``name``; ``bare``: the CQL item is the column itself, unaliased."""
        self.cql.append(cql if bare else f"{cql} AS {name}")
        self.sql.append(f"{sql} AS {q(name)}")
        self.names.append(name)
        return self


@dataclass(frozen=True)
class Base:
    """An anchored select over one source: ``SELECT cols FROM table WHERE ...`` in both
    languages (the oracle's over the source's relation, aliased ``qual``)."""

    table: str
    columns: tuple[Column, ...]  # the selected columns, under their table names
    cql: str
    sql: str
    view: bool

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


def base(ctx: _Ctx, table: str, qual: str, *, must: Sequence[str] = (), n: tuple[int, int] = (2, 4),
         kinds: Sequence[str] = SCALAR, where_extra: Sequence[X] = ()) -> Base:
    """An anchored select of some scalar columns of ``table`` (``must`` always among them, first)."""
    dom = ctx.domain
    src = Src(table, None, qual, dom.columns(ctx.version, table))
    terms = anchor(ctx, src) + list(where_extra) + condition(ctx, [src], max_terms=1)
    pool = [c for c in scalar_columns(src.columns, kinds) if c.name not in must]
    k = ctx.draw(st.integers(*n))
    picked = [src.columns[[c.name for c in src.columns].index(m)] for m in must]
    if pool:
        picked += ctx.draw(st.lists(st.sampled_from(pool), min_size=0, max_size=max(0, k - len(picked)),
                                    unique_by=lambda c: c.name))
    if not picked:
        picked = [scalar_columns(src.columns)[0]]
    cql_items = ", ".join(c.name for c in picked)
    sql_items = ", ".join(f"{qual}.{q(c.name)} AS {q(c.name)}" for c in picked)
    w_cql = (" WHERE " + " AND ".join(t.cql for t in terms)) if terms else ""
    w_sql = (" WHERE " + " AND ".join(f"({t.sql})" for t in terms)) if terms else ""
    rel = dom.relation_sql(ctx.version, table, ctx.resolution)
    return Base(table, tuple(picked), f"SELECT {cql_items} FROM {table}{w_cql}",
                f"SELECT {sql_items} FROM ({rel}) AS {qual}{w_sql}", dom.is_view(ctx.version, table))


def dpred(ctx: _Ctx, table: str, column: Column, cql_ref: str, sql_ref: str) -> X:
    """A predicate on a column of a derived relation (a CTE, a derived table): int and string
    columns only (a float read through a derived relation is not "a table's column compared
    directly", docs/language.md), values sampled from the underlying ``table``."""
    values = [v for v in ctx.domain.samples(ctx.version, table, column.name) if v is not None]
    if column.kind == "bool":
        b = ctx.draw(st.booleans())
        return X(f"{cql_ref} = {lit(b).cql}", f"{sql_ref} = {lit(b).sql}", "bool")
    if column.kind not in ("int", "str") or not values:
        neg = ctx.draw(st.booleans())
        n = "NOT " if neg else ""
        return X(f"{cql_ref} IS {n}NULL", f"{sql_ref} IS {n}NULL", "bool")
    # mostly loose (the base is already anchored: a selective filter on top leaves nothing)
    how = ctx.draw(st.sampled_from(["eq", "ne", "ne", "in", "cmp", "cmp", "null"]))
    if how == "null":
        return X(f"{cql_ref} IS NOT NULL", f"{sql_ref} IS NOT NULL", "bool")
    if how == "in":
        picked = ctx.draw(st.lists(st.sampled_from(values), min_size=1, max_size=4))
        cql, sql, _ = _in_list(ctx, picked)
        return X(f"{cql_ref} IN {cql}", f"{sql_ref} IN {sql}", "bool")
    v = ctx.maybe_param(ctx.draw(st.sampled_from(values)))
    op = {"eq": "=", "ne": "<>"}.get(how) or ctx.draw(st.sampled_from(["<", "<=", ">", ">="]))
    return X(f"{cql_ref} {op} {v.cql}", f"{sql_ref} {op.replace('<>', '!=')} {v.sql}", "bool")


def where(terms: Sequence[X]) -> tuple[str, str]:
    """`` WHERE a AND b`` in both languages (empty strings for no terms)."""
    if not terms:
        return "", ""
    return " WHERE " + " AND ".join(t.cql for t in terms), " WHERE " + " AND ".join(f"({t.sql})" for t in terms)


def agg_of(ctx: _Ctx, column: Column | None, cql_ref: str, sql_ref: str) -> X:
    """An aggregate over a column (or ``COUNT(*)`` when ``column`` is None). Sums and means of
    floats are computed in doubles, as the local steps do."""
    if column is None:
        return X("COUNT(*)", "count(*)", "int")
    opts = [X(f"COUNT({cql_ref})", f"count({sql_ref})", "int"),
            X(f"COUNT(DISTINCT {cql_ref})", f"count(DISTINCT {sql_ref})", "int")]
    if column.kind in ("int", "str", "float"):
        opts += [X(f"MIN({cql_ref})", f"min({sql_ref})", column.kind),
                 X(f"MAX({cql_ref})", f"max({sql_ref})", column.kind)]
    if column.kind == "float" or (column.kind == "int" and not column.is_id):
        v = f"CAST({sql_ref} AS DOUBLE)" if column.kind == "float" else sql_ref
        opts += [X(f"SUM({cql_ref})", f"sum({v})", column.kind), X(f"AVG({cql_ref})", f"avg({v})", "float"),
                 X(f"MEDIAN({cql_ref})", f"median({v})", "float"),
                 X(f"STDDEV({cql_ref})", f"stddev({v})", "float")]
    return ctx.draw(st.sampled_from(opts))


def cell_tables(ctx: _Ctx) -> list[str]:
    """Tables with ``pt_root_id`` and ``cell_type`` (the cell-type reference tables)."""
    dom = ctx.domain
    return [t for t in dom.root_tables(ctx.version) if any(c.name == "cell_type" for c in dom.columns(ctx.version, t))]



_TYPED: dict[tuple[int, int, str, str], list[int]] = {}


def typed_roots(ctx: _Ctx, table: str, side: str) -> list[int]:
    """The synapse anchors' root ids (``Domain.anchor_roots``) that ``table`` has a row for
    (so joins and EXISTS on them find something), else all anchors; computed once."""
    key = (id(ctx.domain), ctx.version, table, side)
    if key not in _TYPED:
        anchors = ctx.domain.anchor_roots(ctx.version, side)
        rel = ctx.domain.relation_sql(ctx.version, table, None)
        rows = ctx.domain.oracle.run(f"SELECT DISTINCT pt_root_id FROM ({rel}) WHERE pt_root_id IN "
                                     f"({', '.join(map(str, anchors))}) ORDER BY 1")[2]
        _TYPED[key] = [r[0] for r in rows] or list(anchors)
    return _TYPED[key]
