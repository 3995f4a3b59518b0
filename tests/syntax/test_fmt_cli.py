"""`caveql fmt FILE... [--check] [--diff]` through the real command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def _caveql(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "caveql.repl.cli", *args], input=stdin,
                          capture_output=True, text=True, timeout=120)


def test_fmt_check_rewrite_and_diff(tmp_path: Path) -> None:
    ugly = tmp_path / "ugly.cql"
    ugly.write_text("-- cells\nselect cell_type,count(*) n from cells group by cell_type;\n")
    good = tmp_path / "good.cql"
    good.write_text("SHOW TABLES;\n")

    out = _caveql("fmt", "--check", str(ugly), str(good))
    assert out.returncode == 1
    assert f"would reformat {ugly}" in out.stdout and str(good) not in out.stdout
    assert "1 file would be reformatted, 1 unchanged" in out.stderr
    assert ugly.read_text().startswith("-- cells\nselect")  # --check writes nothing

    out = _caveql("fmt", "--diff", str(ugly))
    assert out.returncode == 1 and "+SELECT cell_type, COUNT(*) AS n FROM cells GROUP BY cell_type;" in out.stdout

    out = _caveql("fmt", str(ugly), str(good))
    assert out.returncode == 0
    assert ugly.read_text() == "-- cells\nSELECT cell_type, COUNT(*) AS n FROM cells GROUP BY cell_type;\n"
    assert _caveql("fmt", "--check", str(ugly), str(good)).returncode == 0


def test_fmt_reports_syntax_errors_with_file_and_caret(tmp_path: Path) -> None:
    bad = tmp_path / "bad.cql"
    bad.write_text("SELECT *\nFORM cells;\n")
    out = _caveql("fmt", str(bad))
    assert out.returncode == 1
    assert f"--> {bad}:2:1" in out.stderr and "did you mean FROM?" in out.stderr
    assert bad.read_text() == "SELECT *\nFORM cells;\n"


def test_fmt_stdin_to_stdout() -> None:
    out = _caveql("fmt", "-", stdin="show   tables like 'syn%'")
    assert out.returncode == 0
    assert out.stdout == "SHOW TABLES LIKE 'syn%';\n"


def test_fmt_missing_file(tmp_path: Path) -> None:
    out = _caveql("fmt", str(tmp_path / "nope.cql"))
    assert out.returncode == 1 and "cannot read" in out.stderr


def test_fmt_a_file_with_a_byte_order_mark_keeps_it(tmp_path: Path) -> None:
    f = tmp_path / "bom.cql"
    f.write_bytes(b"\xef\xbb\xbf-- cells\nselect   id from cells;\n")
    out = _caveql("fmt", str(f))
    assert out.returncode == 0, out.stderr
    assert f.read_bytes() == b"\xef\xbb\xbf-- cells\nSELECT id FROM cells;\n"
    assert _caveql("fmt", "--check", str(f)).returncode == 0  # canonical now, mark and all
    bad = tmp_path / "bad.cql"
    bad.write_bytes(b"\xef\xbb\xbfSELECT *\nFORM cells;\n")
    out = _caveql("fmt", str(bad))
    assert out.returncode == 1 and f"--> {bad}:2:1" in out.stderr


def test_fmt_stdin_with_a_byte_order_mark() -> None:
    out = _caveql("fmt", "-", stdin="\ufeffshow   tables")
    assert out.returncode == 0, out.stderr
    assert out.stdout == "SHOW TABLES;\n"
