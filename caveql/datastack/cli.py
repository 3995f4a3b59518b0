"""``caveql demo`` on the command line: options and handler, importing nothing heavy.

The REPL's CLI registers :func:`add_demo_arguments` on its ``demo`` subparser and calls
:func:`run_demo`; ``python -m caveql.datastack.cli`` is the same command on its own.

>>> import argparse
>>> p = argparse.ArgumentParser()
>>> add_demo_arguments(p)
>>> p.parse_args(["--synapses", "2e7"]).synapses
20000000
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from caveql.datastack.demo_meta import DEFAULT_SYNAPSES  # constants only: light

__all__ = ["DEFAULT_SYNAPSES", "add_demo_arguments", "main", "run_demo"]


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``caveql demo``."""
    parser.add_argument("--path", metavar="DIR", default=argparse.SUPPRESS,
                        help="where to build (default: the user cache dir, or $CAVEQL_DEMO_PATH)")
    parser.add_argument("--synapses", metavar="N", type=_count, default=DEFAULT_SYNAPSES,
                        help=f"number of synapses (default {DEFAULT_SYNAPSES:,}; 1e8 and more work)")
    parser.add_argument("--seed", metavar="S", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")


def _count(text: str) -> int:
    try:
        value = float(text.replace("_", "").replace(",", ""))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from exc
    if not value.is_integer() or value < 2_000:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 2000: {text!r}")
    return int(value)


def run_demo(args: argparse.Namespace) -> int:
    """Handle ``caveql demo``: build (or find) the demo, print its folder; returns the exit code."""
    from caveql.datastack.demo import build_demo
    from caveql.errors import CaveqlError

    try:
        root = build_demo(getattr(args, "path", None), synapses=args.synapses, seed=args.seed,
                          force=args.force)
    except CaveqlError as err:
        print(err.render(), file=sys.stderr)
        return 1
    except OSError as err:
        print(f"error: cannot build the demo: {err}", file=sys.stderr)
        return 1
    print(root)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m caveql.datastack.cli`` (the same as ``caveql demo``)."""
    parser = argparse.ArgumentParser(prog="caveql demo",
                                     description="Build the synthetic minnie65_demo datastack.")
    add_demo_arguments(parser)
    return run_demo(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
