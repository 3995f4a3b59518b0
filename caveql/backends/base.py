"""The Backend protocol: one small interface mirroring the materialization service.

The planner talks to every backend (the embedded local datastack, the real
CAVE service over HTTP) through :class:`Backend` only, and reads what a backend
can do from its :class:`Capabilities` — never from ``isinstance`` checks.

A :class:`QueryRequest` is the request the service takes (one of its four query
endpoints), with filter dicts keyed by table exactly as in the JSON body. A
backend answers with a :class:`QueryResult`: an Arrow table shaped as the
service returns it (positions split into ``<col>_x/_y/_z`` Int32 columns,
nullable 64-bit ids, UTC timestamps of tables, naive ones of views) plus the service's warnings.

>>> r = QueryRequest(kind="table", table="synapses_pni_2", version=661,
...                  filter_equal={"synapses_pni_2": {"pre_pt_root_id": 864691135808473885}})
>>> r.body()
{'filter_equal_dict': {'synapses_pni_2': {'pre_pt_root_id': 864691135808473885}}}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

import pyarrow as pa

__all__ = [
    "FILTER_KINDS",
    "Backend",
    "Capabilities",
    "QueryRequest",
    "QueryResult",
    "ROW_CAP_WARNING",
    "Relation",
]

#: The filter dicts of the service's query bodies, in the order the server applies them.
FILTER_KINDS = (
    "in", "notin", "equal", "greater", "less", "greater_equal", "less_equal", "spatial", "regex",
)

#: Prefix of the ``Warning`` header line the service adds when it capped an answer.
ROW_CAP_WARNING = '201 - "Limited query to'

Filters = Mapping[str, Mapping[str, Any]]  # {table: {column: value}}


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do, as data the planner reads.

    - ``row_cap``: rows one query call returns at most (``None``: no cap). A call
      answered at the cap is truncated (``Warning: 201``); the planner splits calls
      so that none reaches it.
    - ``max_in_batch``: ids per ``filter_in_dict`` list the planner sends at most.
    - ``filters``: the filter kinds (see :data:`FILTER_KINDS`) the backend evaluates
      exactly; others are applied locally. The real service ignores ``notin``.
    - ``parallel``: how many calls may run at once.
    - ``joins``/``views``/``live``/``timestamps``: which query endpoints exist.
    - ``select_columns``/``limit``/``offset``: which body keys are honoured.
    - ``graph``: the backend answers ``graph()`` with the segmentation's proofreading graph
      (:class:`caveql.backends.graph.SegmentationGraph`): root ids through time.
    - ``relations``: the backend answers ``relation(request)`` with a :class:`Relation` (or
      ``None`` when it cannot for that request): SQL the engine's local DuckDB step reads in
      place of the call's rows (an archive's Parquet files), so filters and aggregates over
      them run as one query and no rows are materialized in between.
    """

    row_cap: int | None = 200_000
    max_in_batch: int = 10_000
    filters: frozenset[str] = frozenset(
        {"in", "equal", "greater", "less", "greater_equal", "less_equal", "spatial", "regex"}
    )
    parallel: int = 4
    joins: bool = True
    views: bool = True
    live: bool = True
    select_columns: bool = True
    limit: bool = True
    offset: bool = True
    count: bool = True
    graph: bool = False
    relations: bool = False


@dataclass(frozen=True)
class QueryRequest:
    """One call to a query endpoint of the service.

    ``kind`` picks the endpoint:

    - ``"table"``: frozen simple query on ``table`` at ``version``;
    - ``"join"``: frozen join of ``join`` = ``((t1, c1), (t2, c2))`` at ``version``;
    - ``"view"``: view query on ``table`` (the view name) at ``version``;
    - ``"live"``: live_live query of ``table`` (and ``live_joins``
      ``((t1, c1, t2, c2), ...)``) as of ``timestamp``.

    Filters are ``{table: {column: value}}`` as in the service's JSON body;
    spatial values are ``[[x0, y0, z0], [x1, y1, z1]]`` in the table's voxels.
    ``select_columns`` is ``{table: (col, ...)}`` for every kind (a backend maps it
    to the body key its endpoint takes). ``suffix_map`` is ``{table: suffix}``.
    """

    kind: Literal["table", "join", "view", "live"]
    table: str | None = None
    join: tuple[tuple[str, str], tuple[str, str]] | None = None
    live_joins: tuple[tuple[str, str, str, str], ...] = ()
    version: int | None = None
    timestamp: datetime | None = None
    filter_in: Filters = field(default_factory=dict)
    filter_notin: Filters = field(default_factory=dict)
    filter_equal: Filters = field(default_factory=dict)
    filter_greater: Filters = field(default_factory=dict)
    filter_less: Filters = field(default_factory=dict)
    filter_greater_equal: Filters = field(default_factory=dict)
    filter_less_equal: Filters = field(default_factory=dict)
    filter_spatial: Filters = field(default_factory=dict)
    filter_regex: Filters = field(default_factory=dict)
    select_columns: Mapping[str, tuple[str, ...]] | None = None
    offset: int | None = None
    limit: int | None = None
    desired_resolution: tuple[float, float, float] | None = None
    suffix_map: Mapping[str, str] | None = None
    count: bool = False
    #: live calls: answer even when a root-id filter names ids not current at the timestamp
    #: (the service's ``allow_invalid_root_ids`` query argument; it refuses them otherwise)
    allow_invalid_root_ids: bool = False

    def filters(self) -> dict[str, Filters]:
        """The non-empty filter dicts by kind (``"in"``, ``"equal"``, ...)."""
        out: dict[str, Filters] = {}
        for kind in FILTER_KINDS:
            value = getattr(self, f"filter_{kind}")
            if value:
                out[kind] = value
        return out

    def tables(self) -> tuple[str, ...]:
        """The tables this request reads, in endpoint order."""
        if self.kind == "join" and self.join is not None:
            return (self.join[0][0], self.join[1][0])
        if self.kind == "live" and self.live_joins:
            names = [self.table or ""]
            for t1, _c1, t2, _c2 in self.live_joins:
                names += [t for t in (t1, t2) if t not in names]
            return tuple(names)
        return (self.table or "",)

    def body(self) -> dict[str, Any]:
        """The JSON body the service takes for this request (keys with a value only).

        The HTTP backend sends exactly this (see caveclient's request conventions);
        EXPLAIN prints it.
        """
        body: dict[str, Any] = {}
        if self.kind == "join" and self.join is not None:
            body["tables"] = [list(self.join[0]), list(self.join[1])]
        if self.kind == "live":
            body["table"] = self.table
            if self.timestamp is not None:
                body["timestamp"] = self.timestamp.isoformat()
            if self.live_joins:
                body["join_tables"] = [list(j) for j in self.live_joins]
        for kind, value in self.filters().items():
            body[f"filter_{kind}_dict"] = {t: dict(cols) for t, cols in value.items()}
        if self.select_columns is not None:
            if self.kind in ("table", "view"):
                (cols,) = self.select_columns.values()
                body["select_columns"] = list(cols)
            elif self.kind == "join":
                body["select_column_map"] = {t: list(c) for t, c in self.select_columns.items()}
            else:
                body["select_columns"] = {t: list(c) for t, c in self.select_columns.items()}
        if self.offset is not None:
            body["offset"] = self.offset
        if self.limit is not None:
            body["limit"] = self.limit
        if self.suffix_map is not None:
            key = "suffixes" if self.kind == "live" else "suffix_map"
            body[key] = dict(self.suffix_map)
        if self.desired_resolution is not None:
            body["desired_resolution"] = list(self.desired_resolution)
        return body


@dataclass(frozen=True)
class QueryResult:
    """A backend's answer: the Arrow table as the service returns it, plus its warnings.

    ``resolution`` is the ``dataframe_resolution`` the positions are in.
    ``bytes_read`` is what the backend read or received, for EXPLAIN ANALYZE.
    """

    table: pa.Table
    warnings: tuple[str, ...] = ()
    resolution: tuple[float, float, float] | None = None
    bytes_read: int = 0

    @property
    def capped(self) -> bool:
        """True when the service says it limited the answer (``Warning: 201``)."""
        return any(w.startswith(ROW_CAP_WARNING) or "Limited query to" in w for w in self.warnings)


@dataclass(frozen=True)
class Relation:
    """A call's rows as SQL for the engine's DuckDB (``Capabilities.relations``): ``sql`` with
    ``$n`` ``params`` selects the rows the request's answer holds (any order), its columns named
    as the answer's; ``fields`` are the answer's columns with the service's types (the engine
    casts to them); ``scans``: ``(folder, files)`` read, for EXPLAIN ANALYZE.

    >>> Relation("SELECT 1 AS a", (), (pa.field("a", pa.int64()),)).fields[0].name
    'a'
    """

    sql: str
    params: tuple[Any, ...]
    fields: tuple[pa.Field, ...]
    scans: tuple[tuple[str, tuple[str, ...]], ...] = ()


@runtime_checkable
class Backend(Protocol):
    """What every backend provides; mirrors the materialization service's calls.

    Metadata answers are the service's JSON shapes (dicts and lists), so the HTTP
    backend can pass them through and the local backend produces the same.

    A backend whose ``capabilities.graph`` is true also has ``graph()``: the segmentation's
    proofreading graph (:class:`caveql.backends.graph.SegmentationGraph`, the ChunkedGraph's
    calls); it is not a protocol member, so backends without one need not define it.
    """

    name: str
    capabilities: Capabilities

    def info(self) -> dict[str, Any]:
        """Datastack info: ``datastack_name``, ``description``, ``aligned_volume``,
        ``synapse_table``, ``soma_table``, ``viewer_resolution_x/y/z``, ..."""

    def versions(self) -> list[int]:
        """Valid materialization versions."""

    def version_metadata(self, version: int) -> dict[str, Any]:
        """``{id, datastack, version, time_stamp, valid, expires_on, status, is_merged}``."""

    def tables(self, version: int) -> list[str]:
        """Table names at ``version``."""

    def table_metadata(self, version: int, table: str) -> dict[str, Any]:
        """The service's table metadata (``schema_type``, ``description``,
        ``voxel_resolution_x/y/z``, ``reference_table``, ``created``, ...)."""

    def table_columns(self, version: int, table: str) -> pa.Schema:
        """The columns a ``table`` (or ``view``) query without ``select_columns``
        returns, as an Arrow schema in the service's order and types (positions split)."""

    def table_count(self, version: int, table: str) -> int:
        """Row count of ``table`` at ``version`` (the service's ``/count``)."""

    def views(self, version: int) -> dict[str, dict[str, Any]]:
        """``{view_name: metadata}`` at ``version``."""

    def unique_string_values(self, table: str) -> dict[str, list[str | None]]:
        """``{column: [distinct values]}`` for a table's string columns."""

    def query(self, request: QueryRequest) -> QueryResult:
        """Run one query call."""

    def close(self) -> None:
        """Release connections and files."""


def request_summary(request: QueryRequest) -> str:
    """A one-line description of a request, for progress bars and logs.

    >>> request_summary(QueryRequest(kind="table", table="t", version=1))
    'table t @ v1'
    """
    where = f"@ v{request.version}" if request.version is not None else (
        f"@ {request.timestamp.isoformat()}" if request.timestamp else "")
    return f"{request.kind} {'+'.join(request.tables())} {where}".strip()


def empty_filters() -> dict[str, dict[str, Any]]:
    """A fresh ``{table: {column: value}}`` dict (helper for request builders)."""
    return {}


def merge_filters(*dicts: Filters) -> dict[str, dict[str, Any]]:
    """Merge ``{table: {col: v}}`` dicts; later values win.

    >>> merge_filters({"t": {"a": 1}}, {"t": {"b": 2}, "u": {"c": 3}})
    {'t': {'a': 1, 'b': 2}, 'u': {'c': 3}}
    """
    out: dict[str, dict[str, Any]] = {}
    for d in dicts:
        for table, cols in d.items():
            out.setdefault(table, {}).update(cols)
    return out


def as_tuple3(values: Sequence[float]) -> tuple[float, float, float]:
    """Three floats from a sequence, for resolutions.

    >>> as_tuple3([4, 4, 40])
    (4.0, 4.0, 40.0)
    """
    x, y, z = (float(v) for v in values)
    return (x, y, z)
