"""SQL that CQL does not have is named as such (not a misleading repair hint); the analytic SQL
that issue #10 added parses; and ``str(error)`` carries the hint the rendered error shows — once."""

from __future__ import annotations

import pytest

from caveql.errors import CaveqlError, CqlSyntaxError, Span, UnknownColumnError
from caveql.syntax import ast as A
from caveql.syntax import parse
from tests.syntax.test_language_doc import ast_nodes

NOT_SUPPORTED = [
    ("SELECT id FROM cells NATURAL JOIN nuclei", "NATURAL JOIN is", "NATURAL"),
    ("SELECT id FROM cells natural left join nuclei", "NATURAL JOIN is", "natural"),
    ("SELECT DISTINCT ON (cell_type) id FROM cells", "SELECT DISTINCT ON is", "DISTINCT ON"),
    ("SELECT * FROM (VALUES (1, 2)) AS v", "VALUES lists are", "VALUES"),
    ("SELECT * FROM cells JOIN LATERAL (SELECT 1) AS x ON TRUE", "LATERAL is", "LATERAL"),
    ("SELECT a FROM t GROUP BY GROUPING SETS ((a), ())", "GROUPING SETS is", "GROUPING"),
    ("SELECT a FROM t WHERE ts > '2024-01-01' - INTERVAL '1 day'", "INTERVAL literals are", "INTERVAL"),
    ("SELECT * FROM cells, nuclei", "a `,` between tables (an implicit cross join) is", ","),
    ("SELECT * FROM a JOIN b ON a.x = b.x, c", "a `,` between tables (an implicit cross join) is", ","),
]


@pytest.mark.parametrize(("text", "what", "word"), NOT_SUPPORTED)
def test_unsupported_sql_is_named(text: str, what: str, word: str) -> None:
    with pytest.raises(CqlSyntaxError) as info:
        parse(text)
    err = info.value
    assert err.message == f"{what} not supported in CQL"
    assert err.span is not None and text[err.span.start:err.span.end] == word
    assert err.hint and "missing" not in err.hint and "close the" not in err.hint


# what the old "not supported in CQL yet" errors named: each parses now, into its node
NOW_SUPPORTED = [
    ("SELECT CASE WHEN cell_type = 'BC' THEN 1 END FROM cells", A.Case),
    ("SELECT CASE cell_type WHEN 'BC' THEN 1 END FROM cells", A.Case),
    ("SELECT id FROM cells UNION SELECT id FROM nuclei", A.SetOp),
    ("SELECT id FROM cells union all SELECT id FROM nuclei", A.SetOp),
    ("SELECT id FROM cells INTERSECT SELECT id FROM nuclei", A.SetOp),
    ("SELECT CAST(id AS text) FROM cells", A.Cast),
    ("SELECT id::text FROM cells", A.Cast),
    ("SELECT id :: text FROM cells", A.Cast),
    ("WITH bc AS (SELECT id FROM cells) SELECT * FROM bc", A.With),
    ("SHOW TABLES; with x as (select 1) select * from x", A.With),
    ("EXPLAIN WITH x AS (SELECT 1) SELECT * FROM x", A.With),
    ("SELECT ROW_NUMBER() OVER (ORDER BY id) FROM cells", A.WindowCall),
]


@pytest.mark.parametrize(("text", "node"), NOW_SUPPORTED)
def test_what_was_not_supported_yet_parses(text: str, node: type) -> None:
    assert any(isinstance(n, node) for n in ast_nodes(parse(text)))


@pytest.mark.parametrize("text", [
    'SELECT "case", over, "with" FROM t',
    "SELECT id AS union_id FROM cells",
    "SELECT cast FROM t",
    "SELECT first, last, version, rows, range, partition, window, qualify, filter, exists FROM t",
    "SELECT natural, values, lateral FROM t",
])
def test_the_same_words_as_names_still_parse(text: str) -> None:
    parse(text)


def test_other_errors_near_those_words_keep_their_messages() -> None:
    # `natural` is a column here; the error is the missing FROM table, not NATURAL JOIN
    with pytest.raises(CqlSyntaxError) as info:
        parse("SELECT natural FROM")
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
