"""The pygments lexer: tokens, entry point registration."""

from __future__ import annotations

from importlib.metadata import entry_points

from pygments.lexers import get_lexer_by_name
from pygments.token import Comment, Keyword, Name, Number, Operator, String

from caveql.repl.lexer import CqlLexer


def kinds(text: str) -> list[tuple[object, str]]:
    return [(t, v) for t, v in CqlLexer().get_tokens(text) if v.strip()]


def test_entry_point_registered() -> None:
    eps = entry_points(group="pygments.lexers")
    assert any(ep.value == "caveql.repl.lexer:CqlLexer" for ep in eps)
    assert isinstance(get_lexer_by_name("cql"), CqlLexer)


def test_tokens_of_a_query() -> None:
    toks = kinds("select s.size, COUNT(*) FROM synapses_pni_2 s -- c\n"
                 "WHERE cell_type = 'B''C' AND pre_pt_root_id IN :ids AND x ~ '^a' /* b */ LIMIT 864691135808473885")
    assert toks[0] == (Keyword, "select")
    assert (Name.Builtin, "COUNT") in toks
    assert (Comment.Single, "-- c") in toks
    assert (String.Escape, "''") in toks
    assert (Name.Variable, ":ids") in toks
    assert (Operator, "~") in toks
    assert (Number.Integer, "864691135808473885") in toks
    assert any(t is Comment.Multiline for t, _ in toks)
    assert (Name, "cell_type") in toks


def test_count_as_column_name_is_not_builtin() -> None:
    assert (Name, "count") in kinds("SELECT count FROM t")


def test_backslash_command() -> None:
    assert kinds("\\dt")[0] == (Keyword.Pseudo, "\\dt")


def test_every_grammar_keyword_is_highlighted() -> None:
    import re
    from importlib.resources import files

    from caveql.repl.lexer import KEYWORDS

    grammar = files("caveql.grammar").joinpath("caveql.lark").read_text(encoding="utf-8")
    keywords = set(re.findall(r'^([A-Z_]+):\s*"([a-z_]+)"i', grammar, re.MULTILINE))
    assert len(keywords) >= 40
    missing = {word.upper() for _name, word in keywords} - set(KEYWORDS)
    assert not missing, f"add to caveql.repl.lexer.KEYWORDS: {sorted(missing)}"
    for _name, word in keywords:
        toks = [(t, v) for t, v in CqlLexer().get_tokens(f"{word} x") if v.strip()]
        assert toks[0] == (Keyword, word), word
