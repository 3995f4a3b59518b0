"""The ``caveql`` command line: REPL, one-shot queries, files, and the tools.

Each subcommand lives in its own function and imports what it needs lazily so
that ``caveql --help`` and ``caveql -c`` start fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from caveql._version import __version__


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``caveql`` command.

    >>> build_parser().prog
    'caveql'
    """
    parser = argparse.ArgumentParser(
        prog="caveql",
        description="CQL, a SQL-flavoured query language for CAVE connectomes.",
    )
    parser.add_argument("--version", action="version", version=f"caveql {__version__}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``caveql`` console script; returns the exit code."""
    parser = build_parser()
    parser.parse_args(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
