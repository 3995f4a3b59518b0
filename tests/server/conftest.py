"""Fixtures of the ``caveql serve`` tests: the app on a free loopback port, a request recorder,
caveclient and HttpBackend pointed at it, and helpers to compare their frames."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

from caveql.backends.http import HttpBackend
from caveql.backends.local import LocalBackend
from caveql.backends.wire import service_dtype
from caveql.server import ServerThread, create_app

TOKEN = "fedcba9876543210fedcba9876543210"


class Recorder:
    """ASGI middleware keeping every request: method, path, query string, body, headers."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.log: list[dict[str, Any]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        entry = {"method": scope["method"], "path": scope["path"], "query": scope["query_string"].decode(),
                 "headers": {k.decode().lower(): v.decode() for k, v in scope["headers"]}, "body": b""}

        async def recv() -> Any:
            # kept as it arrives: the app reads the whole body before it answers, so the entry is
            # complete when the client has the answer (not only once the app has returned)
            message = await receive()
            if message["type"] == "http.request":
                entry["body"] += message.get("body", b"")
            return message

        self.log.append(entry)
        await self.app(scope, recv, send)

    def posts(self) -> list[dict[str, Any]]:
        return [e for e in self.log if e["method"] == "POST"]


@dataclass
class Served:
    """A running ``caveql serve`` over ``backend``."""

    backend: LocalBackend
    server: ServerThread
    recorder: Recorder
    datastack: str
    clients: list[Any] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url

    def caveclient(self, **kw: Any) -> Any:
        import caveclient

        kw.setdefault("auth_token", TOKEN)
        client = caveclient.CAVEclient(self.datastack, server_address=self.url, write_server_cache=False, **kw)
        self.clients.append(client)
        return client

    def http(self, **kw: Any) -> HttpBackend:
        kw.setdefault("token", TOKEN)
        kw.setdefault("cache", False)
        b = HttpBackend(self.datastack, server=self.url, **kw)
        self.clients.append(b)
        return b

    def close_clients(self) -> None:
        """Close every client's connections (requests sessions hold sockets until closed)."""
        while self.clients:
            client = self.clients.pop()
            if isinstance(client, HttpBackend):
                client.close()
                continue
            for name in ("_materialize", "_info", "_schema", "_auth", "_chunkedgraph", "_annotation"):
                sub = getattr(client, name, None)
                session = getattr(sub, "session", None)
                if session is not None:
                    session.close()
            session = getattr(getattr(client, "auth", None), "session", None)
            if session is not None:
                session.close()

    def stop(self) -> None:
        self.close_clients()
        self.server.stop()
        self.backend.close()


_RUNNING: list[Served] = []


def serve(path: Any, **kw: Any) -> Served:
    backend = LocalBackend(path, server_compat=True)
    recorder = Recorder(create_app(backend, **kw))
    server = ServerThread(recorder).start()
    served = Served(backend, server, recorder, backend.name)
    _RUNNING.append(served)
    return served


@pytest.fixture(autouse=True)
def _close_clients():
    yield
    for s in _RUNNING:
        s.close_clients()


@pytest.fixture(scope="session")
def tiny_served(tiny_datastack):
    """``caveql serve`` over the tiny datastack (the service's 200,000-row cap)."""
    s = serve(tiny_datastack)
    yield s
    s.stop()


@pytest.fixture(scope="session")
def tiny_capped(tiny_datastack):
    """The tiny datastack served with a 3-row cap."""
    s = serve(tiny_datastack, row_cap=3)
    yield s
    s.stop()


def to_frame(table: pa.Table) -> pd.DataFrame:
    """An answer as caveclient's ``read_pandas()`` gives it (service dtypes)."""
    return table.to_pandas(types_mapper=service_dtype)


def packed(frame: pd.DataFrame) -> pd.DataFrame:
    """Positions re-packed into ``[x, y, z]`` columns as caveclient does without split_positions."""
    from caveclient.materializationengine import concatenate_position_columns

    return concatenate_position_columns(frame.copy(), inplace=False)


def utc(frame: pd.DataFrame) -> pd.DataFrame:
    """A table's answer as the genuine service's frame holds it: naive timestamps read as UTC
    (``fix_columns_with_query``: ``pd.to_datetime(..., utc=True)`` on DateTime columns)."""
    out = frame.copy()
    for col in out.columns:
        if pd.api.types.is_datetime64_dtype(out[col]) and getattr(out[col].dt, "tz", None) is None:
            out[col] = out[col].dt.tz_localize("UTC")
    return out


def naive(frame: pd.DataFrame) -> pd.DataFrame:
    """UTC-aware timestamps as naive UTC (to compare values whatever a client's representation)."""
    out = frame.copy()
    for col in out.columns:
        if isinstance(out[col].dtype, pd.DatetimeTZDtype):
            out[col] = out[col].dt.tz_convert("UTC").dt.tz_localize(None)
        elif pd.api.types.is_datetime64_dtype(out[col]):
            out[col] = out[col].astype("datetime64[ns]")
    return out


def assert_frames(got: pd.DataFrame, want: pd.DataFrame) -> None:
    """Same columns, rows and values (exactly); position arrays compared element-wise."""
    got, want = got.reset_index(drop=True), want.reset_index(drop=True)
    assert list(got.columns) == list(want.columns)
    assert len(got) == len(want)
    for col in want.columns:
        if want[col].dtype == object:
            a, b = got[col].tolist(), want[col].tolist()
            a = [x.tolist() if hasattr(x, "tolist") else x for x in a]
            b = [x.tolist() if hasattr(x, "tolist") else x for x in b]
            assert str(a) == str(b), col
        else:
            pd.testing.assert_series_equal(got[col], want[col], check_exact=True, check_dtype=False)


def assert_same(cc_frame: pd.DataFrame, table: pa.Table, *, split: bool = True) -> None:
    """caveclient's frame equals an Arrow answer (rows, columns, dtypes, values)."""
    want = to_frame(table)
    if not split:
        want = packed(want)
    got = cc_frame.reset_index(drop=True)
    assert list(got.columns) == list(want.columns)
    if split:
        pd.testing.assert_frame_equal(got, want.reset_index(drop=True), check_exact=True)
    else:
        assert len(got) == len(want)
        for col in got.columns:
            a, b = got[col].tolist(), want[col].tolist()
            if a and hasattr(a[0], "tolist"):
                a, b = [x.tolist() for x in a], [x.tolist() for x in b]
            assert str(a) == str(b), col


@pytest.fixture(scope="session")
def helpers():
    """This module (Served, to_frame, packed, assert_same, TOKEN)."""
    return sys.modules[__name__]
