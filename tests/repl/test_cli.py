"""The `caveql` command: every flag, format and exit code (in-process through main())."""

from __future__ import annotations

import io
import json
import sys

import pyarrow.parquet as pq
import pytest

from caveql.backends.local import LocalBackend
from caveql.repl.cli import build_parser, main
from caveql.repl.formatting import render

Q = "SELECT id, pt_root_id, pt_position FROM cells ORDER BY id LIMIT 5"


def test_c_prints_a_table(tiny, expected, capsys) -> None:
    assert main(["--path", tiny, "-c", Q]) == 0
    assert capsys.readouterr().out == render(expected(Q), "table", max_width=120) + "\n"


@pytest.mark.parametrize("fmt", ["csv", "tsv", "json", "jsonl", "markdown", "vertical"])
def test_format_flag(tiny, expected, capsys, fmt: str) -> None:
    assert main(["--path", tiny, "-c", Q, "--format", fmt]) == 0
    out = capsys.readouterr().out
    assert out.rstrip("\n") == render(expected(Q), fmt).rstrip("\n")


def test_parquet_to_stdout_binary(tiny, expected, capsysbinary) -> None:
    assert main(["--path", tiny, "-c", Q, "-F", "parquet"]) == 0
    table = pq.read_table(io.BytesIO(capsysbinary.readouterr().out))
    assert table.to_pandas()["pt_root_id"].tolist() == expected(Q)["pt_root_id"].tolist()


@pytest.mark.parametrize("ext", ["csv", "json", "jsonl", "parquet", "md", "tsv"])
def test_output_file_format_from_extension(tiny, expected, tmp_path, capsys, ext: str) -> None:
    path = tmp_path / f"out.{ext}"
    assert main(["--path", tiny, "-c", Q, "-o", str(path)]) == 0
    assert capsys.readouterr().out == ""
    df = expected(Q)
    if ext == "parquet":
        assert pq.read_table(path).to_pandas()["pt_root_id"].tolist() == df["pt_root_id"].tolist()
    elif ext == "json":
        assert [r["pt_root_id"] for r in json.loads(path.read_text())] == df["pt_root_id"].tolist()
    else:
        assert path.read_text().rstrip("\n") == render(df, {"md": "markdown"}.get(ext, ext)).rstrip("\n")


def test_output_file_explicit_format_wins(tiny, tmp_path) -> None:
    path = tmp_path / "out.txt"
    assert main(["--path", tiny, "-c", Q, "-o", str(path), "--format", "csv"]) == 0
    assert path.read_text().startswith("id,pt_root_id,pt_position\n")


def test_syntax_error_exit_1_with_caret(tiny, capsys) -> None:
    assert main(["--path", tiny, "-c", "SELECT id FORM cells"]) == 1
    err = capsys.readouterr().err
    assert "error[CQL001]" in err and "^" in err and "did you mean FROM" in err


def test_unknown_table_did_you_mean_and_caret_under_it(tiny, capsys) -> None:
    assert main(["--path", tiny, "-c", "SELECT * FROM cels"]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("error[CQL011]") and "did you mean 'cells'" in lines[-1]
    src = next(ln for ln in lines if "SELECT * FROM cels" in ln)
    caret = next(ln for ln in lines if "^" in ln)
    assert caret.index("^") == src.index("cels") and caret.count("^") == 4


def test_usage_errors_exit_2(tiny, capsys) -> None:
    for argv in (["--format", "xml", "-c", Q], ["--bogus"], ["run"]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2
    assert main(["--path", tiny, "-c", Q, "--param", "novalue"]) == 2
    assert main(["--path", "x", "--datastack", "y", "-c", Q]) == 2
    assert main(["--server", "http://x", "-c", Q]) == 2
    assert main(["--version", "abc", "-c", Q]) == 2
    err = capsys.readouterr().err
    assert "--param takes NAME=VALUE" in err and "does not combine" in err and "--server needs" in err


def test_missing_datastack_folder_is_exit_1(tmp_path, capsys) -> None:
    assert main(["--path", str(tmp_path / "nope"), "-c", "SHOW TABLES"]) == 1
    assert "CQL044" in capsys.readouterr().err


def test_version_flag(capsys) -> None:
    import caveql

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"caveql {caveql.__version__}"


def test_version_number_is_used(tiny, capsys) -> None:
    assert main(["--path", tiny, "--version", "1", "-c", "SHOW TABLES", "-F", "csv"]) == 0
    assert "cell_types" not in capsys.readouterr().out  # added at version 2
    assert main(["--path", tiny, "-c", "SHOW TABLES", "-F", "csv"]) == 0
    assert "cell_types" in capsys.readouterr().out


def test_param_binds_list(tiny, capsys) -> None:
    q = "SELECT id FROM cells WHERE id IN :ids"
    assert main(["--path", tiny, "-c", q, "-p", "ids=(1,3,5)", "-F", "csv"]) == 0
    assert capsys.readouterr().out == "id\n1\n3\n5\n"
    assert main(["--path", tiny, "-c", "SELECT id FROM cells WHERE cell_type = :t", "-p", "t=BC", "-F", "csv"]) == 0
    assert capsys.readouterr().out == "id\n2\n5\n"


def test_missing_param_is_error(tiny, capsys) -> None:
    assert main(["--path", tiny, "-c", "SELECT id FROM cells WHERE id IN :ids"]) == 1
    assert "CQL016" in capsys.readouterr().err


def test_multiple_c_and_stop_at_first_error(tiny, capsys) -> None:
    assert main(["--path", tiny, "-c", "SHOW TABLES", "-c", "SELECT nope FROM cells", "-c", "SHOW TABLES"]) == 1
    cap = capsys.readouterr()
    assert cap.out.count("table_name") == 1 and "unknown column 'nope'" in cap.err


def test_backslash_command_in_c(tiny, capsys) -> None:
    assert main(["--path", tiny, "-c", "\\dt"]) == 0
    assert "synapses" in capsys.readouterr().out


def test_stdin_when_piped(tiny, capsys, monkeypatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("SHOW TABLES;\nSELECT id FROM cells WHERE id < 3;"))
    assert main(["--path", tiny, "-F", "csv"]) == 0
    assert capsys.readouterr().out == "table_name\ncell_types\ncells\nnuclei\nsynapses\nid\n1\n2\n"


def test_stdin_error_names_stdin(tiny, capsys, monkeypatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("SHOW TABLES;\n\nSELECT id FROM cels;"))
    assert main(["--path", tiny]) == 1
    assert "<stdin>:3:16" in capsys.readouterr().err


def test_run_file_with_params(tiny, tmp_path, capsys) -> None:
    f = tmp_path / "q.cql"
    f.write_text("-- param: ids list[int] = (1, 2)\nSELECT id FROM cells WHERE id IN :ids;\n")
    assert main(["run", str(f), "--path", tiny, "-F", "csv"]) == 0
    assert capsys.readouterr().out == "id\n1\n2\n"
    assert main(["run", str(f), "--path", tiny, "--param", "ids=4,5,6", "--format", "csv"]) == 0
    assert capsys.readouterr().out == "id\n4\n5\n6\n"
    assert main(["--path", tiny, "-f", str(f), "--format", "csv"]) == 0
    assert capsys.readouterr().out == "id\n1\n2\n"


def test_run_file_errors_point_at_file(tiny, tmp_path, capsys) -> None:
    f = tmp_path / "bad.cql"
    f.write_text("-- a comment\nSELECT id\n  FROM cellz;\n")
    assert main(["run", str(f), "--path", tiny]) == 1
    assert f"{f}:3:8" in capsys.readouterr().err
    g = tmp_path / "typed.cql"
    g.write_text("-- param: n int\nSELECT id FROM cells\n")
    assert main(["run", str(g), "--path", tiny, "--param", "n=x"]) == 1
    assert f"{g}:1:" in capsys.readouterr().err
    assert main(["run", str(tmp_path / "missing.cql"), "--path", tiny]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_explain(tiny, opener, capsys) -> None:
    assert main(["explain", Q, "--path", tiny]) == 0
    with opener() as db:
        assert capsys.readouterr().out == db.explain(Q) + "\n"
    assert main(["explain", "--analyze", Q, "--path", tiny]) == 0
    assert "rows" in capsys.readouterr().out
    assert main(["explain", "SELEC 1", "--path", tiny]) == 1


def test_describe_prints_metadata_and_columns(tiny, capsys) -> None:
    assert main(["--path", tiny, "-c", "DESCRIBE cell_types"]) == 0
    out = capsys.readouterr().out
    assert "reference table: nuclei" in out and "cell_type" in out and "id_ref" in out


def test_timing_goes_to_stderr_not_stdout(tiny, capsys) -> None:
    assert main(["--path", tiny, "-c", "\\timing on", "-c", "SELECT id FROM cells WHERE id = 1", "-F", "csv"]) == 0
    cap = capsys.readouterr()
    assert cap.out == "id\n1\n" and "Time:" in cap.err


def test_set_messages_go_to_stderr(tiny, capsys) -> None:
    assert main(["--path", tiny, "-c", "SET version = 1; SELECT COUNT(*) AS n FROM cells", "-F", "csv"]) == 0
    cap = capsys.readouterr()
    assert cap.out == "n\n6\n" and "version = 1" in cap.err


def test_help_everywhere(capsys) -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name in [None, *sub.choices]:
        with pytest.raises(SystemExit) as e:
            main(([name] if name else []) + ["--help"])
        assert e.value.code == 0
        assert "usage: caveql" in capsys.readouterr().out
    for p in [parser, *(sub.choices[n] for n in ("run", "explain", "repl"))]:  # ours (H5)
        for action in p._actions:
            if action.help and action.dest not in ("command", "help"):
                assert action.help.endswith("."), (p.prog, action.dest)


def test_ctrl_c_exit_130(tiny, monkeypatch, capsys) -> None:
    def interrupted(self, request):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    monkeypatch.setattr(LocalBackend, "query", interrupted)
    assert main(["--path", tiny, "-c", "SELECT id FROM cells"]) == 130
    assert "interrupted" in capsys.readouterr().err


def test_config_file_sets_defaults(tiny, tmp_path, monkeypatch, capsys) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[repl]\nformat = "csv"\n[connection]\npath = "{tiny}"\nversion = 1\n')
    monkeypatch.setenv("CAVEQL_CONFIG", str(cfg))
    assert main(["-c", "SELECT COUNT(*) AS n FROM cells"]) == 0  # path, version and format from the file
    assert capsys.readouterr().out == "n\n6\n"
    assert main(["-c", "SHOW TABLES"]) == 0
    assert "cell_types" not in capsys.readouterr().out  # version 1
    assert main(["-c", "SELECT id FROM cells WHERE id = 2", "-F", "json"]) == 0  # flags win
    assert capsys.readouterr().out == '[{"id":2}]\n'


def test_bad_config_file_is_a_usage_error(tmp_path, monkeypatch, capsys) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('[repl]\nformat = "jsn"\n')
    monkeypatch.setenv("CAVEQL_CONFIG", str(cfg))
    assert main(["-c", "SHOW TABLES"]) == 2
    err = capsys.readouterr().err
    assert "unknown format 'jsn'" in err and "did you mean 'json'" in err


def test_history_named_after_the_datastack(tiny) -> None:
    from caveql.repl.cli import _session

    assert _session(build_parser().parse_args(["--path", tiny])).history_name == "tiny0"
    assert _session(build_parser().parse_args(["-d", "minnie65_public"])).history_name == "minnie65_public"
    assert _session(build_parser().parse_args([])).history_name == "minnie65_demo"


def test_unwritable_output_is_an_error_not_a_traceback(tiny, tmp_path, capsys) -> None:
    assert main(["--path", tiny, "-c", Q, "-o", str(tmp_path / "no" / "such" / "dir.csv")]) == 1
    err = capsys.readouterr().err
    assert "cannot write" in err and "Traceback" not in err
    assert main(["--path", tiny, "-c", "SELECT id, id FROM cells", "-o", str(tmp_path / "x.parquet")]) == 1
    assert "cannot write this result as Parquet" in capsys.readouterr().err


def test_color_only_on_a_terminal_and_not_with_no_color(tiny, capsys, monkeypatch) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert main(["--path", tiny, "-c", "SELECT nope FROM cells"]) == 1
    assert "\x1b[" in capsys.readouterr().err
    assert main(["--path", tiny, "-c", "SELECT nope FROM cells", "--no-color"]) == 1
    assert "\x1b[" not in capsys.readouterr().err
    monkeypatch.setenv("NO_COLOR", "1")
    assert main(["--path", tiny, "-c", "SELECT nope FROM cells"]) == 1
    assert "\x1b[" not in capsys.readouterr().err


def test_datastack_server_token_reach_the_http_backend(monkeypatch, capsys) -> None:
    import caveql.api as api
    from caveql.errors import TransportError

    seen = {}

    def fake_http(datastack, server, token, cache):  # type: ignore[no-untyped-def]
        seen.update(datastack=datastack, server=server, token=token, cache=cache)
        raise TransportError(f"cannot reach {server}")

    monkeypatch.setattr(api, "_http_backend", fake_http)
    assert main(["-d", "minnie65_public", "--server", "http://127.0.0.1:9", "--token", "T", "-c", "SHOW TABLES"]) == 1
    assert seen == {"datastack": "minnie65_public", "server": "http://127.0.0.1:9", "token": "T", "cache": True}
    assert "CQL041" in capsys.readouterr().err
    assert main(["-d", "minnie65_public", "--server", "http://127.0.0.1:9", "--no-cache", "-c", "SHOW TABLES"]) == 1
    assert seen["cache"] is False


def test_stdin_script_with_backslash_commands(tiny, capsys, monkeypatch) -> None:
    script = "\\T csv\nSELECT id FROM cells\n  WHERE id = 2;\n\\T jsonl\nSELECT id FROM cells WHERE id = 3;\n" \
             "SELECT id\n  FROM cels;\n"
    monkeypatch.setattr(sys, "stdin", io.StringIO(script))
    assert main(["--path", tiny]) == 1
    cap = capsys.readouterr()
    assert cap.out == 'id\n2\n{"id":3}\n'
    assert "<stdin>:7:8" in cap.err and "7 |   FROM cels;" in cap.err


def test_python_dash_m_caveql(tiny) -> None:
    import subprocess

    out = subprocess.run([sys.executable, "-m", "caveql", "--path", tiny, "-c", "SELECT id FROM cells WHERE id = 4",
                          "-F", "csv"], capture_output=True, text=True, env={**__import__("os").environ,
                                                                            "CAVEQL_CONFIG": "/nonexistent"})
    assert (out.returncode, out.stdout) == (0, "id\n4\n"), out.stderr


# -- files saved with a byte-order mark (Windows editors), issue 16 --------------------------------
BOM = "\ufeff"


def test_run_a_file_that_starts_with_a_byte_order_mark(tiny, tmp_path, capsys) -> None:
    f = tmp_path / "bom.cql"
    f.write_bytes(b"\xef\xbb\xbf-- param: ids list[int] = (1, 2)\nSELECT id FROM cells WHERE id IN :ids;\n")
    assert main(["run", str(f), "--path", tiny, "-F", "csv"]) == 0
    assert capsys.readouterr().out == "id\n1\n2\n"  # the header's parameter was read too
    assert main(["--path", tiny, "-f", str(f), "--format", "csv", "--param", "ids=3"]) == 0
    assert capsys.readouterr().out == "id\n3\n"
    g = tmp_path / "bad.cql"
    g.write_bytes(b"\xef\xbb\xbfSELECT id\n  FROM cellz;\n")
    assert main(["run", str(g), "--path", tiny]) == 1
    assert f"{g}:2:8" in capsys.readouterr().err  # lines and columns as the editor shows them


def test_piped_stdin_that_starts_with_a_byte_order_mark(tiny, capsys, monkeypatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(BOM + "SELECT id FROM cells WHERE id < 3;"))
    assert main(["--path", tiny, "-F", "csv"]) == 0
    assert capsys.readouterr().out == "id\n1\n2\n"
    monkeypatch.setattr(sys, "stdin", io.StringIO(BOM + "\\T csv\nSELECT id FROM cells WHERE id = 2;"))
    assert main(["--path", tiny]) == 0  # a backslash command on the first line is still one
    assert capsys.readouterr().out == "id\n2\n"


def test_ctrl_c_stops_a_long_script_at_the_next_statement(tiny, tmp_path) -> None:
    """`caveql run` on a 5,000-statement file prints results as they come, and Ctrl-C (SIGINT)
    ends it within a second or two with exit code 130."""
    import os
    import select
    import signal
    import subprocess
    import time

    f = tmp_path / "long.cql"
    f.write_text("SELECT id FROM cells WHERE id = 1;\n" * 5_000)
    env = {**os.environ, "CAVEQL_CONFIG": str(tmp_path / "none.toml")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "caveql.repl.cli", "run", str(f), "--path", tiny, "-F", "csv"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        assert ready, "no result within a minute"
        assert proc.stdout.readline() == "id\n"  # type: ignore[union-attr]
        time.sleep(0.5)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        took = time.monotonic() - t0
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 130 and "interrupted" in err, err
    assert took < 3.0, took
    assert 1 <= out.count("id\n") < 5_000 - 1
