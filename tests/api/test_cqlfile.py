""".cql files: headers, typed parameters, binding, errors with file:line:column."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from caveql.cqlfile import CqlFile, coerce_param, load_cql, normalize_type, parse_param_value
from caveql.errors import CqlFileError

TEXT = """/* a block
   comment */
-- name: inputs onto basket cells
-- description: synapses onto BC cells
-- param: root_id int = 864691135808473885
-- param: types list[str] = ('BC', 'MC')
-- param: min_size float
-- param: since timestamp = 2023-01-01T00:00:00
SELECT * FROM synapses_pni_2 WHERE pre_pt_root_id = :root_id;
-- param: not_a_header int = 1
"""


def test_header() -> None:
    f = CqlFile.from_text(TEXT, filename="bc.cql")
    assert f.meta == {"name": "inputs onto basket cells", "description": "synapses onto BC cells"}
    assert [p.name for p in f.params] == ["root_id", "types", "min_size", "since"]
    assert f.params[0].default == 864691135808473885 and not f.params[0].required
    assert f.params[2].required
    assert f.params[3].default == datetime(2023, 1, 1)


def test_bind_from_text_and_python() -> None:
    # an undeclared parameter the statements use is bound as given (parsed as a CQL literal)
    f = CqlFile.from_text(TEXT + "SELECT id FROM t WHERE id IN :extra;\n")
    got = f.bind({"min_size": "10", "types": "BC", "extra": "(1, 2)"}, from_text=True)
    assert got == {"root_id": 864691135808473885, "types": ["BC"], "min_size": 10.0,
                   "since": datetime(2023, 1, 1), "extra": [1, 2]}
    got = f.bind({"min_size": 3, "root_id": 5})
    assert got["min_size"] == 3.0 and isinstance(got["min_size"], float) and got["root_id"] == 5


def test_bind_refuses_a_name_neither_declared_nor_used() -> None:
    """Issue 15 item 1: `--param rootid=1` ran the file with its defaults and exited 0."""
    f = CqlFile.from_text(TEXT, filename="bc.cql")
    with pytest.raises(CqlFileError) as info:
        f.bind({"min_size": "10", "rootid": "1"}, from_text=True)
    assert info.value.message == ("unknown parameter :rootid: bc.cql takes :min_size, :root_id, :since "
                                  "and :types")
    assert info.value.hint == "did you mean :root_id?"
    assert info.value.filename == "bc.cql"
    # a name in a comment or a string is not a use
    g = CqlFile.from_text("SELECT ':extra' FROM t -- :extra\n")
    with pytest.raises(CqlFileError, match="the script takes no parameters"):
        g.bind({"extra": 1})


def test_missing_required_points_at_declaration() -> None:
    f = CqlFile.from_text(TEXT, filename="bc.cql")
    with pytest.raises(CqlFileError) as err:
        f.bind({})
    assert err.value.span is not None and err.value.span.line == 7
    text = err.value.render()
    assert "bc.cql:7:" in text and "min_size float" in text and "--param min_size=" in text


def test_wrong_type_from_python() -> None:
    f = CqlFile.from_text(TEXT)
    with pytest.raises(CqlFileError, match="root_id.*expected int"):
        f.bind({"min_size": 1, "root_id": "abc"})


def test_wrong_type_from_text() -> None:
    f = CqlFile.from_text(TEXT)
    with pytest.raises(CqlFileError, match="'1.5' is not an integer"):
        f.bind({"min_size": "1", "root_id": "1.5"}, from_text=True)


@pytest.mark.parametrize("line", ["-- param: 1x int", "-- param: x", "-- param: x widget = 3",
                                  "-- param: x int = abc"])
def test_malformed_header(line: str) -> None:
    with pytest.raises(CqlFileError) as err:
        CqlFile.from_text("SELECT 1" if False else line + "\nSELECT 1", filename="f.cql")
    assert err.value.span is not None and err.value.span.line == 1
    assert "f.cql:1:" in err.value.render()


def test_duplicate_param() -> None:
    with pytest.raises(CqlFileError, match="declared twice"):
        CqlFile.from_text("-- param: a int\n-- param: a int\nSELECT 1")


def test_load_errors(tmp_path) -> None:
    with pytest.raises(CqlFileError, match="cannot read"):
        load_cql(tmp_path / "missing.cql")
    bad = tmp_path / "bad.cql"
    bad.write_bytes(b"\xff\xfe SELECT")
    with pytest.raises(CqlFileError, match="not UTF-8"):
        load_cql(bad)


def test_types() -> None:
    assert normalize_type("list[list[int]]") is None
    assert normalize_type("LIST") == "list[any]"
    assert parse_param_value("[1,2]", "list[int]") == [1, 2]
    assert parse_param_value("()", "list[int]") == []
    assert parse_param_value("'it''s'", "str") == "it's"
    assert parse_param_value("yes", "bool") is True
    assert parse_param_value("null") is None
    with pytest.raises(ValueError):
        parse_param_value("maybe", "bool")
    assert coerce_param(7, "list[int]") == [7]
    with pytest.raises(TypeError):
        coerce_param(True, "int")


def test_numpy_values_accepted() -> None:
    np = pytest.importorskip("numpy")
    assert coerce_param(np.array([1, 2], dtype="uint64"), "list[int]") == [1, 2]
    assert coerce_param(np.int64(3), "int") == 3


@given(st.integers(min_value=-(2**63), max_value=2**64 - 1))
def test_int_text_roundtrip_exact(n: int) -> None:
    assert parse_param_value(str(n), "int") == n
    assert parse_param_value(str(n)) == n


@given(st.lists(st.integers(min_value=0, max_value=2**64 - 1), max_size=20))
def test_list_text_roundtrip(ids: list[int]) -> None:
    assert parse_param_value(",".join(map(str, ids)), "list[int]") == ids
    assert parse_param_value("(" + ", ".join(map(str, ids)) + ")", "list[int]") == ids
