"""The canonical corpus prints back unchanged, statement by statement and as a whole file."""

from __future__ import annotations

from pathlib import Path

import pytest

from caveql.syntax import format_cql, parse, print_ast

CORPUS = Path(__file__).parent / "corpus" / "canonical.cql"
TEXT = CORPUS.read_text()
STATEMENTS = [TEXT[s.span.start:s.span.end] for s in parse(TEXT).statements]


def test_corpus_file_is_canonical() -> None:
    assert format_cql(TEXT) == TEXT


def test_corpus_covers_every_statement_kind() -> None:
    kinds = {type(s).__name__ for s in parse(TEXT).statements}
    assert kinds == {"Select", "SetOp", "With", "Show", "Describe", "Explain", "Set", "Use"}
    assert len(STATEMENTS) >= 40


@pytest.mark.parametrize("text", STATEMENTS, ids=[f"stmt{i:02d}" for i in range(len(STATEMENTS))])
def test_statement_prints_back_unchanged(text: str) -> None:
    assert print_ast(parse(text, start="statement")) == text


def test_case_and_spacing_do_not_matter() -> None:
    for text in STATEMENTS:
        mangled = " ".join(text.split()).lower() if "'" not in text and '"' not in text else text
        assert print_ast(parse(mangled, start="statement")) == text
