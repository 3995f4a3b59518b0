"""CASE and CAST / TRY_CAST / ``::``: the same answers as DuckDB on the demo, and clear errors."""

from __future__ import annotations

import pytest

from caveql.analyze.exprs import TYPE_NAMES, cast_type
from caveql.errors import CqlSemanticError, CqlTypeError
from caveql.syntax import ast
from tests.engine.exprs_oracle import CT, SEED, SYN, engines, oracle, same_answer  # noqa: F401

SAME = [
    # searched CASE, several WHENs, no ELSE (NULL), int and float results unify as float
    (f"SELECT id AS i, CASE WHEN size < 100 THEN 'small' WHEN size < 1000 THEN 'mid' END AS k, "
     f"CASE WHEN size > 500 THEN size ELSE 0 END AS v FROM {SYN} WHERE pre_pt_root_id = {SEED}",
     f"SELECT id AS i, CASE WHEN size < 100 THEN 'small' WHEN size < 1000 THEN 'mid' END AS k, "
     f"CASE WHEN size > 500 THEN size::DOUBLE ELSE 0 END AS v FROM {{syn}} WHERE pre_pt_root_id = {SEED}"),
    # simple CASE; in WHERE (evaluated locally) and GROUP BY
    (f"SELECT CASE cell_type WHEN 'BC' THEN 'basket' WHEN 'MC' THEN 'martinotti' ELSE 'other' END AS k, "
     f"COUNT(*) AS n FROM {CT} WHERE CASE WHEN cell_type IN ('BC', 'MC', 'NGC') THEN TRUE ELSE FALSE END "
     "GROUP BY 1",
     "SELECT CASE cell_type WHEN 'BC' THEN 'basket' WHEN 'MC' THEN 'martinotti' ELSE 'other' END AS k, "
     "count(*) AS n FROM {ct} WHERE cell_type IN ('BC', 'MC', 'NGC') GROUP BY 1"),
    # CASE over aggregates, in ORDER BY
    (f"SELECT post_pt_root_id AS r, CASE WHEN COUNT(*) > 2 THEN 'strong' ELSE 'weak' END AS s "
     f"FROM {SYN} WHERE pre_pt_root_id = {SEED} GROUP BY post_pt_root_id "
     "ORDER BY CASE WHEN COUNT(*) > 2 THEN 0 ELSE 1 END, r LIMIT 50",
     "SELECT post_pt_root_id AS r, CASE WHEN count(*) > 2 THEN 'strong' ELSE 'weak' END AS s "
     f"FROM {{syn}} WHERE pre_pt_root_id = {SEED} GROUP BY post_pt_root_id "
     "ORDER BY CASE WHEN count(*) > 2 THEN 0 ELSE 1 END, r LIMIT 50"),
    # CAST / TRY_CAST / ::, every kind of target
    (f"SELECT id AS i, CAST(post_pt_root_id AS VARCHAR) AS s, post_pt_root_id::DOUBLE AS d, "
     "CAST(post_pt_root_id AS FLOAT) AS f, CAST(size AS INTEGER) AS n, CAST(size AS DECIMAL(10, 1)) AS dc, "
     "CAST(size > 500 AS INT) AS b, CAST(created AS DATE) AS dt, TRY_CAST(CONCAT('x', id) AS BIGINT) AS t, "
     "TRY_CAST(CAST(id AS VARCHAR) AS BIGINT) AS t2, CAST(ctr_pt_position_x AS TEXT) AS tx "
     f"FROM {SYN} WHERE pre_pt_root_id = {SEED}",
     "SELECT id AS i, CAST(post_pt_root_id AS VARCHAR) AS s, post_pt_root_id::DOUBLE AS d, "
     "CAST(post_pt_root_id AS FLOAT) AS f, CAST(size AS INTEGER) AS n, "
     # the frame holds a DECIMAL as float64 and a DATE as datetime64 (caveql.execute.local)
     "CAST(size AS DECIMAL(10, 1))::DOUBLE AS dc, "
     "CAST(size > 500 AS INT) AS b, CAST(created AS DATE)::TIMESTAMP AS dt, "
     "TRY_CAST(concat('x', id) AS BIGINT) AS t, "
     "TRY_CAST(CAST(id AS VARCHAR) AS BIGINT) AS t2, CAST(ctr_pt_position_x AS VARCHAR) AS tx "
     f"FROM {{syn}} WHERE pre_pt_root_id = {SEED}"),
    # lists: a list cast elementwise
    (f"SELECT post_pt_root_id AS r, CAST(LIST(id) AS VARCHAR[]) AS l FROM {SYN} "
     f"WHERE pre_pt_root_id = {SEED} GROUP BY post_pt_root_id",
     "SELECT post_pt_root_id AS r, CAST(list(id ORDER BY id) AS VARCHAR[]) AS l FROM {syn} "
     f"WHERE pre_pt_root_id = {SEED} GROUP BY post_pt_root_id"),
]


@pytest.mark.parametrize(("cql", "sql"), SAME, ids=[f"case{i}" for i in range(len(SAME))])
def test_case_and_cast_answer_as_duckdb(engines, oracle, cql: str, sql: str) -> None:  # noqa: F811
    same_answer(engines, oracle, cql, sql, mode="ordered" if "LIMIT" in cql else "set")


def test_a_root_id_cast_to_varchar_keeps_every_digit(engines) -> None:  # noqa: F811
    for eng in engines:
        frame = eng.execute(f"SELECT DISTINCT CAST(pre_pt_root_id AS VARCHAR) AS s, "
                            f"CAST(pre_pt_root_id AS DOUBLE) AS d FROM {SYN} "
                            f"WHERE pre_pt_root_id = {SEED}").frame
        assert frame["s"].tolist() == [str(SEED)]
        assert frame["d"].tolist() == [float(SEED)] and int(float(SEED)) != SEED  # as DuckDB: rounded


def test_try_cast_gives_null_where_cast_fails(engines) -> None:  # noqa: F811
    from caveql.errors import ExecutionError
    q = f"SELECT {{}}(CONCAT(cell_type, 'x') AS BIGINT) AS v FROM {CT} WHERE cell_type = 'BC' LIMIT 3"
    assert engines[0].execute(q.format("TRY_CAST")).frame["v"].isna().all()
    with pytest.raises(ExecutionError, match="Could not convert|Conversion"):
        engines[0].execute(q.format("CAST"))


def test_every_type_name_maps_to_a_duckdb_type() -> None:
    import duckdb
    con = duckdb.connect()
    for name in TYPE_NAMES:
        cql, sql = cast_type(ast.TypeName(name))
        assert con.execute(f"SELECT CAST(NULL AS {sql})").fetchall() == [(None,)]
        assert cql in ("int", "float", "string", "bool", "timestamp", "date")
    assert cast_type(ast.TypeName("varchar", array=2)) == ("string[][]", "VARCHAR[][]")


ERRORS = [
    (f"SELECT CAST(id AS BIGINTT) FROM {SYN}", CqlTypeError, "BIGINTT", "did you mean BIGINT?"),
    (f"SELECT CAST(id AS STRNG) FROM {SYN}", CqlTypeError, "STRNG", "did you mean STRING?"),
    (f"SELECT CAST(created AS INTERVAL) FROM {SYN}", CqlTypeError, "INTERVAL", "DATE_DIFF"),
    (f"SELECT CAST(created AS BIGINT) FROM {SYN}", CqlTypeError, "CAST(created AS BIGINT)", "EPOCH"),
    (f"SELECT CAST(pre_pt_position AS VARCHAR) FROM {SYN}", CqlTypeError, "pre_pt_position", None),
    (f"SELECT CAST(size AS DECIMAL(50, 2)) FROM {SYN}", CqlTypeError, "DECIMAL(50, 2)", None),
    (f"SELECT CASE WHEN size > 1 THEN 'big' ELSE size END FROM {SYN}", CqlTypeError, "size", "CAST one"),
    (f"SELECT CASE WHEN size THEN 1 END FROM {SYN}", CqlTypeError, "size", None),
    (f"SELECT CASE cell_type WHEN 3 THEN 1 END FROM {CT}", CqlTypeError, "3", None),
]


@pytest.mark.parametrize(("cql", "cls", "where", "hint"), ERRORS, ids=[f"err{i}" for i in range(len(ERRORS))])
def test_misuse_is_a_clear_error(engines, cql, cls, where, hint) -> None:  # noqa: F811
    with pytest.raises(cls) as info:
        engines[0].execute(cql)
    err = info.value
    assert isinstance(err, CqlSemanticError)
    assert cql[err.span.start:err.span.end] == where
    if hint is not None:
        assert hint in (err.hint or "")
