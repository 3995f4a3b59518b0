"""The ``caveql`` command line: REPL, one-shot queries, files, and the tools.

::

    caveql                              REPL (when stdin is a terminal)
    caveql -c "SELECT ..."              run CQL (repeatable), print the results
    caveql -f file.cql --param k=v      run a file (same as `caveql run`)
    echo "SHOW TABLES" | caveql         run what stdin holds when it is piped
    caveql run file.cql --param k=v     run a .cql file, binding its declared parameters
    caveql explain "SELECT ..."         print the plan (remote requests, then local steps)

Connection options (``--datastack``, ``--server``, ``--path``, ``--version``)
and output options (``--format``, ``-o``) work before or after a subcommand.
Exit codes: 0 ok, 1 a statement failed (error with a caret on stderr), 2 usage.

Each subcommand is one ``add_parser`` plus one handler that imports what it
needs lazily, so ``caveql --help`` and ``caveql -c`` start fast. To add one:
write ``_cmd_<name>(args) -> int`` and register it in :func:`_add_subcommands`.

>>> build_parser().prog
'caveql'
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from caveql._version import __version__

FORMAT_NAMES = ("table", "vertical", "csv", "tsv", "json", "jsonl", "markdown", "parquet", "neuroglancer")
_VERSION_FLAG = object()


class _Parser(argparse.ArgumentParser):
    """argparse with our usage-error exit code (2) and message prefix."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(2, f"caveql: error: {message}\n")


def _add_common(p: argparse.ArgumentParser, *, top: bool) -> None:
    """Connection and output options; subparsers take them too (without overriding the top's)."""
    d: Any = None if top else argparse.SUPPRESS
    conn = p.add_argument_group("connection")
    conn.add_argument("--datastack", "-d", metavar="NAME", default=d,
                      help="datastack name (default: the demo datastack).")
    conn.add_argument("--server", metavar="URL", default=d,
                      help="CAVE-compatible server (default: the global CAVE deployment).")
    conn.add_argument("--path", metavar="DIR", default=d, help="a local datastack folder.")
    conn.add_argument("--archive", metavar="PATH", dest="archives", action="append", default=d,
                      help="Delta Lake exports of expired versions (<PATH>/v<N>/<table>/<spec>/, or "
                           "<PATH>/<datastack>/...; a folder or gs://, s3://, https:// URL; repeatable): "
                           "AT VERSION N reads them when the service no longer lists N; alone, they "
                           "are the datastack.")
    if top:
        conn.add_argument("--version", "-V", metavar="N", nargs="?", const=_VERSION_FLAG, default=None,
                          help="materialization version; alone: print caveql's version and exit.")
    else:
        conn.add_argument("--version", metavar="N", default=d, help="materialization version.")
    conn.add_argument("--token", metavar="TOKEN", default=d,
                      help="auth token (default: found as caveclient finds it).")
    conn.add_argument("--no-cache", action="store_true", default=d or False,
                      help="neither read nor write the disk cache of versioned answers.")
    conn.add_argument("--yes", action="store_true", default=d or False,
                      help="run statements that would fetch more than max_fetch_rows rows (20 million) "
                           "instead of refusing them (the REPL asks).")
    out = p.add_argument_group("output")
    out.add_argument("--format", "-F", metavar="FMT", choices=FORMAT_NAMES, default=d,
                     help="table, vertical, csv, tsv, json, jsonl, markdown, parquet or neuroglancer "
                          "(a viewer link; -o FILE gets its state) (default: table, or from -o's "
                          "extension; .ng.json: neuroglancer).")
    out.add_argument("-o", "--output", metavar="FILE", default=d,
                     help="write results to FILE (format from its extension).")
    out.add_argument("--plot", metavar="SPEC", default=d,
                     help="draw each result to -o FILE (.png, .svg, .pdf) instead: 'matrix', "
                          "'scatter color=cell_type', 'hist size' (docs/tutorial.md).")
    out.add_argument("--param", "-p", metavar="NAME=VALUE", action="append", default=d,
                     help="bind :NAME (repeatable; typed by a .cql header, else as a CQL literal).")
    out.add_argument("--table", metavar="NAME=FILE", dest="tables", action="append", default=d,
                     help="a CSV, Parquet or JSON file as the table NAME (repeatable; e.g. --table "
                          "cells=cells.csv; docs/language.md, 'Your own data as tables').")
    out.add_argument("--no-color", action="store_true", default=d or False,
                     help="no colours in errors.")


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser of the ``caveql`` command (``argv``: the words it will parse).

    >>> args = build_parser().parse_args(["-c", "SHOW TABLES", "--format", "csv"])
    >>> args.command, args.format, args.commands
    (None, 'csv', ['SHOW TABLES'])
    """
    parser = _Parser(
        prog="caveql",
        description="CQL, a SQL-flavoured query language for CAVE connectomes. "
                    "With no query and a terminal, starts the REPL.",
        epilog="Exit codes: 0 ok, 1 a statement failed, 2 usage error. `caveql COMMAND --help` "
               "describes each command.",
    )
    parser.add_argument("-c", "--command", dest="commands", metavar="QUERY", action="append",
                        help="run QUERY (CQL or a backslash command); repeatable.")
    parser.add_argument("-f", "--file", dest="files", metavar="FILE", action="append",
                        help="run a .cql file; repeatable.")
    _add_common(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    words = frozenset(sys.argv[1:] if argv is None else argv)
    _add_subcommands(sub, words)
    return parser


def _add_subcommands(sub: Any, wanted: frozenset[str]) -> None:
    """The subcommands; ``wanted`` holds the command line's words (for lazily built ones)."""
    p = sub.add_parser("run", help="run a .cql file, binding its parameters.",
                       description="Run a .cql file. Its header declares parameters "
                                   "(-- param: root_id int = 864691135808473885); bind them with --param.")
    p.add_argument("file", help="the .cql file.")
    _add_common(p, top=False)
    p.set_defaults(handler=_cmd_run)

    p = sub.add_parser("explain", help="print the plan of a query.",
                       description="Print the plan of a query: each remote request exactly as sent, "
                                   "then the local steps.")
    p.add_argument("query", help="a CQL SELECT.")
    p.add_argument("--analyze", action="store_true", help="run it and add rows, bytes and time per step.")
    _add_common(p, top=False)
    p.set_defaults(handler=_cmd_explain)

    p = sub.add_parser("repl", help="start the interactive shell.",
                       description="Start the interactive shell (what `caveql` does on a terminal).")
    _add_common(p, top=False)
    p.set_defaults(handler=_cmd_repl)

    # -- other areas' subcommands go below: one add_parser + a lazy-importing handler each --
    from caveql.syntax.fmt import add_parser as add_fmt_parser  # `caveql fmt` (H1)

    add_fmt_parser(sub)
    p = sub.add_parser("demo", help="build the synthetic minnie65_demo datastack.",
                       description="Build the synthetic minnie65_demo datastack (shaped like MICrONs "
                                   "minnie65_public; NOT real data). Idempotent; prints its folder.")
    from caveql.datastack.cli import add_demo_arguments  # light: imports no data library

    add_demo_arguments(p)
    p.set_defaults(handler=_cmd_demo)

    # importing caveql.server runs its package __init__ (Starlette, pandas: ~1 s), so serve/cache
    # get their arguments only when the command line names them (`caveql --help` stays fast)
    p = sub.add_parser("serve", help="serve a local datastack as a CAVE materialization service.",
                       description="Serve a local datastack (default: the demo) over the CAVE REST API, "
                                   "so caveclient and caveql's HTTP backend can use it.")
    if "serve" in wanted:
        from caveql.server.cli import add_serve_arguments

        add_serve_arguments(p)
    p.set_defaults(handler=_cmd_serve)
    p = sub.add_parser("cache", help="show or clear the disk cache of versioned answers.",
                       description="The disk cache of answers from materialized (frozen) versions.")
    if "cache" in wanted:
        from caveql.server.cli import add_cache_arguments

        add_cache_arguments(p)
    p.set_defaults(handler=_cmd_cache)
    p = sub.add_parser("snapshot", help="copy tables of a service at one version into a local datastack.",
                       description="Copy tables (every row, past the row cap; counts checked against the "
                                   "service's) at one version into a local datastack folder; resumable.")
    if "snapshot" in wanted:  # (imports the engine: only when named)
        from caveql.datastack.snapshot import add_snapshot_arguments

        add_snapshot_arguments(p)
    p.set_defaults(handler=_cmd_snapshot)
    p = sub.add_parser("import", help="turn a version folder of flat-file dumps into a local datastack.",
                       description="Import CAVE flat-file dumps (<t>_merged.csv.gz + header files) of "
                                   "one version into a local datastack folder; resumable, counts verified.")
    from caveql.datastack.importer import add_import_arguments  # light: DuckDB imported when run

    add_import_arguments(p)
    p.set_defaults(handler=_cmd_import)


# -- helpers --------------------------------------------------------------------------------------
def _params(args: argparse.Namespace) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in getattr(args, "param", None) or []:
        name, eq, value = item.partition("=")
        if not eq or not name.isidentifier():
            raise _Usage(f"--param takes NAME=VALUE, not {item!r}")
        out[name] = value
    return out


class _Usage(Exception):
    """A usage error found after parsing (exit code 2)."""


def _check_param_names(params: dict[str, str], texts: Sequence[str] = (),
                       files: Sequence[str] = ()) -> dict[str, set[str]] | None:
    """Refuse a ``--param`` that no query uses and no file declares (a usage error, with "did you
    mean"): a misspelt name would otherwise be ignored and the defaults used, exit code 0.

    Returns the names each file takes (its declarations and uses), or None when a text or file
    cannot be read far enough to tell (running it then reports why).

    >>> _check_param_names({"rootid": "1"}, ["SELECT * FROM t WHERE pt_root_id = :root_id"])
    Traceback (most recent call last):
      ...
    repl.cli._Usage: unknown parameter :rootid: the query takes :root_id; help: did you mean :root_id?
    """
    if not params:
        return {}
    from caveql.bind import check_names, used_names
    from caveql.cqlfile import CqlFile
    from caveql.errors import CaveqlError

    known: set[str] = set()
    per_file: dict[str, set[str]] = {}
    sources: list[str] = []
    for text in texts:
        # backslash commands (stdin may mix them with CQL) take no parameters
        cql = "\n".join("" if line.lstrip().startswith("\\") else line for line in text.split("\n"))
        if not cql.strip():
            continue
        used = used_names(cql)
        if used is None:
            return None
        known |= used
        sources.append("the query")
    for path in files:
        try:
            loaded = CqlFile.load(path)
        except CaveqlError:
            return None
        names = {p.name for p in loaded.params} | (used_names(loaded.text) or set())
        per_file[path] = names
        known |= names
        sources.append(os.path.basename(path))
    where = sources[0] if len(sources) == 1 else "the queries and files" if sources else "the input"
    try:
        check_names(params, known, where=where)
    except CaveqlError as err:
        raise _Usage(str(err)) from None
    return per_file


def _output_format(args: argparse.Namespace) -> str | None:
    """The format of ``-o FILE``: ``--format``, else from the extension; an extension that names
    no format is a usage error (``-o out.xlsx`` must not quietly write CSV).

    >>> _output_format(argparse.Namespace(output="out.xlsx", format=None))
    Traceback (most recent call last):
      ...
    repl.cli._Usage: -o out.xlsx: cannot write Excel files; use one of .csv, .json, .jsonl, .markdown, .md, .ndjson, .parquet, .pq, .tab, .tsv, .txt (Excel opens .csv), or give --format
    """
    from caveql.repl.formatting import _EXTENSIONS, format_from_path

    output, fmt = getattr(args, "output", None), getattr(args, "format", None)
    if not output or fmt is not None:
        return fmt
    found = format_from_path(output)
    if found is None:
        ext = os.path.splitext(output)[1].lower()
        what = ("cannot write Excel files" if ext in (".xlsx", ".xls", ".xlsm", ".ods")
                else f"no output format has the extension {ext!r}" if ext
                else "the file name has no extension to tell the format by")
        raise _Usage(f"-o {output}: {what}; use one of {', '.join(sorted(_EXTENSIONS))}"
                     + (" (Excel opens .csv)" if "Excel" in what else "") + ", or give --format")
    return found


def _numbered_outputs(session: Any, path: str) -> None:
    """Several results with ``-o out.csv``: one file each, ``out-1.csv``, ``out-2.csv``, ...
    (when a second result comes, the first file is renamed ``out-1.csv``); each is named on
    stderr. One result keeps the name given."""
    show = session.show_frame
    base, ext = os.path.splitext(path)
    written: list[str] = []

    def numbered(n: int) -> str:
        return f"{base}-{n}{ext}"

    def show_frame(df: Any, *, full: bool = False) -> None:
        if session.output_file not in (path, *written):  # changed since (\o in a script)
            show(df, full=full)
            return
        if len(written) == 1:
            os.replace(written[0], numbered(1))
            session.info(f"Renamed {written[0]} to {numbered(1)}: the input returns several results, "
                         "one file each.")
            written[0] = numbered(1)
        session.output_file = path if not written else numbered(len(written) + 1)
        show(df, full=full)
        written.append(session.output_file)

    session.show_frame = show_frame


def _plot_outputs(session: Any, spec: str, output: str | None, interactive: bool) -> None:
    """``--plot SPEC -o FILE``: each result is drawn to the ``-o`` file instead of printed
    (several results: numbered files, as without --plot)."""
    from caveql import plot  # (matplotlib itself loads when the first plot is drawn)
    from caveql.errors import CaveqlError

    if interactive or not output:
        raise _Usage("--plot draws the results of -c, -f, run or stdin to -o FILE (.png, .svg or .pdf)"
                     + ("; in the REPL use \\plot" if interactive else ""))
    try:
        plot.image_format(output)
        plot.parse_spec(spec)
    except CaveqlError as err:
        raise _Usage(f"--plot {spec!r} -o {output}: {err}") from None

    def show_frame(df: Any, *, full: bool = False) -> None:
        path = plot.save(plot.plot(df, spec), session.output_file)
        session.info(f"Wrote the {spec.split()[0]} plot of {len(df):,} rows to {path}.")

    session.show_frame = show_frame


def _connection_factory(args: argparse.Namespace, config: Any) -> Any:
    path = getattr(args, "path", None) or (None if (getattr(args, "datastack", None)
                                                    or getattr(args, "server", None)) else config.path)
    datastack = getattr(args, "datastack", None) or (None if path else config.datastack)
    server = getattr(args, "server", None)
    if server is None and not path and config.server:
        from caveql.api import local_datastack

        # the config's server is a default, as $CAVEQL_SERVER is: a local datastack's name stays local
        server = None if datastack and local_datastack(datastack) else config.server
    version = getattr(args, "version", None)
    if version is _VERSION_FLAG:
        version = None
    if version is None:
        version = config.version
    elif isinstance(version, str):
        if not version.isdigit():
            raise _Usage(f"--version takes a materialization version number, not {version!r}")
        version = int(version)
    if path and (getattr(args, "datastack", None) or getattr(args, "server", None)):
        raise _Usage("--path is a local datastack; it does not combine with --datastack/--server")
    if server and not datastack:
        raise _Usage("--server needs --datastack NAME")
    token = getattr(args, "token", None)
    tables = _tables(args)
    archives = list(getattr(args, "archives", None) or getattr(config, "archives", None) or ())

    def connect() -> Any:
        from caveql.api import connect as open_connection

        return open_connection(datastack, server=server, path=path, token=token, version=version,
                               archives=archives,
                               cache=not getattr(args, "no_cache", False),
                               **({"max_fetch_rows": None} if getattr(args, "yes", False) else {}))

    if tables:  # --table: registered on every connection opened (also after a reconnect)
        return lambda: _registered(tables, connect)
    return connect


def _tables(args: argparse.Namespace) -> dict[str, str]:
    """``--table NAME=FILE`` options as ``{NAME: FILE}``.

    >>> _tables(argparse.Namespace(tables=["cells=data/cells.csv"]))
    {'cells': 'data/cells.csv'}
    """
    out: dict[str, str] = {}
    for item in getattr(args, "tables", None) or []:
        name, eq, path = item.partition("=")
        if not eq or not name.isidentifier() or not path:
            raise _Usage(f"--table takes NAME=FILE (e.g. cells=cells.csv), not {item!r}")
        if name in out:
            raise _Usage(f"--table {name} is given twice")
        out[name] = path
    return out


def _registered(tables: dict[str, str], opener: Any) -> Any:
    """A connection from ``opener()`` with ``tables`` registered (paths relative to the working
    directory); a missing file fails here, naming it, and closes the connection."""
    conn = opener()
    try:
        for name, path in tables.items():
            conn.register(name, path)
    except BaseException:
        conn.close()
        raise
    return conn


def _session(args: argparse.Namespace, *, interactive: bool = False) -> Any:
    from caveql.repl.config import load_config
    from caveql.repl.session import Session

    config = load_config()
    spec = getattr(args, "plot", None)
    output = getattr(args, "output", None)
    ng = getattr(args, "format", None) == "neuroglancer" or str(output or "").lower().endswith(".ng.json")
    fmt = None if spec or ng else _output_format(args)  # (-o is an image with --plot, a state with ng)
    color = (not getattr(args, "no_color", False)) and sys.stderr.isatty() and "NO_COLOR" not in os.environ
    session = Session(_connection_factory(args, config), fmt=fmt or config.format,
                      interactive=interactive, color=color, max_rows=config.max_rows)
    session.output_file = output
    if spec:
        _plot_outputs(session, spec, output, interactive)
    if ng:
        from caveql.neuroglancer import cli_outputs

        cli_outputs(session, output)
    if output and not interactive:  # (the REPL's -o, as its \o, keeps one file)
        _numbered_outputs(session, output)
    session.null = config.null
    session.timing = config.timing if interactive else False
    if interactive:
        session.expanded = config.expanded
        session.pager = config.pager
    session.config = config  # type: ignore[attr-defined]
    # history is kept per datastack: the name given, a local folder's name, else the demo's
    path = getattr(args, "path", None) or config.path
    session.history_name = (getattr(args, "datastack", None) or config.datastack  # type: ignore[attr-defined]
                            or (os.path.basename(os.path.normpath(path)) if path else "minnie65_demo"))
    return session


# -- handlers -------------------------------------------------------------------------------------
def _cmd_serve(args: argparse.Namespace) -> int:
    from caveql.server.cli import run_serve

    return run_serve(args)


def _cmd_cache(args: argparse.Namespace) -> int:
    from caveql.server.cli import run_cache

    return run_cache(args)


def _cmd_demo(args: argparse.Namespace) -> int:
    from caveql.datastack.cli import run_demo

    return run_demo(args)


def _cmd_import(args: argparse.Namespace) -> int:
    from caveql.datastack.importer import run_import

    return run_import(args)


def _cmd_snapshot(args: argparse.Namespace) -> int:
    from caveql.datastack.snapshot import run_snapshot

    return run_snapshot(args)


def _cmd_default(args: argparse.Namespace) -> int:
    if args.commands or args.files:
        params = _params(args)
        per_file = _check_param_names(params, args.commands or [], args.files or [])
        session = _session(args)
        session.variables.update(_typed(params))
        try:
            for text in args.commands or []:
                if not session.run(text) or session.quit:
                    return 0 if session.quit else 1
            for path in args.files or []:
                # each file gets the names it takes (a name may be meant for another file)
                mine = params if per_file is None else {
                    k: v for k, v in params.items() if k in per_file.get(path, ())}
                if not session.run_file(path, mine):
                    return 1
        finally:
            session.close()
        return 0
    if not sys.stdin.isatty():
        text = sys.stdin.read().removeprefix("\ufeff")  # a script saved with a byte-order mark
        params = _params(args)
        _check_param_names(params, [text])
        session = _session(args)
        session.variables.update(_typed(params))
        try:
            return 0 if session.run_script(text, filename="<stdin>") else 1
        finally:
            session.close()
    return _cmd_repl(args)


def _typed(params: dict[str, str]) -> dict[str, Any]:
    from caveql.cqlfile import parse_param_value

    try:
        return {k: parse_param_value(v, "any") for k, v in params.items()}
    except ValueError as exc:
        raise _Usage(f"--param: {exc}") from exc


def _cmd_run(args: argparse.Namespace) -> int:
    params = _params(args)
    _check_param_names(params, files=[args.file])
    session = _session(args)
    try:
        return 0 if session.run_file(args.file, params) else 1
    finally:
        session.close()


def _cmd_explain(args: argparse.Namespace) -> int:
    params = _params(args)
    _check_param_names(params, [args.query])
    session = _session(args)
    session.variables.update(_typed(params))
    try:
        return 0 if session.explain(args.query, analyze=args.analyze) else 1
    finally:
        session.close()


def _cmd_repl(args: argparse.Namespace) -> int:
    from caveql.repl.app import run_repl

    session = _session(args, interactive=True)
    session.variables.update(_typed(_params(args)))
    from caveql.surface import using

    with using("repl"):  # help lines name \set and flags, not Python arguments
        return run_repl(session)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``caveql`` console script; returns the exit code."""
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if getattr(args, "version", None) is _VERSION_FLAG:
        print(f"caveql {__version__}")
        return 0
    handler = getattr(args, "handler", _cmd_default)
    from caveql.surface import using

    try:
        with using("cli"):  # help lines name flags (--server, --param), not Python arguments
            return int(handler(args) or 0)
    except _Usage as exc:
        parser.print_usage(sys.stderr)
        print(f"caveql: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("caveql: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `caveql -c ... | head`: the reader left; not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as exc:
        from caveql.errors import CaveqlError

        if isinstance(exc, CaveqlError):
            print(exc.render(color=False), file=sys.stderr)
            return 2 if type(exc).__name__ == "ConfigError" else 1
        raise


if __name__ == "__main__":
    sys.exit(main())
