"""The real CAVE service over HTTP (httpx), speaking exactly what caveclient 8.2.1 sends.

Discovery is caveclient's: the global server's info service gives the datastack's
``local_server``; ``/materialize/api/versions`` picks API v3 (else v2); the
default version is the newest valid one. Every query is the ``POST`` that
:mod:`caveql.backends.endpoints` builds (the same bytes EXPLAIN prints), answered
by an Arrow IPC stream (:mod:`caveql.backends.wire`).

A request selecting a single column, or a live one filtering on a column it does not select,
is never sent as asked (the service fails on both with HTTP 500): the columns it needs are added
and dropped from the answer. The cap notice of an
answer the service cut at its row cap is read, and a cap below ``row_cap`` is kept for the
backend's lifetime (``capabilities.row_cap``).

Robustness: connect/read timeouts; retries with exponential backoff and jitter on
timeouts, dropped connections, truncated bodies, 429 (honouring ``Retry-After``),
502, 503 and 504, never on other 4xx; a host name that does not resolve, a refused
connection or an untrusted certificate fail at once (a retry cannot mend them), naming
the host and URL, with the help of the surface in use (:mod:`caveql.backends.unreachable`); 401/403
become an :class:`AuthError` that says how to get a token; a 500's JSON ``message`` is quoted in a
:class:`ServiceError`. A call either returns its whole answer or raises.
The backend is thread-safe; :meth:`HttpBackend.query_many` fetches a batch over a
bounded pool, all or nothing. Versioned answers are cached on disk
(:mod:`caveql.cache`); live ones never.

Cancellation (:mod:`caveql.cancel`): a cancelled statement sends no further request,
its retry waits end at once, and a request waiting for (or reading) its answer is
abandoned within ~0.2 s (:mod:`caveql.backends.cancellable`); each raises
:class:`~caveql.errors.CancelledError`.

>>> import httpx
>>> b = HttpBackend("minnie65_public", token="0123456789abcdef0123456789abcdef",
...                 transport=httpx.MockTransport(lambda r: httpx.Response(404)), cache=False)
>>> b
HttpBackend(datastack='minnie65_public', server='https://global.daf-apis.com', token=argument)
>>> b.close()
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.compute as pc

from caveql import cancel
from caveql._version import __version__
from caveql.backends.auth import Token, find_token, token_help
from caveql.backends.base import ROW_CAP_WARNING, Capabilities, QueryRequest, QueryResult, request_summary
from caveql.backends.cancellable import make_cancellable
from caveql.backends.graph_http import HttpGraph, graph_source
from caveql.backends.endpoints import (
    API_VERSIONS,
    DEFAULT_GLOBAL_SERVER,
    SERVER_VERSION,
    Endpoints,
    add_columns,
    cap_notice,
    cut_at_cap,
    datastack_info,
    encode_body,
    lone_column,
    pad_lone_column,
    query_headers,
    query_params,
    schema_columns,
    spare_column,
    unselected_filters,
)
from caveql.backends.progress import Progress
from caveql.backends.transport import GET_HEADERS, RETRY_STATUS, Transport
from caveql.backends.wire import ARROW_CONTENT_TYPE, check_digest, decode_arrow
from caveql.cache import ResultCache, cache_key
from caveql.errors import (
    AuthError,
    BackendError,
    CaveqlError,
    ConfigError,
    ServiceError,
    TransportError,
    UnknownTableError,
)

__all__ = ["HttpBackend", "RETRY_STATUS"]  # RETRY_STATUS: caveql.backends.transport's

#: The oldest server whose typed Arrow answers caveclient 8 accepts (direct_sql_pandas).
MIN_SERVER_VERSION = (5, 13, 0)



class HttpBackend(Transport):
    """A :class:`~caveql.backends.base.Backend` over the materialization service.

    - ``server``: the global server (info service); ``local_server`` skips
      discovery of the materialize host (the info record is still read).
    - ``token``: else ``CAVE_TOKEN``, else caveclient's secret files.
    - ``timeout``: seconds, a ``(connect, read)`` pair or an ``httpx.Timeout``.
    - ``retries``: extra attempts for retriable failures; ``backoff``/``max_backoff``
      shape the exponential, jittered waits.
    - ``parallel``: calls in flight at once (also ``capabilities.parallel``).
    - ``row_cap``: the deployment's rows per call (``QUERY_LIMIT_SIZE``, 200,000 by default).
      A deployment that caps lower says so in its answers' cap notice: the backend then keeps
      the smaller cap for its lifetime (``capabilities.row_cap``, ``row_cap_learned``).
    - ``cache``: ``True`` (the default folder, unless ``CAVEQL_NO_CACHE=1``), ``False``, or a
      :class:`ResultCache`.
    - ``progress``: ``None`` (on a terminal), ``True`` or ``False``.
    """

    name = "http"

    def __init__(
        self,
        datastack: str,
        server: str = DEFAULT_GLOBAL_SERVER,
        token: str | None = None,
        *,
        timeout: float | tuple[float, float] | httpx.Timeout = (10.0, 300.0),
        retries: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        parallel: int = 4,
        row_cap: int = 200_000,
        transport: httpx.BaseTransport | None = None,
        cache: ResultCache | bool = True,
        progress: bool | None = None,
        local_server: str | None = None,
        secrets_dir: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not datastack:
            raise ConfigError("a datastack name is required")
        if retries < 0 or parallel < 1:
            raise ConfigError("retries must be >= 0 and parallel >= 1")
        self.datastack = datastack
        self.server = server.rstrip("/")
        self._token: Token | None = find_token(self.server, token, env=env, secrets_dir=secrets_dir)
        if isinstance(timeout, httpx.Timeout):
            self.timeout = timeout
        elif isinstance(timeout, tuple):
            self.timeout = httpx.Timeout(timeout[1], connect=timeout[0])
        else:
            self.timeout = httpx.Timeout(float(timeout))
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.parallel = parallel
        self.row_cap = row_cap
        self.row_cap_learned = False  # the cap was lowered by an answer the service cut short
        self.progress = progress
        self._sleep = sleep
        if cache is True and os.environ.get("CAVEQL_NO_CACHE", "").lower() in ("1", "true", "yes"):
            self.cache: ResultCache | None = None  # `caveql --no-cache`
        elif cache is True:
            self.cache = ResultCache()
        elif cache is False:
            self.cache = None
        else:
            self.cache = cache
        try:
            self._client = httpx.Client(
                transport=transport,
                timeout=self.timeout,
                follow_redirects=False,  # a redirect means a login page: report it, don't follow
                limits=httpx.Limits(max_connections=2 * parallel, max_keepalive_connections=2 * parallel),
                headers={"User-Agent": f"caveql/{__version__}"},
            )
        except ValueError as exc:
            raise ConfigError(f"bad HTTP settings: {exc}") from exc
        #: whether a cancel aborts a request in flight (httpx's own transport), not only the next one
        self.aborts_in_flight = make_cancellable(self._client)
        self._lock = threading.RLock()
        self._local_server = local_server.rstrip("/") if local_server else None
        self._info: dict[str, Any] | None = None
        self._api_version: int | None = None
        self._server_version: str | None = None
        self._memo: dict[tuple[Any, ...], Any] = {}
        self.calls = 0  # requests sent (incl. retries), for tests and EXPLAIN ANALYZE
        # one progress line for all calls in flight (the engine runs them from its own pool)
        self._inflight = 0
        self._bar: Progress | None = None

    def __repr__(self) -> str:
        source = self._token.source if self._token else None
        return f"HttpBackend(datastack={self.datastack!r}, server={self.server!r}, token={source})"

    # ------------------------------------------------------------------ discovery

    def _discover(self) -> None:
        with self._lock:
            if self._info is not None:
                return
            info = self._get_json(self.server + datastack_info(self.datastack), what="datastack info")
            if not isinstance(info, dict) or not (self._local_server or info.get("local_server")):
                raise ServiceError(f"the info service has no local_server for datastack {self.datastack!r}")
            local = self._local_server or str(info["local_server"]).rstrip("/")
            try:
                offered = self._get_json(local + API_VERSIONS, what="API versions")
                common = {2, 3} & {int(v) for v in offered}
                api = max(common) if common else 2
            except ServiceError:
                api = 2  # caveclient's fallback when the server does not say
            server_version = self._server_version_of(local)
            self._local_server, self._api_version, self._server_version = local, api, server_version
            self._info = {"datastack_name": self.datastack, **info}

    def _server_version_of(self, local: str) -> str | None:
        resp, body = self._send("GET", local + SERVER_VERSION, headers=GET_HEADERS, what="server version")
        if resp.status_code == 404:
            return None
        self._check(resp, body, "server version")
        version = str(self._json(body, "server version"))
        try:
            parts = tuple(int(p) for p in version.split(".")[:3])
        except ValueError:
            return version
        if parts < MIN_SERVER_VERSION:
            raise ServiceError(
                f"the materialization service at {local} runs version {version}; caveql (like "
                f"caveclient 8) needs >= 5.13.0 for typed answers"
            )
        return version

    @property
    def local_server(self) -> str:
        """The materialize host (after discovery)."""
        self._discover()
        assert self._local_server is not None
        return self._local_server

    @property
    def api_version(self) -> int:
        """The negotiated materialize API version (3, else 2)."""
        self._discover()
        assert self._api_version is not None
        return self._api_version

    @property
    def endpoints(self) -> Endpoints:
        """Path builders for this datastack and API version."""
        return Endpoints(self.datastack, self.api_version)

    @property
    def capabilities(self) -> Capabilities:  # type: ignore[override]
        """The service's limits: ``row_cap`` rows per call, no server-side NOT IN, v3 extras;
        ``graph`` when the datastack's ``segmentation_source`` is a graphene (ChunkedGraph) one."""
        v3 = self.api_version >= 3
        return Capabilities(row_cap=self.row_cap, parallel=self.parallel, views=v3, live=v3,
                            graph=graph_source(self.info()) is not None)

    def graph(self) -> HttpGraph | None:
        """The segmentation's proofreading graph: the ChunkedGraph the info's
        ``segmentation_source`` names (:mod:`caveql.backends.graph_http`), over this backend's
        transport; ``None`` when the datastack has none. Made once."""
        return self._memoized(("graph",), self._make_graph)

    def _make_graph(self) -> HttpGraph | None:
        found = graph_source(self.info())
        if found is None:
            return None
        host, table = found
        # the info's own host (the usual deployment) or none: the materialize host, as caveclient
        # asks (it honours a local_server override)
        if not host or host == str(self.info().get("local_server") or "").rstrip("/"):
            host = self.local_server
        return HttpGraph(self, host, table)

    def _memoized(self, key: tuple[Any, ...], fetch: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._memo:
                return self._memo[key]
        value = fetch()
        with self._lock:
            self._memo[key] = value
        return value

    def _mat(self, path: str, *, params: Sequence[tuple[str, str]] = (), what: str) -> Any:
        return self._get_json(self.local_server + path, params=params, what=what)

    # ------------------------------------------------------------------ metadata

    def info(self) -> dict[str, Any]:
        """The info service's datastack record (plus ``datastack_name``)."""
        self._discover()
        assert self._info is not None
        return dict(self._info)

    def versions(self) -> list[int]:
        """Valid versions, oldest first (re-read at most every five minutes)."""
        now = time.monotonic()
        with self._lock:
            hit = self._memo.get(("versions",))
            if hit is not None and now - hit[0] < 300:
                return list(hit[1])
        got = self._mat(self.endpoints.versions(), params=[("expired", "False")], what="versions")
        versions = sorted(int(v) for v in got)
        with self._lock:
            self._memo[("versions",)] = (now, versions)
        return versions

    def version_metadata(self, version: int) -> dict[str, Any]:
        """``{id, datastack, version, time_stamp, valid, expires_on, status, is_merged}``."""
        return self._memoized(("version", version), lambda: self._mat(
            self.endpoints.version_metadata(version), what=f"metadata of version {version}"))

    def tables(self, version: int) -> list[str]:
        """Table names at ``version``."""
        return list(self._memoized(("tables", version), lambda: self._mat(
            self.endpoints.tables(version), what=f"tables of version {version}") or []))

    def table_metadata(self, version: int, table: str) -> dict[str, Any]:
        """The service's metadata dict of one table (``voxel_resolution_x/y/z`` as sent)."""
        return dict(self._memoized(("meta", version, table), lambda: self._mat(
            self.endpoints.table_metadata(version, table), what=f"metadata of table {table!r}")))

    def table_count(self, version: int, table: str) -> int:
        """Row count of ``table`` at ``version``."""
        return int(self._memoized(("count", version, table), lambda: self._mat(
            self.endpoints.table_count(version, table), what=f"row count of {table!r}")))

    def views(self, version: int) -> dict[str, dict[str, Any]]:
        """``{view: metadata}`` (empty on API v2, which has no views)."""
        if self.api_version < 3:
            return {}
        return dict(self._memoized(("views", version), lambda: self._views(version)))

    def _views(self, version: int) -> dict[str, dict[str, Any]]:
        response, body = self._send("GET", self.local_server + self.endpoints.views(version),
                                    headers=GET_HEADERS, what="views")
        if response.status_code == 404:
            return {}  # the service answers 404 when a version has none
        self._check(response, body, "views")
        return self._json(body, "views") or {}

    def view_metadata(self, version: int, view: str) -> dict[str, Any]:
        """One view's metadata row."""
        return dict(self._memoized(("view_meta", version, view), lambda: self._mat(
            self.endpoints.view_metadata(version, view), what=f"metadata of view {view!r}")))

    def view_schema(self, version: int, view: str) -> dict[str, dict[str, str]]:
        """One view's ``{column: {"type": ...}}``."""
        return dict(self._memoized(("view_schema", version, view), lambda: self._mat(
            self.endpoints.view_schema(version, view), what=f"schema of view {view!r}")))

    def unique_string_values(self, table: str) -> dict[str, list[str | None]]:
        """``{column: [distinct values]}`` of a table's string columns."""
        return self._mat(self.endpoints.unique_string_values(table), what=f"string values of {table!r}")

    def table_columns(self, version: int, table: str) -> pa.Schema:
        """The Arrow schema of an unfiltered query of ``table`` (a limit-1 query, cached)."""
        def fetch() -> pa.Schema:
            kind = "view" if table in self.views(version) else "table"
            if kind == "table" and table not in self.tables(version):
                raise UnknownTableError(f"no table or view {table!r} at version {version}",
                                        candidates=_close(table, [*self.tables(version), *self.views(version)]))
            result = self.query(QueryRequest(kind=kind, table=table, version=version, limit=1))
            return result.table.schema.remove_metadata()

        return self._memoized(("columns", version, table), fetch)

    # ------------------------------------------------------------------ queries

    def request_target(self, request: QueryRequest) -> str:
        """Full URL (no query string) of a query call."""
        return self.local_server + self.endpoints.query(request)

    def _begin(self) -> Progress:
        with self._lock:
            self._inflight += 1
            if self._bar is None:
                self._bar = Progress("caveql: fetching", enabled=self.progress)
            return self._bar

    def _end(self, rows: int) -> None:
        with self._lock:
            self._inflight -= 1
            bar = self._bar
            if bar is not None:
                bar.update(rows=rows)
                if self._inflight == 0:
                    bar.close()
                    self._bar = None

    def query(self, request: QueryRequest) -> QueryResult:
        """Run one query call; the whole answer or an error, never part of one.

        While calls are in flight for more than half a second, a progress line (calls, rows,
        MB) is drawn on stderr when it is a terminal (``progress=False`` silences it).
        """
        rows = 0
        progress = self._begin()
        try:
            result = self._query(request, progress)
            rows = result.table.num_rows
            return result
        finally:
            self._end(rows)

    def _query(self, request: QueryRequest, progress: Progress) -> QueryResult:
        if request.kind in ("view", "live") and self.api_version < 3:
            raise ServiceError(f"{request.kind} queries need materialize API v3; the server offers v2 only")
        # requests the service fails on (HTTP 500) are never sent as asked; the planner normally
        # avoided them already: a live query must select what it filters on, and no query may
        # select a single column. The columns added are dropped from the answer.
        asked = set() if request.select_columns is None else {
            c for cols in request.select_columns.values() for c in cols}
        extra = unselected_filters(request)
        request = add_columns(request, extra)
        lone = lone_column(request)
        if lone is not None:
            spare = self._spare(request, *lone)
            extra.append((lone[0], spare))
            request = pad_lone_column(request, spare)
        result = self._fetch(request, progress)
        # (a name also asked for from another table comes back suffixed, and is left in)
        drop = [c for _t, c in extra if c not in asked and c in result.table.column_names]
        if drop:
            table = result.table.drop_columns(list(dict.fromkeys(drop)))
            result = QueryResult(table, result.warnings, result.resolution, result.bytes_read)
        return result

    def _spare(self, request: QueryRequest, table: str, column: str) -> str:
        """A cheap second column of ``table`` for a request selecting only ``column``: from the
        table's schema (cached; a live request reads the newest version's), else ``id``/``valid``
        (every materialized table has both)."""
        try:
            version = request.version if request.version is not None else max(self.versions())
            found = spare_column(schema_columns(self.table_columns(version, table)), {column})
        except (CaveqlError, ValueError):
            found = None
        return found or ("valid" if column == "id" else "id")

    def _learn_cap(self, request: QueryRequest, warnings: tuple[str, ...]) -> int | None:
        """The service's cap if it cut this answer short; a cap below ``row_cap`` is kept."""
        cut = cut_at_cap(request, warnings)
        if cut is not None:
            with self._lock:
                if cut < self.row_cap:
                    self.row_cap = cut
                    self.row_cap_learned = True
        return cut

    def _fetch(self, request: QueryRequest, progress: Progress) -> QueryResult:
        lone = lone_column(request)
        if lone is not None or unselected_filters(request):  # never sent: the service fails on it
            raise BackendError(f"refusing to send a request the service fails on: {request_summary(request)}")
        url = self.request_target(request)
        params = query_params(request)
        body = encode_body(request)
        key = None
        if self.cache is not None and request.kind != "live" and request.version is not None:
            key = cache_key(self.server, self.datastack, request.version,
                            f"POST {url}?{'&'.join(f'{k}={v}' for k, v in params)}", body)
            hit = self.cache.get(key)
            if hit is not None:
                return QueryResult(hit.table, hit.warnings, hit.resolution, bytes_read=0)
        what = request_summary(request)
        attempt = 0
        while True:
            response, content = self._send("POST", url, params=params, content=body,
                                           headers=query_headers(), what=what, progress=progress)
            self._check(response, content, what)
            ctype = response.headers.get("Content-Type", "")
            if ctype.split(";")[0].strip() != ARROW_CONTENT_TYPE:
                if "html" in ctype:
                    raise AuthError(f"{what}: the service sent an HTML page instead of data (a login page?)",
                                    hint=token_help(self.server))
                raise TransportError(f"{what}: unexpected Content-Type {ctype!r} (expected {ARROW_CONTENT_TYPE})")
            try:
                if not response.headers.get("Content-Encoding"):  # the digest is of the bytes sent
                    check_digest(response.headers.get("Content-Digest"), content)
                table = decode_arrow(content)
                if request.count:
                    self._check_count(request, table)
                break
            except TransportError as exc:
                # a body cut short, damaged or impossible (proxy, dying worker, flipped bits): retry
                # like a dropped one; nothing of it is kept or cached
                if attempt >= self.retries:
                    raise TransportError(f"{what}: {exc.message} (after {attempt + 1} attempt(s))",
                                         hint="the answer was damaged in transit; nothing partial was kept"
                                         ) from exc
                cancel.sleep(self._delay(attempt), self._sleep)
                attempt += 1
        warnings = _normalize_warnings(tuple(self._clean(w) for w in response.headers.get_list("Warning")))
        resolution = _resolution(response.headers.get_list("dataframe_resolution"))
        if resolution is None and request.desired_resolution is not None and request.kind in ("table", "view"):
            # API v2 does not convert positions; do what caveclient does on v2
            table, resolution = self._convert_v2(request, table)
        result = QueryResult(table, warnings, resolution, bytes_read=len(content))
        # an answer the service cut at its cap is short and will be re-split: not worth keeping;
        # one that stopped at the limit it asked for (e.g. the limit-1 schema probe) is whole.
        # (A whole answer is the same under any cap: the cap is not part of the key.)
        complete = self._learn_cap(request, warnings) is None and (
            not result.capped or cap_notice(warnings) is not None)
        if key is not None and self.cache is not None and complete:
            self.cache.put(key, table, warnings=warnings, resolution=resolution)
        return result

    def _check_count(self, request: QueryRequest, table: pa.Table) -> None:
        """A count answer is one non-negative integer, at most the table's row count: anything
        else was damaged on the way (believing it would split a request into thousands of calls)."""
        what = f"the count answer ({table.num_rows} rows, columns {table.column_names})"
        if table.num_rows != 1 or "count" not in table.column_names \
                or not pa.types.is_integer(table.schema.field("count").type):
            raise TransportError(f"{what} is not one integer count")
        n = table.column("count")[0].as_py()
        if n is None or n < 0:
            raise TransportError(f"the service counted {n} rows: a count cannot be that")
        if request.kind == "table" and request.table is not None and request.version is not None:
            total = self.table_count(request.version, request.table)
            if n > total:
                raise TransportError(f"the service counted {n:,} rows of {request.table!r}, which has "
                                     f"{total:,}: a count cannot be that")

    def _convert_v2(self, request: QueryRequest, table: pa.Table) -> tuple[pa.Table, tuple[float, float, float]]:
        assert request.version is not None and request.table and request.desired_resolution
        meta = (self.views(request.version).get(request.table) if request.kind == "view"
                else self.table_metadata(request.version, request.table)) or {}
        vox = [float(meta.get(f"voxel_resolution_{a}", 1.0)) for a in "xyz"]
        want = request.desired_resolution
        for i, name in enumerate(table.column_names):
            for axis, (v, d) in zip("xyz", zip(vox, want, strict=True), strict=True):
                if name.endswith(f"position_{axis}") and pa.types.is_integer(table.schema.field(name).type):
                    scaled = pc.multiply(pc.cast(table.column(name), pa.float64()), v / d)
                    table = table.set_column(i, name, pc.cast(pc.trunc(scaled), pa.int32()))
        return table, (float(want[0]), float(want[1]), float(want[2]))

    def query_many(self, requests: Iterable[QueryRequest]) -> list[QueryResult]:
        """Run calls over the bounded pool, in order; all of them, or the first error (the rest cancelled)."""
        reqs = list(requests)
        if len(reqs) <= 1:
            return [self.query(r) for r in reqs]
        results: list[QueryResult | None] = [None] * len(reqs)
        token = cancel.current()  # the caller's statement, if any: its cancel reaches these threads
        with ThreadPoolExecutor(max_workers=self.parallel, thread_name_prefix="caveql-http") as pool:
            def run(i: int) -> None:
                with cancel.activate(token):
                    results[i] = self.query(reqs[i])

            futures = [pool.submit(run, i) for i in range(len(reqs))]
            done, pending = wait(futures, return_when=FIRST_EXCEPTION)
            for f in pending:
                f.cancel()
            for f in futures:
                if f.done() and not f.cancelled() and f.exception() is not None:
                    exc = f.exception()
                    if isinstance(exc, CaveqlError):
                        raise exc
                    raise BackendError(f"a parallel fetch failed: {type(exc).__name__}: {exc}") from exc
        return [r for r in results if r is not None]

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def __enter__(self) -> HttpBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()






def _close(word: str, choices: Iterable[str]) -> tuple[str, ...]:
    from caveql.errors import did_you_mean

    return did_you_mean(word, choices)




_LIVE_CAP = re.compile(r"equal or more\s+than limit of (\d+)")


def _normalize_warnings(warnings: tuple[str, ...]) -> tuple[str, ...]:
    """Add the ``201`` cap warning when a live answer says it hit its limit in its own words
    (the engine's text has a run of spaces inside: its source continues the string over a line).

    >>> _normalize_warnings(("result has 5 entries, which is equal or more         than limit of 5 "
    ...                      "there may be more results which are not shown",))[1]
    '201 - "Limited query to 5 rows'
    """
    for w in warnings:
        m = _LIVE_CAP.search(w)
        if m and not any(ROW_CAP_WARNING in x for x in warnings):
            return (*warnings, f'{ROW_CAP_WARNING} {m.group(1)} rows')
    return warnings


def _resolution(lines: list[str]) -> tuple[float, float, float] | None:
    """``dataframe_resolution`` as sent (three header lines, or one folded line).

    >>> _resolution(["4.0", "4.0", "40.0"]), _resolution(["1.0, 1.0, 1.0"]), _resolution([])
    ((4.0, 4.0, 40.0), (1.0, 1.0, 1.0), None)
    """
    parts = [p.strip() for line in lines for p in line.split(",") if p.strip()]
    if len(parts) != 3:
        return None
    try:
        x, y, z = (float(p) for p in parts)
    except ValueError:
        return None
    return (x, y, z)



