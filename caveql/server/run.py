"""Running the app: ``caveql serve`` (uvicorn in the foreground) and a background server for tests.

Both bind the listening socket themselves (so a bad ``--host`` or ``--port`` is one clear
:class:`ListenError`, and ``port=0`` reports the port it got), put the app behind
:func:`~caveql.server.guard.guarded` (body limit, Host and CORS checks, read timeouts) and run
uvicorn with the limits of :class:`~caveql.server.guard.Limits` (connection cap, header
timeout, bounded shutdown).

>>> s = ServerThread(create_app(_app_backend()), port=0)
>>> s.url.startswith("http://127.0.0.1:") is False   # not started yet: no port
True
>>> bind("127.0.0.1", 99999)
Traceback (most recent call last):
...
caveql.server.run.ListenError: cannot listen on port 99999: ports go from 0 to 65535
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import sys
import threading
import time
from typing import Any

import uvicorn

from caveql.errors import ConfigError
from caveql.server.app import QUERY_LIMIT_SIZE, create_app
from caveql.server.guard import Guard, Limits, guarded, uvicorn_options

__all__ = ["ListenError", "ServerThread", "bind", "serve"]

_BIND_PROBLEMS = {
    errno.EADDRINUSE: "the port is busy (another program listens on it)",
    errno.EADDRNOTAVAIL: "that address is not one of this machine's",
    errno.EACCES: "permission denied (ports below 1024 need privileges)",
}


class ListenError(ConfigError):
    """``caveql serve`` cannot listen where it was told (bad or busy port, unknown host)."""


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket bound to ``host:port`` (``port`` 0: a free one), or
    :class:`ListenError` naming the host or port and what is wrong with it.

    >>> with bind("127.0.0.1", 0) as sock:
    ...     sock.getsockname()[1] > 0
    True
    """
    if not 0 <= port <= 65535:
        raise ListenError(f"cannot listen on port {port}: ports go from 0 to 65535")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
    except (socket.gaierror, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ListenError(f"cannot listen on host {host!r}: it does not resolve ({reason})") from exc
    sock = socket.socket(family, kind, proto)
    try:
        if os.name != "nt":  # (on Windows SO_REUSEADDR would let two servers share the port)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)  # connections queue from now on (uvicorn serves them once started)
    except OSError as exc:
        sock.close()
        reason = _BIND_PROBLEMS.get(exc.errno or 0, exc.strerror or str(exc))
        raise ListenError(f"cannot listen on {host} port {port}: {reason}") from exc
    return sock


class _Server(uvicorn.Server):
    """uvicorn's server whose shutdown ends what is in flight: running requests get the guard's
    ``grace`` seconds, then are interrupted (a query's DuckDB call, a slow upload)."""

    def __init__(self, config: uvicorn.Config, guard: Guard) -> None:
        super().__init__(config)
        self.guard = guard

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        later = asyncio.get_running_loop().call_later(self.guard.limits.grace, self.guard.shutdown)
        try:
            await super().shutdown(sockets)
        finally:
            later.cancel()


def _server(app: Any, host: str, limits: Limits, **config: Any) -> _Server:
    guard = guarded(app, limits, host=host)
    options = {"log_level": "warning", "access_log": False, "lifespan": "off", **uvicorn_options(limits),
               **config}
    return _Server(uvicorn.Config(guard, **options), guard)


class ServerThread:
    """Serve an ASGI app with uvicorn on a loopback port in a daemon thread, behind the guard.

    ``port=0`` picks a free port; :attr:`url` is valid after :meth:`start`. ``limits``: the
    guard's (default :class:`~caveql.server.guard.Limits`); ``config``: more ``uvicorn.Config``
    keywords. Use as a context manager; :meth:`stop` shuts uvicorn down gracefully.
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, *, limits: Limits | None = None,
                 **config: Any) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.limits = limits or Limits()
        self._config = config
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    @property
    def url(self) -> str:
        """``http://host:port`` once started."""
        return f"http://{self.host}:{self.port}" if self._server is not None else ""

    @property
    def guard(self) -> Guard | None:
        """The guard in front of the app, once started."""
        return self._server.guard if self._server is not None else None

    def start(self, timeout: float = 60.0) -> ServerThread:
        """Bind, start serving, and wait until uvicorn accepts connections."""
        sock = bind(self.host, self.port)
        self.port = sock.getsockname()[1]
        self._sock = sock
        self._server = _server(self.app, self.host, self.limits, **self._config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        name=f"caveql-serve-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Shut down and wait for the thread."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        if self._sock is not None:
            self._sock.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(path: str | None = None, *, host: str = "127.0.0.1", port: int = 8000,
          row_cap: int | None = QUERY_LIMIT_SIZE, token: str | None = None, honor_notin: bool = False,
          log_level: str = "info", limits: Limits | None = None) -> None:
    """Serve the local datastack at ``path`` (the demo when ``None``) until interrupted.

    Like MaterializationEngine 5.26.4, ``filter_notin_dict`` is accepted but not applied
    unless ``honor_notin``. SIGTERM or Ctrl-C end it within a few seconds even mid-request.
    """
    from caveql.backends.local import LocalBackend

    limits = limits or Limits()
    if host not in ("127.0.0.1", "localhost", "::1") and not token:
        raise ConfigError(f"serving on {host} (not loopback) needs --token, so the data is not open to everyone")
    sock = bind(host, port)  # before the (slow) demo build: a bad host or port is said at once
    port = sock.getsockname()[1]
    try:
        if path is None:
            from caveql.datastack.demo import build_demo

            path = str(build_demo())
        backend = LocalBackend(path, server_compat=True, honor_notin=honor_notin)
    except BaseException:
        sock.close()
        raise
    app = create_app(backend, row_cap=row_cap, token=token)
    server = _server(app, host, limits, log_level=log_level)
    cap = f"{row_cap:,} rows per call" if row_cap else "no row cap"
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    origins = ", ".join(limits.allow_origins) or "none"
    print(f"caveql serve: datastack {backend.name!r} from {path} ({cap}); connect with\n"
          f"  caveclient.CAVEclient({backend.name!r}, server_address='http://{netloc}', auth_token=...)\n"
          f"  caveql.connect({backend.name!r}, server='http://{netloc}')\n"
          f"  limits: bodies up to {limits.max_body:,} bytes, {limits.timeout:g} s to send a request, "
          f"{limits.max_connections} connections; Host names: {', '.join(sorted(server.guard.hosts))}; "
          f"CORS origins: {origins}", flush=True)
    if _run(server, sock):
        backend.close()


def _run(server: _Server, sock: socket.socket) -> bool:
    """Run ``server`` in this (main) thread until SIGTERM or Ctrl-C; whether it ended cleanly.

    uvicorn re-raises the signal once it has shut down: SIGTERM then ends the process, Ctrl-C
    arrives here as KeyboardInterrupt. A request still running after shutdown (a call in a worker
    thread that the guard could not interrupt) is not waited for: the interpreter's exit would
    wait for its thread, so the process exits at once instead.
    """
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(server.serve(sockets=[sock]))
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    unfinished = sum(not t.done() for t in server.server_state.tasks)
    if not unfinished:
        # one more turn of the loop: the server task's end stops anyio's idle worker threads
        loop.run_until_complete(asyncio.sleep(0.05))
        deadline = time.monotonic() + 0.5
        busy = [t for t in threading.enumerate() if t is not threading.current_thread() and not t.daemon]
        for t in busy:
            t.join(max(0.0, deadline - time.monotonic()))
        unfinished = sum(t.is_alive() for t in busy)
    if unfinished:
        print(f"caveql serve: stopped with {unfinished} request(s) unfinished", file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(0)
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()
    return True


def _app_backend() -> Any:
    from caveql.server.app import _DocBackend

    return _DocBackend()
