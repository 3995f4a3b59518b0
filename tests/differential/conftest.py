"""Fixtures of the differential tests: the oracle and its domain over the shared demo."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.differential.oracle import Domain, Oracle


@pytest.fixture(scope="session")
def oracle(demo_path: Path) -> Oracle:
    """The oracle over the shared demo datastack (``demo_path`` from tests/conftest.py)."""
    return Oracle(demo_path)


@pytest.fixture(scope="session")
def domain(oracle: Oracle) -> Domain:
    """Tables, column kinds, sampled values and anchors of the demo, per version."""
    return Domain(oracle)
