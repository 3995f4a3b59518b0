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
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from caveql.backends.base import QueryRequest

__all__ = [
    "API_VERSIONS",
    "DEFAULT_GLOBAL_SERVER",
    "Endpoints",
    "INFO_VERSION",
    "SCHEMA_TYPES_ALL",
    "SCHEMA_VERSIONS",
    "SERVER_VERSION",
    "datastack_info",
    "encode_body",
    "query_headers",
    "query_params",
    "query_target",
    "schema_type",
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
            ("allow_missing_lookups", "False"), ("allow_invalid_root_ids", "False"),
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
