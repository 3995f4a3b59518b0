"""The materialization REST API (plus the info and schema routes caveclient needs) over a Backend.

:func:`create_app` returns a Starlette app that answers what MaterializationEngine
5.26.4 answers (materialization-server.md §1): discovery (``/info``,
``/materialize/api/versions``, ``/materialize/version``), v2 and v3 metadata
routes, the four query endpoints with Arrow IPC answers (``Content-Type:
data.arrow``, ``dataframe_resolution``, ``column_names`` and ``Warning`` headers),
the 200,000-row cap with its ``Warning: 201``, the service's error shapes (HTTP 500
with a JSON ``message``; ``schema_errors`` for bodies that fail validation) and the
schema service's ``types_all``/``type/{schema}``. Unmodified caveclient 8.2.1 works
against it. Handlers are plain functions run in Starlette's thread pool, so the
backend must be thread-safe (LocalBackend is).

>>> app = create_app(_DocBackend())
>>> [r.path for r in app.routes][:2]
['/info/version', '/info/api/v2/datastack/full/{ds}']
"""

from __future__ import annotations

import inspect
import json
import traceback
from collections.abc import Callable
from functools import cached_property
from importlib import resources
from typing import Any

import numpy as np
import pyarrow as pa
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from caveql.backends.base import Backend, QueryRequest, QueryResult
from caveql.backends.wire import ARROW_CONTENT_TYPE, encode_arrow, service_dtype
from caveql.server.validate import (
    ArgError,
    BodyError,
    bool_arg,
    join_request,
    live_request,
    positive_int_arg,
    simple_request,
)

__all__ = ["QUERY_LIMIT_SIZE", "SERVER_VERSION", "create_app", "schema_types"]

#: The service's per-call row cap (config ``QUERY_LIMIT_SIZE``).
QUERY_LIMIT_SIZE = 200_000
#: The MaterializationEngine version we mimic (caveclient 8 needs >= 5.13.0).
SERVER_VERSION = "5.26.4"
_CORS = {"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": "WWW-Authenticate, column_names"}


def schema_types() -> dict[str, Any]:
    """EMAnnotationSchemas' JSON schemas by type name (package data; see caveql/data/README.md).

    >>> sorted(schema_types())[:3]
    ['bound_2tag', 'bound_2tag_user', 'bound_double_tag']
    """
    text = resources.files("caveql").joinpath("data/emannotationschemas.json").read_text()
    return json.loads(text)["types"]


class _NotFound(Exception):
    """An explicit 404 the service returns as a JSON value (not the 500 error shape)."""

    def __init__(self, body: Any) -> None:
        super().__init__(body)
        self.body = body


class Service:
    """The routes' state: the backend, the cap, the optional token."""

    def __init__(self, backend: Backend, *, row_cap: int | None = QUERY_LIMIT_SIZE, token: str | None = None,
                 datastack: str | None = None) -> None:
        self.backend = backend
        self.row_cap = row_cap
        self.token = token
        self.datastack = datastack or str(backend.info().get("datastack_name") or "")

    @cached_property
    def schemas(self) -> dict[str, Any]:
        return schema_types()

    # ---------------------------------------------------------------- helpers

    def _ds(self, request: Request) -> str:
        ds = request.path_params.get("ds")
        if ds is not None and ds != self.datastack:
            raise LookupError(f"404 Not Found: datastack {ds} not found (this server has {self.datastack})")
        return self.datastack

    def _version(self, request: Request) -> int:
        raw = request.path_params["version"]
        try:
            version = int(raw)
        except ValueError:
            raise _NotFound(None) from None
        if version not in self.backend.versions():
            raise LookupError(f"404 Not Found: version {version} not found for datastack {self.datastack}")
        return version

    def _table(self, version: int, table: str) -> str:
        if table not in self.backend.tables(version):
            raise LookupError(f"404 Not Found: Cannot find table {table} in datastack {self.datastack} "
                              f"at version {version}")
        return table

    def _view(self, version: int, view: str) -> dict[str, Any]:
        views = self.backend.views(version)
        if view not in views:
            raise LookupError(f"404 Not Found: Cannot find view {view} in datastack {self.datastack} "
                              f"at version {version}")
        return views[view]

    # ---------------------------------------------------------------- discovery

    def info(self, request: Request) -> Any:
        ds = request.path_params["ds"]
        if ds != self.datastack:
            return JSONResponse({"message": f"datastack {ds} not found"}, status_code=404)
        base = str(request.base_url).rstrip("/")
        info = dict(self.backend.info())
        res = [info.get(f"viewer_resolution_{a}", 1.0) for a in "xyz"]
        aligned = info.get("aligned_volume") or {}
        if isinstance(aligned, str):
            aligned = {"name": aligned}
        record = {
            "datastack_name": self.datastack, "description": info.get("description", ""),
            "local_server": base, "synapse_table": info.get("synapse_table"),
            "soma_table": info.get("soma_table"),
            "aligned_volume": {"id": 1, "name": aligned.get("name", self.datastack),
                               "description": aligned.get("description", ""),
                               "image_source": aligned.get("image_source", "")},
            "segmentation_source": f"graphene://{base}/segmentation/table/{info.get('pcg_table_name', 'caveql')}",
            "analysis_database": None, "viewer_site": info.get("viewer_site", ""),
            "viewer_resolution_x": res[0], "viewer_resolution_y": res[1], "viewer_resolution_z": res[2],
            "skeleton_source": None,
        }
        return {**{k: v for k, v in info.items() if k not in record}, **record}

    # ---------------------------------------------------------------- metadata

    def versions(self, request: Request) -> Any:
        self._ds(request)
        return sorted(self.backend.versions())

    def version_metadata(self, request: Request) -> Any:
        self._ds(request)
        try:
            version = int(request.path_params["version"])
        except ValueError:
            raise _NotFound("No version found") from None
        if version not in self.backend.versions():
            raise _NotFound("No version found")
        return _version_dump(self.backend.version_metadata(version))

    def versions_metadata(self, request: Request) -> Any:
        self._ds(request)
        return [_version_dump(self.backend.version_metadata(v)) for v in sorted(self.backend.versions())]

    def tables(self, request: Request) -> Any:
        self._ds(request)
        return self.backend.tables(self._version(request))

    def _metadata(self, version: int, table: str) -> dict[str, Any]:
        meta = dict(self.backend.table_metadata(version, table))
        meta.setdefault("table_name", table)
        meta.setdefault("annotation_table", table)
        return meta

    def table_metadata(self, request: Request) -> Any:
        self._ds(request)
        version = self._version(request)
        return self._metadata(version, self._table(version, request.path_params["table"]))

    def tables_metadata(self, request: Request) -> Any:
        self._ds(request)
        version = self._version(request)
        return [self._metadata(version, t) for t in self.backend.tables(version)]

    def count(self, request: Request) -> Any:
        self._ds(request)
        version = self._version(request)
        return self.backend.table_count(version, self._table(version, request.path_params["table"]))

    def views(self, request: Request) -> Any:
        self._ds(request)
        return self.backend.views(self._version(request))

    def view_metadata(self, request: Request) -> Any:
        self._ds(request)
        view = request.path_params["view"]
        meta = dict(self._view(self._version(request), view))
        meta.setdefault("table_name", view)
        return meta

    def _view_schema(self, version: int, view: str) -> dict[str, dict[str, str]]:
        return arrow_to_view_schema(self.backend.table_columns(version, view))

    def view_schema(self, request: Request) -> Any:
        self._ds(request)
        version = self._version(request)
        view = request.path_params["view"]
        self._view(version, view)
        return self._view_schema(version, view)

    def view_schemas(self, request: Request) -> Any:
        self._ds(request)
        version = self._version(request)
        views = self.backend.views(version)
        if not views:
            raise _NotFound({})
        return {v: self._view_schema(version, v) for v in views}

    def unique_string_values(self, request: Request) -> Any:
        self._ds(request)
        table = request.path_params["table"]
        if not any(table in self.backend.tables(v) for v in self.backend.versions()):
            raise LookupError(f"404 Not Found: Cannot find table {table} in datastack {self.datastack}")
        return self.backend.unique_string_values(table)

    # ---------------------------------------------------------------- schema service

    def schema_names(self, request: Request) -> Any:
        return sorted(self.schemas)

    def schema_type(self, request: Request) -> Any:
        name = request.path_params["schema"]
        if name not in self.schemas:
            return JSONResponse({"message": f"404 Not Found: unknown annotation type {name}"}, status_code=404)
        return self.schemas[name]

    def schema_all(self, request: Request) -> Any:
        return self.schemas

    # ---------------------------------------------------------------- queries

    async def _body(self, request: Request) -> Any:
        raw = await request.body()
        try:
            return json.loads(raw or b"{}")
        except ValueError:
            raise BodyError({"_schema": ["Invalid JSON body."]}) from None

    def _limit(self, req: QueryRequest) -> QueryRequest:
        if req.count or self.row_cap is None:
            return req
        limit = self.row_cap if req.limit is None else min(req.limit, self.row_cap)
        return _replace(req, limit=limit)

    def _run(self, request: Request, req: QueryRequest, *, api: int) -> Response:
        args = request.query_params
        as_arrow = bool_arg(args, "return_pyarrow", True)
        compress = bool_arg(args, "ipc_compress", True)
        bool_arg(args, "arrow_format", False)
        bool_arg(args, "split_positions", False)
        bool_arg(args, "direct_sql_pandas", False)
        sample = positive_int_arg(args, "random_sample")
        if api == 2:  # v2 endpoints never convert positions
            req = _replace(req, desired_resolution=None)
        req = self._limit(req)
        result = self.backend.query(req)
        table = result.table
        if sample is not None and req.kind != "view" and not req.count:
            table = self._sample(req, table, sample)
        # the cap notice is the server's to give (its text differs for live answers)
        warnings = [w for w in result.warnings if "Limited query to" not in w]
        if req.limit is not None and table.num_rows == req.limit and not req.count:
            warnings.insert(0, f"result has {table.num_rows} entries, which is equal or more than limit of "
                               f"{req.limit} there may be more results which are not shown" if req.kind == "live"
                            else f'201 - "Limited query to {req.limit} rows')
        headers: list[tuple[str, str]] = []
        resolution = self._resolution(req, result) if api >= 3 else None
        if resolution is not None:
            headers += [("dataframe_resolution", str(float(r))) for r in resolution]
        headers.append(("column_names", repr(_column_names(req, table))))
        headers += [("Warning", w.replace("\n", " ")) for w in warnings]
        if as_arrow:
            body = encode_arrow(table, request.headers.get("accept-encoding"), compress=compress)
            response = Response(body, media_type=None)
            response.headers["Content-Type"] = ARROW_CONTENT_TYPE
        else:
            frame = table.to_pandas(types_mapper=service_dtype)
            response = Response(frame.to_json(orient="records"), media_type="application/json")
        for name, value in headers:
            response.headers.append(name, value)
        return response

    def _sample(self, req: QueryRequest, table: pa.Table, n: int) -> pa.Table:
        # TABLESAMPLE system(100*n/rows) draws about n rows of the table: keep rows with that probability
        name = req.join[0][0] if req.join else req.table or ""
        try:
            total = self.backend.table_count(req.version, name) if req.version is not None else table.num_rows
        except Exception:  # noqa: BLE001 - a view or live table without a count: sample the answer
            total = table.num_rows
        if n >= total or total == 0:
            return table
        mask = np.random.default_rng(n).random(table.num_rows) < n / total
        return table.filter(pa.array(mask))

    def _resolution(self, req: QueryRequest, result: QueryResult) -> tuple[float, float, float] | None:
        if req.desired_resolution is not None:
            return req.desired_resolution
        if result.resolution is not None:
            return result.resolution
        # the table's (a join's: the last table's) voxel resolution
        name = req.join[1][0] if req.join else req.table
        version = req.version if req.version is not None else max(self.backend.versions())
        try:
            meta = (self.backend.views(version).get(name or "") if req.kind == "view"
                    else self.backend.table_metadata(version, name or "")) or {}
        except Exception:  # noqa: BLE001 - the header is informative; never fail an answer over it
            return None
        try:
            return tuple(float(meta[f"voxel_resolution_{a}"]) for a in "xyz")  # type: ignore[return-value]
        except (KeyError, TypeError, ValueError):
            return None

    async def table_query(self, request: Request) -> Response:
        body = await self._body(request)
        return await _in_thread(self._table_query, request, body)

    def _table_query(self, request: Request, body: Any) -> Response:
        self._ds(request)
        version = self._version(request)
        table = self._table(version, request.path_params["table"])
        count = bool_arg(request.query_params, "count", False)
        req = simple_request(body, table, version, count=count)
        return self._run(request, req, api=_api(request))

    async def view_query(self, request: Request) -> Response:
        body = await self._body(request)
        return await _in_thread(self._view_query, request, body)

    def _view_query(self, request: Request, body: Any) -> Response:
        self._ds(request)
        version = self._version(request)
        view = request.path_params["view"]
        self._view(version, view)
        count = bool_arg(request.query_params, "count", False)
        req = simple_request(body, view, version, kind="view", count=count)
        return self._run(request, req, api=3)

    async def join_query(self, request: Request) -> Response:
        body = await self._body(request)
        return await _in_thread(self._join_query, request, body)

    def _join_query(self, request: Request, body: Any) -> Response:
        self._ds(request)
        version = self._version(request)

        def columns_of(table: str) -> set[str]:
            names = self.backend.table_columns(version, self._table(version, table)).names
            return {_base(n) for n in names}

        req = join_request(body, version, columns_of)
        assert req.join is not None
        for t, _c in req.join:
            self._table(version, t)
        return self._run(request, _target_first(req, self.backend), api=_api(request))

    async def live_query(self, request: Request) -> Response:
        body = await self._body(request)
        return await _in_thread(self._live_query, request, body)

    def _live_query(self, request: Request, body: Any) -> Response:
        self._ds(request)
        bool_arg(request.query_params, "allow_missing_lookups", False)
        bool_arg(request.query_params, "allow_invalid_root_ids", False)
        bool_arg(request.query_params, "merge_reference", False)
        req = live_request(body)
        return self._run(request, req, api=3)


async def _in_thread(fn: Callable[..., Response], *args: Any) -> Response:
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(fn, *args)


def _target_first(req: QueryRequest, backend: Backend) -> QueryRequest:
    """A reference merge (``[[ref, "target_id"], [target, "id"]]``) with the target's columns first.

    The service orders a join's column blocks by Python set iteration (not deterministic across
    server processes); the seed page shows the target's block first for reference merges, so we
    answer in that order (rows then follow the target's id). Swapping the tables of an inner
    equi-join changes nothing else as long as the suffixes are given per table and the default
    resolution stays the last table's, which is pinned here.
    """
    assert req.join is not None
    (t1, c1), (t2, c2) = req.join
    if (c1, c2) != ("target_id", "id") or not req.suffix_map or set(req.suffix_map) != {t1, t2}:
        return req
    res = req.desired_resolution
    if res is None and req.version is not None:
        meta = backend.table_metadata(req.version, t2)
        try:
            res = (float(meta["voxel_resolution_x"]), float(meta["voxel_resolution_y"]),
                   float(meta["voxel_resolution_z"]))
        except (KeyError, TypeError, ValueError):
            return req
    return _replace(req, join=((t2, c2), (t1, c1)), desired_resolution=res)


def _version_dump(meta: dict[str, Any]) -> dict[str, Any]:
    """Version metadata with its datetimes always carrying microseconds.

    caveclient parses ``time_stamp``/``expires_on`` with ``%Y-%m-%dT%H:%M:%S.%f``; the
    service's values practically always have a fraction, a hand-written datastack may not.

    >>> _version_dump({"version": 1, "expires_on": "2121-01-01T00:00:00"})["expires_on"]
    '2121-01-01T00:00:00.000000'
    """
    out = dict(meta)
    for key in ("time_stamp", "expires_on"):
        value = out.get(key)
        if isinstance(value, str) and len(value) == 19 and value[10] == "T":
            out[key] = value + ".000000"
    return out


def _api(request: Request) -> int:
    return 2 if request.url.path.startswith("/materialize/api/v2/") else 3


def _base(column: str) -> str:
    for axis in ("_x", "_y", "_z"):
        if column.endswith(f"_position{axis}"):
            return column[: -len(axis)]
    return column


def _replace(req: QueryRequest, **changes: Any) -> QueryRequest:
    from dataclasses import replace

    return replace(req, **changes)


def _column_names(req: QueryRequest, table: pa.Table) -> dict[str, dict[str, str]]:
    """The ``column_names`` header: ``{table: {column: output name}}`` (positions unsplit)."""
    names = list(dict.fromkeys(_base(c) for c in table.column_names))
    owner = req.join[0][0] if req.join else (req.table or "")
    return {owner: {n: n for n in names}}


def arrow_to_view_schema(schema: pa.Schema) -> dict[str, dict[str, str]]:
    """A view's ``{column: {"type": ...}}`` as the service derives it from SQL column types.

    >>> arrow_to_view_schema(pa.schema([("id", pa.int64()), ("pt_position_x", pa.int32()),
    ...     ("pt_position_y", pa.int32()), ("pt_position_z", pa.int32()), ("cell_type", pa.string())]))
    {'id': {'type': 'integer'}, 'pt_position': {'type': 'SpatialPoint'}, 'cell_type': {'type': 'string'}}
    """
    out: dict[str, dict[str, str]] = {}
    for field in schema:
        base = _base(field.name)
        if base != field.name:
            out.setdefault(base, {"type": "SpatialPoint"})
            continue
        t = field.type
        if pa.types.is_integer(t):
            out[field.name] = {"type": "integer"}
        elif pa.types.is_floating(t):
            out[field.name] = {"type": "float"}
        elif pa.types.is_boolean(t):
            out[field.name] = {"type": "boolean"}
        elif pa.types.is_timestamp(t):
            out[field.name] = {"type": "string", "format": "date-time"}
        elif pa.types.is_decimal(t):
            out[field.name] = {"type": "number"}
        else:
            out[field.name] = {"type": "string"}
    return out


def _error(exc: BaseException) -> JSONResponse:
    # The service's error handler: every exception inside a resource is HTTP 500 with this body.
    if isinstance(exc, BodyError):
        return JSONResponse({"schema_errors": exc.errors}, status_code=500, headers=_CORS)
    if isinstance(exc, ArgError):
        return JSONResponse({"errors": {exc.name: exc.message}, "message": "Input payload validation failed"},
                            status_code=500, headers=_CORS)
    message = getattr(exc, "message", None) or str(exc)
    lines = traceback.format_exception_only(type(exc), exc)
    return JSONResponse({"code": 500, "message": message, "traceback": [ln.rstrip("\n") for ln in lines]},
                        status_code=500, headers=_CORS)


def _json_route(service: Service, name: str) -> Callable[[Request], Any]:
    method = getattr(service, name)

    async def endpoint(request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        try:
            if inspect.iscoroutinefunction(method):
                out = await method(request)
            else:
                out = await run_in_threadpool(method, request)
        except _NotFound as nf:
            return JSONResponse(nf.body, status_code=404, headers=_CORS)
        except Exception as exc:  # noqa: BLE001 - the service turns every failure into its 500 shape
            return _error(exc)
        if isinstance(out, Response):
            return out
        return JSONResponse(out, headers=_CORS)

    endpoint.__name__ = name
    return endpoint


def create_app(backend: Backend, *, row_cap: int | None = QUERY_LIMIT_SIZE, token: str | None = None,
               datastack: str | None = None, api_versions: tuple[int, ...] = (2, 3)) -> Starlette:
    """The Starlette app serving ``backend`` as a CAVE deployment (one datastack).

    ``row_cap`` is the per-call cap (``None``: none); ``token`` makes every route
    require ``Authorization: Bearer <token>`` or the ``middle_auth_token`` cookie;
    ``api_versions`` is what ``/materialize/api/versions`` offers (``(2,)`` mimics an
    old deployment, for clients' API negotiation).
    """
    svc = Service(backend, row_cap=row_cap, token=token, datastack=datastack)
    ds = "/datastack/{ds}"
    ver = ds + "/version/{version}"
    routes: list[Route] = [
        Route("/info/version", lambda r: JSONResponse("4.6.0")),
        Route("/info/api/v2/datastack/full/{ds}", _json_route(svc, "info")),
        Route("/info/api/v2/datastacks", lambda r: JSONResponse([svc.datastack])),
        Route("/materialize/api/versions", lambda r: JSONResponse(list(api_versions))),
        Route("/materialize/version", lambda r: JSONResponse(SERVER_VERSION)),
        Route("/schema/versions", lambda r: JSONResponse([2])),
        Route("/schema/api/v2/type", _json_route(svc, "schema_names")),
        Route("/schema/api/v2/type/{schema}", _json_route(svc, "schema_type")),
        Route("/schema/api/v2/types_all", _json_route(svc, "schema_all")),
    ]
    for api in ("v2", "v3"):
        p = f"/materialize/api/{api}"
        routes += [
            Route(p + ds + "/versions", _json_route(svc, "versions")),
            Route(p + ver, _json_route(svc, "version_metadata")),
            Route(p + ds + "/metadata", _json_route(svc, "versions_metadata")),
            Route(p + ver + "/tables", _json_route(svc, "tables")),
            Route(p + ver + "/table/{table}/metadata", _json_route(svc, "table_metadata")),
            Route(p + ver + "/table/{table}/count", _json_route(svc, "count")),
            Route(p + ver + "/table/{table}/query", _json_route(svc, "table_query"), methods=["POST"]),
            Route(p + ver + "/query", _json_route(svc, "join_query"), methods=["POST"]),
        ]
    v3 = "/materialize/api/v3"
    routes += [
        Route(v3 + ver + "/tables/metadata", _json_route(svc, "tables_metadata")),
        Route(v3 + ver + "/views", _json_route(svc, "views")),
        Route(v3 + ver + "/views/schemas", _json_route(svc, "view_schemas")),
        Route(v3 + ver + "/views/{view}/metadata", _json_route(svc, "view_metadata")),
        Route(v3 + ver + "/views/{view}/schema", _json_route(svc, "view_schema")),
        Route(v3 + ver + "/views/{view}/query", _json_route(svc, "view_query"), methods=["POST"]),
        Route(v3 + ds + "/table/{table}/unique_string_values", _json_route(svc, "unique_string_values")),
        Route(v3 + ds + "/query", _json_route(svc, "live_query"), methods=["POST"]),
    ]
    middleware = [Middleware(GZipMiddleware, minimum_size=500)]
    app = Starlette(routes=routes, middleware=middleware)
    if token:
        app.add_middleware(_TokenCheck, token=token)
    app.state.service = svc
    return app


class _TokenCheck:
    """Require the token as a bearer header or the ``middle_auth_token`` cookie (ASGI middleware)."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        auth = request.headers.get("authorization", "")
        given = auth[7:] if auth.lower().startswith("bearer ") else request.cookies.get("middle_auth_token")
        if not given:
            response = JSONResponse({"error": "Unauthorized", "message": "Unauthorized - No Token Provided"},
                                    status_code=401)
        elif given != self.token:
            response = JSONResponse({"error": "Forbidden", "message": "Forbidden - token not accepted"},
                                    status_code=403)
        else:
            await self.app(scope, receive, send)
            return
        await response(scope, receive, send)


class _DocBackend:
    """The smallest backend, for this module's doctest."""

    name = "doc"

    def info(self) -> dict[str, Any]:
        return {"datastack_name": "doc"}

