"""Issue 15, item 13: ``WHERE cell_type = 'bc'`` gives no rows — rightly — and a notice naming the
values close to it ('BC'), which the REPL and CLI print; never an error, the answer is as asked."""

from __future__ import annotations

import pytest

import caveql
from caveql.repl.cli import main


@pytest.fixture(scope="module")
def db(tiny_datastack):
    with caveql.connect(path=tiny_datastack) as conn:
        yield conn


def _known(db) -> list[str]:
    return sorted(db.query("SELECT DISTINCT cell_type FROM cells WHERE cell_type IS NOT NULL")["cell_type"])


def test_a_value_the_column_never_has_gets_a_notice(db) -> None:
    assert "BC" in _known(db) and "bc" not in _known(db)
    res = db.execute("SELECT id FROM cells WHERE cell_type = 'bc'")
    assert res.frame is not None and res.frame.empty  # the answer asked for
    assert res.notices == ["cells.cell_type has no value 'bc' (line 1, column 40); did you mean 'BC'?"]


@pytest.mark.parametrize(("text", "params"), [
    ("SELECT id FROM cells WHERE cell_type = :t", {"t": "bc"}),
    ("SELECT id FROM cells WHERE 'bc' = cell_type", {}),
    ("SELECT c.id FROM cells c WHERE c.cell_type IN ('bc', 'nope')", {}),
    ("SELECT id FROM cells WHERE cell_type IN :ts", {"ts": ["bc"]}),
    ("SELECT id FROM cells WHERE id IN (SELECT id FROM cells WHERE cell_type = 'bc')", {}),
    ("SELECT id FROM cells WHERE id > 0 AND (cell_type = 'bc' OR id < 0)", {}),
])
def test_every_form_of_the_test(db, text, params) -> None:
    [res] = db.execute_script(text, **params)
    assert len(res.notices) == 1 and "did you mean 'BC'?" in res.notices[0]


@pytest.mark.parametrize("text", [
    "SELECT id FROM cells WHERE cell_type = 'BC' AND id < 0",   # a known value: the rows just are not there
    "SELECT id FROM cells WHERE cell_type != 'bc' AND id < 0",  # not an equality
    "SELECT id FROM cells WHERE NOT cell_type IN ('bc') AND id < 0",
    "SELECT id FROM cells WHERE id = 999",                      # not a string column
])
def test_no_notice_where_none_is_due(db, text) -> None:
    res = db.execute(text)
    assert res.frame is not None and res.frame.empty and res.notices == []


def test_no_notice_when_rows_come_back(db) -> None:
    res = db.execute("SELECT id FROM cells WHERE cell_type = 'bc' OR cell_type = 'BC'")
    assert len(res.frame) and res.notices == []


def test_a_value_far_from_all_lists_the_values(db) -> None:
    [notice] = db.execute("SELECT id FROM cells WHERE cell_type = 'zzzzzz'").notices
    assert notice.endswith("its values are " + ", ".join(f"'{v}'" for v in _known(db)))


def test_the_cli_prints_the_notice_on_stderr(tiny_datastack, capsys, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("CAVEQL_CONFIG", str(tmp_path / "no-config.toml"))  # no user settings
    monkeypatch.setenv("CAVEQL_HISTORY_DIR", str(tmp_path / "history"))
    assert main(["--path", str(tiny_datastack), "-c", "SELECT id FROM cells WHERE cell_type = 'bc'",
                 "-F", "csv"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "id\n"
    assert captured.err == ("notice: cells.cell_type has no value 'bc' (line 1, column 40); "
                            "did you mean 'BC'?\n")


def test_the_notice_travels_with_the_frame(db) -> None:
    """Connection.query returns a DataFrame: the notice is in its attrs."""
    df = db.query("SELECT id FROM cells WHERE cell_type = 'bc'")
    assert df.empty and df.attrs["caveql"]["notices"] == [
        "cells.cell_type has no value 'bc' (line 1, column 40); did you mean 'BC'?"]
