"""The analytic SQL of issue #10 parses into the contracted AST: set operations, WITH, derived
tables, files and :parameter tables, PIVOT/UNPIVOT, CASE, casts, EXISTS and scalar subqueries,
window calls, WINDOW/QUALIFY, GROUP BY ALL, SELECT without FROM, RIGHT/FULL/CROSS joins, USING."""

from __future__ import annotations

import logging

import pytest

from caveql.errors import CqlSyntaxError
from caveql.syntax import ast as A
from caveql.syntax import parse, print_ast


def _one(text: str) -> A.Node:
    return parse(text, start="statement")


def _expr(text: str) -> A.Node:
    return parse(text, start="expression")


def test_the_grammar_has_no_conflicts_but_the_documented_one(caplog: pytest.LogCaptureFixture) -> None:
    """LALR(1) with no shift/reduce conflict (lark would resolve one silently, as shift); the one
    reduce/reduce choice — `((SELECT 1))` read as a parenthesised query — is made by priority."""
    from lark import Lark

    from caveql.syntax.parser import START_RULES

    caplog.set_level(logging.DEBUG, logger="lark")
    Lark.open_from_package("caveql.grammar", "caveql.lark", ("",), parser="lalr", lexer="basic",
                           start=list(START_RULES.values()), keep_all_tokens=True, debug=True)
    assert not [r for r in caplog.records if "conflict" in r.getMessage().lower()]


def test_set_operations_bind_and_take_the_trailing_clauses() -> None:
    q = _one("SELECT a FROM t UNION SELECT b FROM u INTERSECT SELECT c FROM v ORDER BY 1 LIMIT 5")
    assert isinstance(q, A.SetOp) and q.op == "UNION" and not q.all
    assert isinstance(q.right, A.SetOp) and q.right.op == "INTERSECT"
    assert q.order_by == (A.OrderItem(A.Integer(1)),) and q.limit == A.Integer(5)
    last = q.right.right
    assert isinstance(last, A.Select) and last.order_by == () and last.limit is None
    # left-associative
    q = _one("SELECT 1 EXCEPT ALL SELECT 2 UNION SELECT 3")
    assert q.op == "UNION" and isinstance(q.left, A.SetOp) and q.left.op == "EXCEPT" and q.left.all


def test_each_branch_keeps_its_cave_clauses() -> None:
    q = _one("SELECT id FROM t AT VERSION 343 EXCEPT SELECT id FROM t AT VERSION 661 ORDER BY id")
    assert q.left.cave.version == A.Integer(343) and q.right.cave.version == A.Integer(661)
    assert q.order_by and q.right.order_by == ()


def test_parenthesised_branches_keep_their_own_clauses() -> None:
    q = _one("(SELECT a FROM t ORDER BY a LIMIT 3) UNION (SELECT b FROM u LIMIT 1) ORDER BY 1")
    assert q.left.limit == A.Integer(3) and q.left.order_by
    assert q.right.limit == A.Integer(1) and q.order_by == (A.OrderItem(A.Integer(1)),)
    q = _one("SELECT 1 UNION (SELECT 2) LIMIT 4")
    assert q.limit == A.Integer(4) and q.right.limit is None


@pytest.mark.parametrize(("text", "message"), [
    ("SELECT a FROM t ORDER BY a UNION SELECT b FROM u", "ORDER BY inside a set operation"),
    ("SELECT a FROM t LIMIT 1 INTERSECT SELECT b FROM u", "LIMIT inside a set operation"),
    ("(SELECT 1 LIMIT 1) LIMIT 2", "already has its own LIMIT"),
    ("(WITH x AS (SELECT 1) SELECT * FROM x) ORDER BY 1", "ORDER BY after a WITH query in parentheses"),
    ("SELECT a FROM t LIMIT 1 ORDER BY a", "ORDER BY after LIMIT"),
    ("SELECT * FROM (SELECT 1)", "a subquery in FROM needs a name"),
    ("SELECT foo(x AS INT)", "only CAST and TRY_CAST"),
    ("SELECT * FROM read_xlsx('a.xlsx')", "unknown table function"),
    ("WITH a AS (SELECT 1), a AS (SELECT 2) SELECT 1", "WITH defines 'a' twice"),
    ("SELECT 1 FROM t WINDOW w AS (), w AS ()", "window 'w' is defined twice"),
    ("SELECT * FROM read_csv('a.csv', header = true, HEADER = false)", "option 'header' given twice"),
    ("SELECT CAST(x AS \"my type\")", "is not a type name"),
])
def test_clear_errors(text: str, message: str) -> None:
    with pytest.raises(CqlSyntaxError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace(".", r"\.")) as info:
        parse(text)
    assert info.value.span is not None


def test_with_and_ctes() -> None:
    q = _one("WITH RECURSIVE a (x, y) AS (SELECT 1, 2), b AS (SELECT * FROM a) SELECT * FROM b")
    assert isinstance(q, A.With) and q.recursive
    assert [c.name for c in q.ctes] == ["a", "b"] and q.ctes[0].columns == ("x", "y")
    assert isinstance(q.body, A.Select) and q.body.source == A.TableRef("b")
    assert isinstance(_one("EXPLAIN WITH a AS (SELECT 1) SELECT * FROM a").statement, A.With)


def test_table_sources() -> None:
    q = _one("SELECT * FROM 'cells.csv' c JOIN read_csv('x.csv', header = true) AS r USING (id) "
             "CROSS JOIN :cells RIGHT OUTER JOIN (SELECT 1 AS one) AS d (uno) ON TRUE "
             "FULL JOIN t PIVOT (SUM(x) AS s FOR k IN ('a' AS aa, 'b')) AS p ON p.k = d.uno")
    assert q.source == A.FileRef("cells.csv", "c")
    j = q.joins
    assert j[0] == A.Join(A.FileRef("x.csv", "r", "read_csv", (("header", A.Boolean(True)),)), None,
                          "INNER", ("id",))
    assert j[1] == A.Join(A.ParamTable("cells"), None, "CROSS")
    assert j[2].kind == "RIGHT" and isinstance(j[2].source, A.Derived)
    assert j[2].source.alias == "d" and j[2].source.columns == ("uno",)
    p = j[3].source
    assert j[3].kind == "FULL" and isinstance(p, A.Pivot) and p.alias == "p"
    assert p.column == A.Column("k") and p.values == (A.PivotValue(A.String("a"), "aa"),
                                                      A.PivotValue(A.String("b")))
    u = _one("SELECT * FROM t UNPIVOT INCLUDE NULLS (v FOR n IN (a, b AS bee)) AS x").source
    assert u == A.Unpivot(A.TableRef("t"), "v", "n", ((A.Column("a"), None), (A.Column("b"), "bee")),
                          True, "x")
    assert _one("SELECT * FROM t PIVOT (COUNT(*) FOR y IN (2018, 2019))").source.values == (
        A.PivotValue(A.Integer(2018)), A.PivotValue(A.Integer(2019)))


def test_select_without_from_group_by_all_window_and_qualify() -> None:
    q = _one("SELECT 1 + 1")
    assert q.source is None and q.joins == ()
    q = _one("SELECT a, RANK() OVER w AS r FROM t GROUP BY ALL WINDOW w AS (ORDER BY a) QUALIFY r = 1")
    assert q.group_by_all and q.group_by == ()
    assert q.windows == (("w", A.WindowSpec(order_by=(A.OrderItem(A.Column("a")),))),)
    assert q.qualify == A.Binary("=", A.Column("r"), A.Integer(1))


def test_case_cast_exists_and_scalar_subqueries() -> None:
    assert _expr("CASE WHEN a THEN 1 ELSE 2 END") == A.Case(None, ((A.Column("a"), A.Integer(1)),),
                                                              A.Integer(2))
    assert _expr("CASE a WHEN 1 THEN 'x' END") == A.Case(A.Column("a"), ((A.Integer(1), A.String("x")),))
    assert _expr("TRY_CAST(a AS decimal(10, 2)[])") == A.Cast(
        A.Column("a"), A.TypeName("DECIMAL", (10, 2), 1), try_=True)
    # `::` binds tighter than unary minus, as in PostgreSQL and DuckDB
    assert _expr("-a::int") == A.Unary("-", A.Cast(A.Column("a"), A.TypeName("INT"), shorthand=True))
    assert _expr("-5::int") == A.Unary("-", A.Cast(A.Integer(5), A.TypeName("INT"), shorthand=True))
    sub = A.Select((A.SelectItem(A.Integer(1)),), None)
    assert _expr("NOT EXISTS (SELECT 1)") == A.Exists(sub, negated=True)
    assert _expr("NOT NOT EXISTS (SELECT 1)") == A.Unary("NOT", A.Exists(sub, negated=True))
    assert _expr("(SELECT 1) + 1") == A.Binary("+", A.Subquery(sub), A.Integer(1))
    assert _expr("((SELECT 1))") == A.Subquery(sub)
    assert _expr("x IN ((SELECT 1))") == A.In(A.Column("x"), A.Subquery(sub))
    assert _expr("x IN ((SELECT 1), 2)") == A.In(A.Column("x"), A.ListExpr((A.Subquery(sub), A.Integer(2))))
    union = _expr("(SELECT 1 UNION SELECT 1)")
    assert isinstance(union, A.Subquery) and isinstance(union.select, A.SetOp)


def test_window_calls() -> None:
    e = _expr("SUM(x) FILTER (WHERE y > 1) OVER (w PARTITION BY a ORDER BY b DESC "
              "ROWS BETWEEN UNBOUNDED PRECEDING AND 2 FOLLOWING EXCLUDE NO OTHERS)")
    assert isinstance(e, A.WindowCall) and e.func == A.FuncCall("SUM", (A.Column("x"),))
    assert e.filter == A.Binary(">", A.Column("y"), A.Integer(1))
    w = e.window
    assert w.base == "w" and w.partition_by == (A.Column("a"),)
    assert w.frame == A.Frame("ROWS", A.FrameBound("UNBOUNDED PRECEDING"),
                              A.FrameBound("FOLLOWING", A.Integer(2)), "NO OTHERS")
    assert _expr("COUNT(*) OVER w") == A.WindowCall(A.FuncCall("COUNT", star=True), "w")
    # an aggregate's own FILTER: on the call (a window call's stays the WindowCall's)
    assert _expr("COUNT(*) FILTER (WHERE x > 1)") == A.FuncCall(
        "COUNT", star=True, filter=A.Binary(">", A.Column("x"), A.Integer(1)))
    assert _expr("SUM(DISTINCT x) FILTER (WHERE y)") == A.FuncCall(
        "SUM", (A.Column("x"),), True, filter=A.Column("y"))
    assert _expr("RANK() OVER ()").window == A.WindowSpec()
    assert _expr("LAG(x) OVER (RANGE (:n + 1) PRECEDING)").window.frame == A.Frame(
        "RANGE", A.FrameBound("PRECEDING", A.Binary("+", A.Param("n"), A.Integer(1))))


@pytest.mark.parametrize("text", [
    "SELECT first, last, version, over, rows, range, partition, window, qualify, filter, exists, "
    "pivot, unpivot, using, cross, full, right, recursive, current, row, following FROM t",
    "SELECT cast, try_cast FROM t",
    "SELECT a FROM t AS pivot JOIN u AS window ON pivot.a = window.a",
    "WITH recursive AS (SELECT 1) SELECT * FROM recursive",
])
def test_soft_keywords_are_still_names(text: str) -> None:
    tree = parse(text)
    assert parse(print_ast(tree)) == tree


def test_spans_of_the_new_nodes() -> None:
    text = "SELECT x::INT, CASE WHEN a THEN 1 END FROM (SELECT 1) AS d UNION SELECT 2 ORDER BY 1"
    q = _one(text)
    cast = q.left.items[0].expr
    assert text[cast.span.start:cast.span.end] == "x::INT"
    case = q.left.items[1].expr
    assert text[case.span.start:case.span.end] == "CASE WHEN a THEN 1 END"
    d = q.left.source
    assert text[d.span.start:d.span.end] == "(SELECT 1) AS d"
    assert q.span.start == 0 and q.span.end == len(text)
