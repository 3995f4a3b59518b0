"""The materialization REST API (plus the info and schema routes caveclient needs) over a Backend.

:func:`create_app` returns a Starlette app that answers what MaterializationEngine 5.26.4
answers — its successes and its failures — for every read endpoint caveclient uses:
discovery (``/info``, ``/materialize/api/versions``, ``/materialize/version``), the v2 and v3
metadata routes, and the four query endpoints. Each handler follows the genuine handler step
by step (``.notes/genuine-vs-serve.md`` maps every step to ME's file and line): the order of
its checks and their messages, ``QueryManager``'s column selection and naming
(:mod:`caveql.server.genuine`), the frame's dtypes, the warnings and their order, the headers
(``Content-Type: data.arrow``, ``dataframe_resolution``, ``column_names``, ``Warning``) and the
error shapes (HTTP 500 with ``{"code", "message", "traceback"}`` for anything raised inside a
resource, ``{"schema_errors": ...}`` for bodies, the handlers' own 404 bodies). The backend
supplies rows (filters, joins, positions, order); everything the service does on top of its
SQL happens in this package. Deliberate differences are listed in docs/remote.md ("Verified
against MaterializationEngine 5.26.4"). Handlers run in Starlette's thread pool, so the backend
must be thread-safe (LocalBackend is).

This module holds :class:`Service` (the handlers put together), the route table and the token
check. The handlers: :mod:`~caveql.server.metadata` (discovery, metadata, schema service),
:mod:`~caveql.server.frozen` (table, join and view queries), :mod:`~caveql.server.live` (the live
query), on :mod:`~caveql.server.queries` (the query steps they share) and
:mod:`~caveql.server.catalog` (state, versions, models); :mod:`~caveql.server.errors` has the
failure shapes.

>>> app = create_app(_DocBackend())
>>> [r.path for r in app.routes][:2]
['/info/version', '/info/api/v2/datastack/full/{ds}']
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from caveql.backends.base import Backend

# the names app.py defined before it was split are importable from here still (hence noqa: F401)
from caveql.server.catalog import QUERY_LIMIT_SIZE, Model, ServiceBase, _api, schema_types  # noqa: F401
from caveql.server.chunkedgraph import ChunkedGraph, history_of, segmentation_routes
from caveql.server.errors import (  # noqa: F401
    _PHRASES,
    Abort,
    KeyError_,
    _BadJson,
    _error,
    _raise_bad_json,
    _Returned,
)
from caveql.server.frozen import FrozenQueries, _reference_merge  # noqa: F401
from caveql.server.live import LiveQueries
from caveql.server.metadata import (  # noqa: F401
    MetadataRoutes,
    _json_type,
    _pcg_table_name,
    _version_dump,
    _view_schema,
    arrow_to_view_schema,
)
from caveql.server.queries import (  # noqa: F401
    _FILTER_ORDER,
    _REFILTER,
    QueryBase,
    _check_box,
    _in_thread,
    _res,
)

__all__ = ["QUERY_LIMIT_SIZE", "SERVER_VERSION", "arrow_to_view_schema", "create_app", "schema_types"]

#: The MaterializationEngine version we mimic (caveclient 8 needs >= 5.13.0).
SERVER_VERSION = "5.26.4"


class Service(MetadataRoutes, FrozenQueries, LiveQueries):
    """Every route's handler over one backend (state and catalog: :class:`ServiceBase`)."""


def _json_route(service: Service, name: str) -> Callable[[Request], Any]:
    method = getattr(service, name)

    async def endpoint(request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        try:
            if inspect.iscoroutinefunction(method):
                out = await method(request)
            else:
                out = await run_in_threadpool(method, request)
        except _Returned as r:
            return JSONResponse(r.body, status_code=r.status)
        except Exception as exc:  # noqa: BLE001 - the service turns every failure into its 500 shape
            return _error(exc)
        if isinstance(out, Response):
            return out
        return JSONResponse(out)

    endpoint.__name__ = name
    return endpoint


def create_app(backend: Backend, *, row_cap: int | None = QUERY_LIMIT_SIZE, token: str | None = None,
               datastack: str | None = None, api_versions: tuple[int, ...] = (2, 3)) -> Starlette:
    """The Starlette app serving ``backend`` as a CAVE deployment (one datastack).

    ``row_cap`` is the per-call cap (``None``: none); ``token`` makes every route
    require ``Authorization: Bearer <token>`` or the ``middle_auth_token`` cookie;
    ``api_versions`` is what ``/materialize/api/versions`` offers (``(2,)`` mimics an
    old deployment, for clients' API negotiation, whose v2 queries answer).
    """
    svc = Service(backend, row_cap=row_cap, token=token, datastack=datastack, api_versions=api_versions)
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
    # the ChunkedGraph (segmentation API v1) over the datastack's proofreading history
    routes += segmentation_routes(ChunkedGraph(history_of(backend), _pcg_table_name(backend.info())))
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
