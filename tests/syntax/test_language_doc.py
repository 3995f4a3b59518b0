"""docs/language.md: every ```sql example parses, covers the language, and names demo tables."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from caveql.syntax import ast as A
from caveql.syntax import format_cql, parse

DOC = Path(__file__).resolve().parents[2] / "docs" / "language.md"
EXAMPLES = re.findall(r"```sql\n(.*?)```", DOC.read_text(), re.S)
DEMO_TABLES = {"nucleus_detection_v0", "aibs_soma_nuc_metamodel_preds_v117", "synapses_pni_2"}


def _nodes(node: object):
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
    tables = {n.name for n in _nodes(script) if isinstance(n, A.TableRef)}
    assert tables <= DEMO_TABLES | {"my table"}, tables


def test_every_construct_has_an_example() -> None:
    seen = {type(n).__name__ for text in EXAMPLES for n in _nodes(parse(text))}
    every = {name for name in A.__all__ if isinstance(getattr(A, name), type)
             and issubclass(getattr(A, name), A.Node) and getattr(A, name) is not A.Node}
    assert every - seen == set()
    flags = [n for text in EXAMPLES for n in _nodes(parse(text))]
    assert any(isinstance(n, A.Select) and n.distinct for n in flags)
    assert any(isinstance(n, A.Join) and n.kind == "LEFT" for n in flags)
    assert any(isinstance(n, A.Explain) and n.analyze for n in flags)
    assert any(isinstance(n, A.OrderItem) and n.nulls for n in flags)
    assert any(isinstance(n, A.FuncCall) and n.distinct for n in flags)
    assert any(isinstance(n, A.CaveClauses) and n.live for n in flags)
    assert any(isinstance(n, A.CaveClauses) and n.split_positions for n in flags)
    assert {n.what for n in flags if isinstance(n, A.Show)} == {"TABLES", "VIEWS", "VERSIONS", "DATASTACK"}
    for cls in (A.In, A.Between, A.Like, A.Regex, A.IsNull):
        assert any(isinstance(n, cls) and getattr(n, "negated", False) for n in flags), cls
