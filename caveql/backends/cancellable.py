"""In-flight HTTP requests that stop when their statement is cancelled (:mod:`caveql.cancel`).

A request blocks in a socket read while the service computes its answer (seconds to
minutes) and while the body arrives. httpx has no way to abort a blocked read from
another thread (closing the client does not wake it), so the reads themselves are
made cancellable: :func:`make_cancellable` wraps the network backend of an
``httpx.Client``'s connection pools, and each read of a thread that works for a
statement waits in slices of 0.2 s, checking the statement's token between slices.
A timed-out slice leaves the socket (and a TLS session) intact, so the read goes on
where it was; the request's own read timeout still applies to the whole wait. A
cancelled read raises :class:`~caveql.errors.CancelledError` inside httpcore, which
closes that connection (its answer is half read) — the pool opens a new one next time.

Threads without a statement (no current token) read exactly as before. Connecting
(at most the connect timeout) is not sliced.

>>> import httpx
>>> with httpx.Client() as client:
...     make_cancellable(client)
True
"""

from __future__ import annotations

import ssl
import time
from typing import Any

import httpcore
import httpx

from caveql import cancel

__all__ = ["make_cancellable"]

_SLICE = 0.2  # seconds a read waits between looks at the cancel token


class _Stream(httpcore.NetworkStream):
    """A network stream whose reads stop when the current statement is cancelled."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        token = cancel.current()
        if token is None:
            return self._inner.read(max_bytes, timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            token.check()
            left = _SLICE if deadline is None else deadline - time.monotonic()
            if left <= 0:
                raise httpcore.ReadTimeout("timed out")
            try:
                return self._inner.read(max_bytes, min(_SLICE, left))
            except httpcore.ReadTimeout:
                if deadline is not None and time.monotonic() >= deadline:
                    raise

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        cancel.check()
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return _Stream(self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    """Opens connections with the wrapped backend and hands out cancellable streams."""

    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None, socket_options: Any = None) -> httpcore.NetworkStream:
        cancel.check()
        return _Stream(self._inner.connect_tcp(host, port, timeout, local_address, socket_options))

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Any = None) -> httpcore.NetworkStream:
        cancel.check()
        return _Stream(self._inner.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def make_cancellable(client: httpx.Client) -> bool:
    """Wrap the network backend of every httpcore pool of ``client``; whether any was wrapped.

    A client whose transport is not httpx's own (a ``MockTransport``, a custom one) is left
    alone: its requests still stop between requests, not inside one.
    """
    transports = [getattr(client, "_transport", None), *getattr(client, "_mounts", {}).values()]
    done = False
    for transport in transports:
        pool = getattr(transport, "_pool", None)  # httpx.HTTPTransport's httpcore pool (private)
        inner = getattr(pool, "_network_backend", None)
        if inner is None:
            continue
        if not isinstance(inner, _Backend):
            pool._network_backend = _Backend(inner)  # type: ignore[union-attr]
        done = True
    return done
