"""Engine test fixtures: engines over the tiny datastack, with and without a row cap."""

from __future__ import annotations

import pytest

from caveql.backends.local import LocalBackend
from caveql.engine import Engine


@pytest.fixture(scope="session")
def tiny_backend(tiny_datastack):
    b = LocalBackend(tiny_datastack)
    yield b
    b.close()


@pytest.fixture()
def engine(tiny_backend):
    return Engine(tiny_backend)


@pytest.fixture(scope="session")
def capped_backend(tiny_datastack):
    """The same datastack with a 3-row cap: every multi-row answer needs splitting."""
    b = LocalBackend(tiny_datastack, row_cap=3)
    yield b
    b.close()


@pytest.fixture(scope="session")
def demo_backend(demo_path):
    """The shared demo datastack (2,000,000 synapses, seed 0; built once per machine)."""
    b = LocalBackend(demo_path)
    yield b
    b.close()
