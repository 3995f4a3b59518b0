"""Rule: fetch only the columns the query reads (``select_columns``).

A scan's columns are those its source contributes to the output, the local
conditions, joins, grouping, ordering and key feeds, plus ``id`` (and ``id_ref``
for a merged reference table) for the deterministic row order. A position
component needs its whole position. When every column is needed, none are listed
(the request then has no ``select_columns``, as caveclient sends it).

>>> prune_columns.__name__
'prune_columns'
"""

from __future__ import annotations

from dataclasses import replace

from caveql.analyze.catalog import Catalog
from caveql.backends.base import Capabilities
from caveql.logical import LocalSource, Query, columns_of

__all__ = ["needed_columns", "prune_columns"]


def needed_columns(plan: Query) -> dict[str, set[str]]:
    """``{alias: {catalog column}}`` the local steps read from each scan."""
    need: dict[str, set[str]] = {s.alias: set() for s in plan.scans}
    exprs = [o.expr for o in plan.outputs] + list(plan.where) + list(plan.group_by)
    exprs += [o.expr for o in plan.order_by]
    if plan.having is not None:
        exprs.append(plan.having)
    if plan.qualify is not None:
        exprs.append(plan.qualify)
    for j in plan.joins:
        for a, b in j.pairs:
            exprs += [a, b]
        exprs += list(j.extra)
    for e in exprs:
        for c in columns_of(e):
            if c.source in need:  # (not a derived or local source's, nor an enclosing block's)
                need[c.source].add(c.name)
    for s in plan.scans:
        for src, col, _dst in s.feeds:
            if src in need:
                need[src].add(col)
        for _src, _col, dst in s.feeds:
            need[s.alias].add(dst)
    return need


def prune_columns(plan: Query, *, catalog: Catalog, capabilities: Capabilities) -> Query:
    """Set each scan's ``columns`` (see the module docstring)."""
    subs = tuple(prune_columns(s, catalog=catalog, capabilities=capabilities) for s in plan.subqueries)
    need = needed_columns(plan)
    scans = []
    for s in plan.scans:
        info = catalog.source(s.table)
        wanted = set()
        for name in need[s.alias]:
            c = info.column(name)
            base = info.column(name[:-2]) if name[-2:] in ("_x", "_y", "_z") else None
            wanted.add(name[:-2] if base is not None and base.type == "position" else name)
            del c
        for key in ("id", "id_ref"):
            if info.column(key) is not None:
                wanted.add(key)
        if not wanted:
            wanted.add(info.columns[0].name)
        cols = tuple(c.name for c in info.columns if c.name in wanted)
        if not capabilities.select_columns or len(cols) == len(info.columns):
            cols_opt = None
        else:
            cols_opt = cols
        scans.append(replace(s, columns=cols_opt))
    if plan.locals:
        return replace(plan, scans=tuple(scans), subqueries=subs, locals=_local_columns(plan))
    return replace(plan, scans=tuple(scans), subqueries=subs)


def _local_columns(plan: Query) -> tuple[LocalSource, ...]:
    """Each local table with only the columns the block reads (and its feeds send)."""
    need: dict[str, set[str]] = {t.alias: set() for t in plan.locals}
    exprs: list = [o.expr for o in plan.outputs] + list(plan.where) + list(plan.group_by)
    exprs += [o.expr for o in plan.order_by] + [plan.having, plan.qualify]
    for j in plan.joins:
        exprs += [x for pair in j.pairs for x in pair] + list(j.extra)
    for e in exprs:
        for c in columns_of(e) if e is not None else ():
            if c.source in need:
                need[c.source].add(c.name)
    for s in plan.scans:
        for src, col, _dst in s.feeds:
            if src in need:
                need[src].add(col)
    out = []
    for t in plan.locals:
        cols = tuple(n for n, _t in t.table.columns if n in need[t.alias]) or (t.table.columns[0][0],)
        out.append(replace(t, columns=None if len(cols) == len(t.table.columns) else cols))
    return tuple(out)
