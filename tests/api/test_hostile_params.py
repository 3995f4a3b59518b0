"""Parameter values CQL cannot represent fail at bind time as a ParameterError naming the parameter
and pointing at its first use — never a foreign exception, a service error or a wrong answer —
and out-of-range counts never reach DuckDB or the service (issue 16, items 9 and 10)."""

from __future__ import annotations

import math
from datetime import datetime
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

import caveql
from caveql.cqlfile import CqlFile, parse_param_value
from caveql.errors import CqlFileError, InvalidLiteralError, ParameterError

INT64_MAX = 2**63 - 1

BAD_VALUES = {
    "nan": float("nan"),
    "inf": float("inf"),
    "-inf": float("-inf"),
    "snan": Decimal("sNaN"),
    "decimal-nan": Decimal("NaN"),
    "decimal-inf": Decimal("-Infinity"),
    "decimal-overflow": Decimal("1e999999"),
    "decimal-underflow": Decimal("1e-999"),
    "numpy-nan": np.float64("nan"),
    "huge-int": 10**30,
    "huge-negative-int": -(10**30),
    "nat": pd.NaT,
    "surrogate": "BC\ud800",
}


@pytest.fixture(scope="module")
def db(tiny_datastack):
    with caveql.connect(path=tiny_datastack, version=1) as conn:
        yield conn


# every place a parameter can go, each with its first use at `:p`
PLACES = [
    "SELECT id FROM cells WHERE pt_position WITHIN BOX((:p, 0, 0), (100, 100, 100))",
    "SELECT id FROM cells WHERE pt_position WITHIN BOX((0, 0, 0), (100, :p, 100))",
    "SELECT id FROM cells WHERE id = :p",
    "SELECT id FROM cells WHERE id > :p",
    "SELECT id FROM cells WHERE id IN :p",
    "SELECT id FROM cells WHERE id BETWEEN :p AND 10",
    "SELECT id, :p AS q FROM cells",
    "SELECT id FROM cells LIMIT :p",
    "SELECT id FROM cells OFFSET :p",
    "SELECT id FROM cells AT VERSION :p",
    "SELECT id FROM cells AT RESOLUTION :p, 1, 1",
    "SELECT id FROM cells AT TIMESTAMP :p",
    "SELECT cell_type FROM cells WHERE cell_type = :p",
    "SET q = :p",
]


@pytest.mark.parametrize("name", list(BAD_VALUES))
@pytest.mark.parametrize("text", PLACES)
def test_a_bad_value_is_a_parameter_error_naming_it(db, text: str, name: str) -> None:
    with pytest.raises(ParameterError) as info:
        db.query(text, p=BAD_VALUES[name])
    err = info.value
    assert err.code == "CQL016" and err.message.startswith("parameter :p ")
    assert text[err.span.start:err.span.end] == ":p"
    assert "^^" in err.render()


@pytest.mark.parametrize("name", ["nan", "inf", "snan", "numpy-nan", "huge-int", "surrogate", "nat"])
def test_a_bad_item_of_a_list_names_the_item(db, name: str) -> None:
    with pytest.raises(ParameterError) as info:
        db.query("SELECT id FROM cells WHERE id IN :ids", ids=[1, 2, BAD_VALUES[name]])
    assert info.value.message.startswith("parameter :ids holds ") and " at item 3: " in info.value.message


def test_numpy_and_pandas_lists_are_checked(db) -> None:
    for ids in (np.array([1.0, np.nan]), pd.Series([1.0, math.inf]), {1.0, math.nan}):
        with pytest.raises(ParameterError, match=r"parameter :ids holds (nan|inf) at item \d"):
            db.query("SELECT id FROM cells WHERE id IN :ids", ids=ids)


def test_the_message_says_what_is_wrong(db) -> None:
    def message(value: object) -> str:
        with pytest.raises(ParameterError) as info:
            db.query("SELECT id FROM cells WHERE id > :x", x=value)
        return info.value.message

    assert message(float("nan")) == "parameter :x is nan: NaN and infinite numbers cannot be compared or sent"
    assert message(Decimal("sNaN")).startswith("parameter :x is Decimal('sNaN'): NaN and infinite")
    assert "at most 2^64-1" in message(2**64)
    assert "lone surrogate at character 3" in message("BC\udcff")
    assert message(pd.NaT).startswith("parameter :x is NaT")


def test_every_api_entry_checks(db, tiny_datastack, tmp_path) -> None:
    text = "SELECT id FROM cells WHERE id > :x"
    for run in (lambda: db.execute(text, x=math.nan), lambda: db.execute_script(text, x=math.nan),
                lambda: db.explain(text, x=math.nan), lambda: db.explain(text, analyze=True, x=math.nan),
                lambda: db.engine.physical_plan(text, {"x": math.nan})):
        with pytest.raises(ParameterError, match="parameter :x is nan"):
            run()
    f = tmp_path / "q.cql"
    f.write_text("-- param: x float = 1\n" + text + ";\n")
    with pytest.raises(ParameterError) as info:
        db.run_file(f, x=math.inf)
    assert info.value.filename == str(f) and info.value.span.line == 2


def test_an_unused_bad_value_is_an_error_too(db) -> None:
    # an unused name is refused as such (issue 15: a misspelt name must not be ignored)
    with pytest.raises(ParameterError, match="unknown parameter :unused: the query takes no") as info:
        db.query("SELECT id FROM cells", unused=math.inf)
    assert info.value.span is None


def test_good_values_still_bind(db) -> None:
    assert len(db.query("SELECT id FROM cells WHERE id IN :ids", ids=[1, 2**64 - 1, -(2**64 - 1)])) == 1
    assert len(db.query("SELECT id FROM cells WHERE id > :x", x=Decimal("1.5"))) > 0
    assert len(db.query("SELECT id FROM cells WHERE id > :x", x=-1.7976931348623157e308)) > 0
    assert len(db.query("SELECT id FROM cells LIMIT :n", n=np.int64(2))) == 2
    assert len(db.query("SELECT id FROM cells AT TIMESTAMP :t", t=datetime(2030, 1, 1))) > 0
    assert len(db.query("SELECT id FROM cells WHERE cell_type = :t", t="a\x00b")) == 0


@pytest.mark.parametrize("clause", ["LIMIT", "OFFSET"])
@pytest.mark.parametrize("value", [INT64_MAX + 1, 2**64 - 1])
def test_an_out_of_range_count_literal_never_reaches_the_engine(db, clause: str, value: int) -> None:
    text = f"SELECT id FROM cells {clause} {value}"
    with pytest.raises(InvalidLiteralError) as info:  # was ServiceError "Conversion Error: ... UINT64"
        db.query(text)
    assert text[info.value.span.start:info.value.span.end] == str(value)
    with pytest.raises(InvalidLiteralError):
        db.query(f"SELECT id FROM cells ORDER BY id {clause} {value}")  # was ExecutionError


@pytest.mark.parametrize("clause", ["LIMIT", "OFFSET", "AT VERSION"])
@pytest.mark.parametrize("value", [INT64_MAX + 1, 2**64 - 1])
def test_an_out_of_range_count_parameter_points_at_it(db, clause: str, value: int) -> None:
    for text in (f"SELECT id FROM cells {clause} :n",
                 f"SELECT id FROM cells WHERE id IN (SELECT id FROM cells {clause} :n)"):
        with pytest.raises(ParameterError) as info:
            db.query(text, n=value)
        err = info.value
        assert f"parameter :n = {value} is out of range for {clause}" in err.message
        assert text[err.span.start:err.span.end] == ":n"
    with pytest.raises(ParameterError, match=f"out of range for {clause}"):  # a SET parameter too
        db.query(f"SET n = {value}; SELECT id FROM cells {clause} :n")


def test_the_largest_counts_run(db) -> None:
    assert len(db.query(f"SELECT id FROM cells LIMIT {INT64_MAX}")) == len(db.query("SELECT id FROM cells"))
    assert len(db.query("SELECT id FROM cells ORDER BY id LIMIT :n OFFSET :n", n=INT64_MAX)) == 0


def test_cql_file_values_that_are_not_finite_numbers() -> None:
    f = CqlFile.from_text("-- param: x float\nSELECT id FROM cells WHERE size > :x")
    with pytest.raises(CqlFileError, match="'nan' is not a finite number"):
        f.bind({"x": "nan"}, from_text=True)
    with pytest.raises(CqlFileError, match="not a finite number"):
        CqlFile.from_text("-- param: x float = inf\nSELECT 1")
    with pytest.raises(ValueError, match="'1e999' is not a finite number"):
        parse_param_value("1e999")  # undeclared: a number CQL cannot take, not the string '1e999'
    assert parse_param_value("nano") == "nano"


@pytest.mark.parametrize("resolution", [(math.nan, 1, 1), (math.inf, 1, 1), (0, 1, 1), (4, -4, 40)])
def test_a_connection_resolution_must_be_positive_and_finite(tiny_datastack, resolution) -> None:
    """These were accepted and failed later as ValueError / ZeroDivisionError (Fraction) or a
    ServiceError from the backend."""
    from caveql.errors import ConfigError

    with caveql.connect(path=tiny_datastack) as db:
        with pytest.raises(ConfigError, match="resolution must be three positive finite numbers"):
            db.resolution = resolution
        assert db.resolution is None  # unchanged
    with pytest.raises(ConfigError, match="positive finite"):
        caveql.connect(path=tiny_datastack, resolution=resolution)
