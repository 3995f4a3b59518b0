"""The function table (caveql/analyze/functions.py): type rules, errors, lowering, docs.

Every function's documented example runs on the demo; a curated set is compared with DuckDB
on the datastack's files (uncapped and at row cap 1,000); misuse gives a clear error at the
call (wrong arity, wrong types, unknown names with "did you mean", refused functions).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from caveql.analyze.functions import (
    FUNCTIONS, UNSUPPORTED, ArgTypeError, ArityError, check, common_type, lookup, markdown,
)
from caveql.errors import AggregateError, CqlSemanticError, CqlTypeError, UnsupportedError
from tests.engine.exprs_oracle import CT, SEED, SYN, engines, oracle, same_answer  # noqa: F401

DOC = Path(__file__).resolve().parents[2] / "docs" / "functions.md"


def test_docs_functions_md_is_generated_from_the_table() -> None:
    assert DOC.read_text() == markdown(), \
        "regenerate: python -m caveql.analyze.functions > docs/functions.md"


def test_every_function_is_documented_with_an_example() -> None:
    text = DOC.read_text()
    for fn in set(FUNCTIONS.values()):
        assert f"| {fn.name}" in text and fn.example and fn.doc
        assert not fn.service  # the service evaluates no function: all run in DuckDB


def test_the_table_covers_the_brief() -> None:
    wanted = """COALESCE NULLIF GREATEST LEAST IFNULL ABS ROUND FLOOR CEIL SQRT POWER EXP LN LOG10 LOG2
    SIGN MOD PI SIN COS LOWER UPPER LENGTH SUBSTRING SUBSTR TRIM LTRIM RTRIM REPLACE CONCAT
    STARTS_WITH ENDS_WITH CONTAINS SPLIT_PART REGEXP_MATCHES REGEXP_REPLACE LPAD RPAD
    REVERSE STRPOS DATE_TRUNC DATE_PART YEAR MONTH DAY HOUR EPOCH MAKE_TIMESTAMP STRFTIME STRPTIME
    DATE_DIFF LIST ARRAY_AGG LIST_VALUE LEN LIST_CONTAINS LIST_SUM LIST_MAX DISTANCE COUNT SUM AVG
    MIN MAX STDDEV VARIANCE MEDIAN QUANTILE_CONT MODE STRING_AGG BOOL_AND BOOL_OR ROW_NUMBER RANK
    DENSE_RANK PERCENT_RANK CUME_DIST NTILE LAG LEAD FIRST_VALUE LAST_VALUE NTH_VALUE""".split()
    assert [n for n in wanted if n not in FUNCTIONS] == []
    for refused in ("NOW", "UNNEST", "AGE", "RANDOM", "LEFT", "RIGHT"):
        assert refused in UNSUPPORTED and refused not in FUNCTIONS


TYPES = ["int", "float", "string", "bool", "timestamp", "date", "null", "int[]", "string[]"]


@given(st.sampled_from(sorted(FUNCTIONS)), st.lists(st.sampled_from(TYPES), max_size=4))
def test_check_is_total(name: str, types: list[str]) -> None:
    """Any argument types give a result type or one of the two analysis errors."""
    try:
        out = check(FUNCTIONS[name], types)
    except (ArityError, ArgTypeError):
        return
    assert out == "null" or out in TYPES + ["float[]", "null[]"] or out.endswith("[]")


@given(st.lists(st.sampled_from(TYPES), min_size=1, max_size=4))
def test_common_type_is_symmetric_and_idempotent(types: list[str]) -> None:
    u = common_type(types)
    assert u == common_type(list(reversed(types)))
    if u is not None:
        assert common_type([u, *types]) == u


# ---------------------------------------------------------------- every example runs


def _example_cql(example: str) -> str:
    if example.startswith("COUNT(*), "):
        example = "COUNT(*)"
    if "cell_type" in example:
        return f"SELECT {example} AS v FROM {CT} WHERE cell_type = 'BC'"
    return f"SELECT {example} AS v FROM {SYN} WHERE pre_pt_root_id = {SEED}"


@pytest.mark.parametrize("name", sorted({f.name for f in FUNCTIONS.values()} - {"DISTANCE"}))
def test_every_documented_example_runs_on_the_demo(engines, name: str) -> None:  # noqa: F811
    fn = lookup(name)
    frame = engines[0].execute(_example_cql(fn.example)).frame
    assert len(frame) == (1 if fn.kind == "aggregate" and "OVER" not in fn.example
                          else 3084 if "cell_type" in fn.example else 1498)


# ---------------------------------------------------------------- same answer as DuckDB

SAME = [
    ("SELECT id AS i, GREATEST(size, 500) AS g, LEAST(size, 500) AS l, NULLIF(size, size) AS n, "
     "COALESCE(NULL, id) AS c FROM synapses_pni_2 WHERE pre_pt_root_id = {seed}",
     "SELECT id AS i, greatest(size, 500) AS g, least(size, 500) AS l, nullif(size, size) AS n, "
     "coalesce(NULL, id) AS c FROM {syn} WHERE pre_pt_root_id = {seed}"),
    ("SELECT id AS i, ABS(ctr_pt_position_x - 100000) AS a, ROUND(size / 7.0, 2) AS r, "
     "FLOOR(size / 3.0) AS f, CEIL(size / 3.0) AS c, SQRT(size) AS s, POWER(size, 2) AS p, "
     "LN(size + 1) AS ln, LOG10(size + 1) AS lg, LOG2(size + 1) AS l2, MOD(id, 7) AS m, "
     "SIGN(size - 500) AS sg, EXP(size / 1000.0) AS e, SIN(size) AS sn, COS(size) AS cs "
     "FROM synapses_pni_2 WHERE pre_pt_root_id = {seed}",
     "SELECT id AS i, abs(ctr_pt_position_x - 100000) AS a, round(size::DOUBLE / 7.0, 2) AS r, "
     "floor(size::DOUBLE / 3.0)::BIGINT AS f, ceil(size::DOUBLE / 3.0)::BIGINT AS c, sqrt(size) AS s, "
     "pow(size, 2) AS p, ln(size + 1) AS ln, log10(size + 1) AS lg, log2(size + 1) AS l2, "
     "id % 7 AS m, sign(size - 500)::BIGINT AS sg, exp(size::DOUBLE / 1000.0) AS e, sin(size) AS sn, "
     "cos(size) AS cs FROM {syn} WHERE pre_pt_root_id = {seed}"),
    ("SELECT id AS i, LOWER(cell_type) AS lo, LENGTH(cell_type) AS n, SUBSTRING(cell_type, 1, 1) AS s, "
     "SUBSTR(cell_type, 2) AS s2, REPLACE(cell_type, 'B', 'b') AS r, CONCAT(cell_type, '-', id) AS c, "
     "STARTS_WITH(cell_type, 'B') AS sw, ENDS_WITH(cell_type, 'C') AS ew, CONTAINS(cell_type, 'C') AS ct, "
     "SUBSTRING(cell_type, -1) AS rt, REGEXP_MATCHES(cell_type, '^B') AS m, "
     "REGEXP_REPLACE(cell_type, '[A-Z]', '_', 'g') AS rr, LPAD(cell_type, 4, '.') AS lp, "
     "RPAD(cell_type, 4, '.') AS rp, REVERSE(cell_type) AS rv, STRPOS(cell_type, 'C') AS sp, "
     "SPLIT_PART(CONCAT(cell_type, '/x'), '/', 2) AS sx, TRIM(CONCAT(' ', cell_type, ' ')) AS t "
     "FROM aibs_soma_nuc_metamodel_preds_v117 WHERE cell_type = 'BC'",
     "SELECT id AS i, lower(cell_type) AS lo, length(cell_type) AS n, substring(cell_type, 1, 1) AS s, "
     "substr(cell_type, 2) AS s2, replace(cell_type, 'B', 'b') AS r, concat(cell_type, '-', id) AS c, "
     "starts_with(cell_type, 'B') AS sw, suffix(cell_type, 'C') AS ew, contains(cell_type, 'C') AS ct, "
     "right(cell_type, 1) AS rt, regexp_matches(cell_type, '^B') AS m, "
     "regexp_replace(cell_type, '[A-Z]', '_', 'g') AS rr, lpad(cell_type, 4, '.') AS lp, "
     "rpad(cell_type, 4, '.') AS rp, reverse(cell_type) AS rv, strpos(cell_type, 'C') AS sp, "
     "split_part(concat(cell_type, '/x'), '/', 2) AS sx, trim(concat(' ', cell_type, ' ')) AS t "
     "FROM {ct} WHERE cell_type = 'BC'"),
    ("SELECT id AS i, YEAR(created) AS y, MONTH(created) AS m, DAY(created) AS d, HOUR(created) AS h, "
     "EPOCH(created) AS e, DATE_TRUNC('day', created) AS t, DATE_PART('minute', created) AS p, "
     "STRFTIME(created, '%Y/%m') AS f FROM synapses_pni_2 WHERE pre_pt_root_id = {seed}",
     "SELECT id AS i, year(created) AS y, month(created) AS m, day(created) AS d, hour(created) AS h, "
     "epoch(created) AS e, date_trunc('day', created) AS t, date_part('minute', created) AS p, "
     "strftime(created, '%Y/%m') AS f FROM {syn} WHERE pre_pt_root_id = {seed}"),
    ("SELECT post_pt_root_id AS r, LIST(id) AS l, LEN(LIST(id)) AS n, LIST_SUM(LIST(id)) AS s, "
     "LIST_MAX(LIST(size)) AS mx, LIST_CONTAINS(LIST(id), MIN(id)) AS c, LIST_VALUE(MIN(id), MAX(id)) AS v "
     "FROM synapses_pni_2 WHERE pre_pt_root_id = {seed} GROUP BY post_pt_root_id",
     "SELECT post_pt_root_id AS r, list(id ORDER BY id) AS l, len(list(id)) AS n, list_sum(list(id)) AS s, "
     "list_max(list(size)) AS mx, list_contains(list(id), min(id)) AS c, list_value(min(id), max(id)) AS v "
     "FROM {syn} WHERE pre_pt_root_id = {seed} GROUP BY post_pt_root_id"),
    ("SELECT post_pt_root_id AS r, COUNT(*) AS n, COUNT(DISTINCT size) AS nd, SUM(size) AS s, "
     "MEDIAN(size) AS md, QUANTILE_CONT(size, 0.25) AS q, QUANTILE_DISC(size, 0.75) AS qd, "
     "MODE(ctr_pt_position_z) AS mo, BOOL_AND(size > 100) AS ba, BOOL_OR(size > 1000) AS bo, "
     "ARG_MAX(id, size) AS am, STRING_AGG(CAST(id AS VARCHAR), ';') AS sa "
     "FROM synapses_pni_2 WHERE pre_pt_root_id = {seed} GROUP BY post_pt_root_id",
     "SELECT post_pt_root_id AS r, count(*) AS n, count(DISTINCT size) AS nd, sum(size) AS s, "
     "median(size) AS md, quantile_cont(size, 0.25) AS q, quantile_disc(size, 0.75) AS qd, "
     "mode(ctr_pt_position_z ORDER BY ctr_pt_position_z) AS mo, bool_and(size > 100) AS ba, "
     "bool_or(size > 1000) AS bo, arg_max(id, size) AS am, "
     "string_agg(CAST(id AS VARCHAR), ';' ORDER BY CAST(id AS VARCHAR)) AS sa "
     "FROM {syn} WHERE pre_pt_root_id = {seed} GROUP BY post_pt_root_id"),
    ("SELECT cell_type AS c, STDDEV(id) AS sd, VARIANCE(id) AS v, STDDEV_POP(id) AS sp, AVG(id) AS a "
     "FROM aibs_soma_nuc_metamodel_preds_v117 GROUP BY cell_type",
     "SELECT cell_type AS c, stddev_samp(id) AS sd, var_samp(id) AS v, stddev_pop(id) AS sp, "
     "avg(id) AS a FROM {ct} GROUP BY cell_type"),
]


@pytest.mark.parametrize(("cql", "sql"), SAME, ids=[f"case{i}" for i in range(len(SAME))])
def test_functions_answer_as_duckdb(engines, oracle, cql: str, sql: str) -> None:  # noqa: F811
    same_answer(engines, oracle, cql.format(seed=SEED), sql.replace("{seed}", str(SEED)))


def test_functions_in_where_filter_locally_and_keep_the_pushed_part(engines, oracle) -> None:  # noqa: F811
    cql = (f"SELECT id AS i FROM {SYN} WHERE pre_pt_root_id = {SEED} AND MOD(id, 3) = 0 "
           "AND LOWER(CAST(size AS VARCHAR)) LIKE '1%'")
    same_answer(engines, oracle, cql, f"SELECT id AS i FROM {{syn}} WHERE pre_pt_root_id = {SEED} "
                "AND id % 3 = 0 AND lower(CAST(size AS VARCHAR)) LIKE '1%'")
    plan = engines[0].explain(cql)
    assert '"pre_pt_root_id"' in plan and "MOD(" in plan.split("Local steps")[1]


# ---------------------------------------------------------------- misuse

ERRORS = [
    ("SELECT ROUND(size, 1, 2) FROM synapses_pni_2", CqlSemanticError, "ROUND(size, 1, 2)",
     "ROUND() takes 1 to 2 arguments"),
    ("SELECT PI(1) FROM synapses_pni_2", CqlSemanticError, "PI(1)", "takes no arguments"),
    ("SELECT UPPER(id) FROM synapses_pni_2", CqlTypeError, "id", "argument 1 of UPPER() must be a string"),
    ("SELECT GREATEST(size, 'x') FROM synapses_pni_2", CqlTypeError, "GREATEST(size, 'x')", "one type"),
    ("SELECT LOWR(cell_type) FROM aibs_soma_nuc_metamodel_preds_v117", CqlSemanticError, "LOWR(cell_type)",
     "unknown function LOWR()"),
    ("SELECT NOW() FROM synapses_pni_2", UnsupportedError, "NOW()", "changes from run to run"),
    ("SELECT UNNEST(LIST_VALUE(1, 2)) FROM synapses_pni_2", UnsupportedError, None, "number of rows"),
    ("SELECT SUM(COUNT(*)) FROM synapses_pni_2", AggregateError, "COUNT(*)", "cannot be nested"),
    ("SELECT id FROM synapses_pni_2 WHERE AVG(size) > 1", AggregateError, "AVG(size)", "WHERE"),
    ("SELECT DATE_TRUNC('fortnight', created) FROM synapses_pni_2", CqlTypeError, "'fortnight'", "'month'"),
    ("SELECT QUANTILE_CONT(size, 2) FROM synapses_pni_2", CqlTypeError, "2", "between 0 and 1"),
    ("SELECT ABS(pre_pt_position) FROM synapses_pni_2", CqlTypeError, None, "position"),
    ("SELECT ROW_NUMBER() FROM synapses_pni_2", CqlSemanticError, "ROW_NUMBER()", "needs OVER"),
    ("SELECT LOWER(DISTINCT cell_type) FROM aibs_soma_nuc_metamodel_preds_v117", CqlSemanticError, None,
     "only allowed in an aggregate"),
]


@pytest.mark.parametrize(("cql", "cls", "where", "words"), ERRORS, ids=[e[3][:30] for e in ERRORS])
def test_misuse_is_a_clear_error_at_the_call(engines, cql, cls, where, words) -> None:  # noqa: F811
    with pytest.raises(cls) as info:
        engines[0].execute(cql)
    err = info.value
    assert words in str(err)
    if where is not None:
        assert cql[err.span.start:err.span.end] == where


def test_unknown_function_suggests_the_close_name(engines) -> None:  # noqa: F811
    with pytest.raises(CqlSemanticError) as info:
        engines[0].execute("SELECT STDEV(size) FROM synapses_pni_2")
    assert info.value.hint == "did you mean STDDEV()?"
