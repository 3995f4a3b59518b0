"""Fixtures for the CLI/REPL tests.

``fake_connect`` stands in for the engine (caveql/engine.py) until it exists: it
parses with the real parser (so syntax errors, spans and carets are real), and
answers SELECT/SHOW/DESCRIBE/SET from small frames. Tests compare what the CLI
prints with what the connection returns, never with hard-coded numbers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from caveql.errors import ParameterError, UnknownColumnError, UnknownTableError, did_you_mean

ROOT = 864691135808473885


@dataclass(frozen=True)
class FakeSettings:
    version: int | None = None
    resolution: tuple[float, float, float] | None = None
    timestamp: datetime | None = None
    live: bool = False


@dataclass
class FakeResult:
    kind: str
    frame: pd.DataFrame | None = None
    message: str | None = None
    statement: Any = None
    elapsed: float = 0.0


def tables() -> dict[str, pd.DataFrame]:
    n = 60
    return {
        "nucleus_detection_v0": pd.DataFrame({
            "id": np.arange(n, dtype="int64"),
            "pt_root_id": np.array([ROOT + i for i in range(n)], dtype="uint64"),
            "volume": np.linspace(10, 500, n),
            "pt_position": [np.array([i, 2 * i, 3 * i], dtype="int32") for i in range(n)],
        }),
        "cells": pd.DataFrame({"id": [1, 2, 3], "pt_root_id": [ROOT, ROOT + 1, ROOT + 2],
                               "cell_type": ["BC", "23P", None]}),
    }


class FakeCatalog:
    def __init__(self, data: dict[str, pd.DataFrame]) -> None:
        self.data = data
        self.backend = SimpleNamespace(unique_string_values=lambda t: {
            c: sorted(v for v in data[t][c].dropna().unique()) for c in data[t].columns
            if data[t][c].dtype == object and isinstance(data[t][c].dropna().iloc[0], str)})

    def tables(self) -> list[str]:
        return list(self.data)

    def views(self) -> list[str]:
        return []

    def columns(self, name: str) -> list[tuple[str, str]]:
        df = self.data[name]
        return [(c, "position" if c.endswith("_position") else str(df[c].dtype)) for c in df.columns]

    def source(self, name: str) -> Any:
        cols = [SimpleNamespace(name=c, owner=name, owner_column=c) for c in self.data[name].columns]
        return SimpleNamespace(columns=cols, column=lambda c: next((x for x in cols if x.name == c), None))


class FakeEngine:
    def __init__(self) -> None:
        self.data = tables()
        self.settings = FakeSettings()
        self.backend = SimpleNamespace(name="fake_stack", close=lambda: None)
        self.closed = False
        self.delay = 0.0

    def catalog(self) -> FakeCatalog:
        return FakeCatalog(self.data)

    def close(self) -> None:
        self.closed = True

    def execute(self, text: str, params: dict[str, Any] | None = None) -> FakeResult:
        results = self.execute_script(text, params)
        assert len(results) == 1
        return results[0]

    def execute_script(self, text: str, params: dict[str, Any] | None = None) -> list[FakeResult]:
        from caveql.syntax import ast as A
        from caveql.syntax import parse

        params = params or {}
        out = []
        for stmt in parse(text).statements:
            if self.delay:
                time.sleep(self.delay)
            if isinstance(stmt, A.Select):
                out.append(FakeResult("rows", self._select(stmt, params), statement=stmt))
            elif isinstance(stmt, A.Show):
                out.append(FakeResult("rows", pd.DataFrame({"table_name": list(self.data)}), statement=stmt))
            elif isinstance(stmt, A.Describe):
                df = self._table(stmt.name, stmt.span)
                out.append(FakeResult("rows", pd.DataFrame({"column": list(df.columns)}), statement=stmt))
            else:
                name = getattr(stmt, "name", "?")
                if name == "version":
                    self.settings = replace(self.settings, version=stmt.value.value)
                out.append(FakeResult("message", message=f"SET {name}", statement=stmt))
        return out

    def _table(self, name: str, span: Any) -> pd.DataFrame:
        if name not in self.data:
            raise UnknownTableError(f"unknown table '{name}'", span=span, candidates=did_you_mean(name, self.data))
        return self.data[name]

    def _select(self, stmt: Any, params: dict[str, Any]) -> pd.DataFrame:
        from caveql.syntax import ast as A

        df = self._table(stmt.source.name, stmt.source.span)
        cols = []
        for item in stmt.items:
            if isinstance(item.expr, A.Star):
                cols.extend(df.columns)
            elif isinstance(item.expr, A.Column):
                if item.expr.name not in df.columns:
                    raise UnknownColumnError(f"unknown column '{item.expr.name}'", span=item.expr.span,
                                             candidates=did_you_mean(item.expr.name, df.columns))
                cols.append(item.expr.name)
        where = stmt.where
        if isinstance(where, A.In) and isinstance(where.target, A.Param):
            if where.target.name not in params:
                raise ParameterError(f"no value for :{where.target.name}", span=where.target.span)
            df = df[df[where.expr.name].isin(params[where.target.name])]
        if stmt.limit is not None:
            df = df.head(stmt.limit.value)
        return df[cols].reset_index(drop=True)

    def explain(self, text: str, params: dict[str, Any] | None = None, analyze: bool = False) -> str:
        from caveql.syntax import parse

        stmt = parse(text, start="statement")
        return f"remote: table {stmt.source.name}" + (" (analyze)" if analyze else "")


@pytest.fixture
def fake_engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def fake_connect(monkeypatch: pytest.MonkeyPatch) -> list[FakeEngine]:
    """Make caveql.api.connect return connections on fresh FakeEngines; yields the engines made."""
    import caveql.api as api

    made: list[FakeEngine] = []

    def connect(datastack: Any = None, **kw: Any) -> Any:
        eng = FakeEngine()
        made.append(eng)
        conn = api.Connection(eng, name=datastack or "fake_stack")
        if kw.get("version") is not None:
            conn.version = kw["version"]
        return conn

    monkeypatch.setattr(api, "connect", connect)
    monkeypatch.setenv("CAVEQL_CONFIG", "/nonexistent/caveql-config.toml")
    return made
