"""The `caveql` command: every flag, format and exit code (in-process through main())."""

from __future__ import annotations

import io
import json
import sys

import pandas as pd
import pyarrow.parquet as pq
import pytest

from caveql.repl.cli import build_parser, main
from caveql.repl.formatting import render

Q = "SELECT id, pt_root_id FROM nucleus_detection_v0 LIMIT 5"


def expected(fake_connect, text: str) -> pd.DataFrame:
    import caveql.api as api

    return api.connect().query(text)


def test_c_prints_a_table(fake_connect, capsys) -> None:
    assert main(["-c", Q]) == 0
    out = capsys.readouterr().out
    df = expected(fake_connect, Q)
    assert out == render(df, "table", max_width=120) + "\n"


@pytest.mark.parametrize("fmt", ["csv", "tsv", "json", "jsonl", "markdown", "vertical"])
def test_format_flag(fake_connect, capsys, fmt: str) -> None:
    assert main(["-c", Q, "--format", fmt]) == 0
    out = capsys.readouterr().out
    assert out.rstrip("\n") == render(expected(fake_connect, Q), fmt).rstrip("\n")


def test_parquet_to_stdout_binary(fake_connect, capsysbinary) -> None:
    assert main(["-c", Q, "-F", "parquet"]) == 0
    data = capsysbinary.readouterr().out
    table = pq.read_table(io.BytesIO(data))
    assert table.to_pandas()["pt_root_id"].tolist() == expected(fake_connect, Q)["pt_root_id"].tolist()


@pytest.mark.parametrize("ext", ["csv", "json", "jsonl", "parquet", "md", "tsv"])
def test_output_file_format_from_extension(fake_connect, tmp_path, capsys, ext: str) -> None:
    path = tmp_path / f"out.{ext}"
    assert main(["-c", Q, "-o", str(path)]) == 0
    assert capsys.readouterr().out == ""
    df = expected(fake_connect, Q)
    if ext == "parquet":
        assert pq.read_table(path).to_pandas()["pt_root_id"].tolist() == df["pt_root_id"].tolist()
    elif ext == "json":
        assert [r["pt_root_id"] for r in json.loads(path.read_text())] == df["pt_root_id"].tolist()
    else:
        assert str(df["pt_root_id"].iloc[-1]) in path.read_text()


def test_output_file_explicit_format_wins(fake_connect, tmp_path) -> None:
    path = tmp_path / "out.txt"
    assert main(["-c", Q, "-o", str(path), "--format", "csv"]) == 0
    assert path.read_text().startswith("id,pt_root_id\n")


def test_syntax_error_exit_1_with_caret(fake_connect, capsys) -> None:
    assert main(["-c", "SELECT id FORM nucleus_detection_v0"]) == 1
    err = capsys.readouterr().err
    assert "error[CQL" in err and "^" in err and "line 1" in err


def test_unknown_table_did_you_mean(fake_connect, capsys) -> None:
    assert main(["-c", "SELECT * FROM nucleus_detection"]) == 1
    err = capsys.readouterr().err
    assert "CQL011" in err and "did you mean 'nucleus_detection_v0'" in err
    caret = [ln for ln in err.splitlines() if ln.strip().startswith("|") and "^" in ln][0]
    assert caret.index("^") == err.splitlines()[3].index("nucleus_detection")


def test_usage_errors_exit_2(fake_connect, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--format", "xml", "-c", Q])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main(["--bogus"])
    assert e.value.code == 2
    assert main(["-c", Q, "--param", "novalue"]) == 2
    assert main(["--path", "x", "--datastack", "y", "-c", Q]) == 2
    assert main(["--server", "http://x", "-c", Q]) == 2
    assert main(["--version", "abc", "-c", Q]) == 2
    err = capsys.readouterr().err
    assert "--param takes NAME=VALUE" in err and "does not combine" in err and "--server needs" in err


def test_version_flag(capsys) -> None:
    import caveql

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"caveql {caveql.__version__}"


def test_version_number_is_passed(fake_connect) -> None:
    assert main(["-c", "SHOW TABLES", "--version", "343"]) == 0
    assert fake_connect[-1].settings.version == 343


def test_param_binds_list(fake_connect, capsys) -> None:
    q = "SELECT id FROM nucleus_detection_v0 WHERE id IN :ids"
    assert main(["-c", q, "-p", "ids=(1,3,5)", "-F", "csv"]) == 0
    assert capsys.readouterr().out == "id\n1\n3\n5\n"


def test_missing_param_is_error(fake_connect, capsys) -> None:
    assert main(["-c", "SELECT id FROM nucleus_detection_v0 WHERE id IN :ids"]) == 1
    assert "CQL016" in capsys.readouterr().err


def test_multiple_c_and_stop_at_first_error(fake_connect, capsys) -> None:
    assert main(["-c", "SHOW TABLES", "-c", "SELECT nope FROM cells", "-c", "SHOW TABLES"]) == 1
    cap = capsys.readouterr()
    assert cap.out.count("table_name") == 1 and "unknown column 'nope'" in cap.err


def test_backslash_command_in_c(fake_connect, capsys) -> None:
    assert main(["-c", "\\dt"]) == 0
    assert "nucleus_detection_v0" in capsys.readouterr().out


def test_stdin_when_piped(fake_connect, capsys, monkeypatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("SHOW TABLES;\nSELECT id FROM cells;"))
    assert main(["-F", "csv"]) == 0
    assert capsys.readouterr().out == "table_name\nnucleus_detection_v0\ncells\nid\n1\n2\n3\n"


def test_stdin_error_names_stdin(fake_connect, capsys, monkeypatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("SHOW TABLES;\n\nSELECT id FROM cels;"))
    assert main([]) == 1
    assert "<stdin>:3:16" in capsys.readouterr().err


def test_run_file_with_params(fake_connect, tmp_path, capsys) -> None:
    f = tmp_path / "q.cql"
    f.write_text("-- param: ids list[int] = (1, 2)\nSELECT id FROM nucleus_detection_v0 WHERE id IN :ids;\n")
    assert main(["run", str(f), "-F", "csv"]) == 0
    assert capsys.readouterr().out == "id\n1\n2\n"
    assert main(["run", str(f), "--param", "ids=7,8,9", "--format", "csv"]) == 0
    assert capsys.readouterr().out == "id\n7\n8\n9\n"
    assert main(["-f", str(f), "--format", "csv"]) == 0
    assert capsys.readouterr().out == "id\n1\n2\n"


def test_run_file_errors_point_at_file(fake_connect, tmp_path, capsys) -> None:
    f = tmp_path / "bad.cql"
    f.write_text("-- a comment\nSELECT id\n  FROM nucleus_detectoin_v0;\n")
    assert main(["run", str(f)]) == 1
    assert f"{f}:3:8" in capsys.readouterr().err
    g = tmp_path / "typed.cql"
    g.write_text("-- param: n int\nSELECT id FROM cells\n")
    assert main(["run", str(g), "--param", "n=x"]) == 1
    assert f"{g}:1:" in capsys.readouterr().err
    assert main(["run", str(tmp_path / "missing.cql")]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_explain(fake_connect, capsys) -> None:
    assert main(["explain", Q]) == 0
    assert capsys.readouterr().out == "remote: table nucleus_detection_v0\n"
    assert main(["explain", "--analyze", Q]) == 0
    assert "(analyze)" in capsys.readouterr().out
    assert main(["explain", "SELEC 1"]) == 1


def test_options_after_subcommand(fake_connect, tmp_path) -> None:
    f = tmp_path / "q.cql"
    f.write_text("SELECT id FROM cells")
    out = tmp_path / "o.jsonl"
    assert main(["run", str(f), "-o", str(out), "--version", "7"]) == 0
    assert out.read_text().count("\n") == 3
    assert fake_connect[-1].settings.version == 7


def test_help_everywhere(capsys) -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name in [None, *sub.choices]:
        with pytest.raises(SystemExit) as e:
            main(([name] if name else []) + ["--help"])
        assert e.value.code == 0
        assert "usage: caveql" in capsys.readouterr().out
    for action in parser._actions:
        if action.help and action.dest not in ("command", "help"):
            assert action.help.endswith("."), action.dest


def test_timing_goes_to_stderr_not_stdout(fake_connect, capsys) -> None:
    assert main(["-c", "\\timing on", "-c", "SELECT id FROM cells", "-F", "csv"]) == 0
    cap = capsys.readouterr()
    assert cap.out == "id\n1\n2\n3\n" and "Time:" in cap.err
