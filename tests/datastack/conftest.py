"""Fixtures of the local datastack tests: a backend over the tiny hand-made datastack."""

from __future__ import annotations

from pathlib import Path

import pytest

from caveql.backends.local import LocalBackend


@pytest.fixture(scope="session")
def tiny(tiny_datastack: Path):
    backend = LocalBackend(tiny_datastack)
    yield backend
    backend.close()
