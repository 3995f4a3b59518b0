"""docs/language.md: every ```sql example parses, covers the language, and names demo tables."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from caveql.syntax import ast as A
from caveql.syntax import format_cql, parse

DOC = Path(__file__).resolve().parents[2] / "docs" / "language.md"
EXAMPLES = re.findall(r"```sql\n(.*?)```", DOC.read_text(), re.S)
DEMO_TABLES = {"nucleus_detection_v0", "aibs_soma_nuc_metamodel_preds_v117", "synapses_pni_2"}


def ast_nodes(node: object):
    """Every AST node under ``node`` (tuples walked, spans left out)."""
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, tuple):
            stack.extend(n)
        elif isinstance(n, A.Node):
            yield n
            stack.extend(getattr(n, f) for f in n.__dataclass_fields__ if f != "span")


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 20


@pytest.mark.parametrize("text", EXAMPLES, ids=[f"example{i:02d}" for i in range(len(EXAMPLES))])
def test_example_parses_and_formats(text: str) -> None:
    script = parse(text)
    assert parse(format_cql(text)) == script
    tables = {n.name for n in ast_nodes(script) if isinstance(n, A.TableRef)}
    ctes = {n.name for n in ast_nodes(script) if isinstance(n, A.Cte)}
    assert tables <= DEMO_TABLES | ctes | {"my table"}, tables


def test_every_construct_has_an_example() -> None:
    seen = {type(n).__name__ for text in EXAMPLES for n in ast_nodes(parse(text))}
    every = {name for name in A.__all__ if isinstance(getattr(A, name), type)
             and issubclass(getattr(A, name), A.Node) and getattr(A, name) is not A.Node}
    assert every - seen == set()
    flags = [n for text in EXAMPLES for n in ast_nodes(parse(text))]
    assert any(isinstance(n, A.Select) and n.distinct for n in flags)
    assert any(isinstance(n, A.Join) and n.kind == "LEFT" for n in flags)
    assert any(isinstance(n, A.Explain) and n.analyze for n in flags)
    assert any(isinstance(n, A.OrderItem) and n.nulls for n in flags)
    assert any(isinstance(n, A.FuncCall) and n.distinct for n in flags)
    assert any(isinstance(n, A.CaveClauses) and n.live for n in flags)
    assert any(isinstance(n, A.CaveClauses) and n.split_positions for n in flags)
    assert {n.what for n in flags if isinstance(n, A.Show)} == {"TABLES", "VIEWS", "VERSIONS", "DATASTACK"}
    for cls in (A.In, A.Between, A.Like, A.Regex, A.IsNull, A.Exists):
        assert any(isinstance(n, cls) and getattr(n, "negated", False) for n in flags), cls
    # the analytic SQL of issue #10, in each of its forms
    assert {n.kind for n in flags if isinstance(n, A.Join)} == {"INNER", "LEFT", "RIGHT", "FULL", "CROSS"}
    assert any(isinstance(n, A.Join) and n.using for n in flags)
    assert {(n.op, n.all) for n in flags if isinstance(n, A.SetOp)} >= {("EXCEPT", False), ("UNION", True)}
    assert any(isinstance(n, A.SetOp) and n.op == "INTERSECT" for n in flags)
    assert any(isinstance(n, A.SetOp) and n.order_by and n.limit is not None for n in flags)
    assert any(isinstance(n, A.Select) and n.source is None for n in flags)
    assert any(isinstance(n, A.Select) and n.group_by_all for n in flags)
    assert any(isinstance(n, A.Select) and n.windows for n in flags)
    assert any(isinstance(n, A.Select) and n.qualify is not None for n in flags)
    assert any(isinstance(n, A.Case) and n.operand is not None for n in flags)
    assert any(isinstance(n, A.Case) and n.operand is None for n in flags)
    assert {(n.try_, n.shorthand) for n in flags if isinstance(n, A.Cast)} >= {
        (False, False), (True, False), (False, True)}
    assert any(isinstance(n, A.WindowCall) and isinstance(n.window, str) for n in flags)
    assert any(isinstance(n, A.WindowCall) and n.filter is not None for n in flags)
    assert any(isinstance(n, A.Frame) and n.end is not None for n in flags)
    assert any(isinstance(n, A.Derived) and n.columns for n in flags)
    assert any(isinstance(n, A.Cte) and n.columns for n in flags)
    assert any(isinstance(n, A.Unpivot) and n.include_nulls for n in flags)
    assert any(isinstance(n, A.FileRef) and n.function for n in flags)
    assert any(isinstance(n, A.FileRef) and not n.function for n in flags)


ROOT_ID = 864691135808473885
PARAMS = {"root_id": ROOT_ID, "partners": [864691135771677771, 864691135560505569],
          "excluded": [864691135771677771],
          # a table parameter (FROM :cells): "Your own data as tables"
          "cells": pd.DataFrame({"root_id": [864691135946651940, 864691135841325283]})}


@pytest.fixture(scope="module")
def demo_backends(demo_path):
    from caveql.backends.local import LocalBackend

    backends = [LocalBackend(demo_path)]
    yield backends
    for b in backends:
        b.close()


@pytest.fixture
def demo_engine(demo_path, demo_backends):
    """A fresh engine per example (SET changes session state), over one shared backend."""
    from caveql.backends.local import LocalBackend
    from caveql.engine import Engine

    def opener(_name: str) -> LocalBackend:  # `USE minnie65_demo` reopens the same datastack
        demo_backends.append(LocalBackend(demo_path))
        return demo_backends[-1]

    return Engine(demo_backends[0], opener=opener)


@pytest.mark.parametrize("text", EXAMPLES, ids=[f"example{i:02d}" for i in range(len(EXAMPLES))])
def test_example_runs_on_the_demo(demo_engine, text: str, monkeypatch) -> None:
    from caveql.bind import only_used
    from caveql.errors import UnknownTableError

    monkeypatch.chdir(DOC.parent)  # file paths in the examples are relative to docs/

    params = only_used(text, PARAMS)  # (a name an example does not use would be refused)
    if '"my table"' in text:
        with pytest.raises(UnknownTableError):
            demo_engine.execute_script(text, params=params)
        return
    results = demo_engine.execute_script(text, params=params)
    assert len(results) == len(parse(text).statements)
    for r in results:
        assert r.kind in ("rows", "message")
        assert (r.frame is not None) if r.kind == "rows" else bool(r.message)
