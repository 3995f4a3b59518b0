"""Input at the edges of what CQL can represent fails at parse time, pointing at the text (issue 16):
counts beyond what the engine passes on as a signed 64-bit integer, number literals beyond a
double, a byte-order mark before the first statement, an unclosed block comment (which, like an
unclosed string, means the input has not ended), and a parse cancelled half way."""

from __future__ import annotations

import pytest

from caveql import cancel
from caveql.errors import CancelledError, CqlSyntaxError, InvalidLiteralError, UnterminatedError
from caveql.syntax import ast as A
from caveql.syntax import format_cql, needs_more_input, parse
INT64_MAX = 2**63 - 1  # LIMIT, OFFSET and AT VERSION are signed 64-bit


@pytest.mark.parametrize("clause", ["LIMIT", "OFFSET", "AT VERSION"])
@pytest.mark.parametrize("value", [INT64_MAX + 1, 2**64 - 1])
def test_a_count_beyond_int64_points_at_the_number(clause: str, value: int) -> None:
    text = f"SELECT id FROM cells ORDER BY id {clause} {value}"
    with pytest.raises(InvalidLiteralError) as info:
        parse(text)
    err = info.value
    assert err.code == "CQL004"
    assert text[err.span.start:err.span.end] == str(value)
    assert err.span.column == len(text) - len(str(value)) + 1
    assert f"{clause} {value} is out of range (the largest is {INT64_MAX}" in err.message
    rendered = err.render()
    assert rendered.splitlines()[-2].endswith("^" * len(str(value)))  # the caret under the number


@pytest.mark.parametrize("clause", ["limit", "offset", "version"])
def test_the_largest_count_parses(clause: str) -> None:
    words = {"limit": "LIMIT", "offset": "OFFSET", "version": "AT VERSION"}[clause]
    sel = parse(f"SELECT id FROM cells {words} {INT64_MAX}", start="statement")
    got = sel.cave.version if clause == "version" else getattr(sel, clause)
    assert got == A.Integer(INT64_MAX)


def test_a_count_in_a_subquery_is_checked_too() -> None:
    text = "SELECT id FROM cells WHERE id IN (SELECT id FROM cells LIMIT 18446744073709551615)"
    with pytest.raises(InvalidLiteralError) as info:
        parse(text)
    assert text[info.value.span.start:info.value.span.end] == "18446744073709551615"


@pytest.mark.parametrize("literal", ["1e400", "-1e400", "1.5e309", "1e-400", "-2.5e-330", "0.1e-999"])
def test_a_number_a_double_cannot_hold_points_at_it(literal: str) -> None:
    text = f"SELECT id FROM cells WHERE size > {literal}"
    with pytest.raises(InvalidLiteralError) as info:
        parse(text)
    err = info.value
    number = literal.lstrip("-")
    assert text[err.span.start:err.span.end] == number
    assert ("out of range" in err.message) == ("e-" not in literal)
    assert ("too small" in err.message) == ("e-" in literal)


@pytest.mark.parametrize("literal", ["1.7976931348623157e308", "4.9e-324", "0e999", "0.0e-999", "1e308"])
def test_numbers_a_double_holds_parse(literal: str) -> None:
    where = parse(f"SELECT id FROM cells WHERE size > {literal}", start="statement").where
    assert isinstance(where.right, A.Float)


def test_out_of_range_numbers_fail_in_every_place_a_literal_goes() -> None:
    for text in ("SELECT id FROM cells AT RESOLUTION 1e400, 1, 1",
                 "SELECT id FROM cells WHERE pt_position WITHIN BOX((0, 0, 0), (1e999, 1, 1))",
                 "SELECT id * 1e400 FROM cells", "SET x = 1e400"):
        with pytest.raises(InvalidLiteralError) as info:
            parse(text)
        assert text[info.value.span.start:info.value.span.end] == ("1e999" if "e999" in text else "1e400")


def test_a_byte_order_mark_before_the_first_statement_is_blank_space() -> None:
    assert parse("\ufeffSELECT id FROM cells") == parse("SELECT id FROM cells")
    assert not needs_more_input("\ufeffSELECT id FROM cells;")
    with pytest.raises(CqlSyntaxError) as info:
        parse("\ufeffSELECT id FORM cells")
    err = info.value
    assert err.span.column == 12  # the mark is column 1 of the text it was given
    assert err.render().splitlines()[3:5] == ["1 |  SELECT id FORM cells", "  |            ^^^^"]


def test_a_byte_order_mark_elsewhere_is_still_an_error() -> None:
    with pytest.raises(CqlSyntaxError) as info:
        parse("SELECT id\ufeff FROM cells")
    assert "unexpected character" in info.value.message


@pytest.mark.parametrize("text", [
    "SELECT id /* FROM;",                              # after an operand `/` is division: fails at `*`
    "SELECT id /* FROM",
    "SELECT id FROM cells WHERE id = 1 /* AND x = 2;",
    "SELECT /* the columns;",                          # where an expression starts: fails at `/`
    "SELECT id FROM cells; /* a second statement",
    "SELECT id //* two slashes;",
    "SELECT id /* it's unclosed;",                     # a quote inside is not a string
])
def test_an_unclosed_block_comment_asks_for_more_input(text: str) -> None:
    assert needs_more_input(text)
    with pytest.raises(UnterminatedError) as info:
        parse(text)
    err = info.value
    assert err.code == "CQL003" and "comment is never closed" in err.message
    assert text[err.span.start:err.span.end] == "/*"
    assert text.rfind("/*") == err.span.start


@pytest.mark.parametrize("text", ["SELECT 2 */ 3 FROM cells;", "SELECT a/ *b FROM cells;",
                                  "SELECT id /* ; */ FROM cells;"])
def test_a_closed_or_spaced_comment_is_not_unclosed(text: str) -> None:
    assert not needs_more_input(text)


def test_a_cancelled_call_stops_parsing_a_long_script() -> None:
    token = cancel.CancelToken()
    token.cancel()
    with cancel.activate(token), pytest.raises(CancelledError):
        parse("SELECT id FROM cells;\n" * 1000)
    assert len(parse("SELECT id FROM cells;\n" * 1000).statements) == 1000  # not cancelled: parses


def test_format_keeps_working_on_the_largest_values() -> None:
    text = f"SELECT id FROM cells WHERE size > 1.7976931348623157e308 LIMIT {INT64_MAX} OFFSET {INT64_MAX};\n"
    assert parse(format_cql(text)) == parse(text)
