"""Window functions, named windows, QUALIFY, windows over GROUP BY, GROUP BY ALL.

Each construct gives DuckDB's answer on the demo's files, uncapped and at row cap 1,000; a
window always sees every row (no LIMIT below it, no filter pushed through it); misuse is a
clear error. Golden plans: tests/engine/plans/window_*.cql.
"""

from __future__ import annotations

import pytest

from caveql.errors import AggregateError, CqlSemanticError, CqlTypeError
from tests.engine.exprs_oracle import CT, SEED, SYN, engines, oracle, same_answer  # noqa: F401

W = f"FROM {SYN} WHERE pre_pt_root_id = {SEED}"
O = f"FROM {{syn}} WHERE pre_pt_root_id = {SEED}"

SAME = [
    # ranking; ROW_NUMBER / NTILE break ORDER BY ties by the sources' ids
    (f"SELECT id AS i, ROW_NUMBER() OVER (PARTITION BY post_pt_root_id ORDER BY size DESC) AS rn, "
     f"RANK() OVER (ORDER BY size) AS r, DENSE_RANK() OVER (ORDER BY size) AS dr, "
     f"PERCENT_RANK() OVER (ORDER BY size) AS pr, CUME_DIST() OVER (ORDER BY size) AS cd, "
     f"NTILE(7) OVER (ORDER BY size) AS nt {W}",
     f"SELECT id AS i, row_number() OVER (PARTITION BY post_pt_root_id ORDER BY size DESC, id) AS rn, "
     f"rank() OVER (ORDER BY size) AS r, dense_rank() OVER (ORDER BY size) AS dr, "
     f"percent_rank() OVER (ORDER BY size) AS pr, cume_dist() OVER (ORDER BY size) AS cd, "
     f"ntile(7) OVER (ORDER BY size, id) AS nt {O}"),
    # offsets and values
    (f"SELECT id AS i, LAG(size) OVER (ORDER BY id) AS l1, LAG(size, 3, -1) OVER (ORDER BY id) AS l3, "
     f"LEAD(id, 2) OVER (PARTITION BY post_pt_root_id ORDER BY id) AS ld, "
     f"FIRST_VALUE(id) OVER (PARTITION BY post_pt_root_id ORDER BY size DESC, id) AS fv, "
     f"LAST_VALUE(id) OVER (ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS lv, "
     f"NTH_VALUE(size, 2) OVER (ORDER BY id) AS nv {W}",
     f"SELECT id AS i, lag(size) OVER (ORDER BY id) AS l1, lag(size, 3, -1) OVER (ORDER BY id) AS l3, "
     f"lead(id, 2) OVER (PARTITION BY post_pt_root_id ORDER BY id) AS ld, "
     f"first_value(id) OVER (PARTITION BY post_pt_root_id ORDER BY size DESC, id) AS fv, "
     f"last_value(id) OVER (ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS lv, "
     f"nth_value(size, 2) OVER (ORDER BY id) AS nv {O}"),
    # aggregates over frames: ROWS, RANGE with offsets, GROUPS, EXCLUDE, DISTINCT, FILTER
    (f"SELECT id AS i, SUM(size) OVER (ORDER BY id ROWS BETWEEN 2 PRECEDING AND 1 FOLLOWING) AS s, "
     f"COUNT(*) OVER (ORDER BY size RANGE BETWEEN 50 PRECEDING AND 50.5 FOLLOWING) AS c, "
     f"MAX(id) OVER (ORDER BY size GROUPS BETWEEN 1 PRECEDING AND CURRENT ROW) AS g, "
     f"SUM(ctr_pt_position_x) OVER (ORDER BY id ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING "
     f"EXCLUDE CURRENT ROW) AS e, COUNT(DISTINCT size) OVER (PARTITION BY post_pt_root_id) AS cd, "
     f"COUNT(*) FILTER (WHERE size > 500) OVER (PARTITION BY post_pt_root_id) AS cf, "
     f"AVG(size) OVER () AS a {W}",
     f"SELECT id AS i, sum(size) OVER (ORDER BY id ROWS BETWEEN 2 PRECEDING AND 1 FOLLOWING) AS s, "
     f"count(*) OVER (ORDER BY size RANGE BETWEEN 50 PRECEDING AND 50.5 FOLLOWING) AS c, "
     f"max(id) OVER (ORDER BY size GROUPS BETWEEN 1 PRECEDING AND CURRENT ROW) AS g, "
     f"sum(ctr_pt_position_x) OVER (ORDER BY id ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING "
     f"EXCLUDE CURRENT ROW)::BIGINT AS e, count(DISTINCT size) OVER (PARTITION BY post_pt_root_id) AS cd, "
     f"count(*) FILTER (WHERE size > 500) OVER (PARTITION BY post_pt_root_id) AS cf, "
     f"avg(size) OVER () AS a {O}"),
    # named windows, refined
    (f"SELECT id AS i, SUM(size) OVER w AS t, ROW_NUMBER() OVER (w ORDER BY id) AS rn, "
     f"LAG(id) OVER (w ORDER BY id) AS l {W} WINDOW w AS (PARTITION BY post_pt_root_id)",
     f"SELECT id AS i, sum(size) OVER (PARTITION BY post_pt_root_id) AS t, "
     f"row_number() OVER (PARTITION BY post_pt_root_id ORDER BY id) AS rn, "
     f"lag(id) OVER (PARTITION BY post_pt_root_id ORDER BY id) AS l {O}"),
    # QUALIFY: the largest synapse onto each partner
    (f"SELECT post_pt_root_id AS r, id AS i, size AS s {W} "
     f"QUALIFY ROW_NUMBER() OVER (PARTITION BY post_pt_root_id ORDER BY size DESC) = 1",
     f"SELECT post_pt_root_id AS r, id AS i, size AS s {O} "
     f"QUALIFY row_number() OVER (PARTITION BY post_pt_root_id ORDER BY size DESC, id) = 1"),
    # windows over groups, GROUP BY ALL, QUALIFY on a select alias, ORDER BY a window
    (f"SELECT post_pt_root_id AS r, COUNT(*) AS n, RANK() OVER (ORDER BY COUNT(*) DESC) AS rk, "
     f"SUM(COUNT(*)) OVER () AS total {W} GROUP BY ALL QUALIFY rk <= 10 ORDER BY rk, r",
     f"SELECT post_pt_root_id AS r, count(*) AS n, rank() OVER (ORDER BY count(*) DESC) AS rk, "
     f"sum(count(*)) OVER ()::BIGINT AS total {O} GROUP BY post_pt_root_id QUALIFY rk <= 10 "
     "ORDER BY rk, r"),  # (DuckDB refuses QUALIFY with GROUP BY ALL; caveql groups by the items)
    # a LIMIT after a window: the window saw every row first
    (f"SELECT id AS i, ROW_NUMBER() OVER (ORDER BY id) AS rn, COUNT(*) OVER () AS n {W} "
     "ORDER BY size DESC, id LIMIT 5",
     f"SELECT id AS i, row_number() OVER (ORDER BY id) AS rn, count(*) OVER () AS n {O} "
     "ORDER BY size DESC, id LIMIT 5"),
    # GROUP BY ALL without windows; over a bigger source (3,084 rows: split at the cap)
    (f"SELECT cell_type AS c, LOWER(cell_type) AS l, COUNT(*) AS n, MAX(id) AS m FROM {CT} "
     "WHERE cell_type IN ('BC', 'MC') GROUP BY ALL",
     "SELECT cell_type AS c, lower(cell_type) AS l, count(*) AS n, max(id) AS m FROM {ct} "
     "WHERE cell_type IN ('BC', 'MC') GROUP BY ALL"),
    (f"SELECT id AS i, DENSE_RANK() OVER (ORDER BY target_id % 97) AS d FROM {CT} WHERE cell_type = 'BC' "
     "QUALIFY d < 3",
     "SELECT id AS i, dense_rank() OVER (ORDER BY target_id % 97) AS d FROM {ct} WHERE cell_type = 'BC' "
     "QUALIFY d < 3"),
]


@pytest.mark.parametrize(("cql", "sql"), SAME, ids=[f"case{i}" for i in range(len(SAME))])
def test_windows_answer_as_duckdb(engines, oracle, cql: str, sql: str) -> None:  # noqa: F811
    same_answer(engines, oracle, cql, sql, mode="ordered" if "ORDER BY size DESC, id LIMIT" in cql
                or "ORDER BY rk" in cql else "set")


def test_a_limit_is_never_pushed_below_a_window(engines) -> None:  # noqa: F811
    plain = engines[0].explain(f"SELECT id FROM {SYN} LIMIT 5")
    assert '"limit": 5' in plain  # without a window it is pushed
    for q in (f"SELECT id, ROW_NUMBER() OVER (ORDER BY size) AS rn FROM {SYN} LIMIT 5",
              f"SELECT id FROM {SYN} QUALIFY COUNT(*) OVER (PARTITION BY post_pt_root_id) > 1 LIMIT 5"):
        plan = engines[0].explain(q)
        assert '"limit"' not in plan and "limit 5" in plan.split("Local steps")[1]


def test_where_is_pushed_and_qualify_is_not(engines) -> None:  # noqa: F811
    plan = engines[0].explain(f"SELECT id, RANK() OVER (ORDER BY size) AS r {W} QUALIFY r = 1")
    remote, local = plan.split("Local steps")
    assert str(SEED) in remote and "qualify RANK()" in local


def test_windows_are_deterministic_on_ties(engines) -> None:  # noqa: F811
    """ROW_NUMBER over a key with many ties numbers rows the same way on every run and at every
    row cap (ties in id order)."""
    q = f"SELECT id, ROW_NUMBER() OVER (ORDER BY post_pt_root_id) AS rn {W} ORDER BY id"
    a, b = (eng.execute(q).frame for eng in engines)
    assert a.equals(b) and a.equals(engines[0].execute(q).frame)


ERRORS = [
    (f"SELECT id FROM {SYN} WHERE ROW_NUMBER() OVER (ORDER BY id) = 1", CqlSemanticError,
     "ROW_NUMBER() OVER (ORDER BY id)", "QUALIFY"),
    (f"SELECT post_pt_root_id FROM {SYN} GROUP BY post_pt_root_id "
     "HAVING RANK() OVER (ORDER BY post_pt_root_id) = 1",
     CqlSemanticError, "RANK() OVER (ORDER BY post_pt_root_id)", "QUALIFY"),
    (f"SELECT SUM(ROW_NUMBER() OVER (ORDER BY id)) FROM {SYN}", AggregateError,
     "ROW_NUMBER() OVER (ORDER BY id)", None),
    (f"SELECT SUM(RANK() OVER (ORDER BY id)) OVER () FROM {SYN}", CqlSemanticError,
     "RANK() OVER (ORDER BY id)", None),
    (f"SELECT ABS(size) OVER () FROM {SYN}", CqlSemanticError, "ABS(size) OVER ()", "OVER applies"),
    (f"SELECT SUM(size) OVER ww FROM {SYN} WINDOW w AS (ORDER BY id)", CqlSemanticError,
     "SUM(size) OVER ww", "did you mean 'w'?"),
    (f"SELECT SUM(size) OVER (w PARTITION BY id) FROM {SYN} WINDOW w AS (ORDER BY id)", CqlSemanticError,
     None, None),
    (f"SELECT SUM(size) OVER (ORDER BY id ROWS BETWEEN CURRENT ROW AND 1 PRECEDING) FROM {SYN}",
     CqlSemanticError, None, None),
    (f"SELECT SUM(size) OVER (ORDER BY id, size RANGE BETWEEN 1 PRECEDING AND CURRENT ROW) FROM {SYN}",
     CqlSemanticError, None, None),
    (f"SELECT SUM(size) OVER (ORDER BY id ROWS BETWEEN 1.5 PRECEDING AND CURRENT ROW) FROM {SYN}",
     CqlTypeError, "1.5", None),
    (f"SELECT ROW_NUMBER(DISTINCT id) OVER () FROM {SYN}", CqlSemanticError, None, None),
    (f"SELECT id FROM {SYN} QUALIFY id > 1", CqlSemanticError, "id > 1", "WHERE"),
    (f"SELECT LAG(size, 'x') OVER (ORDER BY id) FROM {SYN}", CqlTypeError, "'x'", None),
    (f"SELECT id, COUNT(*) OVER (PARTITION BY size) FROM {SYN} GROUP BY post_pt_root_id", AggregateError,
     None, None),
]


@pytest.mark.parametrize(("cql", "cls", "where", "hint"), ERRORS, ids=[f"err{i}" for i in range(len(ERRORS))])
def test_misuse_is_a_clear_error(engines, cql, cls, where, hint) -> None:  # noqa: F811
    with pytest.raises(cls) as info:
        engines[0].execute(cql)
    err = info.value
    assert err.span is not None
    if where is not None:
        assert cql[err.span.start:err.span.end] == where
    if hint is not None:
        assert hint in (err.hint or "")


def test_a_filter_over_a_window_block_is_not_pushed_through_it(engines, oracle) -> None:  # noqa: F811
    """``i > ...`` would be pushable into the synapse call, but below the window it would change
    the row numbers: it stays above the derived table (as the filter on the window result)."""
    cql = (f"SELECT i, rn FROM (SELECT id AS i, ROW_NUMBER() OVER (ORDER BY size DESC) AS rn {W}) AS d "
           "WHERE rn <= 300 AND i > 150000000")
    same_answer(engines, oracle, cql, f"SELECT i, rn FROM (SELECT id AS i, row_number() OVER "
                f"(ORDER BY size DESC, id) AS rn {O}) AS d WHERE rn <= 300 AND i > 150000000")
    remote = engines[0].explain(cql).split("Local steps")[0]
    assert "greater" not in remote and str(SEED) in remote
