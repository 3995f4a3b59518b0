"""Lowering a tree of blocks: every block's remote calls in one fetch order, one DuckDB statement.

A statement with derived tables, CTEs, set operations, local tables or correlated subqueries
is lowered here (a single flat SELECT by :func:`caveql.plan.physical.lower`, as before):

- local tables (``LocalRel``) are read and registered before any remote call, so their keys
  feed remote IN batches like a scan fetched first;
- the calls of every block, shared CTEs first, then each derived block before the block that
  reads it, then the reading block, then its correlated subqueries (fed the keys of the
  enclosing block's sources they are correlated on); two calls asking exactly the same (no
  feeds) are fetched once;
- one DuckDB statement: ``WITH`` one entry per derived block (a CTE used twice ``AS
  MATERIALIZED``: computed once), a set operation as ``(left) UNION [ALL] (right)``, a
  correlated subquery inline where it is used; uncorrelated IN / EXISTS / scalar subqueries
  stay sub-plans run first (their values registered as ``sub<i>``).

>>> lower_tree.__name__
'lower_tree'
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from caveql.analyze.catalog import Catalog
from caveql.backends.base import Capabilities
from caveql.backends.endpoints import encode_body, query_target
from caveql.errors import UnsupportedError
from caveql.logical import Block, Derived, Exists, Query, ScalarSub, SetOp, walk
from caveql.plan.optimizer import block_catalog
from caveql.plan.physical import LocalRel, OutputSpec, PhysicalPlan, RemoteCall, _call, _render_local, lower
from caveql.plan.rules.join_order import DERIVED, OUTER
from caveql.plan.sql import SqlBuilder, quote

__all__ = ["is_tree", "lower_plan", "lower_tree"]


def lower_plan(q: Query, capabilities: Capabilities, catalog: Catalog) -> PhysicalPlan:
    """The physical plan of an optimized plan: :func:`lower_tree` for several blocks (local tables,
    correlated subqueries), else the one-block lowering (unchanged)."""
    if is_tree(q):
        return lower_tree(q, capabilities, catalog)
    return lower(q, capabilities, catalog, sub=lower_plan)


def _sub_exprs(q: Query) -> list[Exists | ScalarSub]:
    exprs: list[Any] = [o.expr for o in q.outputs] + list(q.where) + list(q.group_by)
    exprs += [o.expr for o in q.order_by] + [x for j in q.joins for x in j.extra]
    exprs += [x for x in (q.having, q.qualify) if x is not None]
    return [n for e in exprs for n in walk(e) if isinstance(n, (Exists, ScalarSub))]


def is_tree(q: Query) -> bool:
    """Whether a plan needs this module (more than one block, local tables, correlation)."""
    return bool(q.derived or q.locals or q.ctes or any(n.outer for n in _sub_exprs(q)))


def _names(columns: tuple[tuple[str, str], ...]) -> list[str]:
    out: list[str] = []
    for n, t in columns:
        out += [f"{n}_{a}" for a in "xyz"] if t == "position" else [n]
    return out


class _Lowering:
    def __init__(self, capabilities: Capabilities) -> None:
        self.caps = capabilities
        self.b = SqlBuilder()
        self.calls: list[RemoteCall] = []
        self.subplans: list[PhysicalPlan] = []
        self.locals: list[LocalRel] = []
        self.with_: list[str] = []
        self.steps: list[str] = []
        self.notes: list[str] = []
        self.shared: dict[str, str] = {}
        self.seen: dict[Any, RemoteCall] = {}
        self.blocks = 0
        self.prelude: list[tuple[str, str, list[str], int]] = []
        self.block_keys: dict[int, dict[str, str]] = {}  # a block (by id) -> its scans' call keys

    # ------------------------------------------------------------------ blocks
    def derived(self, body: Block, catalog: Catalog, label: str, columns: tuple[tuple[str, str], ...],
                name: str | None = None, materialized: bool = False) -> str:
        """Render a block as a ``WITH`` entry; its relation name."""
        sql, steps = self.body(body, catalog, label)
        name = name or f"__d{len(self.with_)}"
        rel = quote(name)
        cols = ", ".join(quote(c) for c in _names(columns))
        self.with_.append(f"{rel}({cols}) AS {'MATERIALIZED ' if materialized else ''}({sql})")
        # one step line per block read by another (EXPLAIN ANALYZE measures it materialized)
        self.prelude.append((name, f"SELECT * FROM ({sql}) AS {quote('__b')}({cols})", _names(columns),
                             len(self.steps)))
        self.steps.append(f"[{label}] " + "; ".join(steps))
        return rel

    def body(self, b: Block, catalog: Catalog, label: str) -> tuple[str, list[str]]:
        if isinstance(b, SetOp):
            left, ls = self.body(b.left, catalog, f"{label}, {b.op.lower()} left")
            right, rs = self.body(b.right, catalog, f"{label}, {b.op.lower()} right")
            op = f"{b.op.lower()}{' all' if b.all else ''}"
            return (f"({left}) {b.op}{' ALL' if b.all else ''} ({right})",
                    [f"({'; '.join(ls)}) {op} ({'; '.join(rs)})" + ("" if b.all else " (distinct rows)")])
        sql, _outputs, parts, steps = self.block(b, catalog, label)
        return sql, steps or ["read"]

    def block(self, q: Query, catalog: Catalog, label: str, outer: dict[str, str] | None = None,
              top: bool = False) -> tuple[str, tuple[OutputSpec, ...], Any, list[str]]:
        catalog = block_catalog(q, catalog)
        n = self.blocks
        self.blocks += 1
        prefix, relp = ("", "") if top else (f"b{n}.", f"b{n}_")
        keys: dict[str, str] = {}
        relations: dict[str, str] = {}
        columns: dict[str, tuple[str, ...]] = {}
        for i, t in enumerate(q.locals):
            rel = f"{relp}local{i}"
            self.locals.append(LocalRel(prefix + t.alias, rel, t.table, t.columns, label))
            keys[t.alias] = prefix + t.alias
            relations[t.alias] = rel
            columns[t.alias] = t.columns if t.columns is not None else tuple(c for c, _t in t.table.columns)
        for d in q.derived:
            relations[d.alias] = self._derived(d, catalog, label)
            columns[d.alias] = tuple(_names(d.columns))
        # uncorrelated subqueries: sub-plans run first, registered as sub<global index>
        correlated = {e.index: e for e in _sub_exprs(q) if e.outer}
        sub_names: dict[int, str] = {}
        for i, s in enumerate(q.subqueries):
            if i in correlated:
                continue
            sub_names[i] = f"sub{len(self.subplans)}"
            self.subplans.append(lower_plan(s, self.caps, catalog))
        index = {s.alias: i for i, s in enumerate(q.scans)}
        for a in q.order or tuple(s.alias for s in q.scans):
            c = _call(q, q.scan(a), index[a], catalog, self.caps)
            feeds = []
            for f in c.feeds:
                if f.source.startswith(DERIVED):
                    alias, inner = f.source[len(DERIVED):].split(".", 1)
                    d = next(x for x in q.derived if x.alias == alias)
                    src = self.block_keys.get(id(d.body), {}).get(inner)
                    if src is None:
                        continue
                    feeds.append(replace(f, source=src))
                elif f.source.startswith(OUTER):
                    src = (outer or {}).get(f.source[len(OUTER):])
                    if src is None:
                        continue  # an enclosing block's derived source: not fetched, no keys to send
                    feeds.append(replace(f, source=src))
                elif f.source.startswith("sub") and f.source not in keys:
                    feeds.append(replace(f, source=sub_names[int(f.source[3:])]))
                else:
                    feeds.append(replace(f, source=keys[f.source]))
            c = replace(c, alias=prefix + a, relation=relp + c.relation, feeds=tuple(feeds), block=label)
            same = (query_target(c.request, q.datastack), encode_body(c.request), c.rename, c.columns,
                    c.suffixed, c.padded, c.refiltered, c.rescale) if not c.feeds else None
            if same is not None and same in self.seen:
                first = self.seen[same]
                self.notes.append(f"scan {a}" + (f" of {label}" if label else "")
                                  + f" reads the answer of {first.relation} (the same request: fetched once)")
                relations[a], keys[a] = first.relation, first.alias
            else:
                if same is not None:
                    self.seen[same] = c
                self.calls.append(c)
                relations[a], keys[a] = c.relation, c.alias
            columns[a] = c.columns
        self.block_keys[id(q)] = keys
        inline: dict[int, str] = {}
        for i, e in correlated.items():
            what = "EXISTS" if isinstance(e, Exists) else "scalar subquery"
            inline[i] = self.correlated(q.subqueries[i], catalog, keys,
                                        f"correlated {what} {i}" + (f" of {label}" if label else ""))
        b = self.b
        b.sub_names = sub_names
        b.count_source = q.scans[0].alias if len(q.scans) == 1 and q.scans[0].count else None

        def render(e: Exists | ScalarSub) -> str:
            if isinstance(e, Exists):
                return f"({'NOT ' if e.negated else ''}EXISTS ({inline[e.index]}))"
            return f"({inline[e.index]})"

        b.correlated = render
        sql, outputs, steps, parts = _render_local(q, relations, b, catalog, columns)
        b.correlated, b.sub_names, b.count_source = None, {}, None
        if not top:
            if q.limit is None and not q.offset:
                parts.order = []  # a block read by another: its rows' order is not kept
                sql = parts.statement()
                steps = [s for s in steps if not s.startswith("sort ")]
            steps = [s for s in steps if not s.startswith("project ")]
        else:
            shift = len(self.steps)
            parts.lines = {k: v + shift for k, v in parts.lines.items()}
            self.steps += steps
        return sql, outputs, parts, steps

    def _derived(self, d: Derived, catalog: Catalog, label: str) -> str:
        if d.body is None:
            return self.shared[d.cte or ""]
        what = f"CTE {d.cte}" if d.cte else f"derived table {d.alias}"
        return self.derived(d.body, catalog, what + (f" in {label}" if label else ""), d.columns)

    def correlated(self, sq: Query, catalog: Catalog, outer: dict[str, str], label: str) -> str:
        """A correlated subquery's SQL (rendered where it is used), its calls fed from ``outer``."""
        cat = block_catalog(sq, catalog)
        for s in sq.scans:
            if s.feeds or s.filters:
                continue
            count = cat.count(s.table)
            cap = self.caps.row_cap
            if count is None or cap is None or count > cap:
                rows = f"{count:,} rows" if count is not None else "rows not counted"
                raise UnsupportedError(
                    f"the {label} would read {s.table} whole ({rows}): its correlation with the "
                    "outer query is not an equality on a column of it, so it cannot become a key "
                    "filter", hint=f"correlate on {s.alias}.<column> = <outer column>, or filter "
                    f"{s.table} in the subquery")
        return self.block(sq, catalog, label, outer=outer)[0]  # (its steps: part of the outer ones)


def lower_tree(q: Query, capabilities: Capabilities, catalog: Catalog) -> PhysicalPlan:
    """The physical plan of an optimized plan of several blocks (see the module docstring)."""
    low = _Lowering(capabilities)
    for key, body in q.ctes:
        cols = tuple((o.name, o.expr.type) for o in body.outputs)
        low.shared[key] = low.derived(body, block_catalog(q, catalog), f"CTE {key}", cols,
                                      name=f"cte_{key}", materialized=True)
        low.notes.append(f"CTE {key} is read {_uses(q, key)} times: planned once, fetched once, "
                         "materialized once")
    sql, outputs, parts, _steps = low.block(q, catalog, "", top=True)
    if low.with_:
        sql = "WITH " + ", ".join(low.with_) + " " + sql
    b = low.b
    return PhysicalPlan(
        logical=q, calls=tuple(low.calls), subplans=tuple(low.subplans), sql=sql, params=tuple(b.params),
        lists=tuple((k, tuple(v)) for k, v in b.lists.items()), steps=tuple(low.steps), outputs=outputs,
        split_positions=q.split_positions, datastack=q.datastack, capabilities=capabilities,
        local_parts=parts, locals=tuple(low.locals), notes=tuple(low.notes),
        prelude=tuple((n, s, i) for n, s, _c, i in low.prelude),
    )


def _uses(q: Block, key: str) -> int:
    if isinstance(q, SetOp):
        return _uses(q.left, key) + _uses(q.right, key)
    n = sum(1 for d in q.derived if d.body is None and d.cte == key)
    n += sum(_uses(d.body, key) for d in q.derived if d.body is not None)
    n += sum(_uses(c, key) for _k, c in q.ctes)
    return n

