"""%load_ext caveql in a real IPython shell: %cql, %%cql, binding, -o, errors, remembered options."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from caveql.errors import CaveqlError, ConfigError, UnknownColumnError
from caveql.magic import bind_text, magic_args


@pytest.fixture
def ip(tiny_datastack, monkeypatch):
    from IPython.testing.globalipapp import get_ipython

    shell = get_ipython()  # a real InteractiveShell (started once per process)
    shell.run_line_magic("load_ext", "caveql")
    yield shell
    magics = shell.magics_manager.registry.get("CqlMagics")
    if magics is not None and magics.connection is not None:
        magics.connection.close()
        magics.connection = None


def test_line_magic_returns_frame_and_remembers_path(ip, tiny_datastack, capsys) -> None:
    df = ip.run_line_magic("cql", f"--path {tiny_datastack} SELECT id FROM cells WHERE cell_type = 'BC'")
    assert isinstance(df, pd.DataFrame) and df["id"].tolist() == [2, 5]
    again = ip.run_line_magic("cql", "SELECT COUNT(*) AS n FROM cells")  # same connection, no options
    assert int(again["n"][0]) == 6


def test_cell_magic_binds_notebook_variables(ip, tiny_datastack) -> None:
    ip.user_ns.update(ids=np.array([1001, 1005], dtype="uint64"), kind="BC", roots=pd.Series([1002]))
    cell = "SELECT id FROM cells WHERE pt_root_id IN :ids AND cell_type = {kind}"
    df = ip.run_cell_magic("cql", f"--path {tiny_datastack} -o out", cell)
    assert df["id"].tolist() == [5]
    assert ip.user_ns["out"] is df
    df = ip.run_cell_magic("cql", "", "SELECT id FROM cells WHERE pt_root_id IN :roots")
    assert df["id"].tolist() == [2]


def test_a_failing_cell_fails_without_a_traceback(ip, tiny_datastack, capsys) -> None:
    # what "Run All", nbconvert and papermill look at: the cell's success
    ip.user_ns.pop("bad", None)
    ip.user_ns.pop("x", None)
    for cell, shown in [
        (f"%cql --path {tiny_datastack} -o bad SELECT idd FROM cells", ["error[CQL012]", "^^^"]),
        ("x = %cql SELECT idd FROM cells", ["error[CQL012]", "did you mean 'id'"]),
        ("%cql --bogus 1 SELECT 1", ["%cql: unknown option --bogus"]),
        ("%%cql -o bad\nSELECT id FROM cells WHERE cell_type = {nothere}", ["no variable 'nothere'"]),
    ]:
        result = ip.run_cell(cell)
        assert not result.success, cell
        assert isinstance(result.error_in_exec, CaveqlError)
        printed = "".join(capsys.readouterr())
        assert all(s in printed for s in shown), printed
        assert "Traceback" not in printed and "magic.py" not in printed, printed
    assert "bad" not in ip.user_ns and "x" not in ip.user_ns  # nothing stored, not even None
    assert ip.run_cell("y = %cql SELECT COUNT(*) AS n FROM cells").success  # the session goes on
    assert int(ip.user_ns["y"]["n"][0]) == 6


def test_errors_raise_from_the_magic_calls(ip, tiny_datastack) -> None:
    with pytest.raises(UnknownColumnError):
        ip.run_line_magic("cql", f"--path {tiny_datastack} SELECT idd FROM cells")
    with pytest.raises(ConfigError, match="no variable 'nothere'"):
        ip.run_cell_magic("cql", "", "SELECT id FROM cells WHERE cell_type = {nothere}")


def test_version_option_and_messages(ip, tiny_datastack, capsys) -> None:
    df = ip.run_line_magic("cql", f"--path {tiny_datastack} --version 1 SHOW TABLES")
    assert "cell_types" not in df["table_name"].tolist()
    assert ip.run_line_magic("cql", "SET version = 2") is None
    assert "version = 2" in capsys.readouterr().out


def test_magic_args() -> None:
    opts, rest = magic_args("-d minnie65_public --version=343 SELECT * FROM t WHERE x = 'a b'")
    assert opts.datastack == "minnie65_public" and opts.version == 343
    assert rest == "SELECT * FROM t WHERE x = 'a b'"
    opts, rest = magic_args("SELECT 1")
    assert rest == "SELECT 1" and opts.path is None
    with pytest.raises(ConfigError):
        magic_args("--version x SELECT 1")


def test_bind_text_literals_and_params() -> None:
    text, params = bind_text("SELECT {a}, {b}, {c} FROM t WHERE x IN :ids -- {a}\n AND y = \"{a}\"",
                             {"a": 864691135808473885, "b": [1.5, None], "c": True, "ids": {3, 1}})
    assert text == "SELECT 864691135808473885, (1.5, NULL), TRUE FROM t WHERE x IN :ids -- {a}\n AND y = \"{a}\""
    assert params == {"ids": [1, 3]}
    text, params = bind_text("SELECT * FROM t WHERE x = :unknown", {})
    assert params == {} and text.endswith(":unknown")
    with pytest.raises(ConfigError):
        bind_text("SELECT {e}", {"e": []})
    with pytest.raises(ConfigError):
        bind_text("SELECT {e}", {"e": object()})


def test_tab_completion_in_the_notebook(ip, tiny_datastack) -> None:
    from IPython.core.completer import provisionalcompleter

    def complete(text: str) -> list[str]:
        with provisionalcompleter():
            return [c.text for c in ip.Completer.completions(text, len(text))]

    ip.run_line_magic("cql", f"--path {tiny_datastack} SHOW TABLES")
    assert "synapses" in complete("%cql SELECT * FROM syna")
    assert "BC'" in complete("%%cql\nSELECT id FROM cells WHERE cell_type = 'B")
    assert "pre_pt_root_id" in complete("df = %cql SELECT pre_pt FROM synapses")[:3] or \
        "pre_pt_root_id" in complete("%%cql\nSELECT * FROM synapses WHERE pre_pt")
    assert "cells" not in complete("x = cel")  # outside the magic: IPython's own completion


def test_a_cells_frame_carries_attrs_and_its_notices_are_shown(ip, tiny_datastack, capsys) -> None:
    """The magic's frame is Connection.query's: caveclient's attrs keys and attrs["caveql"]; a notice
    (a string value the column never holds) is printed under the cell and kept in the attrs."""
    df = ip.run_line_magic("cql", f"--path {tiny_datastack} SELECT id FROM cells WHERE cell_type = 'bc'")
    assert df.empty
    printed = capsys.readouterr().out
    assert "notice: cells.cell_type has no value 'bc'" in printed and "did you mean 'BC'?" in printed
    meta = df.attrs["caveql"]
    assert meta["cql"] == "SELECT id FROM cells WHERE cell_type = 'bc'" and meta["datastack"] == "tiny"
    assert meta["notices"] == ["cells.cell_type has no value 'bc' (line 1, column 40); did you mean 'BC'?"]
