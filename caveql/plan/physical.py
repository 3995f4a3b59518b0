"""The physical plan: remote calls (requests + how they split) and the local DuckDB step.

:func:`lower` turns an optimized logical plan into a :class:`PhysicalPlan`:

- one :class:`RemoteCall` per scan, in fetch order: the service request (filters
  keyed by owning table, ``select_columns``, ``desired_resolution``, version or
  live timestamp, a join request with ``suffix_map`` for a merged reference
  table), the key feeds it receives from earlier calls (IN filters sent in
  batches of ``capabilities.max_in_batch``), and whether it may reach the row cap
  (then it is split by ``id`` ranges at run time);
- the local SQL over the calls' results (joins, residual filters, aggregates,
  sort, limit) with its parameters, and how output columns become the frame.

>>> RemoteCall.__name__, PhysicalPlan.__name__
('RemoteCall', 'PhysicalPlan')
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from caveql.analyze.catalog import Catalog, ColumnInfo, SourceInfo
from caveql.backends.base import Capabilities, QueryRequest
from caveql.plan.logical import Col, Expr, Query, Scan, show
from caveql.plan.sql import SqlBuilder, quote
from caveql.plan.steps import LocalParts

__all__ = ["Feed", "OutputSpec", "PhysicalPlan", "RemoteCall", "lower"]

REF_SUFFIXES = ("_ref", "")  # suffix_map values: reference table, target (the seed's form)


@dataclass(frozen=True)
class Feed:
    """Keys from an earlier result (``source``: a scan alias or ``sub<i>``, ``column``
    in it) sent as an IN filter on ``table.target`` (local name ``name``)."""

    source: str
    column: str
    table: str
    target: str
    name: str


@dataclass(frozen=True)
class RemoteCall:
    """One logical remote call; at run time it may become several requests."""

    alias: str
    relation: str
    request: QueryRequest
    feeds: tuple[Feed, ...] = ()
    rename: tuple[tuple[str, str], ...] = ()
    columns: tuple[str, ...] = ()
    id_column: tuple[str, str] | None = None
    id_local: str | None = None  # the split column's local name (see :meth:`answer_names`)
    suffixed: tuple[tuple[str, str], ...] = ()  # (backend name if suffixed, local name)
    may_exceed_cap: bool = False
    label: str = "query_table"
    est_rows: int | None = None
    table_rows: int | None = None

    def answer_names(self, present: Collection[str]) -> dict[str, str]:
        """Local name -> the backend's name for it in an answer with columns ``present``.

        A reference column selected only from the reference table comes back bare
        (``pt_supervoxel_id``) — unless the service also returns that name from the
        target (a supervoxel id it adds before a selected root id), when it comes back
        suffixed (``pt_supervoxel_id_ref``); the answer's names tell which.

        >>> c = RemoteCall("a", "r0", QueryRequest(kind="join"), columns=("sv_ref",),
        ...                rename=(("sv", "sv_ref"),), suffixed=(("sv_ref", "sv_ref"),))
        >>> c.answer_names(["sv"]), c.answer_names(["sv", "sv_ref"])
        ({'sv_ref': 'sv'}, {'sv_ref': 'sv_ref'})
        """
        out = {c: c for c in self.columns}
        out.update((local, backend) for backend, local in self.rename)
        if self.suffixed:
            have = set(present)
            out.update((local, backend) for backend, local in self.suffixed if backend in have)
        return out


@dataclass(frozen=True)
class OutputSpec:
    """An output column of the frame: ``columns`` are the SQL result columns it is
    made of (internal names; three for a position), ``name`` its name in the frame
    (names may repeat, as in SQL)."""

    name: str
    position: bool
    columns: tuple[str, ...]
    at_end: bool = False  # a packed position from ``*``: caveclient puts it after the others


@dataclass(frozen=True)
class PhysicalPlan:
    """Everything the executor needs, and everything EXPLAIN prints."""

    logical: Query
    calls: tuple[RemoteCall, ...]
    subplans: tuple[PhysicalPlan, ...]
    sql: str
    params: tuple[Any, ...]
    lists: tuple[tuple[str, tuple[Any, ...]], ...]
    steps: tuple[str, ...]
    outputs: tuple[OutputSpec, ...]
    split_positions: bool
    datastack: str
    capabilities: Capabilities = field(default_factory=Capabilities)
    # the fragments ``sql`` is made of (LocalParts.statement); EXPLAIN ANALYZE also builds one
    # statement per step from them (caveql.plan.steps.local_steps, only when asked)
    local_parts: LocalParts | None = field(default=None, compare=False, repr=False)


def _request_filters(scan: Scan) -> dict[str, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for f in scan.filters:
        value: Any = f.value
        if f.kind == "in":
            value = list(value)
        elif f.kind == "spatial":
            value = [list(value[0]), list(value[1])]
        out.setdefault(f.kind, {}).setdefault(f.table, {})[f.column] = value
    return out


def _selected(info: SourceInfo, scan: Scan) -> list[ColumnInfo]:
    if scan.columns is None:
        return list(info.columns)
    wanted = set(scan.columns)
    return [c for c in info.columns if c.name in wanted]


def _rename(info: SourceInfo, cols: list[ColumnInfo], suffixes: dict[str, str]
            ) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    """Backend output names -> catalog names (the service suffixes a name only when
    it is selected from both tables), and the suffixed names of columns the rule
    leaves bare: a column the service adds on its own (the supervoxel id before a
    root id) can make it suffix them too, which only the answer shows."""
    counts: dict[str, int] = {}
    for c in cols:
        counts[c.owner_column] = counts.get(c.owner_column, 0) + 1
    pairs = []
    alts = []
    for c in cols:
        own = suffixes.get(c.owner, "")
        sfx = own if counts[c.owner_column] > 1 else ""
        if c.type == "position":
            for a in "xyz":
                pairs.append((f"{c.owner_column}{sfx}_{a}", f"{c.name}_{a}"))
                if own and not sfx:
                    alts.append((f"{c.owner_column}{own}_{a}", f"{c.name}_{a}"))
        else:
            pairs.append((c.owner_column + sfx, c.name))
            if own and not sfx:
                alts.append((c.owner_column + own, c.name))
    return tuple(pairs), tuple(alts)


def _local_columns(cols: list[ColumnInfo]) -> tuple[str, ...]:
    out: list[str] = []
    for c in cols:
        out.extend([f"{c.name}_{a}" for a in "xyz"] if c.type == "position" else [c.name])
    return tuple(out)


def _call(q: Query, scan: Scan, index: int, catalog: Catalog, caps: Capabilities) -> RemoteCall:
    info = catalog.source(scan.table)
    cols = _selected(info, scan)
    filters = _request_filters(scan)
    live = q.timestamp is not None
    sel_map: dict[str, list[str]] | None = None
    if scan.columns is not None:
        sel_map = {t: [] for t in info.tables()}
        for c in cols:
            sel_map[c.owner].append(c.owner_column)
    common: dict[str, Any] = {f"filter_{k}": v for k, v in filters.items()}
    common.update(
        version=None if live else q.version, timestamp=q.timestamp if live else None,
        desired_resolution=q.resolution, limit=scan.limit, offset=scan.offset,
        select_columns={t: tuple(c) for t, c in sel_map.items()} if sel_map else None,
    )
    if scan.count:
        common.update(count=True, select_columns=None, desired_resolution=None)
    rename: tuple[tuple[str, str], ...] = ()
    suffixed: tuple[tuple[str, str], ...] = ()
    if info.kind == "reference":
        assert info.target is not None
        suffixes = {info.name: REF_SUFFIXES[0], info.target: REF_SUFFIXES[1]}
        if live:
            req = QueryRequest(kind="live", table=info.name,
                               live_joins=((info.name, "target_id", info.target, "id"),),
                               suffix_map=suffixes, **common)
        else:
            req = QueryRequest(kind="join", join=((info.name, "target_id"), (info.target, "id")),
                               suffix_map=suffixes, **common)
        rename, suffixed = _rename(info, cols, suffixes)
        label = "tables." + info.name + "().query  [reference merged: join on target_id = id]"
    else:
        kind = "live" if live else ("view" if info.kind == "view" else "table")
        req = QueryRequest(kind=kind, table=info.name, **common)
        label = {"table": "query_table", "view": "query_view", "live": "live_live_query"}[kind]
        if (kind == "table" and info.name == q.synapse_table and (any(
                f.column in ("pre_pt_root_id", "post_pt_root_id") and f.kind in ("equal", "in")
                for f in scan.filters) or any(d in ("pre_pt_root_id", "post_pt_root_id")
                                              for _s, _c, d in scan.feeds))):
            label = "synapse_query (remove_autapses=False)"
    # split on a column unique per answer row: a merged reference's own id (a target row
    # may carry several reference rows), else the table's id
    idc = info.column("id_ref") if info.kind == "reference" else info.column("id")
    id_column = (idc.owner, idc.owner_column) if idc is not None and idc.type == "int" else None
    feeds = []
    for src, scol, dst in scan.feeds:
        c = info.column(dst)
        assert c is not None
        feeds.append(Feed(src, scol, c.owner, c.owner_column, dst))
    count = catalog.count(info.name)
    cap = caps.row_cap
    may_exceed = cap is not None and scan.limit is None and (count is None or count > cap)
    if scan.count:
        label += " (get_counts=True)"
    return RemoteCall(
        alias=scan.alias, relation=f"r{index}", request=req, feeds=tuple(feeds), rename=rename,
        columns=("count",) if scan.count else _local_columns(cols), id_column=id_column,
        id_local=idc.name if idc is not None else None, suffixed=suffixed,
        may_exceed_cap=may_exceed and not scan.count, label=label,
        est_rows=scan.est_rows, table_rows=count,
    )


def _render_local(q: Query, relations: dict[str, str], b: SqlBuilder, catalog: Catalog,
                  columns: dict[str, tuple[str, ...]]
                  ) -> tuple[str, tuple[OutputSpec, ...], list[str], LocalParts]:
    steps: list[str] = []
    first = q.scans[0]
    parts = LocalParts((relations[first.alias], first.alias), columns,
                       aggregate=q.aggregate, distinct=q.distinct)
    outputs: list[OutputSpec] = []
    first_col: dict[int, int] = {}
    n = 0
    for i, o in enumerate(q.outputs):
        first_col[i] = n + 1
        # internal result names: the frame's names may repeat (SELECT p, p_y), DuckDB's may not
        if isinstance(o.expr, Col) and o.expr.type == "position":
            names = tuple(f"c{n + k}" for k in range(3))
            parts.select += zip(b.position(o.expr), names, strict=True)
            outputs.append(OutputSpec(o.name, True, names, at_end=i in q.star_tail))
            n += 3
        else:
            parts.select.append((b.expr(o.expr), f"c{n}"))
            outputs.append(OutputSpec(o.name, False, (f"c{n}",)))
            n += 1
    for j in q.joins:
        conds = [f"{b.expr(a)} = {b.expr(c)}" for a, c in j.pairs] + [b.expr(x) for x in j.extra]
        on = " AND ".join(conds) if conds else "TRUE"
        parts.lines[f"join{len(parts.joins)}"] = len(steps)
        parts.joins.append((j.kind, relations[j.alias], j.alias, on))
        steps.append(f"{j.kind.lower()} join {j.alias} ON "
                     + " AND ".join([f"{show(a)} = {show(c)}" for a, c in j.pairs]
                                    + [show(x) for x in j.extra]))
    if q.where:
        parts.where = " AND ".join(b.expr(w) for w in q.where)
        parts.lines["filter"] = len(steps)
        steps.append("filter " + " AND ".join(show(w) for w in q.where))
    if q.group_by:
        for g in q.group_by:
            parts.group += b.position(g) if isinstance(g, Col) and g.type == "position" else [b.expr(g)]
    if q.aggregate:
        parts.lines["aggregate"] = len(steps)
        aggs = sorted({show(x) for o in q.outputs for x in _aggs(o.expr)})
        steps.append("aggregate " + (("GROUP BY " + ", ".join(show(g) for g in q.group_by)) if q.group_by
                                     else "(one group)") + (": " + ", ".join(aggs) if aggs else ""))
    if q.having is not None:
        parts.having = b.expr(q.having)
        parts.lines["having"] = len(steps)
        steps.append("having " + show(q.having))
    if q.distinct:
        parts.lines["distinct"] = len(steps)
        steps.append("distinct")
    for o in q.order_by:
        idx = next((i for i, out in enumerate(q.outputs) if out.expr == o.expr), None)
        suffix = (" DESC" if o.descending else " ASC") + (f" NULLS {o.nulls}" if o.nulls else "")
        if idx is not None:
            count = 3 if outputs[idx].position else 1
            parts.order += [(first_col[idx] + k, "", suffix) for k in range(count)]
        elif isinstance(o.expr, Col) and o.expr.type == "position":
            parts.order += [(None, p, suffix) for p in b.position(o.expr)]
        else:
            parts.order.append((None, b.expr(o.expr), suffix))
    user_order = bool(parts.order)
    # deterministic rows: the sources' ids in FROM order, else every output column
    if q.aggregate or q.distinct:
        parts.order += [(i, "", "") for i in range(1, n + 1)]
        tie = "output columns"
    else:
        ties: list[tuple[int | None, str, str]] = []
        for s in q.scans:
            info = catalog.source(s.table)
            keys = [k for k in ("id", "id_ref") if info.column(k) is not None]
            if keys:
                ties += [(None, f"{quote(s.alias)}.{quote(k)}", "") for k in keys]
            else:
                ties += [(i, "", "") for i in range(1, n + 1)]
        parts.order += dict.fromkeys(ties)
        tie = ", ".join(f"{s.alias}.id" for s in q.scans)
    parts.lines["sort"] = len(steps)
    steps.append("sort " + (", ".join(
        f"{show(o.expr)}{' DESC' if o.descending else ''}" for o in q.order_by) + ", then "
        if user_order else "") + f"by {tie} (deterministic order)")
    pushed = any(s.limit is not None for s in q.scans)
    if (q.limit is not None or q.offset) and not pushed:
        if q.limit is not None:
            parts.limit += f" LIMIT {int(q.limit)}"
        if q.offset:
            parts.limit += f" OFFSET {int(q.offset)}"
        parts.lines["limit"] = len(steps)
        steps.append(f"limit {q.limit if q.limit is not None else 'ALL'}"
                     + (f" offset {q.offset}" if q.offset else ""))
    parts.lines["project"] = len(steps)
    steps.append("project " + ", ".join(o.name for o in q.outputs)
                 + ("" if q.split_positions or not any(o.position for o in outputs)
                    else "; positions packed as [x, y, z]" + (" (from *: at the end, as caveclient)"
                                                              if q.star_tail else "")))
    return parts.statement(), tuple(outputs), steps, parts


def _aggs(e: Expr) -> list[Expr]:
    from caveql.plan.logical import Agg, walk
    return [x for x in walk(e) if isinstance(x, Agg)]


def lower(q: Query, capabilities: Capabilities, catalog: Catalog) -> PhysicalPlan:
    """The physical plan of an optimized logical plan."""
    subplans = tuple(lower(s, capabilities, catalog) for s in q.subqueries)
    index = {s.alias: i for i, s in enumerate(q.scans)}
    order = q.order or tuple(s.alias for s in q.scans)
    calls = tuple(_call(q, q.scan(a), index[a], catalog, capabilities) for a in order)
    relations = {s.alias: f"r{index[s.alias]}" for s in q.scans}
    b = SqlBuilder()
    if len(q.scans) == 1 and q.scans[0].count:
        b.count_source = q.scans[0].alias
    columns = {c.alias: c.columns for c in calls}
    sql, outputs, steps, parts = _render_local(q, relations, b, catalog, columns)
    return PhysicalPlan(
        logical=q, calls=calls, subplans=subplans, sql=sql, params=tuple(b.params),
        lists=tuple((k, tuple(v)) for k, v in b.lists.items()), steps=tuple(steps), outputs=outputs,
        split_positions=q.split_positions, datastack=q.datastack, capabilities=capabilities,
        local_parts=parts,
    )
