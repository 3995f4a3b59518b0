"""``caveql serve`` and ``caveql cache`` on the command line: options and handlers, importing nothing heavy.

The REPL's CLI (repl/cli.py) registers these on its ``serve`` and ``cache``
subparsers; ``python -m caveql.server.cli serve ...`` is the same command on its own.

>>> import argparse
>>> p = argparse.ArgumentParser()
>>> add_serve_arguments(p)
>>> a = p.parse_args(["--port", "9000", "--row-cap", "1000", "--max-body", "1MiB",
...                   "--allow-host", "lab.example.org"])
>>> (a.host, a.port, a.row_cap, a.max_body, a.timeout, a.allow_host, a.allow_origin)
('127.0.0.1', 9000, 1000, 1048576, None, ['lab.example.org'], [])
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["add_cache_arguments", "add_serve_arguments", "main", "run_cache", "run_serve"]


def _positive(text: str) -> int:
    try:
        value = int(text.replace("_", "").replace(",", ""))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from exc
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def _size(text: str) -> int:
    from caveql.errors import ConfigError
    from caveql.server.guard import parse_size

    try:
        return parse_size(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(exc.message) from exc


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from exc
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds: {text!r}")
    return value


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``caveql serve``."""
    parser.add_argument("--path", metavar="DIR", default=argparse.SUPPRESS,
                        help="local datastack folder to serve (default: the demo, built if missing)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1; other addresses need --token)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    parser.add_argument("--row-cap", metavar="N", type=_positive, default=200_000,
                        help="rows per query call, like the service's QUERY_LIMIT_SIZE (default 200,000)")
    parser.add_argument("--no-row-cap", action="store_true", help="answer every call in full")
    parser.add_argument("--token", metavar="T", default=argparse.SUPPRESS,
                        help="require this token (Authorization: Bearer or the middle_auth_token cookie)")
    parser.add_argument("--honor-notin", action="store_true",
                        help="apply filter_notin_dict (the real service ignores it; by default so do we)")
    # limits: None leaves caveql.server.guard.Limits' default (the one the help states)
    parser.add_argument("--max-body", metavar="SIZE", type=_size, default=None,
                        help="largest request body, e.g. 8MB, 512KiB, 1048576 (default 8MB); larger: 413")
    parser.add_argument("--timeout", metavar="S", type=_seconds, default=None,
                        help="seconds a client has to send a request's headers, and then its body "
                             "(default 30)")
    parser.add_argument("--max-connections", metavar="N", type=_positive, default=None,
                        help="connections served at once; a request beyond them gets 503 (default 100)")
    parser.add_argument("--allow-host", metavar="NAME", action="append", default=[],
                        help="also answer requests whose Host is NAME (repeatable; always: the bound "
                             "address, localhost, 127.0.0.1, [::1])")
    parser.add_argument("--allow-origin", metavar="ORIGIN", action="append", default=[],
                        help="let web pages from ORIGIN (e.g. https://lab.example.org) read answers "
                             "(CORS; repeatable; default none)")


def run_serve(args: argparse.Namespace) -> int:
    """Serve until interrupted; returns the exit code."""
    from caveql.errors import CaveqlError
    from caveql.server.guard import Limits
    from caveql.server.run import ListenError, serve

    try:
        given = {"max_body": getattr(args, "max_body", None), "timeout": getattr(args, "timeout", None),
                 "max_connections": getattr(args, "max_connections", None)}
        limits = Limits(**{k: v for k, v in given.items() if v is not None},
                        allow_hosts=tuple(getattr(args, "allow_host", ())),
                        allow_origins=tuple(getattr(args, "allow_origin", ())))
        serve(getattr(args, "path", None), host=args.host, port=args.port,
              row_cap=None if args.no_row_cap else args.row_cap, token=getattr(args, "token", None),
              honor_notin=args.honor_notin, limits=limits)
    except ListenError as err:  # a usage error, like argparse's: exit 2
        print(f"caveql serve: {err.message}", file=sys.stderr)
        return 2
    except CaveqlError as err:
        print(err.render(), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


def add_cache_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``caveql cache``."""
    parser.add_argument("action", nargs="?", choices=("info", "clear"), default="info",
                        help="info: where the cache is and how big (default); clear: empty it")
    parser.add_argument("--dir", metavar="DIR", default=None,
                        help="cache folder (default: $CAVEQL_CACHE_DIR, else the user cache dir)")


def run_cache(args: argparse.Namespace) -> int:
    """``caveql cache [info|clear]``.

    >>> import tempfile
    >>> run_cache(argparse.Namespace(action="clear", dir=tempfile.mkdtemp()))  # doctest: +ELLIPSIS
    removed 0 cached answers from ...
    0
    """
    from caveql.cache import ResultCache

    cache = ResultCache(args.dir)
    if args.action == "clear":
        n = cache.clear()
        print(f"removed {n} cached answer{'s' if n != 1 else ''} from {cache.directory}")
        return 0
    entries = cache.entries()
    print(f"{cache.directory}: {len(entries)} cached answer{'s' if len(entries) != 1 else ''}, "
          f"{cache.size() / 1e6:,.1f} MB (limit {cache.max_bytes / 1e9:,.1f} GB)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m caveql.server.cli {serve,cache} ...``."""
    parser = argparse.ArgumentParser(prog="caveql")
    sub = parser.add_subparsers(dest="command", required=True)
    add_serve_arguments(sub.add_parser("serve", help="serve a local datastack as a CAVE service"))
    add_cache_arguments(sub.add_parser("cache", help="the disk cache of versioned answers"))
    args = parser.parse_args(argv)
    return run_serve(args) if args.command == "serve" else run_cache(args)


if __name__ == "__main__":
    sys.exit(main())
