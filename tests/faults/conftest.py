"""Fixtures of the fault-injection tests: ``caveql serve`` over the demo at a 1,000-row cap, and
the fault-free answers to compare with."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from caveql.backends.local import LocalBackend
from tests.server.conftest import Served, serve

CAP = 1000


@pytest.fixture(scope="session")
def demo_served(demo_path) -> Iterator[Served]:
    """The demo datastack served with a 1,000-row cap (pages of every statement below)."""
    server = serve(demo_path, row_cap=CAP)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def demo_local(demo_path) -> Iterator[LocalBackend]:
    """The same datastack read directly: the fault-free answers."""
    backend = LocalBackend(demo_path)
    yield backend
    backend.close()
