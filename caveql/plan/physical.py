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

from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from typing import Any

import pyarrow as pa

from caveql.analyze.catalog import Catalog, ColumnInfo, SourceInfo
from caveql.analyze.resolution import common_resolution, exact_axes, owner_voxels, ratio, scaled_by_service
from caveql.backends.base import Capabilities, QueryRequest
from caveql.backends.endpoints import LIVE_REFILTERED, spare_column
from caveql.logical import Col, Expr, Query, Scan, show
from caveql.plan.estimate import Fetch, PlanFetch, call_fetch, total
from caveql.plan.sql import SqlBuilder, quote
from caveql.plan.steps import LocalParts

__all__ = ["Feed", "LocalRel", "OutputSpec", "PhysicalPlan", "RemoteCall", "Rescale", "lower"]

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
class Rescale:
    """Positions the engine scales itself: the service would truncate them (a resolution ratio
    that is not a whole number), so they are fetched at ``fetched`` (each table's positions
    whole there) and scaled to the statement's ``target``. ``columns`` are the local position
    names with, per axis, whether the scaled values are whole (Int32) or not (Float64)."""

    columns: tuple[tuple[str, tuple[bool, bool, bool]], ...]
    fetched: tuple[float, float, float]
    target: tuple[float, float, float]


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
    fetch: Fetch | None = None  # what is known of the rows it fetches (caveql.plan.estimate)
    table_rows: int | None = None
    padded: str | None = None  # a column added only because the service fails on one (dropped locally)
    refiltered: tuple[str, ...] = ()  # filtered columns a live call selects only for the service
    spare: str | None = None  # a cheap column of the split table beside its id (id samples select both)
    rescale: Rescale | None = None  # positions scaled locally (see Rescale)
    positions: str = ""  # how positions reach the statement's resolution, for EXPLAIN
    block: str = ""  # the block it serves when not the statement's top one ("CTE c", ...), for EXPLAIN
    # read in place: the local step reads the backend's relation (Capabilities.relations), no
    # rows fetched; the executor fetches them when the backend declines (caveql.execute.relations)
    in_place: bool = False
    # the catalog's Arrow type of each of ``columns`` (a position component: its component type):
    # an answer without rows may type a column as null (the genuine service does for strings)
    types: tuple[pa.DataType, ...] = field(default=(), compare=False, repr=False)

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
class LocalRel:
    """A local table read before any remote call: registered as ``relation``, its keys known to
    feeds as ``key``; ``columns`` those the statement reads (None: all)."""

    key: str
    relation: str
    table: Any
    columns: tuple[str, ...] | None
    block: str = ""


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
    # the same statement planned again for a smaller row cap (set by caveql.plan.plan): the
    # executor calls it when an answer shows the service caps below ``capabilities.row_cap``
    replan: Callable[[int], PhysicalPlan] | None = field(default=None, compare=False, repr=False)
    # a statement of several blocks (caveql.plan.tree): its local tables, read first, and what
    # EXPLAIN says of its blocks (CTE reuse, set operations, calls fetched once for two readers)
    locals: tuple[LocalRel, ...] = ()
    notes: tuple[str, ...] = ()
    # EXPLAIN ANALYZE: each block read by another as (relation name, statement, its step line),
    # run and registered in order before the outer block's steps
    prelude: tuple[tuple[str, str, int], ...] = ()

    def fetches(self, path: str = "") -> list[tuple[str, RemoteCall]]:
        """Every remote call with the scan it serves (``alias (subquery i[.j])`` in a subquery),
        the subplans' (which run first) included."""
        out = [x for i, sp in enumerate(self.subplans) for x in sp.fetches(f"{path}{i}.")]
        return out + [(c.alias + (f" (subquery {path[:-1]})" if path else ""), c) for c in self.calls]

    def map_calls(self, fn: Callable[[RemoteCall], RemoteCall]) -> PhysicalPlan:
        """This plan with every remote call, the subplans' included, replaced by ``fn(call)``."""
        return replace(self, calls=tuple(fn(c) for c in self.calls),
                       subplans=tuple(sp.map_calls(fn) for sp in self.subplans))

    def fetch_total(self) -> PlanFetch:
        """What is known of the rows and requests all the calls fetch (caveql.plan.estimate)."""
        return total([(a, c.fetch) for a, c in self.fetches() if c.fetch is not None])


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


def _local_types(cols: list[ColumnInfo]) -> tuple[pa.DataType, ...]:
    """The catalog's Arrow type of each of :func:`_local_columns`."""
    out: list[pa.DataType] = []
    for c in cols:
        out.extend([c.arrow] * (3 if c.type == "position" else 1))
    return tuple(out)


def _spare(info: SourceInfo, table: str, taken: Collection[str]) -> str | None:
    """The cheapest non-position column of service table ``table`` behind ``info`` not in ``taken``."""
    return spare_column([(c.owner_column, c.arrow) for c in info.columns
                         if c.owner == table and c.type != "position"], taken)


def _show(res: tuple[float, float, float]) -> str:
    return ", ".join(f"{r:g}" for r in res)


def _positions(q: Query, info: SourceInfo, cols: list[ColumnInfo]
               ) -> tuple[tuple[float, float, float] | None, Rescale | None, str]:
    """The call's ``desired_resolution``, the positions it scales locally, and an EXPLAIN note.

    The service scales a position by trunc(s * voxel / R): exact only for whole ratios. Else the
    positions are asked for where every table's are whole (its own voxels) and scaled here."""
    res = q.resolution
    pos = [c for c in cols if c.type == "position"]
    if res is None or not pos:
        return res, None, ""
    voxels = {c.owner: owner_voxels(info, c.owner) for c in pos}
    names = ", ".join(c.name for c in pos)
    if scaled_by_service(voxels.values(), res):
        src = "; ".join(_show(v) for v in dict.fromkeys(voxels.values()))
        return res, None, (f"{names} scaled by the service from {src} to {_show(res)} "
                           f"(whole-number ratios: exact)")
    fetched = common_resolution(list(voxels.values()))
    scale = Rescale(tuple((c.name, exact_axes(voxels[c.owner], res)) for c in pos), fetched, res)
    ratios = ", ".join(str(ratio(f, r)) for f, r in zip(fetched, res, strict=True))
    kinds = []
    for name, exact in scale.columns:
        floats = "".join(a for a, e in zip("xyz", exact, strict=True) if not e)
        ints = "".join(a for a, e in zip("xyz", exact, strict=True) if e)
        kinds.append(f"{name}: {'/'.join(floats)} Float64" + (f", {'/'.join(ints)} Int32" if ints else ""))
    where = "the table's voxels" if len(set(voxels.values())) == 1 else "whole for every table"
    return fetched, scale, (f"{names} fetched at {_show(fetched)} ({where}) and scaled locally to "
                            f"{_show(res)} (ratios {ratios}: the service would truncate); "
                            + "; ".join(kinds))


def _call(q: Query, scan: Scan, index: int, catalog: Catalog, caps: Capabilities) -> RemoteCall:
    info = catalog.source(scan.table)
    cols = _selected(info, scan)
    filters = _request_filters(scan)
    live = q.timestamp is not None
    sel_map: dict[str, list[str]] | None = None
    padded = None
    refiltered: list[ColumnInfo] = []
    if scan.columns is not None:
        sel_map = {t: [] for t in info.tables()}
        for c in cols:
            sel_map[c.owner].append(c.owner_column)
        if live and not scan.count:
            # the live endpoint filters its answer again by column name: it fails on a filtered
            # column it was not asked for (caveql.backends.endpoints.unselected_filters)
            for f in scan.filters:
                if f.kind in LIVE_REFILTERED and f.column not in sel_map.setdefault(f.table, []):
                    sel_map[f.table].append(f.column)
                    refiltered += [c for c in info.columns if (c.owner, c.owner_column) == (f.table, f.column)]
        chosen = {(t, c) for t, cs in sel_map.items() for c in cs}
        if len(chosen) == 1 and not scan.count:
            # the service fails on a request selecting one column (caveql.backends.endpoints.
            # lone_column): ask for a cheap second one too; the answer's extra column is dropped
            ((t, c),) = chosen
            padded = _spare(info, t, {c})
            if padded is not None:
                sel_map[t].append(padded)
    desired, rescale, note = _positions(q, info, cols)
    common: dict[str, Any] = {f"filter_{k}": v for k, v in filters.items()}
    common.update(
        version=None if live else q.version, timestamp=q.timestamp if live else None,
        desired_resolution=desired, limit=scan.limit, offset=scan.offset,
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
        rename, suffixed = _rename(info, cols + refiltered, suffixes)
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
    spare = _spare(info, id_column[0], {id_column[1]}) if id_column is not None else None
    return RemoteCall(
        alias=scan.alias, relation=f"r{index}", request=req, feeds=tuple(feeds), rename=rename,
        columns=("count",) if scan.count else _local_columns(cols), id_column=id_column,
        types=(pa.int64(),) if scan.count else _local_types(cols),
        id_local=idc.name if idc is not None else None, suffixed=suffixed,
        may_exceed_cap=may_exceed and not scan.count, label=label,
        fetch=call_fetch(
            [(f.kind, f.table, f.column, f.value) for f in scan.filters], count=count,
            id_column=id_column if info.kind != "view" else None,  # a view's ids may repeat
            limit=scan.limit, row_cap=cap, max_in_batch=caps.max_in_batch, counted=scan.count,
            fed=bool(scan.feeds),
            count_is="about" if live else "bound" if info.kind == "reference" else "exact"),
        table_rows=count, padded=padded, spare=spare,
        refiltered=tuple(c.owner_column for c in refiltered),
        rescale=None if scan.count else rescale, positions="" if scan.count else note,
    )


def _render_local(q: Query, relations: dict[str, str], b: SqlBuilder, catalog: Catalog,
                  columns: dict[str, tuple[str, ...]]
                  ) -> tuple[str, tuple[OutputSpec, ...], list[str], LocalParts]:
    steps: list[str] = []
    order = q.from_order()
    # SELECT without FROM reads one row of nothing
    first = (relations[order[0]], order[0]) if order else ("(SELECT 1)", "_")
    parts = LocalParts(first, columns if order else {**columns, "_": ()}, aggregate=q.aggregate,
                       distinct=q.distinct)
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
        # (a CROSS JOIN is an INNER JOIN ON TRUE: one form for the statement and the steps)
        parts.joins.append((j.kind if j.kind != "CROSS" else "INNER", relations[j.alias], j.alias, on))
        steps.append(f"{j.kind.lower()} join {j.alias}" + (" ON " if conds else "")
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
    wins = _windows(q)
    if wins:  # after WHERE, GROUP BY and HAVING; in DuckDB, never at the service
        parts.window = True
        parts.lines["window"] = len(steps)
        steps.append("window " + ", ".join(wins))
    if q.qualify is not None:
        parts.qualify = b.expr(q.qualify)
        parts.lines["qualify"] = len(steps)
        steps.append("qualify " + show(q.qualify))
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
        scans = {s.alias: s for s in q.scans}
        for alias in order:
            s = scans.get(alias)
            info = catalog.source(s.table) if s is not None else None
            keys = [k for k in ("id", "id_ref") if info is not None and info.column(k) is not None]
            if keys:
                ties += [(None, f"{quote(alias)}.{quote(k)}", "") for k in keys]
            else:  # (a derived or local source: every output column)
                ties += [(i, "", "") for i in range(1, n + 1)]
        parts.order += dict.fromkeys(ties)
        tie = ", ".join(dict.fromkeys(f"{a}.id" if a in scans else "output columns" for a in order)) \
            or "output columns"
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


def _local_work(q: Query) -> bool:
    """Whether the local step does more than order one call's rows and project them (then the
    rows are fetched: caveql.execute.direct sorts them without DuckDB)."""
    return bool(len(q.scans) != 1 or q.joins or q.where or q.group_by or q.aggregate or q.having is not None
                or q.distinct or q.order_by or q.limit is not None or q.offset or q.derived or q.locals)


def _readable_in_place(c: RemoteCall, fed: Collection[str]) -> bool:
    """Whether the local step may read the call's rows as the backend's relation: a whole
    frozen answer (no count, limit or offset; not live), fed no keys, feeding none, scaled by
    nobody."""
    r = c.request
    return not (r.count or r.limit is not None or r.offset is not None or r.kind == "live" or c.feeds
                or c.rescale is not None or c.alias in fed)


def _windows(q: Query) -> list[str]:
    """The window calls of a block, as EXPLAIN names them (each once, in order of use)."""
    from caveql.logical import Window, walk
    exprs = [o.expr for o in q.outputs] + ([q.qualify] if q.qualify is not None else [])
    exprs += [o.expr for o in q.order_by]
    return list(dict.fromkeys(show(x) for e in exprs for x in walk(e) if isinstance(x, Window)))


def _aggs(e: Expr) -> list[Expr]:
    from caveql.logical import Agg, walk
    return [x for x in walk(e) if isinstance(x, Agg)]


def lower(q: Query, capabilities: Capabilities, catalog: Catalog,
          sub: Callable[[Query, Capabilities, Catalog], PhysicalPlan] | None = None) -> PhysicalPlan:
    """The physical plan of an optimized one-block logical plan (``sub`` lowers its subqueries;
    a plan of several blocks: :func:`caveql.plan.tree.lower_plan`)."""
    subplans = tuple((sub or lower)(s, capabilities, catalog) for s in q.subqueries)
    index = {s.alias: i for i, s in enumerate(q.scans)}
    order = q.order or tuple(s.alias for s in q.scans)
    calls = tuple(_call(q, q.scan(a), index[a], catalog, capabilities) for a in order)
    if capabilities.relations and _local_work(q):
        fed = {f.source for c in calls for f in c.feeds}
        calls = tuple(replace(c, in_place=True) if _readable_in_place(c, fed) else c for c in calls)
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
