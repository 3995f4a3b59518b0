"""Golden error messages: tests/syntax/errors/<case>.cql must fail with exactly <case>.txt.

Each message was read as a user would read it; docs/errors.md lists those still known to be
poor. After a deliberate change, regenerate with ``CAVEQL_UPDATE_GOLDEN=1 pytest tests/syntax``
and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from caveql.errors import CaveqlError, CqlSyntaxError, UnexpectedEndError, UnterminatedError
from caveql.syntax import needs_more_input, parse

HERE = Path(__file__).parent / "errors"
CASES = sorted(p.stem for p in HERE.glob("*.cql"))


def _render(name: str) -> tuple[str, CaveqlError]:
    text = (HERE / f"{name}.cql").read_text()
    text = text[:-1] if text.endswith("\n") else text
    with pytest.raises(CaveqlError) as info:
        parse(text)
    err = info.value
    return f"{name}.cql\n{'=' * 40}\n{text}\n{'=' * 40}\n{err.render()}\n", err


def test_corpus_is_big_enough() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize("name", CASES)
def test_error_message(name: str) -> None:
    rendered, err = _render(name)
    assert isinstance(err, CqlSyntaxError)
    assert err.span is not None
    golden = HERE / f"{name}.txt"
    if os.environ.get("CAVEQL_UPDATE_GOLDEN"):
        golden.write_text(rendered)
    assert rendered == golden.read_text()


@pytest.mark.parametrize("name", CASES)
def test_incomplete_input_is_told_apart(name: str) -> None:
    """The REPL keeps reading exactly when the error is "the input ended too early"."""
    text = (HERE / f"{name}.cql").read_text()
    try:
        parse(text)
    except (UnexpectedEndError, UnterminatedError):
        assert needs_more_input(text)
    except CaveqlError:
        assert not needs_more_input(text)
