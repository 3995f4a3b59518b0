"""Fixtures of the snapshot tests: the tiny datastack served by ``caveql serve`` at a 3-row cap
(so every table of more than 3 rows is fetched in pages), and an HTTP backend on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from caveql.backends.http import HttpBackend
from caveql.backends.local import LocalBackend
from caveql.server import ServerThread, create_app

CAP = 3
TOKEN = "fedcba9876543210fedcba9876543210"


@pytest.fixture(scope="module")
def tiny_capped(tiny_datastack) -> Iterator[ServerThread]:
    """``caveql serve`` over the tiny datastack with a 3-row cap."""
    backend = LocalBackend(tiny_datastack, server_compat=True)
    server = ServerThread(create_app(backend, row_cap=CAP)).start()
    yield server
    server.stop()
    backend.close()


@pytest.fixture
def remote(tiny_capped) -> Iterator[HttpBackend]:
    """An HTTP backend on it (no disk cache: every row comes from the service)."""
    backend = HttpBackend("tiny", server=tiny_capped.url, token=TOKEN, cache=False, progress=False)
    yield backend
    backend.close()
