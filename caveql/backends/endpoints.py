"""The materialization service's URLs, query strings and JSON bodies, as caveclient 8.2.1 sends them.

One place builds every remote call, so the HTTP backend's requests and EXPLAIN's
printout are the same bytes. Paths are relative to the server (the datastack's
``local_server`` for materialize routes, the global server for info and schema
routes); see docs/architecture.md and ../shared/reference/caveclient.md §3-§4.

>>> from caveql.backends.base import QueryRequest
>>> req = QueryRequest(kind="table", table="synapses_pni_2", version=661,
...                    filter_equal={"synapses_pni_2": {"pre_pt_root_id": 864691135808473885}})
>>> print(query_target(req, "minnie65_demo"))
/materialize/api/v3/datastack/minnie65_demo/version/661/table/synapses_pni_2/query?return_pyarrow=True&arrow_format=True&split_positions=True&direct_sql_pandas=True
>>> encode_body(req)
b'{"filter_equal_dict": {"synapses_pni_2": {"pre_pt_root_id": 864691135808473885}}}'
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

import pyarrow as pa

from caveql.backends.base import QueryRequest
from caveql.backends.wire import fold_positions

__all__ = [
    "API_VERSIONS",
    "DEFAULT_GLOBAL_SERVER",
    "Endpoints",
    "INFO_VERSION",
    "SCHEMA_TYPES_ALL",
    "SCHEMA_VERSIONS",
    "LIVE_REFILTERED",
    "SERVER_VERSION",
    "add_columns",
    "cap_notice",
    "cut_at_cap",
    "datastack_info",
    "encode_body",
    "lone_column",
    "pad_lone_column",
    "query_headers",
    "query_params",
    "query_target",
    "schema_columns",
    "schema_type",
    "spare_column",
    "unselected_filters",
    "wire_body",
]

#: caveclient's default global server (info, auth and schema services).
DEFAULT_GLOBAL_SERVER = "https://global.daf-apis.com"

#: Materialize routes outside any API version.
API_VERSIONS = "/materialize/api/versions"
SERVER_VERSION = "/materialize/version"

#: Info service routes (on the global server).
INFO_VERSION = "/info/version"

#: Schema service routes (on the global server), read by caveclient's table manager.
SCHEMA_VERSIONS = "/schema/versions"
SCHEMA_TYPES_ALL = "/schema/api/v2/types_all"


def datastack_info(datastack: str) -> str:
    """The info service's full datastack record.

    >>> datastack_info("minnie65_public")
    '/info/api/v2/datastack/full/minnie65_public'
    """
    return f"/info/api/v2/datastack/full/{_seg(datastack)}"


def schema_type(schema: str) -> str:
    """One schema's JSON-schema definition.

    >>> schema_type("synapse")
    '/schema/api/v2/type/synapse'
    """
    return f"/schema/api/v2/type/{_seg(schema)}"


def _seg(name: str | int) -> str:
    # caveclient pastes names with str.format and requests percent-encodes what a path
    # cannot hold; quoting every reserved character gives the same URL for real names
    # and a safe one for hostile ones.
    return quote(str(name), safe="")


@dataclass(frozen=True)
class Endpoints:
    """Paths of one datastack's materialize routes for an API version (3, else 2).

    caveclient uses the v2 path for ``tables`` and ``table_count`` even on API v3,
    and the v3 path for live queries on both; so do we.

    >>> ep = Endpoints("minnie65_demo")
    >>> ep.tables(661)
    '/materialize/api/v2/datastack/minnie65_demo/version/661/tables'
    >>> ep.table_metadata(661, "nucleus_detection_v0")
    '/materialize/api/v3/datastack/minnie65_demo/version/661/table/nucleus_detection_v0/metadata'
    """

    datastack: str
    api_version: int = 3

    @property
    def _api(self) -> str:
        return f"/materialize/api/v{self.api_version}/datastack/{_seg(self.datastack)}"

    @property
    def _v2(self) -> str:
        return f"/materialize/api/v2/datastack/{_seg(self.datastack)}"

    @property
    def _v3(self) -> str:
        return f"/materialize/api/v3/datastack/{_seg(self.datastack)}"

    def versions(self) -> str:
        """``GET`` valid versions (caveclient adds ``?expired=False``)."""
        return f"{self._api}/versions"

    def version_metadata(self, version: int) -> str:
        """``GET`` one version's metadata."""
        return f"{self._api}/version/{_seg(version)}"

    def versions_metadata(self) -> str:
        """``GET`` every version's metadata (``?expired=False``)."""
        return f"{self._api}/metadata"

    def tables(self, version: int) -> str:
        """``GET`` table names (the v2 path on every API version)."""
        return f"{self._v2}/version/{_seg(version)}/tables"

    def table_count(self, version: int, table: str) -> str:
        """``GET`` a table's row count (the v2 path on every API version)."""
        return f"{self._v2}/version/{_seg(version)}/table/{_seg(table)}/count"

    def table_metadata(self, version: int, table: str) -> str:
        """``GET`` one table's metadata."""
        return f"{self._api}/version/{_seg(version)}/table/{_seg(table)}/metadata"

    def tables_metadata(self, version: int) -> str:
        """``GET`` every table's metadata (API v3 only)."""
        return f"{self._v3}/version/{_seg(version)}/tables/metadata"

    def views(self, version: int) -> str:
        """``GET`` ``{view: metadata}`` (API v3 only)."""
        return f"{self._v3}/version/{_seg(version)}/views"

    def view_metadata(self, version: int, view: str) -> str:
        """``GET`` one view's metadata."""
        return f"{self._v3}/version/{_seg(version)}/views/{_seg(view)}/metadata"

    def view_schema(self, version: int, view: str) -> str:
        """``GET`` one view's ``{column: {"type": ...}}``."""
        return f"{self._v3}/version/{_seg(version)}/views/{_seg(view)}/schema"

    def view_schemas(self, version: int) -> str:
        """``GET`` every view's schema."""
        return f"{self._v3}/version/{_seg(version)}/views/schemas"

    def unique_string_values(self, table: str) -> str:
        """``GET`` ``{column: [values]}`` of a table's string columns (no version)."""
        return f"{self._v3}/table/{_seg(table)}/unique_string_values"

    def query(self, request: QueryRequest) -> str:
        """The ``POST`` path of a query request.

        >>> Endpoints("ds").query(QueryRequest(kind="live", table="t"))
        '/materialize/api/v3/datastack/ds/query'
        """
        if request.kind == "live":
            return f"{self._v3}/query"
        if request.version is None:
            raise ValueError(f"a {request.kind} query needs a version")
        base = f"{self._api}/version/{_seg(request.version)}"
        if request.kind == "table":
            return f"{base}/table/{_seg(request.table or '')}/query"
        if request.kind == "join":
            return f"{base}/query"
        if request.kind == "view":
            return f"{self._v3}/version/{_seg(request.version)}/views/{_seg(request.table or '')}/query"
        raise ValueError(f"unknown query kind {request.kind!r}")


def query_params(request: QueryRequest) -> list[tuple[str, str]]:
    """The query string caveclient sends with a query, in its order.

    >>> query_params(QueryRequest(kind="table", table="t", version=1, count=True))[-2:]
    [('count', 'True'), ('direct_sql_pandas', 'True')]
    """
    if request.kind == "live":
        return [
            ("return_pyarrow", "True"), ("arrow_format", "True"), ("merge_reference", "False"),
            ("allow_missing_lookups", "False"),
            ("allow_invalid_root_ids", "True" if request.allow_invalid_root_ids else "False"),
            ("direct_sql_pandas", "True"),
        ]
    params = [("return_pyarrow", "True"), ("arrow_format", "True"), ("split_positions", "True")]
    if request.count:
        params.append(("count", "True"))
    params.append(("direct_sql_pandas", "True"))
    return params


def query_headers() -> dict[str, str]:
    """Headers of every query ``POST`` (Arrow answers, ZSTD-compressed inside IPC)."""
    return {"Content-Type": "application/json", "Accept-Encoding": "zstd"}


# caveclient's insertion order of body keys (materializationengine.py
# _format_query_components and live_live_query): the same bytes on the wire.
_ORDER_FROZEN = (
    "tables", "filter_in_dict", "filter_notin_dict", "filter_equal_dict", "filter_greater_dict",
    "filter_less_dict", "filter_greater_equal_dict", "filter_less_equal_dict", "filter_spatial_dict",
    "filter_regex_dict", "select_columns", "select_column_map", "offset", "suffix_map", "limit",
    "desired_resolution",
)
_ORDER_LIVE = (
    "table", "timestamp", "join_tables", "filter_in_dict", "filter_notin_dict", "filter_equal_dict",
    "filter_greater_dict", "filter_less_dict", "filter_greater_equal_dict", "filter_less_equal_dict",
    "filter_spatial_dict", "filter_regex_dict", "select_columns", "offset", "limit", "suffixes",
    "desired_resolution",
)


def _timestamp(ts: datetime) -> str:
    # caveclient's convert_timestamp: naive means UTC, aware is converted to UTC.
    ts = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
    return ts.isoformat()


def _number(v: float) -> float | int:
    return int(v) if float(v).is_integer() else v


def wire_body(request: QueryRequest) -> dict[str, Any]:
    """``request.body()`` with caveclient's key order, UTC timestamps and integral resolutions as ints.

    >>> from datetime import datetime
    >>> wire_body(QueryRequest(kind="live", table="t", timestamp=datetime(2024, 1, 1), limit=5,
    ...                        desired_resolution=(1.0, 1.0, 1.0)))
    {'table': 't', 'timestamp': '2024-01-01T00:00:00+00:00', 'limit': 5, 'desired_resolution': [1, 1, 1]}
    """
    body = request.body()
    if request.kind == "live" and request.timestamp is not None:
        body["timestamp"] = _timestamp(request.timestamp)
    if "desired_resolution" in body:
        body["desired_resolution"] = [_number(v) for v in body["desired_resolution"]]
    order = _ORDER_LIVE if request.kind == "live" else _ORDER_FROZEN
    rank = {k: i for i, k in enumerate(order)}
    return {k: body[k] for k in sorted(body, key=lambda k: rank.get(k, len(rank)))}


def _default(value: Any) -> Any:
    # What caveclient's BaseEncoder does for the values a request may carry.
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    raise TypeError(f"cannot send a {type(value).__name__} in a query body")


def encode_body(request: QueryRequest) -> bytes:
    """The exact bytes of the JSON body (``json.dumps`` defaults, as caveclient)."""
    return json.dumps(wire_body(request), default=_default).encode()


def query_target(request: QueryRequest, datastack: str, api_version: int = 3) -> str:
    """Path and query string of a query call, for EXPLAIN and logs (never holds a token)."""
    path = Endpoints(datastack, api_version).query(request)
    return f"{path}?{urlencode(query_params(request))}"


# ---------------------------------------------------------------------- requests the service fails on
#
# MaterializationEngine 5.26.4 (query.py fix_columns_with_query) types each answer column with
# ``getattr(<the column's SQL type>, name)`` when the query selects exactly one column entity:
# an AttributeError, HTTP 500, for every table, join, view and live query (v2 and v3, list or
# dict select_columns) that selects a single column (counts are not typed, so they pass). A
# position is three entities (ST_X/ST_Y/ST_Z) and so passes too, but no request ever needs a
# lone column: the planner adds a cheap second one and drops it locally, and the HTTP backend
# pads whatever still selects one (pad_lone_column) before encoding. Likewise a live query must
# select every column it filters on (unselected_filters).


def lone_column(request: QueryRequest) -> tuple[str, str] | None:
    """``(table, column)`` when ``request`` selects exactly one column (which the service fails on).

    >>> lone_column(QueryRequest(kind="table", table="t", version=1, select_columns={"t": ("id",)}))
    ('t', 'id')
    >>> lone_column(QueryRequest(kind="join", join=(("a", "x"), ("b", "id")), version=1,
    ...                          select_columns={"a": ("id",), "b": ("id",)})) is None
    True
    >>> lone_column(QueryRequest(kind="table", table="t", version=1, count=True,
    ...                          select_columns={"t": ("id",)})) is None
    True
    """
    if request.select_columns is None or request.count:
        return None
    pairs = list(dict.fromkeys((t, c) for t, cols in request.select_columns.items() for c in cols))
    return pairs[0] if len(pairs) == 1 else None


def pad_lone_column(request: QueryRequest, spare: str) -> QueryRequest:
    """``request`` with ``spare`` added to the table of its lone selected column.

    >>> r = QueryRequest(kind="table", table="t", version=1, select_columns={"t": ("id",)})
    >>> encode_body(pad_lone_column(r, "valid"))
    b'{"select_columns": ["id", "valid"]}'
    """
    lone = lone_column(request)
    if lone is None:
        return request
    return add_columns(request, [(lone[0], spare)])


def add_columns(request: QueryRequest, extra: Iterable[tuple[str, str]]) -> QueryRequest:
    """``request`` also selecting each ``(table, column)`` of ``extra`` (after its own columns)."""
    if request.select_columns is None:
        return request
    cols = {t: tuple(c) for t, c in request.select_columns.items()}
    for t, c in extra:
        if c not in cols.get(t, ()):
            cols[t] = (*cols.get(t, ()), c)
    return replace(request, select_columns=cols)


#: The filters the live endpoint applies a second time to its answer, by column name
#: (api2.py ``apply_filters``, after merging the materialized and production rows).
LIVE_REFILTERED = ("in", "equal", "greater", "less", "greater_equal", "less_equal")


def unselected_filters(request: QueryRequest) -> list[tuple[str, str]]:
    """``(table, column)`` a live request filters on but does not select.

    The live endpoint filters its answer again with ``df[column_names[table][column]]``: a
    filtered column that is not selected is a KeyError, HTTP 500. (Frozen queries filter in SQL.)

    >>> unselected_filters(QueryRequest(kind="live", table="t", select_columns={"t": ("id",)},
    ...                                 filter_greater={"t": {"volume": 5}}, filter_equal={"t": {"id": 1}}))
    [('t', 'volume')]
    """
    if request.kind != "live" or request.select_columns is None or request.count:
        return []
    chosen = {(t, c) for t, cols in request.select_columns.items() for c in cols}
    out: list[tuple[str, str]] = []
    for kind in LIVE_REFILTERED:
        for t, cols in getattr(request, f"filter_{kind}").items():
            out += [(t, c) for c in cols if (t, c) not in chosen and (t, c) not in out]
    return out


def _width(t: pa.DataType | None) -> float:
    if t is None:
        return 64.0
    if pa.types.is_boolean(t):
        return 0.125
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return t.bit_width / 8
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return 8.0
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return 32.0
    return 48.0


def spare_column(columns: Iterable[tuple[str, pa.DataType | None]], taken: Collection[str]) -> str | None:
    """The cheapest column of ``columns`` (a table's non-position ``(name, Arrow type)``) not in
    ``taken``: a second column for a request that would select one. Root and supervoxel ids come
    last (the service may add a supervoxel id before a root id).

    >>> spare_column([("id", pa.int64()), ("pt_root_id", pa.int64()), ("valid", pa.bool_()),
    ...               ("volume", pa.float32())], {"id"})
    'valid'
    >>> spare_column([("id", pa.int64()), ("pt_root_id", pa.int64())], {"id"})
    'pt_root_id'
    >>> spare_column([("id", pa.int64())], {"id"}) is None
    True
    """
    best: tuple[tuple[bool, float, int], str] | None = None
    for i, (name, t) in enumerate(columns):
        if name in taken:
            continue
        key = (name.endswith(("_root_id", "_supervoxel_id")), _width(t), i)
        if best is None or key < best[0]:
            best = (key, name)
    return best[1] if best is not None else None


def schema_columns(schema: pa.Schema) -> list[tuple[str, pa.DataType]]:
    """A service answer's columns without its positions (each ``P_x, P_y, P_z`` integer trio).

    >>> s = pa.schema([("id", pa.int64()), ("pt_position_x", pa.int32()), ("pt_position_y", pa.int32()),
    ...                ("pt_position_z", pa.int32()), ("valid", pa.bool_())])
    >>> [n for n, _ in schema_columns(s)]
    ['id', 'valid']
    """
    return [(n, schema.field(i).type) for n, position, i in fold_positions(schema) if not position]


# ---------------------------------------------------------------------- the row cap notice
#
# A frozen table, join or view answer of exactly ``limit`` rows carries
# ``201 - "Limited query to {limit} rows`` with ``limit = min(body limit, QUERY_LIMIT_SIZE)``;
# a live answer of ``limit`` rows or more carries "result has N entries, which is equal or
# more <spaces> than limit of {limit} there may be more results which are not shown" (the
# engine's source continues that string over a line break: the gap is a run of spaces). Both name the
# limit the service applied: below the limit the request asked for (or without one), it is the
# deployment's row cap and the answer was cut short.

_NOTICE = (re.compile(r'Limited query to (\d+) rows'), re.compile(r"equal or more\s+than limit of (\d+)"))


def cap_notice(warnings: Sequence[str]) -> int | None:
    """The limit a cap notice among ``warnings`` names (``None``: no notice).

    >>> cap_notice(['201 - "Limited query to 1000 rows'])
    1000
    >>> cap_notice(["result has 7 entries, which is equal or more         than limit of 7 there may be more"])
    7
    >>> cap_notice(["Table Owner Notice on t: beware"]) is None
    True
    """
    found = [int(m.group(1)) for w in warnings for rx in _NOTICE for m in [rx.search(w)] if m]
    return min(found) if found else None


def cut_at_cap(request: QueryRequest, warnings: Sequence[str]) -> int | None:
    """The service's row cap when it cut this answer short (rows are missing), else ``None``.

    An answer stopped by the request's own limit is whole: the notice then names that limit.

    >>> r = QueryRequest(kind="table", table="t", version=1, limit=10)
    >>> cut_at_cap(r, ['201 - "Limited query to 3 rows']), cut_at_cap(r, ['201 - "Limited query to 10 rows'])
    (3, None)
    >>> cut_at_cap(QueryRequest(kind="table", table="t", version=1), ['201 - "Limited query to 10 rows'])
    10
    """
    if request.count:
        return None
    n = cap_notice(warnings)
    if n is None or (request.limit is not None and n >= request.limit):
        return None
    return n
