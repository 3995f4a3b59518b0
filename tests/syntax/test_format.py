"""format_cql: comments are never lost, layout rules, idempotence on tricky inputs."""

from __future__ import annotations

import pytest

from caveql.errors import CqlSyntaxError
from caveql.syntax import format_cql, parse, print_ast
from caveql.syntax import ast as A


def test_comments_between_statements_are_kept_in_place() -> None:
    text = "-- name: seed\n-- params: root_id int\nshow tables; -- all\n/* next */\nshow views\n-- end\n"
    assert format_cql(text) == ("-- name: seed\n-- params: root_id int\nSHOW TABLES; -- all\n"
                                "/* next */\nSHOW VIEWS;\n-- end\n")


def test_a_statement_with_an_inner_comment_is_left_as_written() -> None:
    text = "select a, -- the id\n  b from t;\nshow  tables"
    assert format_cql(text) == "select a, -- the id\n  b from t;\n\nSHOW TABLES;\n"


def test_comment_markers_inside_strings_and_names_are_not_comments() -> None:
    text = "select '--x', \"/*y*/\" from t"
    assert format_cql(text) == "SELECT '--x', \"/*y*/\" FROM t;\n"


def test_comment_only_and_empty_input() -> None:
    assert format_cql("-- header\n\n/* b */ \n") == "-- header\n/* b */\n"
    assert format_cql("") == ""


def test_syntax_errors_propagate() -> None:
    with pytest.raises(CqlSyntaxError):
        format_cql("SELECT FROM")


def test_layout_one_line_then_clause_per_line() -> None:
    assert format_cql("select a from t") == "SELECT a FROM t;\n"
    long = "select " + ", ".join(f"column_{i}" for i in range(12)) + " from t where a = 1 and b = 2"
    out = format_cql(long)
    assert out.startswith("SELECT\n  column_0,\n  column_1,\n")
    assert "\nFROM t\nWHERE a = 1 AND b = 2;\n" in out
    assert all(len(line) <= 80 for line in out.splitlines())


def test_long_where_breaks_at_top_level_and_only() -> None:
    cond = " AND ".join(f"some_long_column_{i} = {i}" for i in range(5))
    out = format_cql(f"SELECT * FROM t WHERE {cond} AND (x = 1 AND y = 2)")
    assert "\n  AND some_long_column_4 = 4\n  AND (x = 1 AND y = 2);" in out


def test_multiline_statements_are_separated_by_a_blank_line() -> None:
    text = "show tables; select " + ", ".join(f"c{i}" for i in range(30)) + " from t; show views"
    out = format_cql(text)
    assert "SHOW TABLES;\n\nSELECT\n" in out and "FROM t;\n\nSHOW VIEWS;\n" in out


def test_parentheses_only_where_needed() -> None:
    e = parse("(a + b) * c - (d - e) - -f", start="expression")
    assert print_ast(e) == "(a + b) * c - (d - e) - -f"
    assert print_ast(A.Unary("-", A.Unary("-", A.Column("x")))) == "-(-x)"
    assert print_ast(parse("NOT (a = 1) AND (b OR c)", start="expression")) == "NOT a = 1 AND (b OR c)"


def test_identifiers_quoted_only_when_needed() -> None:
    out = print_ast(parse('select "a", "order", "Mixed Case", "x""y", version from "t"', start="statement"))
    assert out == 'SELECT a, "order", "Mixed Case", "x""y", version FROM t'


def test_width_is_respected_and_idempotent() -> None:
    text = ("SELECT pre.cell_type AS pre_type, COUNT(*) AS n FROM synapses_pni_2 s JOIN cells pre "
            "ON s.pre_pt_root_id = pre.pt_root_id WHERE s.size > 10 GROUP BY pre_type ORDER BY n DESC")
    for width in (30, 60, 120, 400):
        once = format_cql(text, width=width)
        assert format_cql(once, width=width) == once
        assert parse(once) == parse(text)
    assert "\n" not in format_cql(text, width=400).rstrip("\n")
