"""Issue 15, items 8 and 18: SQL that CQL does not have yet is named as such (not a misleading
repair hint), and ``str(error)`` carries the hint the rendered error shows — once."""

from __future__ import annotations

import pytest

from caveql.errors import CaveqlError, CqlSyntaxError, Span, UnknownColumnError
from caveql.syntax import parse

NOT_YET = [
    ("SELECT CASE WHEN cell_type = 'BC' THEN 1 END FROM cells", "CASE expressions are", "CASE"),
    ("SELECT CASE cell_type WHEN 'BC' THEN 1 END FROM cells", "CASE expressions are", "CASE"),
    ("SELECT id FROM cells UNION SELECT id FROM nuclei", "UNION is", "UNION"),
    ("SELECT id FROM cells union all SELECT id FROM nuclei", "UNION is", "union"),
    ("SELECT id FROM cells INTERSECT SELECT id FROM nuclei", "INTERSECT is", "INTERSECT"),
    ("SELECT CAST(id AS text) FROM cells", "CAST is", "CAST"),
    ("SELECT id::text FROM cells", "the `::` cast is", ":"),
    ("SELECT id :: text FROM cells", "the `::` cast is", ":"),
    ("WITH bc AS (SELECT id FROM cells) SELECT * FROM bc", "WITH (common table expressions) is", "WITH"),
    ("SHOW TABLES; with x as (select 1) select * from x", "WITH (common table expressions) is", "with"),
    ("EXPLAIN WITH x AS (SELECT 1) SELECT * FROM x", "WITH (common table expressions) is", "WITH"),
    ("SELECT ROW_NUMBER() OVER (ORDER BY id) FROM cells", "window functions (OVER) are", "OVER"),
]


@pytest.mark.parametrize(("text", "what", "word"), NOT_YET)
def test_unsupported_sql_is_named(text: str, what: str, word: str) -> None:
    with pytest.raises(CqlSyntaxError) as info:
        parse(text)
    err = info.value
    assert err.message == f"{what} not supported in CQL yet"
    assert err.span is not None and text[err.span.start:err.span.end] == word
    assert err.hint and "missing" not in err.hint and "close the" not in err.hint


@pytest.mark.parametrize("text", [
    'SELECT "case", over, "with" FROM t',
    "SELECT id AS union_id FROM cells",
    "SELECT cast FROM t",
])
def test_the_same_words_as_names_still_parse(text: str) -> None:
    parse(text)


def test_other_errors_near_those_words_keep_their_messages() -> None:
    # `case` is a column here; the error is the missing FROM table, not a CASE expression
    with pytest.raises(CqlSyntaxError) as info:
        parse("SELECT case, over FROM")
    assert "not supported" not in info.value.message
    with pytest.raises(CqlSyntaxError, match="expected a parameter name after `:`"):
        parse("SELECT id FROM t WHERE x = : y")


def test_str_of_an_error_holds_its_hint_once() -> None:
    err = UnknownColumnError("unknown column 'cel_type'", span=Span(7, 15, 1, 8), candidates=("cell_type",))
    assert str(err) == "unknown column 'cel_type' (line 1, column 8); help: did you mean 'cell_type'?"
    err.with_source("SELECT cel_type FROM t")
    rendered = err.render()
    assert rendered.count("did you mean") == 1 and "(line 1, column 8)" not in rendered
    assert str(CaveqlError("plain")) == "plain"


def test_str_of_a_syntax_error_has_the_did_you_mean() -> None:
    with pytest.raises(CqlSyntaxError) as info:
        parse("SELECT id FORM cells")
    assert str(info.value).endswith("; help: did you mean FROM?")
    assert info.value.render().count("did you mean FROM?") == 1
