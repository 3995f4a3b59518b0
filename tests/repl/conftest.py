"""Fixtures for the CLI/REPL tests: the real engine on the tiny hand-made datastack.

Tests compare what the CLI/REPL prints with what the Python API returns for the
same query (never hard-coded frames), plus facts of the tiny datastack that are
documented in caveql/datastack/tiny.py (e.g. cells 2 and 5 are 'BC').
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import caveql


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No user config or history leaks in or out of a test."""
    monkeypatch.setenv("CAVEQL_CONFIG", str(tmp_path / "no-config.toml"))
    monkeypatch.setenv("CAVEQL_HISTORY_DIR", str(tmp_path / "history"))
    monkeypatch.delenv("CAVEQL_DEMO_PATH", raising=False)


@pytest.fixture
def tiny(tiny_datastack: Path) -> str:
    return str(tiny_datastack)


@pytest.fixture
def opener(tiny: str) -> Callable[[], caveql.Connection]:
    """A connection factory on the tiny datastack (what the CLI builds from --path)."""
    return lambda: caveql.connect(path=tiny)


@pytest.fixture
def expected(opener: Callable[[], caveql.Connection]) -> Callable[[str], object]:
    """The frame the Python API gives for a query (what the CLI must print)."""

    def run(text: str, **params: object) -> object:
        with opener() as db:
            return db.query(text, **params)

    return run
