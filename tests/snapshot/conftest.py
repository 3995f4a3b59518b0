"""Fixtures of the snapshot tests: the tiny datastack served by ``caveql serve`` at a 3-row cap
(so every table of more than 3 rows is fetched in pages), and an HTTP backend on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from caveql.backends.http import HttpBackend
from tests.server.conftest import TOKEN, Served, serve

CAP = 3


@pytest.fixture(scope="module")
def tiny_capped(tiny_datastack) -> Iterator[Served]:
    """``caveql serve`` over the tiny datastack with a 3-row cap."""
    server = serve(tiny_datastack, row_cap=CAP)
    yield server
    server.stop()


@pytest.fixture
def remote(tiny_capped) -> Iterator[HttpBackend]:
    """An HTTP backend on it (no disk cache: every row comes from the service)."""
    backend = HttpBackend("tiny", server=tiny_capped.url, token=TOKEN, cache=False, progress=False)
    yield backend
    backend.close()
