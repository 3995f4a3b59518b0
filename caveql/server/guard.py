"""What keeps ``caveql serve`` safe to leave running: request limits, Host and CORS checks, shutdown.

One entry point, :func:`guarded`, wraps the service's ASGI app in (outermost first):

- the **Host check** (Starlette's ``TrustedHostMiddleware``): only the bound address,
  ``localhost``, the loopback literals and ``--allow-host`` names are answered (400 otherwise),
  so a web page cannot reach the local service through DNS rebinding;
- **CORS** (Starlette's ``CORSMiddleware``), only when ``--allow-origin`` names origins: those
  origins, and no others, get ``Access-Control-Allow-Origin`` (and ``-Expose-Headers``), preflight
  included; without it no answer carries a CORS header, so no other page can read one;
- the **body limit and read timeout**: a body over ``max_body`` bytes is refused with 413 — at
  once when ``Content-Length`` says so, else as soon as the bytes that arrived pass the limit
  (chunked) — and a body that has not arrived ``timeout`` seconds after its headers gets 408;
  both close the connection, so the rest of the upload is never read;
- a **cancel token** per request (:mod:`caveql.cancel`), current in the worker threads the
  handlers run in, so that :meth:`Guard.shutdown` can interrupt a running DuckDB query.

The other limits live in the HTTP server (:func:`uvicorn_options`): ``timeout`` also bounds
how long a client may take to send a request's headers (:func:`protocol`: uvicorn has no such
timeout with h11), ``max_connections`` open connections are served and a request beyond them
gets 503, and shutdown waits ``grace`` seconds for running requests before interrupting them.

>>> parse_size("8MB"), parse_size("1048576"), parse_size("64 KiB")
(8000000, 1048576, 65536)
>>> g = guarded(_echo, Limits(max_body=10), host="127.0.0.1")
>>> sorted(g.hosts)
['127.0.0.1', '[::1]', 'localhost']
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import anyio
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.responses import PlainTextResponse
from uvicorn.protocols.http.h11_impl import H11Protocol

from caveql import cancel
from caveql.errors import ConfigError

__all__ = ["Guard", "Limits", "guarded", "parse_size", "protocol", "uvicorn_options"]

#: Response headers a browser page may read when its origin is allowed (caveclient's own reads).
EXPOSE_HEADERS = ("WWW-Authenticate", "column_names", "dataframe_resolution", "Warning")

_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
          "kib": 2**10, "mib": 2**20, "gib": 2**30}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Bytes in ``text``: a whole number, or a number with a unit (kB/MB/GB are powers of 1000,
    KiB/MiB/GiB of 1024; case does not matter).

    >>> parse_size("1.5 MiB")
    1572864
    >>> parse_size("8 parsecs")
    Traceback (most recent call last):
    ...
    caveql.errors.ConfigError: not a size: '8 parsecs' (say e.g. 8MB, 512KiB or 1048576)
    """
    m = _SIZE.fullmatch(text.replace("_", "").replace(",", ""))
    unit = _UNITS.get(m.group(2).lower()) if m else None
    if m is None or unit is None:
        raise ConfigError(f"not a size: {text!r} (say e.g. 8MB, 512KiB or 1048576)")
    return int(float(m.group(1)) * unit)


@dataclass(frozen=True)
class Limits:
    """The limits of ``caveql serve`` (the ``--max-body``, ``--timeout``, ``--max-connections``,
    ``--allow-host`` and ``--allow-origin`` options); the defaults suit a laptop."""

    #: Largest request body accepted, in bytes (a query's JSON; large ``filter_in_dict`` lists fit).
    max_body: int = 8_000_000
    #: Seconds a client has to send a request's headers, and then again its body.
    timeout: float = 30.0
    #: Connections served at once; a request on one more gets 503.
    max_connections: int = 100
    #: Host names answered besides the bound address, ``localhost`` and the loopback literals.
    allow_hosts: tuple[str, ...] = ()
    #: Origins whose pages may read answers (CORS); none by default.
    allow_origins: tuple[str, ...] = ()
    #: Seconds shutdown lets running requests finish before interrupting them.
    grace: float = 1.5

    def __post_init__(self) -> None:
        if self.max_body < 0 or self.timeout <= 0 or self.max_connections < 1 or self.grace < 0:
            raise ConfigError(f"bad server limits: {self}")


class Guard:
    """The guarded app (see the module's docstring); :meth:`shutdown` ends what is in flight."""

    def __init__(self, app: Any, limits: Limits, hosts: Sequence[str]) -> None:
        self.limits = limits
        self.hosts = frozenset(hosts)
        self._tokens: set[cancel.CancelToken] = set()
        self._reads: set[anyio.CancelScope] = set()
        self._closing = False
        inner: Any = _BodyLimit(app, self)
        if limits.allow_origins:
            inner = _Cors(inner, allow_origins=list(limits.allow_origins), allow_methods=("GET", "POST"),
                          allow_headers=("Authorization", "Content-Type"))
        self.app = TrustedHostMiddleware(inner, allowed_hosts=sorted(self.hosts), www_redirect=False)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)

    def shutdown(self) -> None:
        """End every request in flight: a body still being read gets 503, a running query is
        cancelled (DuckDB interrupted). Call on the event loop."""
        self._closing = True
        for scope in list(self._reads):
            scope.cancel()
        for token in list(self._tokens):
            token.cancel()

    @contextmanager
    def _tracked(self, token: cancel.CancelToken) -> Iterator[None]:
        self._tokens.add(token)
        try:
            with cancel.activate(token):  # copied into the worker threads with the context
                yield
        finally:
            self._tokens.discard(token)


def guarded(app: Any, limits: Limits | None = None, *, host: str = "127.0.0.1") -> Guard:
    """``app`` behind the limits, answering Host headers naming ``host`` (the bound address),
    ``localhost``, the loopback literals and ``limits.allow_hosts``.

    >>> import httpx
    >>> g = guarded(_echo, Limits(max_body=10, allow_hosts=("lab.example.org",)))
    >>> async def post(host, body):
    ...     transport = httpx.ASGITransport(app=g)
    ...     async with httpx.AsyncClient(transport=transport, base_url=f"http://{host}") as c:
    ...         r = await c.post("/", content=body)
    ...     return r.status_code, r.text
    >>> import asyncio
    >>> asyncio.run(post("localhost:8000", b"hello"))
    (200, 'hello')
    >>> asyncio.run(post("lab.example.org", b"x" * 11))
    (413, 'request body too large: more than 10 bytes (caveql serve --max-body)')
    >>> asyncio.run(post("evil.example.com", b"hello"))
    (400, 'Invalid host header')
    """
    limits = limits or Limits()
    return Guard(app, limits, _host_names(host) + [h.lower() for h in limits.allow_hosts])


def _host_names(host: str) -> list[str]:
    """The Host values that name the bound address: loopback always, the address itself unless
    it is the wildcard (then the machine's names must be given with ``--allow-host``)."""
    names = ["localhost", "127.0.0.1", "[::1]"]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return names + [host.lower()]
    if ip.is_unspecified:
        return names
    return names + ([f"[{ip}]"] if ip.version == 6 else [str(ip)])


class _Cors(CORSMiddleware):
    """Starlette's CORS, with ``Access-Control-Expose-Headers`` only on answers to an allowed origin."""

    @staticmethod
    def allow_explicit_origin(headers: MutableHeaders, origin: str) -> None:
        CORSMiddleware.allow_explicit_origin(headers, origin)
        headers["Access-Control-Expose-Headers"] = ", ".join(EXPOSE_HEADERS)


class _BodyLimit:
    """Read the body (up to the limit, within the timeout) before the app runs, then replay it."""

    def __init__(self, app: Any, guard: Guard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limits = self.guard.limits
        token = cancel.CancelToken()
        with self.guard._tracked(token):
            length = Headers(scope=scope).get("content-length")
            if length is not None and length.isdigit() and int(length) > limits.max_body:
                # refused before a byte of it is read (and before any "100 Continue")
                await _refuse(413, _too_large(limits), scope, receive, send)
                return
            body: list[bytes] = []
            size = 0
            with anyio.move_on_after(limits.timeout) as reading:
                self.guard._reads.add(reading)
                try:
                    if self.guard._closing:
                        reading.cancel()
                    more = True
                    while more:
                        message = await receive()
                        if message["type"] == "http.disconnect":
                            return  # the client went away: nobody to answer
                        chunk = message.get("body", b"")
                        size += len(chunk)
                        if size > limits.max_body:  # chunked: counted as it arrives
                            await _refuse(413, _too_large(limits), scope, receive, send)
                            return
                        body.append(chunk)
                        more = message.get("more_body", False)
                finally:
                    self.guard._reads.discard(reading)
            if reading.cancelled_caught:
                if self.guard._closing:
                    await _refuse(503, "the server is shutting down", scope, receive, send)
                else:
                    await _refuse(408, f"the request body did not arrive within {limits.timeout:g} s "
                                       "(caveql serve --timeout)", scope, receive, send)
                return
            replayed = False

            async def replay() -> Any:
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": b"".join(body), "more_body": False}
                return await receive()  # after the body: the disconnect, when it comes

            await self.app(scope, replay, send)


def _too_large(limits: Limits) -> str:
    return f"request body too large: more than {limits.max_body:,} bytes (caveql serve --max-body)"


async def _refuse(status: int, message: str, scope: Any, receive: Any, send: Any) -> None:
    # Connection: close — the server then stops reading this connection (the unread body too)
    response = PlainTextResponse(message, status_code=status, headers={"Connection": "close"})
    await response(scope, receive, send)


def protocol(timeout: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol with a header-read timeout: a connection that has not sent a whole
    request head ``timeout`` seconds after it opened (or after its last answer) is closed, so
    half-sent requests (slowloris) cannot hold connections forever.

    >>> issubclass(protocol(30.0), H11Protocol)
    True
    """

    class TimedH11Protocol(H11Protocol):
        _timer: asyncio.TimerHandle | None = None
        _waiting_since: Any = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def on_response_complete(self) -> None:
            self._arm()  # before uvicorn starts the next (pipelined) request, which disarms it
            super().on_response_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            self._waiting_since = self.cycle  # a new cycle means the next request's head arrived
            self._timer = self.loop.call_later(timeout, self._late)

        def _disarm(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _late(self) -> None:
            self._timer = None
            if self.cycle is self._waiting_since and not self.transport.is_closing():
                self.transport.close()

    return TimedH11Protocol


def uvicorn_options(limits: Limits) -> dict[str, Any]:
    """The ``uvicorn.Config`` keywords that enforce ``limits``.

    >>> sorted(uvicorn_options(Limits()))
    ['http', 'limit_concurrency', 'timeout_graceful_shutdown', 'timeout_keep_alive']
    """
    return {
        "http": protocol(limits.timeout),
        # uvicorn counts the connection asking too: max_connections are served, the next gets 503
        "limit_concurrency": limits.max_connections + 1,
        "timeout_keep_alive": 5,
        # after ``grace`` the guard interrupts running requests; this is uvicorn's last resort
        "timeout_graceful_shutdown": max(1, round(limits.grace + 1.5)),
    }


async def _echo(scope: Any, receive: Any, send: Any) -> None:
    """An app answering the request body (for the doctests)."""
    message = await receive()
    await PlainTextResponse(message.get("body", b""))(scope, receive, send)
