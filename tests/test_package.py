"""The package's public surface and console script."""

from __future__ import annotations

import subprocess
import sys

import caveql


def test_all_is_sorted_and_complete() -> None:
    public = {n for n in vars(caveql) if not n.startswith("_")} - {"annotations"}
    modules = {n for n in public if type(getattr(caveql, n)).__name__ == "module"}
    assert set(caveql.__all__) - {"__version__"} == public - modules


def test_console_script_version() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "caveql.repl.cli", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"caveql {caveql.__version__}"
