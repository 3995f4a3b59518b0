"""Fuzzing the front end: every input parses or raises a CaveqlError — never another exception,
a RecursionError or a hang — and whatever parses also formats and re-parses to the same AST.

About 10,500 generated inputs per run (CAVEQL_FUZZ=1 raises each budget 8x), plus huge inputs.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caveql.errors import CaveqlError
from caveql.syntax import format_cql, needs_more_input, parse
from caveql.syntax.parser import tokens

_SCALE = 8 if os.environ.get("CAVEQL_FUZZ") else 1

SEEDS = [
    "SHOW DATASTACK;",
    "SHOW TABLES LIKE 'syn%';",
    "DESCRIBE nucleus_detection_v0;",
    "SELECT pt_position, pt_root_id FROM nucleus_detection_v0 AT RESOLUTION 1,1,1 SPLIT POSITIONS LIMIT 10;",
    "SELECT * FROM aibs_soma_nuc_metamodel_preds_v117 WHERE pt_root_id IN "
    "(864691135771677771, 864691135560505569, 864691136723556861);",
    "SELECT pre_pt_root_id, post_pt_root_id, COUNT(*) AS syn_count FROM synapses_pni_2 "
    "WHERE pre_pt_root_id = 864691135808473885 GROUP BY pre_pt_root_id, post_pt_root_id "
    "ORDER BY syn_count DESC;",
    "SELECT s.pre_pt_root_id, s.size FROM synapses_pni_2 s JOIN aibs_soma_nuc_metamodel_preds_v117 c "
    "ON s.post_pt_root_id = c.pt_root_id WHERE c.cell_type = 'BC' AND s.pre_pt_root_id = :root_id;",
    "SELECT * FROM synapses_pni_2 WHERE post_pt_root_id IN (SELECT pt_root_id FROM cells "
    "WHERE cell_type = 'BC') AND size > 1000 LIMIT 500000;",
    "SELECT id FROM nucleus_detection_v0 WHERE pt_position WITHIN BOX((700000, 400000, 800000), "
    "(800000, 500000, 850000)) AT RESOLUTION 1,1,1;",
    "SELECT * FROM n WHERE pt_position_z BETWEEN 20000 AND 21000 AND volume > 100 AT VERSION 343;",
    "SELECT DISTINCT cell_type FROM c WHERE name NOT LIKE 'a%' OR x ~ '^B' AND y IS NOT NULL "
    "ORDER BY 1 DESC NULLS LAST OFFSET 5 AT TIMESTAMP '2024-01-01T00:00:00Z' AT LIVE;",
    "EXPLAIN ANALYZE SELECT -a * (b + 2.5e3) % 7, \"select\" FROM t /* c */ -- x\n;",
    "SET resolution = 4, 4, 40; SET version = 1078; USE minnie65_public;",
    "WITH bc (root) AS (SELECT pt_root_id FROM c WHERE cell_type = 'BC') SELECT * FROM bc "
    "UNION ALL (SELECT 1 LIMIT 1) INTERSECT SELECT 2 AT VERSION 343 ORDER BY 1 LIMIT 5;",
    "SELECT CASE WHEN a THEN 1 ELSE 2 END, CASE b WHEN 1 THEN 'x' END, CAST(c AS DECIMAL(10, 2)), "
    "TRY_CAST(d AS VARCHAR), -e::BIGINT[], EXISTS (SELECT 1), (SELECT MAX(f) FROM t) FROM t;",
    "SELECT ROW_NUMBER() OVER (PARTITION BY a ORDER BY b ROWS BETWEEN 1 PRECEDING AND CURRENT ROW "
    "EXCLUDE TIES), SUM(x) FILTER (WHERE y) OVER w FROM t WINDOW w AS (ORDER BY c) "
    "QUALIFY RANK() OVER w = 1;",
    "SELECT * FROM 'x.csv' AS f RIGHT JOIN read_csv('y.csv', header = TRUE) y USING (id) "
    "CROSS JOIN :cells FULL OUTER JOIN (SELECT 1) AS d (one) ON TRUE GROUP BY ALL;",
    "SELECT * FROM t PIVOT (COUNT(*) AS n FOR k IN ('a' AS x, 'b')) AS p "
    "UNPIVOT INCLUDE NULLS (v FOR name IN (x, n AS m));",
]


def _check(text: str) -> None:
    try:
        tree = parse(text)
    except CaveqlError as err:
        if err.span is not None:
            assert 0 <= err.span.start <= err.span.end <= len(text), (text, err.span)
            assert err.span.line >= 1 and err.span.column >= 1
        assert err.render()  # rendering never fails either
        assert isinstance(needs_more_input(text), bool)
        return
    formatted = format_cql(text)
    assert parse(formatted) == tree


_SOUP = st.sampled_from([
    "SELECT", "select", "FROM", "WHERE", "GROUP", "BY", "ORDER", "HAVING", "LIMIT", "OFFSET", "AT",
    "RESOLUTION", "VERSION", "TIMESTAMP", "LIVE", "SPLIT", "POSITIONS", "JOIN", "LEFT", "ON", "AS",
    "AND", "OR", "NOT", "IN", "BETWEEN", "LIKE", "IS", "NULL", "WITHIN", "BOX", "DISTINCT", "SHOW",
    "TABLES", "DESCRIBE", "EXPLAIN", "ANALYZE", "SET", "USE", "COUNT", "*", ",", "(", ")", ";", ".",
    "=", "==", "!=", "<>", "<", ">=", "~", "!~", "+", "-", "/", "%", "'BC'", "'", '"', '"x"', "--",
    "/*", "*/", ":p", ":", "1", "864691135808473885", "99999999999999999999", "1.5", "2e3", ".5",
    "pt_root_id", "t", "cell_type", "\n", "é", "\x00", "`", "[", "@",
    "WITH", "RECURSIVE", "UNION", "ALL", "INTERSECT", "EXCEPT", "CASE", "WHEN", "THEN", "ELSE",
    "END", "CAST", "TRY_CAST", "::", "[]", "EXISTS", "OVER", "PARTITION", "ROWS", "RANGE",
    "BETWEEN", "UNBOUNDED", "PRECEDING", "CURRENT", "ROW", "FOLLOWING", "EXCLUDE", "FILTER",
    "WINDOW", "QUALIFY", "RIGHT", "FULL", "CROSS", "USING", "PIVOT", "UNPIVOT", "FOR", "'x.csv'",
])


@settings(max_examples=2500 * _SCALE)
@given(st.text())
def test_fuzz_arbitrary_text(text: str) -> None:
    _check(text)


@settings(max_examples=2500 * _SCALE)
@given(st.text(alphabet="selctfromwhr SELCTFROMWHR()'\",;:*-/=<>!~0123456789._\n\t%", max_size=60))
def test_fuzz_sql_alphabet(text: str) -> None:
    _check(text)


@settings(max_examples=2500 * _SCALE)
@given(st.lists(_SOUP, max_size=25), st.sampled_from([" ", "", "\n"]))
def test_fuzz_token_soup(words: list[str], sep: str) -> None:
    _check(sep.join(words))


def _mutate(text: str, ops: list[tuple[int, int, int]]) -> str:
    """Apply token-level edits: 0 delete, 1 duplicate, 2 swap with next, 3 truncate."""
    spans = [(t.start_pos, t.end_pos) for t in tokens(text)]
    for op, i, j in ops:
        if not spans:
            break
        i %= len(spans)
        s, e = spans[i]
        if op == 0:
            text = text[:s] + text[e:]
        elif op == 1:
            text = text[:e] + " " + text[s:e] + text[e:]
        elif op == 2 and i + 1 < len(spans):
            s2, e2 = spans[i + 1]
            text = text[:s] + text[s2:e2] + text[e:s2] + text[s:e] + text[e2:]
        else:
            text = text[: (j % (len(text) + 1))]
            break
        try:
            spans = [(t.start_pos, t.end_pos) for t in tokens(text)]
        except CaveqlError:
            break
    return text


@settings(max_examples=3000 * _SCALE)
@given(st.sampled_from(SEEDS),
       st.lists(st.tuples(st.integers(0, 3), st.integers(0, 200), st.integers(0, 400)),
                min_size=1, max_size=4))
def test_fuzz_mutated_queries(seed: str, ops: list[tuple[int, int, int]]) -> None:
    _check(_mutate(seed, ops))


def test_every_seed_parses() -> None:
    for seed in SEEDS:
        parse(seed)


# ------------------------------------------------------------------ huge inputs

N = 100_000


def _huge_cases() -> dict[str, str]:
    ids = ", ".join(str(864691135000000000 + i) for i in range(50_000))
    return {
        "deep_parens": "SELECT " + "(" * N + "1" + ")" * N + " FROM t",
        "deep_parens_unclosed": "SELECT " + "(" * N + "1 FROM t",
        "only_open_parens": "(" * N,
        "only_close_parens": ")" * N,
        "not_chain": "SELECT * FROM t WHERE " + "NOT " * N + "x",
        "minus_chain": "SELECT " + "- " * N + "5 FROM t",
        "minus_chain_column": "SELECT " + "- " * N + "a FROM t",
        "or_chain": "SELECT * FROM t WHERE " + " OR ".join(f"x = {i}" for i in range(20_000)),
        "plus_chain": "SELECT " + " + ".join(["a"] * 20_000) + " FROM t",
        "nested_subqueries": "SELECT * FROM t WHERE x IN " + "(SELECT x FROM t WHERE x IN " * 300
                             + "(1)" + ")" * 300,
        "one_megabyte_in_list": f"SELECT * FROM synapses_pni_2 WHERE pre_pt_root_id IN ({ids})",
        "huge_string": "SELECT '" + "a" * 1_000_000 + "' FROM t",
        "huge_unclosed_string": "SELECT '" + "a" * 1_000_000,
        "huge_identifier": "SELECT " + "a" * 1_000_000 + " FROM t",
        "huge_integer": "SELECT " + "9" * N + " FROM t",
        "many_statements": "SELECT 1 FROM t;\n" * 10_000,
        "deep_function_calls": "SELECT " + "ABS(" * 5_000 + "1" + ")" * 5_000 + " FROM t",
        "huge_comment": "/*" + "x" * 1_000_000 + "*/ SELECT 1 FROM t",
        "unclosed_comment": "SELECT 1 FROM t /*" + "x" * 1_000_000,
        "long_union_chain": " UNION ALL ".join(["SELECT 1"] * 20_000),
        "deep_scalar_subqueries": "SELECT " + "(SELECT " * 300 + "1" + ")" * 300,
        "deep_derived_tables": "SELECT * FROM " + "(SELECT * FROM " * 300 + "t" + ") AS x" * 300,
        "deep_parenthesised_queries": "(" * N + "SELECT 1" + ")" * N,
        "deep_case": "SELECT " + "CASE WHEN x THEN " * 5_000 + "1" + " END" * 5_000,
        "many_ctes": "WITH " + ", ".join(f"c{i} AS (SELECT {i})" for i in range(5_000)) + " SELECT 1",
        "deep_casts": "SELECT x" + "::INT" * 20_000,
    }


@pytest.mark.timeout(120)  # a hang is a failure
@pytest.mark.parametrize("name", sorted(_huge_cases()))
def test_huge_inputs_parse_or_fail_cleanly(name: str) -> None:
    text = _huge_cases()[name]
    try:
        tree = parse(text)
    except CaveqlError as err:
        assert err.span is None or err.span.end <= len(text)
        assert err.render()
    else:
        # what parses must also print back (the printer must survive it too)
        if len(text) < 2_000_000:
            assert parse(format_cql(text)) == tree
