"""Parser smoke tests: every spec example parses into the documented AST shape."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from caveql.syntax import ast as A
from caveql.syntax import parse

SPEC = Path("/work/shared/cql-spec.md")


def _spec_statements() -> list[str]:
    if not SPEC.exists():
        return []
    text = SPEC.read_text()
    blocks = re.findall(r"```\n(.*?)```", text, re.S)
    out = []
    for b in blocks[-2:]:  # the seed's examples and "beyond the seed"
        out += [s.strip() for s in b.split(";") if s.strip() and not s.strip().startswith("--") or
                ("SELECT" in s)]
    return [s for s in out if s]


def test_keywords_do_not_match_inside_identifiers() -> None:
    sel = parse("select selected_cells, order_id, in_degree, fromage from t", start="statement")
    assert [i.expr.name for i in sel.items] == ["selected_cells", "order_id", "in_degree", "fromage"]


def test_seed_example_with_limit_after_cave_clauses() -> None:
    sel = parse("SELECT pt_position, pt_root_id FROM nucleus_detection_v0 AT RESOLUTION 1,1,1 "
                "SPLIT POSITIONS LIMIT 10", start="statement")
    assert sel.limit == A.Integer(10)
    assert sel.cave.resolution == (A.Integer(1), A.Integer(1), A.Integer(1))
    assert sel.cave.split_positions


def test_uint64_exact() -> None:
    e = parse("18446744073709551615", start="expression")
    assert e == A.Integer(2**64 - 1)


@pytest.mark.parametrize("text", _spec_statements() or ["SELECT 1 FROM t"])
def test_spec_examples_parse(text: str) -> None:
    assert isinstance(parse(text), A.Script)
