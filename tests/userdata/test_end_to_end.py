"""Local files and DataFrames joined with CAVE tables, end to end, through every surface; each
answer equals DuckDB's over the same file and the CAVE table fetched whole."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import caveql
from caveql.errors import CaveqlError, CqlSemanticError, CqlTypeError
from caveql.repl.cli import main

PICKED = {"root_id": [1002, 1005, 1003, 999], "label": ["a", "b", "c", "none"]}
JOIN = ("SELECT m.label, s.id, s.size FROM {src} m JOIN synapses s ON s.pre_pt_root_id = m.root_id "
        "ORDER BY s.id")
ORACLE = ("SELECT m.label, s.id, s.size FROM m JOIN s ON s.pre_pt_root_id = m.root_id ORDER BY s.id")


@pytest.fixture(scope="module")
def db(tiny_datastack):
    with caveql.connect(path=tiny_datastack) as conn:
        yield conn


@pytest.fixture(scope="module")
def synapses(tiny_datastack) -> pd.DataFrame:
    with caveql.connect(path=tiny_datastack) as conn:
        return conn.query("SELECT * FROM synapses")


def _oracle(picked: pd.DataFrame | pa.Table, synapses: pd.DataFrame) -> pd.DataFrame:
    con = duckdb.connect()
    con.register("m", picked)
    con.register("s", synapses[["id", "pre_pt_root_id", "size"]].astype({"pre_pt_root_id": "int64",
                                                                         "id": "int64", "size": "float64"}))
    return con.sql(ORACLE).df()


def _same(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(got.columns) == list(expected.columns)
    assert len(got) == len(expected) > 0
    for c in got.columns:
        assert got[c].astype(object).tolist() == expected[c].astype(object).tolist(), c


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("picked")
    df = pd.DataFrame(PICKED)
    names = [("csv", "picked.csv"), ("gz", "picked.csv.gz"), ("parquet", "picked.parquet"),
             ("json", "picked.json"), ("jsonl", "picked.jsonl")]
    out = {k: d / n for k, n in names}
    df.to_csv(out["csv"], index=False)
    with gzip.open(out["gz"], "wt") as fh:
        df.to_csv(fh, index=False)
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), out["parquet"])
    rows = df.to_dict("records")
    out["json"].write_text(json.dumps(rows))
    out["jsonl"].write_text("".join(json.dumps(r) + "\n" for r in rows))
    return out


@pytest.mark.parametrize("kind", ["csv", "gz", "parquet", "json", "jsonl"])
def test_each_file_format_joins_a_cave_table(db, synapses, files, kind) -> None:
    got = db.query(JOIN.format(src=f"'{files[kind]}'"))
    _same(got, _oracle(pd.DataFrame(PICKED), synapses))


def test_a_reader_function_with_options(db, synapses, tmp_path) -> None:
    p = tmp_path / "picked.txt"
    p.write_text("# my cells\nroot_id;label\n" + "".join(f"{r};{lab}\n" for r, lab in
                                                        zip(PICKED["root_id"], PICKED["label"], strict=True)))
    got = db.query(JOIN.format(src=f"read_csv('{p}', delim = ';', skip = 1, header = true)"))
    _same(got, _oracle(pd.DataFrame(PICKED), synapses))


@pytest.mark.parametrize("make", [pd.DataFrame, pa.table], ids=["pandas", "arrow"])
def test_a_table_parameter_joins_a_cave_table(db, synapses, make) -> None:
    picked = make(PICKED)
    got = db.query(JOIN.format(src=":picked"), picked=picked)
    _same(got, _oracle(picked, synapses))


def test_a_registered_frame_and_file(db, synapses, files) -> None:
    db.register("picked_frame", pd.DataFrame(PICKED).set_index("root_id"))  # a named index: a column
    db.register("picked_file", str(files["parquet"]))
    try:
        for name in ("picked_frame", "picked_file"):
            _same(db.query(JOIN.format(src=name)), _oracle(pd.DataFrame(PICKED), synapses))
    finally:
        db.unregister("picked_frame")
        db.unregister("picked_file")


def test_ids_above_2_53_survive_the_round_trip(db, tmp_path) -> None:
    big = [864691135808473885, 864691135808473886, 2**63 - 1]
    p = tmp_path / "big.csv"
    p.write_text("root_id\n" + "".join(f"{v}\n" for v in big))
    got = db.query(f"SELECT root_id FROM '{p}' ORDER BY root_id")
    assert [int(v) for v in got.root_id] == big


def test_explain_names_the_local_table(db, files) -> None:
    text = db.explain(JOIN.format(src=f"'{files['csv']}'"))
    assert "picked.csv" in text


def test_ids_written_as_strings_cannot_join_root_ids(db, tmp_path) -> None:
    p = tmp_path / "s.csv"
    p.write_text("root_id,label\n1002,a\n")
    with pytest.raises(CqlTypeError) as info:
        db.query(JOIN.format(src=f"read_csv('{p}', columns = 'root_id string, label string')"))
    assert "cannot compare pre_pt_root_id (int) with root_id (string)" in info.value.message
    assert len(db.query(JOIN.format(src=f"read_csv('{p}', columns = 'root_id int, label string')"))) == 2


def test_a_missing_file_points_at_the_from(db) -> None:
    with pytest.raises(CqlSemanticError) as info:
        db.query("SELECT * FROM 'nowhere.csv'")
    assert info.value.message.startswith("no file 'nowhere.csv'")
    assert info.value.span is not None and info.value.span.column == 15


def test_cli_table_and_cql_file_relative_paths(tiny_datastack, synapses, files, tmp_path, monkeypatch,
                                                capsys) -> None:
    folder = tmp_path / "queries"
    folder.mkdir()
    (folder / "picked.csv").write_text(files["csv"].read_text())
    (folder / "near.cql").write_text(JOIN.format(src="'picked.csv'") + ";\n")
    (folder / "named.cql").write_text(JOIN.format(src="cells_of_mine") + ";\n")
    monkeypatch.chdir(tmp_path)  # not the file's folder: the path is the file's
    expected = _oracle(pd.DataFrame(PICKED), synapses)
    assert main(["--path", str(tiny_datastack), "-F", "csv", "run", "queries/near.cql"]) == 0
    got = pd.read_csv(io.StringIO(capsys.readouterr().out))
    _same(got, expected)
    assert main(["--path", str(tiny_datastack), "-F", "csv", "--table", "cells_of_mine=queries/picked.csv",
                 "run", "queries/named.cql"]) == 0
    got = pd.read_csv(io.StringIO(capsys.readouterr().out))
    _same(got, expected)


def test_magic_joins_a_notebook_frame(tiny_datastack, synapses) -> None:
    from IPython.testing.globalipapp import get_ipython

    shell = get_ipython()
    shell.run_line_magic("load_ext", "caveql")
    try:
        shell.user_ns["picked"] = pd.DataFrame(PICKED)
        got = shell.run_cell_magic("cql", f"--path {tiny_datastack}", JOIN.format(src="picked"))
        _same(got, _oracle(pd.DataFrame(PICKED), synapses))
        got = shell.run_cell_magic("cql", "", JOIN.format(src=":picked"))
        _same(got, _oracle(pd.DataFrame(PICKED), synapses))
    finally:
        magics = shell.magics_manager.registry.get("CqlMagics")
        if magics is not None and magics.connection is not None:
            magics.connection.close()
            magics.connection = None


def test_errors_are_caveql_errors(db) -> None:
    for text, params in [("SELECT * FROM :t", {"t": 3}), ("SELECT * FROM read_csv('x.csv', bogus = 1)", {}),
                         ("SELECT id FROM cells WHERE pt_root_id IN :t", {"t": pd.DataFrame({"a": [1]})})]:
        with pytest.raises(CaveqlError):
            db.query(text, **params)
