"""Fixtures of the snapshot tests: the tiny datastack served by ``caveql serve`` at a 4-row cap
(so every table of more than 4 rows is fetched in pages; its view ``syn_counts`` has at most 3
rows per root id, so it can be cut into ranges under the cap), an HTTP backend on it, and the
small demo (its views) served at a cap of :data:`DEMO_CAP` rows."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from caveql.backends.http import HttpBackend
from tests.archive.conftest import demo_4k  # noqa: F401 - the small demo, shared with tests/archive
from tests.server.conftest import TOKEN, Served, serve

CAP = 4
DEMO_CAP = 1_000


@pytest.fixture(scope="module")
def tiny_capped(tiny_datastack) -> Iterator[Served]:
    """``caveql serve`` over the tiny datastack with a 4-row cap."""
    server = serve(tiny_datastack, row_cap=CAP)
    yield server
    server.stop()


@pytest.fixture
def remote(tiny_capped) -> Iterator[HttpBackend]:
    """An HTTP backend on it (no disk cache: every row comes from the service)."""
    backend = HttpBackend("tiny", server=tiny_capped.url, token=TOKEN, cache=False, progress=False)
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def demo_capped(demo_4k) -> Iterator[Served]:  # noqa: F811
    """``caveql serve`` over the small demo (4,000 synapses; views at versions 343 and 661) with a
    row cap of :data:`DEMO_CAP`: every view is larger, so each is fetched in pages."""
    server = serve(demo_4k, row_cap=DEMO_CAP)
    yield server
    server.stop()
