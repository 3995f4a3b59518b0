"""Fixtures of the fault-injection tests: ``caveql serve`` over the demo at a 1,000-row cap, and
the fault-free answers to compare with."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from caveql.backends.local import LocalBackend
from caveql.server import ServerThread, create_app

CAP = 1000


@pytest.fixture(scope="session")
def demo_served(demo_path) -> Iterator[ServerThread]:
    """The demo datastack served with a 1,000-row cap (pages of every statement below)."""
    backend = LocalBackend(demo_path, server_compat=True)
    server = ServerThread(create_app(backend, row_cap=CAP)).start()
    yield server
    server.stop()
    backend.close()


@pytest.fixture(scope="session")
def demo_local(demo_path) -> Iterator[LocalBackend]:
    """The same datastack read directly: the fault-free answers."""
    backend = LocalBackend(demo_path)
    yield backend
    backend.close()
