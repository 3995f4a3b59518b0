"""Running the app: ``caveql serve`` (uvicorn in the foreground) and a background server for tests.

>>> s = ServerThread(create_app(_app_backend()), port=0)
>>> s.url.startswith("http://127.0.0.1:") is False   # not started yet: no port
True
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn

from caveql.errors import ConfigError
from caveql.server.app import QUERY_LIMIT_SIZE, create_app

__all__ = ["ServerThread", "serve"]


class ServerThread:
    """Serve an ASGI app with uvicorn on a loopback port in a daemon thread.

    ``port=0`` picks a free port; :attr:`url` is valid after :meth:`start`.
    Use as a context manager; :meth:`stop` shuts uvicorn down gracefully.
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, **config: Any) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._config = config
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    @property
    def url(self) -> str:
        """``http://host:port`` once started."""
        return f"http://{self.host}:{self.port}" if self._server is not None else ""

    def start(self, timeout: float = 60.0) -> ServerThread:
        """Bind, start serving, and wait until uvicorn accepts connections."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self._sock = sock
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off",
                                timeout_graceful_shutdown=2, **self._config)
        self._server = uvicorn.Server(config)
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
          log_level: str = "info") -> None:
    """Serve the local datastack at ``path`` (the demo when ``None``) until interrupted.

    Like MaterializationEngine 5.26.4, ``filter_notin_dict`` is accepted but not applied
    unless ``honor_notin``.
    """
    from caveql.backends.local import LocalBackend

    if host not in ("127.0.0.1", "localhost", "::1") and not token:
        raise ConfigError(f"serving on {host} (not loopback) needs --token, so the data is not open to everyone")
    if path is None:
        from caveql.datastack.demo import build_demo

        path = str(build_demo())
    backend = LocalBackend(path, server_compat=True, honor_notin=honor_notin)
    app = create_app(backend, row_cap=row_cap, token=token)
    cap = f"{row_cap:,} rows per call" if row_cap else "no row cap"
    print(f"caveql serve: datastack {backend.name!r} from {path} ({cap}); connect with\n"
          f"  caveclient.CAVEclient({backend.name!r}, server_address='http://{host}:{port}', auth_token=...)\n"
          f"  caveql.connect({backend.name!r}, server='http://{host}:{port}')", flush=True)
    try:
        uvicorn.run(app, host=host, port=port, log_level=log_level, lifespan="off")
    finally:
        backend.close()


def _app_backend() -> Any:
    from caveql.server.app import _DocBackend

    return _DocBackend()
