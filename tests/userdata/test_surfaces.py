"""Every surface hands the user's tables to analysis: Connection.register / query(cells=df) /
local_scope, run_file (paths relative to the .cql file), the CLI's --table, the REPL's \\table and
\\tables, the magic's notebook DataFrames; and the errors of each."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from caveql.repl.cli import main
from caveql.repl.session import Session

import caveql
import caveql.engine as engine_module
from caveql.analyze.local_tables import LocalTables
from caveql.bind import param_uses
from caveql.errors import ConfigError, CqlSemanticError, ParameterError
from caveql.magic import frame_tables
from caveql.plancache import PlanCache
from caveql.syntax import parse

Q = "SELECT id FROM cells WHERE cell_type = 'BC'"


@pytest.fixture
def db(tiny_datastack):
    with caveql.connect(path=tiny_datastack) as conn:
        yield conn


@pytest.fixture
def seen(monkeypatch) -> list[LocalTables]:
    """The ``tables=`` each analysis is given (the statements still run)."""
    got: list[LocalTables] = []
    real = engine_module.analyze

    def spy(*args, **kwargs):
        got.append(kwargs["tables"])
        return real(*args, **kwargs)

    monkeypatch.setattr(engine_module, "analyze", spy)
    # every statement analysed, none answered from the engine's kept plans (caveql.plancache)
    monkeypatch.setattr(PlanCache, "get", lambda self, key: None)
    return got


@pytest.fixture
def cells_csv(tmp_path) -> Path:
    p = tmp_path / "picked.csv"
    p.write_text("root_id,note\n1002,a\n1005,b\n")
    return p


def test_register_list_unregister(db, cells_csv) -> None:
    frame = pd.DataFrame({"root_id": [1002, 1005]})
    db.register("picked", frame)
    db.register("from_file", str(cells_csv))
    db.register("arrow", pa.table({"x": [1.5]}))
    assert db.registered() == {
        "picked": "a frame: 2 rows, columns root_id int",
        "from_file": f"csv file {cells_csv}: columns root_id int, note string",
        "arrow": "a frame: 1 row, columns x float",
    }
    db.unregister("arrow")
    assert list(db.registered()) == ["picked", "from_file"]
    with pytest.raises(ConfigError, match="no table 'pickd' is registered") as info:
        db.unregister("pickd")
    assert info.value.hint == "did you mean 'picked'?"


@pytest.mark.parametrize("name", ["cells", "CELLS", "syn_counts"])
def test_register_refuses_a_datastack_name(db, name) -> None:
    with pytest.raises(ConfigError, match=f"cannot register '{name}': the datastack has a table or view"):
        db.register(name, pd.DataFrame({"a": [1]}))


def test_register_checks_the_file_and_options_now(db, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CqlSemanticError, match="no file 'missing.csv'"):
        db.register("m", "missing.csv")
    (tmp_path / "semi.txt").write_text("a;b\n1;2\n")
    with pytest.raises(CqlSemanticError, match="cannot tell the format"):
        db.register("s", "semi.txt")
    db.register("s", "semi.txt", function="read_csv", delim=";")
    assert db.registered()["s"] == f"csv file {tmp_path / 'semi.txt'}: columns a int, b int"
    assert db.registered() == {"s": db.registered()["s"]}


def test_every_entry_point_passes_the_connection_tables(db, seen, cells_csv) -> None:
    db.register("picked", str(cells_csv))
    db.query(Q)
    db.execute(Q)
    db.execute_script(f"{Q}; EXPLAIN {Q}")
    db.explain(Q)
    assert len(seen) == 5
    for tables in seen:
        assert isinstance(tables, LocalTables) and tables.base_dir is None
        assert tables.get("picked").path == str(cells_csv) and tables.get("PICKED").name == "picked"


def test_the_engine_alone_reads_files_from_the_working_directory(db, seen) -> None:
    db.engine.execute(Q)
    db.engine.physical_plan(Q)
    assert [t.registered for t in seen] == [{}, {}] and all(t.base_dir is None for t in seen)


def test_run_file_reads_paths_relative_to_the_file(db, seen, tmp_path, monkeypatch) -> None:
    folder = tmp_path / "queries"
    folder.mkdir()
    (folder / "q.cql").write_text(f"{Q};\n")
    monkeypatch.chdir(tmp_path)
    db.run_file("queries/q.cql")
    assert seen[-1].base_dir == folder
    db.query(Q)
    assert seen[-1].base_dir is None  # only for the file's statements


def test_local_scope_adds_tables_and_a_folder_for_its_block(db, seen, tmp_path) -> None:
    frame = pd.DataFrame({"root_id": [1]})
    with db.local_scope(base_dir=tmp_path, tables={"mine": frame}):
        with db.local_scope(tables={"more": frame}):
            db.query(Q)
        db.query(Q)
    db.query(Q)
    inner, outer, after = seen
    assert inner.base_dir == outer.base_dir == tmp_path and after.base_dir is None
    assert inner.get("mine") and inner.get("more") and outer.get("more") is None
    assert after.get("mine") is None


def test_a_table_parameter_counts_as_used() -> None:
    text = "SELECT * FROM :cells c JOIN synapses s ON s.pre_pt_root_id = c.root_id"
    uses = param_uses(parse(text).statements)
    assert list(uses) == ["cells"]


@pytest.mark.parametrize("where", ["pt_root_id IN :ids", "pt_root_id = :ids"])
def test_a_frame_where_a_value_is_expected(db, where) -> None:
    with pytest.raises(ParameterError) as info:
        db.query(f"SELECT id FROM cells WHERE {where}", ids=pd.DataFrame({"root_id": [1002]}))
    assert info.value.message == "parameter :ids is a table (DataFrame) used where a value is expected"
    assert "FROM :ids" in info.value.hint
    # a list still binds an IN list
    assert db.query("SELECT id FROM cells WHERE pt_root_id IN :ids", ids=[1002, 1005]).id.tolist() == [2, 5]


def test_a_value_where_a_table_is_expected(db) -> None:
    with pytest.raises(ParameterError, match="is used as a table \\(FROM :cells\\) but is a list") as info:
        db.query("SELECT * FROM :cells", cells=[1002, 1005])
    assert info.value.hint == "a list of values is used as `x IN :cells`"


# -- the CLI ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", ["cells.csv", "=x.csv", "my cells=x.csv", "c="])
def test_cli_table_usage_errors(tiny_datastack, capsys, bad) -> None:
    assert main(["--path", str(tiny_datastack), "--table", bad, "-c", Q]) == 2
    assert "--table takes NAME=FILE" in capsys.readouterr().err


def test_cli_table_registers_and_lists(tiny_datastack, cells_csv, capsys, monkeypatch) -> None:
    monkeypatch.chdir(cells_csv.parent)
    assert main(["--path", str(tiny_datastack), "--table", "picked=picked.csv", "-c", "\\tables"]) == 0
    assert f"picked: csv file {cells_csv}: columns root_id int, note string" in capsys.readouterr().out


@pytest.mark.parametrize(("table", "says"), [
    ("picked=missing.csv", "no file 'missing.csv'"),
    ("cells=picked.csv", "cannot register 'cells': the datastack has a table or view of that name"),
])
def test_cli_table_errors_name_the_file_or_table(tiny_datastack, cells_csv, capsys, monkeypatch, table,
                                                  says) -> None:
    monkeypatch.chdir(cells_csv.parent)
    assert main(["--path", str(tiny_datastack), "--table", table, "-c", Q]) == 1
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err


def test_cli_run_passes_tables_and_the_file_folder(tiny_datastack, cells_csv, seen, tmp_path, monkeypatch,
                                                   capsys) -> None:
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (folder / "q.cql").write_text(f"{Q};\n")
    monkeypatch.chdir(tmp_path)
    assert main(["--path", str(tiny_datastack), "run", str(folder / "q.cql"),
                 "--table", "picked=picked.csv"]) == 0
    assert seen[-1].base_dir == folder and seen[-1].get("picked").path == str(cells_csv)
    capsys.readouterr()


# -- the REPL ---------------------------------------------------------------------------------------

def _session(tiny_datastack) -> Session:
    return Session(lambda: caveql.connect(path=tiny_datastack), out=io.StringIO(), err=io.StringIO())


def test_repl_table_and_tables(tiny_datastack, tmp_path, monkeypatch) -> None:
    s = _session(tiny_datastack)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "semi.csv").write_text("a;b\n1;2\n")
    assert s.run("\\tables") and "No tables registered" in s.err.getvalue()
    assert s.run("\\table semi semi.csv delim=; header=true")
    assert "semi: csv file" in s.err.getvalue()
    assert s.run("\\tables")
    assert f"semi: csv file {tmp_path / 'semi.csv'}: columns a int, b int" in s.out.getvalue()
    for bad, says in [("\\table semi", "usage: \\table name file"),
                      ("\\table x missing.csv", "no file 'missing.csv'"),
                      ("\\table x semi.csv bogus=1", "read_csv has no option bogus"),
                      ("\\table x semi.csv delim", "parameters are name=value")]:
        assert not s.run(bad), bad
        assert says in s.err.getvalue(), (bad, s.err.getvalue())
    s.connection.close()


def test_repl_i_reads_paths_relative_to_the_file(tiny_datastack, seen, tmp_path) -> None:
    s = _session(tiny_datastack)
    (tmp_path / "q.cql").write_text(f"{Q};\n")
    assert s.run(f"\\i {tmp_path / 'q.cql'}")
    assert seen[-1].base_dir == tmp_path
    s.connection.close()


# -- the magic --------------------------------------------------------------------------------------

def test_frame_tables_rule() -> None:
    frame = pd.DataFrame({"root_id": [1]})
    ns = {"picked": frame, "arrow": pa.table({"a": [1]}), "n": 1, "lst": [1], "unused": frame}
    text = ("SELECT * FROM synapses s JOIN picked p ON p.root_id = s.pre_pt_root_id\n"
            "JOIN arrow a ON TRUE JOIN n ON TRUE -- FROM unused\n"
            "WHERE 'FROM unused' <> '' AND s.x IN (SELECT * FROM lst)\n"
            "AND read_csv IN (SELECT 1 FROM unused(1))")
    assert list(frame_tables(text, ns)) == ["picked", "arrow"]


@pytest.fixture
def ip(tiny_datastack):
    from IPython.testing.globalipapp import get_ipython

    shell = get_ipython()
    shell.run_line_magic("load_ext", "caveql")
    yield shell
    magics = shell.magics_manager.registry.get("CqlMagics")
    if magics is not None and magics.connection is not None:
        magics.connection.close()
        magics.connection = None


def test_magic_binds_notebook_frames_for_the_cell(ip, tiny_datastack, monkeypatch) -> None:
    seen: list[LocalTables] = []

    def stop(*args, **kwargs):  # what analysis is given; no further
        seen.append(kwargs["tables"])
        raise ConfigError("analysis reached")

    monkeypatch.setattr(engine_module, "analyze", stop)
    ip.user_ns.update(picked=pd.DataFrame({"root_id": [1002]}), cells=pd.DataFrame({"x": [1]}))
    for cell in ["SELECT * FROM picked", "SELECT * FROM cells JOIN picked ON TRUE", Q]:
        with pytest.raises(ConfigError, match="analysis reached"):
            ip.run_cell_magic("cql", f"--path {tiny_datastack}", cell)
    first, both, plain = seen
    assert first.get("picked").kind == "frame" and first.get("picked").rows == 1
    assert both.get("picked") is not None
    assert both.get("cells") is None  # the datastack's `cells` comes first: not the notebook's
    assert plain.get("picked") is None  # only the frames a cell names, for that cell


def test_describe_a_registered_table(db, cells_csv) -> None:
    db.register("picked", str(cells_csv))
    res = db.execute("DESCRIBE picked")
    assert res.message == f"picked (your table: csv file {cells_csv})"
    assert res.frame.to_dict("list") == {"column": ["root_id", "note"], "type": ["int", "string"],
                                         "table": ["picked", "picked"]}
    db.register("framed", pd.DataFrame({"a": [1.5, 2.5]}))
    assert db.execute("DESCRIBE framed").message == "framed (your table: a frame)\nrows: 2"
    assert db.execute("DESCRIBE cells").message.startswith("cells (table")  # the datastack's
