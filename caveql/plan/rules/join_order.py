"""Rule: fetch the selective side first and feed its keys into the other side.

Each scan gets an estimated row count (the table's count, cut down by its pushed
filters: an equality or IN on an id column keeps about ``count / 100,000`` rows
per key, other equalities 1/20, ranges 1/3, regexes 1/10, boxes 1/10). Scans are
fetched cheapest first, then repeatedly the cheapest scan joined to one already
fetched; each later scan receives the join keys of every fetched neighbour as
an IN filter (sent in batches at run time). Keys never flow out of the
null-extended side of a LEFT JOIN into its preserved side. An ``IN (SELECT ...)``
on a column feeds the subquery's values the same way (the subquery runs first).

>>> estimate(1_000_000, [("equal", "pre_pt_root_id")])
10
"""

from __future__ import annotations

from dataclasses import replace

from caveql.analyze.catalog import Catalog
from caveql.backends.base import Capabilities
from caveql.logical import Call, Col, InSub, Query, Scan

__all__ = ["DERIVED", "OUTER", "estimate", "join_order"]

_DEFAULT_COUNT = 1_000_000


def estimate(count: int, filters: list[tuple[str, str]], in_sizes: list[int] | None = None) -> int:
    """Estimated rows after pushed filters ``[(kind, column)]`` on a table of ``count`` rows."""
    est = float(count)
    sizes = list(in_sizes or [])
    for kind, col in filters:
        key = col == "id" or col.endswith("_id")
        if kind in ("equal", "in"):
            n = sizes.pop(0) if kind == "in" and sizes else 1
            est = min(est, n * max(1.0, count / 100_000) if key else est * min(1.0, n / 20))
        elif kind == "spatial" or kind == "regex":
            est /= 10
        else:
            est /= 3
    return max(1, int(est))


def _est(scan: Scan, catalog: Catalog) -> int:
    count = catalog.count(scan.table)
    if count is None:
        count = _DEFAULT_COUNT
    fl = [(f.kind, f.column) for f in scan.filters]
    sizes = [len(f.value) for f in scan.filters if f.kind == "in"]
    return estimate(count, fl, sizes)


def join_order(plan: Query, *, catalog: Catalog, capabilities: Capabilities) -> Query:
    """Choose the fetch order and the key feeds (see the module docstring)."""
    subs = tuple(join_order(s, catalog=catalog, capabilities=capabilities) for s in plan.subqueries)
    scans = {s.alias: replace(s, est_rows=_est(s, catalog)) for s in plan.scans}
    aliases = [s.alias for s in plan.scans]
    pos = {a: i for i, a in enumerate(plan.from_order())}
    # a local table's rows are read before any remote call: it feeds like a scan fetched first
    local_rows = {t.alias: t.table.rows if t.table.rows is not None else 10_000 for t in plan.locals}
    # a derived block's column that is one of its scans' columns as is: that scan's keys (a
    # superset of the block's values) feed like a local table's (the block's calls run first)
    passed = _pass_through(plan)
    local_rows.update((a, 10_000) for a in {a for a, _c in passed})
    nullable = {s.alias: s.nullable for s in plan.scans}
    nullable.update((t.alias, t.nullable) for t in plan.locals)
    nullable.update((d.alias, d.nullable) for d in plan.derived)
    # keys flowing across a RIGHT or FULL join could drop preserved rows: none are sent
    outer = any(j.kind in ("RIGHT", "FULL") for j in plan.joins)
    # edges: (a, col_a, b, col_b), usable to feed b from a when allowed
    edges: list[tuple[str, str, str, str, bool]] = []
    def service_column(alias: str, name: str) -> bool:
        # a position component is not a column the service filters on
        info = catalog.source(plan.scan(alias).table)
        base = info.column(name[:-2]) if name[-2:] in ("_x", "_y", "_z") else None
        return not (base is not None and base.type == "position")

    for j in plan.joins:
        for left, right in j.pairs:
            for a, b in ((left, right), (right, left)):
                if b.source not in scans or (a.source not in scans and a.source not in local_rows):
                    continue
                if a.source not in scans and a.source in plan.sources and (a.source, a.name) not in passed \
                        and not any(t.alias == a.source for t in plan.locals):
                    continue
                ok = not outer and _may_feed(plan, nullable, a.source, b.source, pos) \
                    and service_column(b.source, b.name) and a.type == b.type and a.type in ("int", "string")
                edges.append((a.source, a.name, b.source, b.name, ok))
    feeds: dict[str, list[tuple[str, str, str]]] = {a: [] for a in aliases}
    # IN (SELECT ...) conjuncts feed their column from the subquery's only output
    for w in plan.where:
        if isinstance(w, InSub) and not w.negated and isinstance(w.expr, Col) \
                and w.expr.source in scans and not scans[w.expr.source].nullable \
                and w.expr.type in ("int", "string") \
                and w.expr.type == plan.subqueries[w.index].outputs[0].expr.type \
                and service_column(w.expr.source, w.expr.name):
            out = plan.subqueries[w.index].outputs[0].name
            feeds[w.expr.source].append((f"sub{w.index}", out, w.expr.name))
            scans[w.expr.source] = replace(scans[w.expr.source],
                                           est_rows=min(scans[w.expr.source].est_rows or 1, 10_000))
        corr = _correlation(w, scans, pos)
        if corr is not None and not outer and service_column(corr[2], corr[3]):
            # a correlated subquery's inner = outer equality: the enclosing block's keys
            src, scol, dst, dcol = corr
            if not any(f[2] == dcol for f in feeds[dst]):
                feeds[dst].append((OUTER + src, scol, dcol))
                scans[dst] = replace(scans[dst], est_rows=min(scans[dst].est_rows or 1, 10_000))
    order: list[str] = list(local_rows)
    remaining = list(aliases)
    while remaining:
        connected = [a for a in remaining if any(e[0] in order and e[2] == a and e[4] for e in edges)]
        pool = connected or remaining
        best = min(pool, key=lambda a: (_fed_est(a, scans, order, edges, local_rows), pos[a]))
        for src, scol, dst, dcol, ok in edges:
            if dst == best and src in order and ok and not any(f[2] == dcol for f in feeds[best]):
                if (src, scol) in passed:
                    src, scol = passed[(src, scol)]
                feeds[best].append((src, scol, dcol))
        if feeds[best]:
            scans[best] = replace(scans[best], est_rows=_fed_est(best, scans, order, edges, local_rows))
        order.append(best)
        remaining.remove(best)
    new_scans = tuple(replace(scans[a], feeds=tuple(feeds[a])) for a in aliases)
    return replace(plan, scans=new_scans, order=tuple(a for a in order if a in scans), subqueries=subs)


#: A feed source naming a source of the enclosing block (a decorrelated subquery's keys).
OUTER = "^"
#: A feed source naming a scan of a derived block (``<prefix><derived alias>.<scan alias>``).
DERIVED = "~"


def _pass_through(plan: Query) -> dict[tuple[str, str], tuple[str, str]]:
    """``{(derived alias, column): (feed source, scan column)}`` for each derived block's column
    that is a column of one of its own scans, unchanged (a plain, DISTINCT or grouped block)."""
    out: dict[tuple[str, str], tuple[str, str]] = {}
    for d in plan.derived:
        body = d.body
        if not isinstance(body, Query):
            continue
        scans = {s.alias for s in body.scans if not s.nullable}
        for o in body.outputs:
            e = o.expr
            if isinstance(e, Col) and e.source in scans and e.type in ("int", "string") and (
                    not body.aggregate or any(g == e for g in body.group_by)):
                out[(d.alias, o.name)] = (f"{DERIVED}{d.alias}.{e.source}", e.name)
    return out


def _correlation(w: object, scans: dict[str, Scan], pos: dict[str, int]
                 ) -> tuple[str, str, str, str] | None:
    """``(outer alias, its column, scan, scan column)`` of ``scan.col = outer.col`` (an equality
    with a source of the enclosing block), else None."""
    if not (isinstance(w, Call) and w.op == "=" and not w.negated and len(w.args) == 2):
        return None
    a, b = w.args
    if not (isinstance(a, Col) and isinstance(b, Col)):
        return None
    for inner, other in ((a, b), (b, a)):
        if inner.source in scans and other.source not in pos and not scans[inner.source].nullable \
                and inner.type == other.type and inner.type in ("int", "string"):
            return other.source, other.name, inner.source, inner.name
    return None


def _fed_est(alias: str, scans: dict[str, Scan], order: list[str], edges: list,
             local_rows: dict[str, int] | None = None) -> int:
    own = scans[alias].est_rows or _DEFAULT_COUNT
    rows = lambda a: local_rows[a] if local_rows and a in local_rows else scans[a].est_rows  # noqa: E731
    feeders = [rows(e[0]) or _DEFAULT_COUNT for e in edges
               if e[2] == alias and e[0] in order and e[4]]
    if feeders:
        return min(own, min(feeders) * 50)
    return own


def _may_feed(plan: Query, nullable: dict[str, bool], src: str, dst: str, pos: dict[str, int]) -> bool:
    """Keys may flow src -> dst unless src is a LEFT JOIN's right side and dst precedes it."""
    if nullable[src] and pos[dst] < pos[src]:
        return False
    # a scan before a LEFT JOIN's right side must keep all its rows: nothing to the right of
    # a left-joined source may restrict it
    for j in plan.joins:
        if j.kind == "LEFT" and pos[dst] < pos[j.alias] <= pos[src]:
            return False
    return True
