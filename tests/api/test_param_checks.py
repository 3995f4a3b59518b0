"""Issue 15 ("what a first-time user hit"), items 1 and 2: a misspelt parameter is an error in
every Python surface (never ignored, never the defaults silently), and a float id that cannot be
an id (the pandas float-id pitfall) is refused instead of matching nothing."""

from __future__ import annotations

import io
import re

import numpy as np
import pandas as pd
import pytest

import caveql
from caveql.cqlfile import CqlFile
from caveql.errors import CqlFileError, CqlTypeError, ParameterError
from caveql.repl.session import Session

Q = "SELECT id FROM cells WHERE pt_root_id = :root_id"
FILE = """-- name: one cell
-- param: root_id int = 1001
-- param: unused_default int = 7
SELECT id FROM cells WHERE pt_root_id = :root_id;
"""


@pytest.fixture(scope="module")
def db(tiny_datastack):
    with caveql.connect(path=tiny_datastack) as conn:
        yield conn


@pytest.fixture
def cql_file(tmp_path):
    path = tmp_path / "one_cell.cql"
    path.write_text(FILE)
    return path


# -- item 1: unknown parameters -------------------------------------------------------------------
@pytest.mark.parametrize("call", ["query", "execute", "execute_script", "explain"])
def test_a_misspelt_parameter_is_an_error_naming_it(db, call) -> None:
    with pytest.raises(ParameterError) as info:
        getattr(db, call)(Q, rootid=1001)
    err = info.value
    assert err.message == "unknown parameter :rootid: the query takes :root_id"
    assert err.hint == "did you mean :root_id?"


def test_a_parameter_the_query_does_not_take(db) -> None:
    with pytest.raises(ParameterError, match=r"unknown parameter :typo_param: the query takes no parameters"):
        db.query("SELECT id FROM cells", typo_param=5)
    # the right name still works, and the connection is usable after the error
    assert db.query(Q, root_id=1001)["id"].tolist() == db.query(
        "SELECT id FROM cells WHERE pt_root_id = 1001")["id"].tolist()


def test_a_script_takes_the_names_any_of_its_statements_use(db) -> None:
    results = db.execute_script("SELECT id FROM cells WHERE id = :a; SELECT id FROM cells WHERE id = :b",
                                a=1, b=2)
    assert [r.frame["id"].tolist() for r in results] == [[1], [2]]
    with pytest.raises(ParameterError, match=r"the query takes :a and :b; help: did you mean :a\?"):
        db.execute_script("SELECT id FROM cells WHERE id = :a; SELECT id FROM cells WHERE id = :b",
                          a=1, b=2, aa=3)


def test_run_file_refuses_a_name_neither_declared_nor_used(db, cql_file) -> None:
    with pytest.raises(CqlFileError) as info:
        db.run_file(cql_file, rootid=1002)
    assert str(info.value) == ("unknown parameter :rootid: one_cell.cql takes :root_id and "
                               ":unused_default; help: did you mean :root_id?")
    assert info.value.filename == str(cql_file)


def test_run_file_binds_declared_names_even_when_unused(db, cql_file) -> None:
    # a declared parameter the statements never use is not an error (nor passed on)
    [result] = db.run_file(cql_file, root_id=1002, unused_default=3)
    assert result.frame["id"].tolist() == db.query(Q, root_id=1002)["id"].tolist()


def test_bind_checks_command_line_names_too(cql_file) -> None:
    cql = CqlFile.load(cql_file)
    with pytest.raises(CqlFileError, match="did you mean :root_id"):
        cql.bind({"root": "1"}, from_text=True)
    assert cql.bind({"root_id": "1002"}, from_text=True) == {"root_id": 1002, "unused_default": 7}


def test_repl_variables_are_offered_not_imposed(tiny_datastack) -> None:
    """\\set variables go to every statement; those a statement does not use are not an error."""
    out, err = io.StringIO(), io.StringIO()
    session = Session(lambda: caveql.connect(path=tiny_datastack), out=out, err=err, fmt="csv")
    try:
        assert session.run("\\set other 5")
        assert session.run("SELECT id FROM cells WHERE id = 1")
        assert session.explain("SELECT id FROM cells WHERE id = 1")
        assert session.run("\\set r 1001")
        assert session.run("SELECT id FROM cells WHERE pt_root_id = :r")  # a used one is bound
        assert err.getvalue() == ""
        assert out.getvalue().startswith("id\n1\n")
        assert session.last_frame["id"].tolist() == db_ids(tiny_datastack, 1001)
    finally:
        session.close()


def db_ids(path, root: int) -> list[int]:
    with caveql.connect(path=path) as conn:
        return conn.query("SELECT id FROM cells WHERE pt_root_id = :r", r=root)["id"].tolist()


# -- item 2: float ids ----------------------------------------------------------------------------
@pytest.mark.parametrize("value", [8.646911357716777e17, np.float64(8.646911357716777e17), 1001.5,
                                   float(2**53 + 2)])
def test_a_float_that_cannot_be_an_id_is_refused(db, value) -> None:
    with pytest.raises(ParameterError) as info:
        db.query("SELECT id FROM cells WHERE pt_root_id = :r", r=value)
    err = info.value
    assert err.message.startswith(f"parameter :r is the float {float(value)!r}, compared with the id "
                                  "column pt_root_id")
    assert err.span is not None and (err.span.line, err.span.column) == (1, 41)
    assert "keep ids as integers" in (err.hint or "")


def test_a_float_id_in_an_in_list_is_refused(db) -> None:
    ids = pd.Series([1001, np.nan, 864691135808473885]).dropna()  # float64 after the NaN
    big = float(ids.iloc[1])
    with pytest.raises(ParameterError, match=re.escape(f"parameter :ids is the float {big!r}")):
        db.query("SELECT id FROM cells WHERE pt_root_id IN :ids", ids=ids)
    with pytest.raises(ParameterError, match="parameter :ids is the float"):
        db.query("SELECT id FROM cells WHERE pt_root_id = :ids", ids=[1001, 1001.5])


def test_a_decimal_literal_that_cannot_be_an_id_is_refused(db) -> None:
    with pytest.raises(CqlTypeError) as info:
        db.query("SELECT id FROM cells WHERE pt_root_id IN (1001, 864691135808473885.0)")
    assert info.value.message.startswith("the decimal number 864691135808473885.0, compared with the "
                                         "id column pt_root_id")
    assert (info.value.span.line, info.value.span.column) == (1, 49)
    with pytest.raises(CqlTypeError, match="not a whole number"):
        db.query("SELECT id FROM cells WHERE 1001.5 = pt_root_id")


def test_exact_floats_and_other_columns_still_work(db) -> None:
    want = db.query("SELECT id FROM cells WHERE pt_root_id = 1001")["id"].tolist()
    assert want
    assert db.query("SELECT id FROM cells WHERE pt_root_id = :r", r=1001.0)["id"].tolist() == want
    got = db.query("SELECT id FROM cells WHERE pt_root_id IN :r", r=np.array([1001.0]))
    assert got["id"].tolist() == want
    # a range with a fraction is a real question; so is a fraction on a column that is not an id
    assert db.query("SELECT id FROM cells WHERE pt_root_id > 1000.5 AND pt_root_id < 1001.5")[
        "id"].tolist() == want
    db.query("SELECT id FROM nuclei WHERE volume > :v", v=0.5)
