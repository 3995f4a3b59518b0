"""``caveql fmt FILE... [--check] [--diff]``: the CQL code formatter (like black / ruff format).

Rewrites each file in its canonical form (:func:`caveql.syntax.format_cql`), keeping comments.
``-`` reads stdin and writes stdout. With ``--check`` nothing is written: files that would
change are listed and the exit code is 1. ``--diff`` prints a unified diff instead of writing.
A file that does not parse is reported with the rendered error (file:line:column and a caret),
left untouched, and makes the exit code 1. A file that starts with a byte-order mark (as Windows
editors save) is formatted after it and keeps it.

>>> import argparse
>>> p = argparse.ArgumentParser(prog="caveql"); sub = p.add_subparsers()
>>> add_parser(sub)
>>> p.parse_args(["fmt", "a.cql", "--check"]).check
True
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path
from typing import Any, TextIO

from caveql.errors import CaveqlError

__all__ = ["add_parser", "format_files"]


def add_parser(sub: Any) -> None:
    """Register the ``fmt`` subcommand on an argparse subparsers object."""
    p = sub.add_parser(
        "fmt", help="format .cql files canonically.",
        description="Format CQL files canonically (upper-case keywords, a line per clause for long "
                    "statements, comments kept). Exit 1 when --check finds a file to reformat or a "
                    "file does not parse.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="files to format; - for stdin to stdout.")
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file would change.")
    p.add_argument("--diff", action="store_true", help="print a unified diff instead of writing.")
    p.set_defaults(handler=_cmd_fmt)


def _cmd_fmt(args: argparse.Namespace) -> int:
    return format_files(args.files, check=args.check, diff=args.diff)


#: The Unicode byte-order mark, as a UTF-8 file's first character.
BOM = "\ufeff"


def format_files(files: list[str], *, check: bool = False, diff: bool = False,
                 stdin: TextIO | None = None, stdout: TextIO | None = None,
                 stderr: TextIO | None = None) -> int:
    """Format ``files``; returns the exit code (0 all fine, 1 something to report).

    >>> import io, tempfile
    >>> f = Path(tempfile.mkdtemp()) / "q.cql"
    >>> _ = f.write_text("select 1 from t")
    >>> format_files([str(f)], check=True, stdout=io.StringIO(), stderr=io.StringIO())
    1
    >>> format_files([str(f)], stdout=io.StringIO(), stderr=io.StringIO()), f.read_text()
    (0, 'SELECT 1 FROM t;\\n')
    """
    from caveql.syntax.printer import format_cql

    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    changed = unchanged = failed = 0
    for name in files:
        try:
            source = stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            print(f"caveql fmt: cannot read {name}: {exc}", file=stderr)
            failed += 1
            continue
        # a byte-order mark (Windows editors save one) is not CQL: format what follows it, and
        # give a file its mark back (stdout gets none)
        bom = BOM if source.startswith(BOM) else ""
        source = source[len(bom):]
        try:
            result = format_cql(source)
        except CaveqlError as exc:
            exc.with_source(source, "<stdin>" if name == "-" else name)
            print(exc.render(), file=stderr)
            failed += 1
            continue
        if name == "-" and not (check or diff):
            stdout.write(result)
            continue
        if result == source:
            unchanged += 1
            continue
        changed += 1
        if diff:
            stdout.writelines(difflib.unified_diff(
                source.splitlines(keepends=True), result.splitlines(keepends=True),
                fromfile=f"{name} (original)", tofile=f"{name} (formatted)"))
        if check:
            print(f"would reformat {name}", file=stdout)
        elif not diff:
            Path(name).write_text(bom + result, encoding="utf-8")
            print(f"reformatted {name}", file=stderr)
    verb = "would be reformatted" if (check or diff) else "reformatted"
    summary = [f"{changed} file{'s' * (changed != 1)} {verb}", f"{unchanged} unchanged"]
    if failed:
        summary.append(f"{failed} failed")
    print(", ".join(summary), file=stderr)
    return 1 if failed or (changed and (check or diff)) else 0
