"""The wheel, installed into a fresh venv, runs: `caveql --version`, parse and format a query.

The venv has no system site-packages and gets caveql's runtime dependencies from the wheel's
own metadata (pip reuses its cache), so a missing dependency or an unshipped file (the grammar
is package data) fails here rather than on a user's machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import caveql

ROOT = Path(__file__).resolve().parents[1]


def _run(*cmd: str | Path, cwd: Path, timeout: int = 900) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    out = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True,
                         timeout=timeout)
    assert out.returncode == 0, f"{cmd} failed:\n{out.stdout}\n{out.stderr}"
    return out.stdout


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_wheel_installs_and_runs_in_a_fresh_venv(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, ROOT, cwd=tmp_path)
    (wheel,) = dist.glob("caveql-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "caveql/grammar/caveql.lark" in names
    assert "caveql/repl/cli.py" in names and "caveql/syntax/parser.py" in names
    assert not any(n.startswith(("tests/", "grammar/", "repl/")) for n in names)
    assert "caveql/data/emannotationschemas.json" in names  # what `caveql serve` answers schema calls with

    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    py, cli = venv / "bin" / "python", venv / "bin" / "caveql"
    _run(py, "-m", "pip", "install", "-q", wheel, cwd=tmp_path)

    assert _run(cli, "--version", cwd=tmp_path).strip() == f"caveql {caveql.__version__}"
    code = (
        "import caveql, sys\n"
        "assert 'site-packages' in caveql.__file__, caveql.__file__\n"
        "s = caveql.parse(\"select pt_root_id from nucleus_detection_v0 where id in (1, 2) at resolution 1,1,1\")\n"
        "print(type(s.statements[0]).__name__)\n"
        "sys.stdout.write(caveql.format_cql('select cell_type,count(*) n from cells group by cell_type'))\n"
    )
    out = _run(py, "-c", code, cwd=tmp_path)
    assert out == "Select\nSELECT cell_type, COUNT(*) AS n FROM cells GROUP BY cell_type;\n"
    (tmp_path / "q.cql").write_text("show   tables")
    _run(cli, "fmt", "q.cql", cwd=tmp_path)
    assert (tmp_path / "q.cql").read_text() == "SHOW TABLES;\n"
