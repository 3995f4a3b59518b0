"""``caveql snapshot`` on the command line, against ``caveql serve`` at a 4-row cap."""

from __future__ import annotations

import pytest

from caveql.backends.local import LocalBackend
from caveql.repl.cli import main

from .conftest import TOKEN

pytestmark = pytest.mark.timeout(60)


def test_snapshot_command(tiny_capped, tmp_path, capsys):
    dest = tmp_path / "copy"
    args = ["snapshot", "-d", "tiny", "--server", tiny_capped.url, "--token", TOKEN, "--version", "2",
            "--path", str(dest), "--no-cache", "--tables", "cells", "synapses"]
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert out.strip() == f"{dest}: 2 tables at version 2, 16 rows copied"
    assert "2/2 tables, 16/16 rows" in err  # progress: one line per table when not a terminal
    with LocalBackend(dest) as copy:
        assert copy.tables(2) == ["cells", "synapses"] and copy.table_count(2, "synapses") == 10
    assert main(args + ["--quiet"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == f"{dest}: 2 tables at version 2, 0 rows copied, 2 already complete" and err == ""


def test_snapshot_command_names_views(tiny_capped, tmp_path, capsys):
    dest = tmp_path / "copy"
    args = ["snapshot", "-d", "tiny", "--server", tiny_capped.url, "--token", TOKEN, "--version", "2",
            "--path", str(dest), "--no-cache", "--tables", "cells", "syn_counts", "-q"]
    assert main(args) == 0
    assert capsys.readouterr().out.strip() == f"{dest}: 1 table and 1 view at version 2, 14 rows copied"
    with LocalBackend(dest) as copy:
        assert copy.tables(2) == ["cells"] and list(copy.views(2)) == ["syn_counts"]


@pytest.mark.parametrize(("extra", "code", "message"), [
    (["--where", "cell_type = "], 1, "CQL00"),
    (["--tables", "cels"], 1, "no table or view 'cels' at version 2"),
])
def test_snapshot_command_errors(tiny_capped, tmp_path, capsys, extra, code, message):
    args = ["snapshot", "-d", "tiny", "--server", tiny_capped.url, "--token", TOKEN, "--version", "2",
            "--path", str(tmp_path / "copy"), "--no-cache", "-q", *extra]
    assert main(args) == code
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_snapshot_command_needs_its_options(capsys):
    assert main(["snapshot", "-d", "tiny", "--path", "x"]) == 2
    assert "--version required" in capsys.readouterr().err
