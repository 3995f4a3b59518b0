"""Parser unit tests: keywords, identifiers, literals, spans, start rules, nesting."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest

from caveql.errors import CqlSyntaxError, InvalidLiteralError, Span, UnexpectedEndError
from caveql.syntax import ast as A
from caveql.syntax import needs_more_input, parse
from caveql.syntax.builder import MAX_DEPTH


def test_keywords_do_not_match_inside_identifiers() -> None:
    sel = parse("select selected_cells, order_id, in_degree, fromage, asc_x from t", start="statement")
    assert [i.expr.name for i in sel.items] == ["selected_cells", "order_id", "in_degree", "fromage", "asc_x"]


def test_keywords_are_case_insensitive_identifiers_are_not() -> None:
    a = parse("SeLeCt Cell_Type FrOm T wHeRe X = 1", start="statement")
    assert a.items[0].expr == A.Column("Cell_Type")
    assert a.source == A.TableRef("T")
    assert a.where == A.Binary("=", A.Column("X"), A.Integer(1))


def test_quoted_identifiers() -> None:
    sel = parse('SELECT "order", "a""b", t."Weird name" FROM "select"', start="statement")
    assert [i.expr for i in sel.items] == [A.Column("order"), A.Column('a"b'), A.Column("Weird name", "t")]
    assert sel.source.name == "select"


def test_soft_keywords_are_names() -> None:
    sel = parse("SELECT version, timestamp, first, box AS live FROM tables AS views", start="statement")
    assert [i.expr.name for i in sel.items] == ["version", "timestamp", "first", "box"]
    assert sel.items[3].alias == "live"
    assert sel.source == A.TableRef("tables", "views")


def test_seed_example_with_limit_after_cave_clauses() -> None:
    sel = parse("SELECT pt_position, pt_root_id FROM nucleus_detection_v0 AT RESOLUTION 1,1,1 "
                "SPLIT POSITIONS LIMIT 10", start="statement")
    assert sel.limit == A.Integer(10)
    assert sel.cave.resolution == (A.Integer(1), A.Integer(1), A.Integer(1))
    assert sel.cave.split_positions


def test_cave_clauses_in_any_order_and_parenthesised_resolution() -> None:
    a = parse("SELECT * FROM t SPLIT POSITIONS AT VERSION 3 AT RESOLUTION (4, 4, 40) LIMIT 1",
              start="statement")
    b = parse("SELECT * FROM t LIMIT 1 AT RESOLUTION 4,4,40 AT VERSION 3 SPLIT POSITIONS",
              start="statement")
    assert a == b
    assert a.cave == A.CaveClauses(resolution=(A.Integer(4), A.Integer(4), A.Integer(40)),
                                   version=A.Integer(3), split_positions=True)


def test_uint64_exact_and_out_of_range() -> None:
    assert parse("18446744073709551615", start="expression") == A.Integer(2**64 - 1)
    assert parse("864691135808473885", start="expression").value == 864691135808473885
    with pytest.raises(InvalidLiteralError) as info:
        parse("SELECT 18446744073709551616 FROM t")
    assert info.value.span == Span(7, 27, 1, 8)


def test_negative_literals_fold_but_other_minus_stays() -> None:
    assert parse("-5", start="expression") == A.Integer(-5)
    assert parse("- 2.50", start="expression") == A.Float(Decimal("-2.50"))
    assert parse("-a", start="expression") == A.Unary("-", A.Column("a"))
    assert parse("a - -5", start="expression") == A.Binary("-", A.Column("a"), A.Integer(-5))


def test_precedence() -> None:
    e = parse("NOT a = 1 OR b + 2 * 3 > 4 AND c IS NULL", start="expression")
    assert e == A.Binary(
        "OR",
        A.Unary("NOT", A.Binary("=", A.Column("a"), A.Integer(1))),
        A.Binary("AND",
                 A.Binary(">", A.Binary("+", A.Column("b"), A.Binary("*", A.Integer(2), A.Integer(3))),
                          A.Integer(4)),
                 A.IsNull(A.Column("c"))),
    )


def test_strings_and_comments() -> None:
    e = parse("'it''s' -- a comment\n /* block\n comment */", start="expression")
    assert e == A.String("it's")


def test_in_forms() -> None:
    assert parse("x IN (1)", start="expression").target == A.ListExpr((A.Integer(1),))
    assert parse("x NOT IN :ids", start="expression") == A.In(A.Column("x"), A.Param("ids"), True)
    sub = parse("x IN (SELECT y FROM t)", start="expression").target
    assert isinstance(sub, A.Subquery) and sub.select.source.name == "t"


def test_spans_point_into_the_text() -> None:
    text = "SELECT a,\n  COUNT(*) AS n\nFROM t"
    sel = parse(text, start="statement")
    item = sel.items[1]
    assert text[item.span.start:item.span.end] == "COUNT(*) AS n"
    assert (item.span.line, item.span.column) == (2, 3)
    assert sel.span == Span(0, len(text), 1, 1)


def test_start_rules() -> None:
    assert isinstance(parse("SHOW TABLES; SHOW VIEWS"), A.Script)
    assert parse("SHOW TABLES;", start="statement") == A.Show("TABLES")
    with pytest.raises(CqlSyntaxError):
        parse("SHOW TABLES; SHOW VIEWS", start="statement")
    with pytest.raises(ValueError):
        parse("x", start="nonsense")  # type: ignore[arg-type]


def test_set_lowercases_the_name_and_collects_a_list() -> None:
    assert parse("SET Resolution = 4, 4, 40", start="statement") == A.Set(
        "resolution", A.ListExpr((A.Integer(4), A.Integer(4), A.Integer(40))))


def test_nesting_limit_is_a_clean_error() -> None:
    deep = "NOT " * (MAX_DEPTH + 1) + "x"
    with pytest.raises(CqlSyntaxError, match="nested too deeply"):
        parse(deep, start="expression")
    ok = "NOT " * (MAX_DEPTH - 1) + "x"
    assert parse(ok, start="expression") is not None
    # parentheses alone add no depth
    assert parse("(" * 10_000 + "1" + ")" * 10_000, start="expression") == A.Integer(1)


def test_incomplete_input() -> None:
    with pytest.raises(UnexpectedEndError):
        parse("SELECT * FROM t WHERE")
    assert needs_more_input("SELECT * FROM t WHERE (a = 1")
    assert needs_more_input("SELECT 'abc")
    assert not needs_more_input("SELECT 'abc' FROM t")
    assert not needs_more_input("SELECT ) FROM t")


def test_parse_is_thread_safe() -> None:
    texts = [f"SELECT {'NOT ' * (i % 50)} x FROM t{i} WHERE a IN ({', '.join(map(str, range(i)))})"
             for i in range(1, 60)]
    expected = [parse(t) for t in texts]
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(5):
                assert [parse(t) for t in texts] == expected
        except BaseException as exc:  # noqa: BLE001 - collected and re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
