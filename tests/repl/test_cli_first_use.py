"""Issue 15 ("what a first-time user hit") on the command line: a misspelt ``--param`` is a usage
error (never the defaults and exit 0), ``-o`` refuses an extension it cannot write, and ``-o``
with several results writes one numbered file each — as README.md shows."""

from __future__ import annotations

import io
import os
import re
import shlex
import sys
from pathlib import Path

import pandas as pd
import pytest

import caveql
from caveql.repl.cli import main

ROOT = Path(__file__).resolve().parents[2]
FILE = """-- name: two results
-- param: root_id int = 1001
-- param: kind str = 'BC'
SELECT id FROM cells WHERE pt_root_id = :root_id;
SELECT id, cell_type FROM cells WHERE cell_type = :kind ORDER BY id;
"""


@pytest.fixture
def cql(tmp_path) -> Path:
    path = tmp_path / "two.cql"
    path.write_text(FILE)
    return path


def _usage_error(capsys) -> str:
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "Traceback" not in captured.err
    return captured.err


@pytest.mark.parametrize("how", ["run", "-f", "-c", "stdin", "explain"])
def test_a_misspelt_param_is_a_usage_error(tiny, cql, capsys, monkeypatch, how) -> None:
    query = "SELECT id FROM cells WHERE pt_root_id = :root_id"
    argv = {"run": ["run", str(cql)], "-f": ["-f", str(cql)], "-c": ["-c", query],
            "stdin": [], "explain": ["explain", query]}[how]
    if how == "stdin":
        monkeypatch.setattr(sys, "stdin", io.StringIO("\\timing on\n" + query + ";\n"))
    assert main(["--path", tiny, *argv, "--param", "rootid=1002"]) == 2
    err = _usage_error(capsys)
    assert "unknown parameter :rootid:" in err and err.count("did you mean :root_id?") == 1
    takes = "two.cql takes :kind and :root_id" if how in ("run", "-f") else "the query takes :root_id"
    assert takes in err


def test_the_right_param_is_bound(tiny, cql, capsys) -> None:
    assert main(["--path", tiny, "run", str(cql), "--param", "root_id=1002", "-F", "csv"]) == 0
    out = capsys.readouterr().out
    with caveql.connect(path=tiny) as db:
        want = db.query("SELECT id FROM cells WHERE pt_root_id = 1002")["id"].tolist()
    assert out.startswith("id\n" + "".join(f"{i}\n" for i in want))


def test_each_file_gets_the_params_it_takes(tiny, cql, tmp_path, capsys) -> None:
    other = tmp_path / "other.cql"
    other.write_text("-- param: n int = 1\nSELECT id FROM cells WHERE id = :n;\n")
    assert main(["--path", tiny, "-f", str(cql), "-f", str(other), "-p", "root_id=1002", "-p", "n=3",
                 "-c", "SELECT id FROM cells WHERE id = :n", "-F", "csv"]) == 0
    assert "error" not in capsys.readouterr().err


@pytest.mark.parametrize(("name", "says"), [
    ("out.xlsx", "cannot write Excel files"), ("out.dat", "no output format has the extension '.dat'"),
    ("out", "the file name has no extension"),
])
def test_an_output_extension_without_a_format_is_refused(tiny, tmp_path, capsys, name, says) -> None:
    path = tmp_path / name
    assert main(["--path", tiny, "-c", "SELECT id FROM cells", "-o", str(path)]) == 2
    err = _usage_error(capsys)
    assert says in err and ".csv" in err and ".parquet" in err and "--format" in err
    assert not path.exists() and os.listdir(tmp_path) == []
    # naming the format explicitly is fine
    assert main(["--path", tiny, "-c", "SELECT id FROM cells", "-o", str(path), "-F", "csv"]) == 0
    assert path.read_text().startswith("id\n")


def test_several_results_go_to_numbered_files(tiny, cql, tmp_path, capsys) -> None:
    out = tmp_path / "out.csv"
    assert main(["--path", tiny, "run", str(cql), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    with caveql.connect(path=tiny) as db:
        want = [r.frame for r in db.run_file(cql)]
    assert sorted(os.listdir(tmp_path)) == ["out-1.csv", "out-2.csv", "two.cql"]
    for n, frame in enumerate(want, start=1):
        got = pd.read_csv(tmp_path / f"out-{n}.csv")
        assert got.astype(str).values.tolist() == frame.astype(str).values.tolist()
    # stderr says which file got what: the first result went to out.csv, renamed when a second came
    assert err.splitlines() == [
        f"Wrote {len(want[0]):,} rows to {out} (csv).",
        f"Renamed {out} to {tmp_path / 'out-1.csv'}: the input returns several results, one file each.",
        f"Wrote {len(want[1]):,} rows to {tmp_path / 'out-2.csv'} (csv).",
    ]


def test_one_result_keeps_the_name_given(tiny, tmp_path, capsys) -> None:
    out = tmp_path / "out.csv"
    assert main(["--path", tiny, "-c", "SET version = 1; SELECT id FROM cells", "-o", str(out)]) == 0
    assert sorted(os.listdir(tmp_path)) == ["out.csv"]


def test_the_readme_run_example_works_as_written(demo_path, tmp_path, monkeypatch, capsys) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    m = re.search(r"^caveql (run docs/examples/bc_inputs\.cql .*?-o (\S+))\s+# 2 results: (\S+), (\S+)$",
                  readme, re.M)
    assert m, "README's `caveql run ... -o` example changed: update this test"
    words = shlex.split(m[1])
    words[1] = str(ROOT / words[1])
    monkeypatch.chdir(tmp_path)
    assert main(["--path", str(demo_path), *words]) == 0
    assert sorted(os.listdir(tmp_path)) == sorted([m[3], m[4]])
    with caveql.connect(path=demo_path) as db:
        params = dict(w.split("=", 1) for w in words[words.index("-p") + 1:words.index("-p") + 2])
        want = [r.frame for r in db.run_cql(caveql.load_cql(words[1]), params, from_text=True)]
    assert [len(pd.read_csv(tmp_path / name)) for name in (m[3], m[4])] == [len(f) for f in want]


def test_repl_include_refuses_a_misspelt_name(opener, cql) -> None:
    from caveql.repl.session import Session

    out, err = io.StringIO(), io.StringIO()
    session = Session(opener, out=out, err=err, fmt="csv")
    try:
        assert not session.run(f"\\i {cql} rootid=1002")
        assert err.getvalue().count("did you mean :root_id?") == 1 and out.getvalue() == ""
        assert session.run(f"\\i {cql} root_id=1002")
    finally:
        session.close()


def test_a_backslash_o_in_the_script_takes_over(tiny, tmp_path, capsys, monkeypatch) -> None:
    out = tmp_path / "out.csv"
    monkeypatch.setattr(sys, "stdin", io.StringIO(
        "SELECT id FROM cells WHERE id = 1;\n\\o\nSELECT id FROM cells WHERE id = 2;\n"))
    assert main(["--path", tiny, "-o", str(out), "-F", "csv"]) == 0
    assert sorted(os.listdir(tmp_path)) == ["out.csv"]
    assert out.read_text() == "id\n1\n"
    assert capsys.readouterr().out == "id\n2\n"
