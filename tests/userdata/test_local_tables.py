"""caveql.analyze.local_tables: files and DataFrames as tables — schema, rows, exact ids, errors."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caveql.analyze import local_tables as lt
from caveql.analyze.local_tables import LocalTable, LocalTables, frame_table, registration
from caveql.errors import (
    CaveqlError,
    ConfigError,
    CqlSemanticError,
    CqlTypeError,
    ExecutionError,
    ParameterError,
)

_DUCK = duckdb.connect()

ROOTS = [864691135808473885, 864691135808473886 + 2**53, 2**63 - 1]  # above 2^53: not a float


def _csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _cells_frame() -> pd.DataFrame:
    return pd.DataFrame({"root_id": pd.array(ROOTS, dtype="int64"), "kind": ["BC", "MC", "BC"],
                         "size": [1.5, 2.0, None]})


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    df = _cells_frame()
    out = {"csv": tmp_path / "cells.csv", "tsv": tmp_path / "cells.tsv", "gz": tmp_path / "cells.csv.gz",
           "parquet": tmp_path / "cells.parquet", "ndjson": tmp_path / "cells.jsonl",
           "array": tmp_path / "cells.json"}
    df.to_csv(out["csv"], index=False)
    df.to_csv(out["tsv"], index=False, sep="\t")
    with gzip.open(out["gz"], "wt") as fh:
        df.to_csv(fh, index=False)
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), out["parquet"])
    records = [{"root_id": r, "kind": k, "size": None if pd.isna(s) else s}
               for r, k, s in zip(df.root_id, df.kind, df["size"], strict=True)]
    out["ndjson"].write_text("".join(json.dumps({k: (int(v) if k == "root_id" else v) for k, v in r.items()})
                                     + "\n" for r in records))
    out["array"].write_text(json.dumps([{k: (int(v) if k == "root_id" else v) for k, v in r.items()}
                                        for r in records]))
    return out


@pytest.mark.parametrize("kind", ["csv", "tsv", "gz", "parquet", "ndjson", "array"])
def test_each_format_reads_its_schema_and_exact_rows(files, kind) -> None:
    tables = LocalTables(base_dir=files["csv"].parent)
    t = tables.file(files[kind].name, None, {}, None)
    assert t.name == f"'{files[kind].name}'" and t.path == str(files[kind])
    assert dict(t.columns) == {"root_id": "int", "kind": "string", "size": "float"}
    rows = t.read()
    assert rows.column("root_id").to_pylist() == ROOTS  # exact, never through a float
    assert rows.column("kind").to_pylist() == ["BC", "MC", "BC"]
    assert rows.column("size").to_pylist() == [1.5, 2.0, None]
    assert t.read(["kind"]).column_names == ["kind"]
    assert t.rows == (3 if kind == "parquet" else None)  # parquet: from its footer


@pytest.mark.parametrize("kind", ["csv", "gz", "ndjson", "array"])
def test_rows_equal_duckdb_over_the_same_file(files, kind) -> None:
    t = LocalTables().file(str(files[kind]), None, {}, None)
    reader = "read_json" if kind in ("ndjson", "array") else "read_csv"
    expected = duckdb.sql(f"SELECT * FROM {reader}('{files[kind]}')").to_arrow_table()
    assert t.read().to_pydict() == expected.to_pydict()


def test_parquet_rows_equal_pyarrow(files) -> None:
    t = LocalTables().file(str(files["parquet"]), "read_parquet", {}, None)
    assert t.read().equals(pq.read_table(files["parquet"]).replace_schema_metadata(None))


def test_ids_beyond_int64_stay_exact(tmp_path) -> None:
    p = _csv(tmp_path / "big.csv", "root_id\n18446744073709551615\n9223372036854775808\n1\n")
    t = LocalTables().file(str(p), None, {}, None)
    assert t.columns == (("root_id", "int"),)
    assert t.read().column("root_id").to_pylist() == [2**64 - 1, 2**63, 1]
    assert t.read().schema.field("root_id").type == pa.uint64()


@settings(max_examples=40)  # (each example is a file read by DuckDB)
@given(st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), min_size=1, max_size=30))
def test_any_int64_column_round_trips_exactly(tmp_path_factory, values) -> None:
    p = tmp_path_factory.mktemp("ids") / "ids.csv"
    p.write_text("root_id\n" + "".join(f"{v}\n" for v in values))
    t = LocalTables().file(str(p), None, {}, None)
    assert t.read().column("root_id").to_pylist() == values


def test_ids_written_as_strings_stay_strings(tmp_path) -> None:
    p = _csv(tmp_path / "s.csv", 'root_id\n"864691135808473885"\n')
    t = LocalTables().file(str(p), "read_csv", {"columns": "root_id string"}, None)
    assert t.columns == (("root_id", "string"),)
    assert t.read().column("root_id").to_pylist() == ["864691135808473885"]
    df = frame_table(":ids", pd.DataFrame({"root_id": ["864691135808473885"]}))
    assert df.columns == (("root_id", "string"),)


def test_csv_options_pass_through(tmp_path) -> None:
    p = _csv(tmp_path / "semi.txt", "# comment\nid;name\n1;a\n2;NA\n")
    t = LocalTables().file(str(p), "read_csv", {"delim": ";", "header": True, "skip": 1, "nullstr": "NA"},
                           None)
    assert t.read().to_pydict() == {"id": [1, 2], "name": ["a", None]}
    headless = LocalTables().file(str(p), "read_csv", {"sep": ";", "header": False, "skip": 2}, None)
    assert headless.read().num_rows == 2 and headless.columns[0][1] == "int"
    typed = LocalTables().file(str(p), "read_csv", {"delim": ";", "skip": 1,
                                                     "columns": "id uint64, name string"}, None)
    assert typed.schema.field("id").type == pa.uint64()


def test_options_from_ast_constants_and_params(tmp_path) -> None:
    from caveql.syntax import ast

    p = _csv(tmp_path / "semi.csv", "id;name\n1;a\n")
    opts = {"delim": ast.Param("d"), "header": ast.Boolean(True), "skip": ast.Integer(0)}
    t = LocalTables().file(str(p), "read_csv", opts, None, params={"d": ";"})
    assert t.read().to_pydict() == {"id": [1], "name": ["a"]}
    with pytest.raises(ParameterError, match=":d has no value"):
        LocalTables().file(str(p), "read_csv", opts, None)
    with pytest.raises(CqlTypeError, match="takes a constant"):
        LocalTables().file(str(p), "read_csv", {"delim": ast.Column(("x",))}, None)


def test_paths_are_relative_to_base_dir_and_expand_home(tmp_path, monkeypatch) -> None:
    (tmp_path / "q").mkdir()
    _csv(tmp_path / "q" / "cells.csv", "id\n1\n")
    assert LocalTables(base_dir=tmp_path / "q").file("cells.csv", None, {}, None).read().num_rows == 1
    monkeypatch.chdir(tmp_path)
    assert LocalTables().file("q/cells.csv", None, {}, None).path == str(tmp_path / "q" / "cells.csv")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert LocalTables().file("~/q/cells.csv", None, {}, None).read().num_rows == 1


@pytest.mark.parametrize(("path", "function", "options", "error", "says"), [
    ("nope.csv", None, {}, CqlSemanticError, "no file 'nope.csv'"),
    ("data.txt", None, {}, CqlSemanticError, "cannot tell the format of 'data.txt'"),
    ("ok.csv", "read_xlsx", {}, CqlSemanticError, "unknown table function read_xlsx"),
    ("ok.csv", "read_csv", {"ignore_errors": True}, CqlSemanticError, "has no option ignore_errors"),
    ("ok.csv", "read_csv", {"header": 1}, CqlTypeError, "header of read_csv takes true or false"),
    ("ok.csv", "read_csv", {"skip": "2"}, CqlTypeError, "skip of read_csv takes a whole number"),
    ("ok.csv", "read_csv", {"delim": "abcdef"}, CqlSemanticError, "1 to 4 characters"),
    ("ok.csv", "read_csv", {"compression": "rar"}, CqlSemanticError, "compression of read_csv is one of"),
    ("ok.csv", "read_csv", {"columns": "id"}, CqlSemanticError, "'name type, name type, ...'"),
    ("ok.csv", "read_csv", {"columns": "id blob"}, CqlSemanticError, "unknown column type 'blob'"),
    ("ok.csv", "read_csv", {"delim": None}, CqlTypeError, "not NULL"),
    ("ok.csv", "read_parquet", {}, CqlSemanticError, "cannot read 'ok.csv'"),
    ("ok.json", "read_parquet", {"header": True}, CqlSemanticError, "read_parquet has no option header"),
    ("https://example.org/x.csv", None, {}, CqlSemanticError, "is a URL"),
    ("*.csv", None, {}, CqlSemanticError, "glob patterns are not supported"),
    ("sub", "read_csv", {}, CqlSemanticError, "'sub' is not a file"),
    ("bad.jsonl", None, {}, CqlSemanticError, "cannot read 'bad.jsonl' (line 3): malformed JSON"),
    ("empty.csv", None, {}, CqlSemanticError, "'empty.csv' is empty"),
    ("garbage.csv", None, {}, CqlSemanticError, "its delimiter, quoting or header could not be told"),
])
def test_bad_files_and_options_are_clear_errors(tmp_path, path, function, options, error, says) -> None:
    _csv(tmp_path / "ok.csv", "id\n1\n")
    _csv(tmp_path / "data.txt", "id\n1\n")
    _csv(tmp_path / "bad.jsonl", '{"a": 1}\n{"a": \n')
    (tmp_path / "sub").mkdir()
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "garbage.csv").write_bytes(bytes(range(256)) * 12)
    span = object()
    with pytest.raises(error) as info:
        LocalTables(base_dir=tmp_path).file(path, function, options, span)  # type: ignore[arg-type]
    assert says in info.value.message, info.value.message
    assert info.value.span is span


def test_a_bad_row_is_an_error_naming_the_file_and_line(tmp_path, monkeypatch) -> None:
    p = _csv(tmp_path / "bad.csv", "id,n\n1,2\n3,x\n")
    # a small file is read whole when analysed: the error points at the statement
    with pytest.raises(CqlSemanticError) as info:
        LocalTables().file(str(p), "read_csv", {"columns": "id int, n int"}, "span")  # type: ignore[arg-type]
    assert info.value.message.startswith(f"cannot read '{p}' (line 3): ") and info.value.span == "span"
    assert '"n"' in info.value.message
    # a larger one at execution
    monkeypatch.setattr(lt, "SMALL_FILE", 0)
    t = LocalTables().file(str(p), "read_csv", {"columns": "id int, n int", "header": True}, None)
    with pytest.raises(ExecutionError) as info:
        t.read()
    assert info.value.message.startswith(f"cannot read '{p}' (line 3): ")


@pytest.mark.parametrize("small", [True, False])
def test_large_files_are_sniffed_then_read(files, monkeypatch, small) -> None:
    if not small:
        monkeypatch.setattr(lt, "SMALL_FILE", 0)
    lt._CACHE.clear()
    t = LocalTables().file(str(files["csv"]), None, {}, None)
    assert t.schema.field("root_id").type == pa.int64()
    assert t.read().column("root_id").to_pylist() == ROOTS


def test_integers_beyond_64_bits_are_an_error(tmp_path) -> None:
    p = _csv(tmp_path / "huge.csv", "id\n-1\n18446744073709551615\n")
    with pytest.raises(CqlSemanticError, match="column 'id' holds integers that do not fit 64 bits"):
        LocalTables().file(str(p), None, {}, None)


def test_a_file_gone_or_changed_after_analysis(tmp_path) -> None:
    p = _csv(tmp_path / "c.csv", "id\n1\n")
    t = LocalTables().file(str(p), None, {}, None)
    _csv(p, "id\n1\n2\n")
    os.utime(p, ns=(1, 2))  # (a new mtime even on coarse clocks)
    assert t.read().column("id").to_pylist() == [1, 2]  # same columns: the new rows
    _csv(p, "name\nx\n")
    os.utime(p, ns=(3, 4))
    with pytest.raises(ExecutionError, match="changed since the statement was analyzed"):
        t.read()
    p.unlink()
    with pytest.raises(ExecutionError, match="cannot read"):
        t.read()


def test_rows_are_cached_while_the_file_is_unchanged(tmp_path, monkeypatch) -> None:
    p = _csv(tmp_path / "c.csv", "id\n1\n")
    t = LocalTables().file(str(p), None, {}, None)
    first = t.read()
    calls = []
    monkeypatch.setattr(lt, "_read", lambda *a: calls.append(a) or first)
    assert t.read() is first and LocalTables().file(str(p), None, {}, None).read() is first
    assert calls == []


def test_frames_pandas_nullable_categorical_and_arrow() -> None:
    df = pd.DataFrame({
        "root_id": pd.array([ROOTS[0], None], dtype="UInt64"),
        "n": pd.array([1, None], dtype="Int64"),
        "ok": pd.array([True, None], dtype="boolean"),
        "kind": pd.Categorical(["BC", "MC"]),
        "name": pd.array(["a", None], dtype="string"),
        "when": pd.to_datetime(["2023-01-01", None]),
    })
    t = LocalTables().param("cells", df, None)
    assert t.name == ":cells" and t.kind == "frame" and t.rows == 2
    assert dict(t.columns) == {"root_id": "int", "n": "int", "ok": "bool", "kind": "string",
                               "name": "string", "when": "timestamp"}
    rows = t.read()
    assert rows.column("root_id").to_pylist() == [ROOTS[0], None]
    assert rows.column("kind").to_pylist() == ["BC", "MC"] and rows.schema.field("kind").type == pa.string()
    arrow = pa.table({"root_id": pa.array(ROOTS, pa.int64())})
    assert LocalTables().param("t", arrow, None).read().equals(arrow)
    batch = arrow.to_batches()[0]
    assert LocalTables().param("t", batch, None).read().equals(arrow)


def test_a_named_index_becomes_a_column_an_unnamed_one_is_dropped() -> None:
    df = _cells_frame().set_index("root_id")
    t = frame_table("cells", df)
    assert [n for n, _ in t.columns] == ["root_id", "kind", "size"]
    assert t.read().column("root_id").to_pylist() == ROOTS
    filtered = _cells_frame()[lambda d: d.kind == "BC"]  # index 0, 2: not data
    assert [n for n, _ in frame_table("bc", filtered).columns] == ["root_id", "kind", "size"]
    multi = _cells_frame().set_index(["root_id", "kind"])
    assert [n for n, _ in frame_table("m", multi).columns] == ["root_id", "kind", "size"]


@pytest.mark.parametrize(("value", "says"), [
    ([1, 2], "is used as a table (FROM :cells) but is a list"),
    (3, "but is an int"),
    (pd.DataFrame({0: [1]}), "has a column named 0, not a string"),
    (pd.DataFrame([[1, 2]], columns=["a", "A"]), "has two columns called 'A'"),
    (pd.DataFrame({"a": [1, "x"]}), "cannot be read as a table"),
    (pd.DataFrame({"a": [1]}, index=pd.Index([1], name="a")), "both an index and a column called 'a'"),
])
def test_bad_table_parameters(value, says) -> None:
    with pytest.raises(ParameterError) as info:
        LocalTables().param("cells", value, None)
    assert says in info.value.message, info.value.message


def test_registered_tables_by_name_case_insensitively_and_lazily(tmp_path) -> None:
    p = _csv(tmp_path / "c.csv", "id\n1\n")
    made = registration("cells", str(p))
    assert callable(made) and not isinstance(made, LocalTable)
    tables = LocalTables({"cells": made, "picked": registration("picked", pd.DataFrame({"a": [1]}))})
    assert tables.get("CELLS").name == "cells" and tables.get("cells").kind == "csv"
    assert tables.get("picked").kind == "frame" and tables.get("other") is None
    p.unlink()  # a registered file that is gone fails the statements that use it, not the others
    tables = LocalTables({"cells": made, "picked": registration("picked", pd.DataFrame({"a": [1]}))})
    assert tables.get("picked") is not None
    with pytest.raises(CqlSemanticError, match="no file"):
        tables.get("cells")


@pytest.mark.parametrize(("name", "data", "options", "says"), [
    ("my cells", pd.DataFrame(), {}, "cannot name a table"),
    ("t", pd.DataFrame({"a": [1]}), {"delim": ";"}, "apply to files"),
    ("t", 42, {}, "cannot register an int"),
    ("t", "missing.csv", {}, "no file 'missing.csv'"),
])
def test_bad_registrations(tmp_path, monkeypatch, name, data, options, says) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises((ConfigError, CqlSemanticError)) as info:
        registration(name, data, options)
    assert says in info.value.message
    assert isinstance(info.value, CaveqlError)


def test_describe_says_what_a_table_is(tmp_path) -> None:
    p = _csv(tmp_path / "c.csv", "id,kind\n1,BC\n")
    tables = LocalTables({"c": registration("c", str(p)), "f": frame_table("f", pd.DataFrame({"a": [1, 2]}))})
    assert lt.describe(tables, "c") == f"csv file {p}: columns id int, kind string"
    assert lt.describe(tables, "f") == "a frame: 2 rows, columns a int"
    p.unlink()
    tables = LocalTables({"c": tables.registered["c"]})
    assert lt.describe(tables, "c").startswith("unreadable: no file")


@settings(max_examples=50)  # (each example is a DuckDB query)
@given(st.lists(st.tuples(st.one_of(st.none(), st.integers(min_value=-(2**63), max_value=2**63 - 1)),
                          st.one_of(st.none(), st.text(max_size=5)),
                          st.one_of(st.none(), st.floats(allow_nan=False))), max_size=20))
def test_any_nullable_frame_reads_as_duckdb_reads_it(rows) -> None:
    df = pd.DataFrame({"root_id": pd.array([r[0] for r in rows], dtype="Int64"),
                       "name": pd.array([r[1] for r in rows], dtype="string"),
                       "x": pd.array([r[2] for r in rows], dtype="Float64")})
    got = LocalTables().param("df", df, None).read()
    con = _DUCK.cursor()
    con.register("df", df)
    expected = con.sql("SELECT * FROM df").fetchall()
    con.close()
    assert list(zip(*[got.column(c).to_pylist() for c in got.column_names], strict=True)) == expected
    assert got.column("root_id").to_pylist() == [r[0] for r in rows]  # exact: never via float
