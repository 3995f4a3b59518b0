"""Printer properties: parse(print(ast)) == ast, and format is idempotent.

The strategies draw every construct (set operations, WITH, windows, PIVOT, ...), so each example
is costly: CI runs a modest derandomized budget, CAVEQL_FUZZ=1 (`make fuzz`) eight times more.
"""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st

from caveql.syntax import ast as A
from caveql.syntax import format_cql, parse, print_ast
from tests.syntax.strategies import expressions, scripts, statements

_SCALE = 8 if os.environ.get("CAVEQL_FUZZ") else 1


@settings(max_examples=300 * _SCALE)
@given(scripts)
def test_script_roundtrip(script: A.Script) -> None:
    text = print_ast(script)
    assert parse(text) == script, text


@settings(max_examples=400 * _SCALE)
@given(expressions)
def test_expression_roundtrip(expr: A.Node) -> None:
    text = print_ast(expr)
    assert parse(text, start="expression") == expr, text


@settings(max_examples=100 * _SCALE)
@given(statements, st.sampled_from([20, 40, 80, 200]))
def test_format_is_idempotent_at_any_width(stmt: A.Node, width: int) -> None:
    once = format_cql(print_ast(A.Script((stmt,)), width=width), width=width)
    assert format_cql(once, width=width) == once
    assert parse(once).statements == (stmt,)


@settings(max_examples=100 * _SCALE)
@given(statements)
def test_every_node_has_a_span_inside_the_text(stmt: A.Node) -> None:
    text = print_ast(stmt)
    tree = parse(text, start="statement")
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, tuple):
            stack.extend(node)
            continue
        if not isinstance(node, A.Node):
            continue
        if not isinstance(node, A.CaveClauses) or node != A.CaveClauses():
            assert node.span is not None, node
            assert 0 <= node.span.start <= node.span.end <= len(text)
            assert text.count("\n", 0, node.span.start) + 1 == node.span.line
        stack.extend(getattr(node, f) for f in node.__dataclass_fields__ if f != "span")
