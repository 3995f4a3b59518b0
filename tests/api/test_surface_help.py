"""Help lines name the surface's own way of doing a thing (caveql.surface): an unbound ``:param``
is ``--param`` on the command line, ``\\set`` in the REPL, a keyword argument in Python."""

from __future__ import annotations

import io

import pytest

import caveql
from caveql.errors import ParameterError
from caveql.surface import current, hint, set_surface, using

QUERY = "SELECT id FROM cells WHERE pt_root_id = :root"


def test_python_names_a_keyword_argument(tiny_datastack) -> None:
    with caveql.connect(path=tiny_datastack) as conn, pytest.raises(ParameterError) as err:
        conn.query(QUERY)
    assert "query(..., root=...)" in (err.value.hint or "")
    assert "--param" not in (err.value.hint or "")


def test_the_command_line_names_its_param_flag(tiny_datastack, monkeypatch, tmp_path, capsys) -> None:
    from caveql.repl.cli import main

    monkeypatch.setenv("CAVEQL_CONFIG", str(tmp_path / "none.toml"))
    assert main(["--path", str(tiny_datastack), "-c", QUERY]) == 1
    err = capsys.readouterr().err
    assert "parameter :root has no value" in err
    assert "--param root=VALUE" in err and "params=" not in err and "query(" not in err
    assert current() == "python"


def test_the_repl_names_set(tiny_datastack) -> None:
    from caveql.repl.session import Session

    err = io.StringIO()
    session = Session(lambda: caveql.connect(path=tiny_datastack), out=io.StringIO(), err=err)
    try:
        with using("repl"):
            assert not session.run(QUERY + ";")
    finally:
        session.close()
    assert "\\set root VALUE" in err.getvalue() and "--param" not in err.getvalue()


def test_surfaces_are_checked_and_restored() -> None:
    with pytest.raises(ValueError, match="unknown surface"):
        set_surface("gui")
    with using("magic"):
        assert hint(python="p", cli="c") == "p"  # the magic falls back to Python's help
        with using("cli"):
            assert hint(python="p", cli="c") == "c"
        assert current() == "magic"
    assert current() == "python"
