"""Backslash commands of the REPL, from one registry.

Each command registers itself with :func:`command`; the REPL, ``\\?`` and
docs/repl.md (generated from :func:`help_table`, checked by a test) all read
:data:`REGISTRY`. A handler takes the :class:`~caveql.repl.session.Session` and
the rest of the line; it prints through the session and raises
:class:`~caveql.errors.ConfigError` for bad arguments.

>>> "\\\\dt" in REGISTRY and "\\\\q" in REGISTRY
True
>>> find("\\\\timing").usage
'\\\\timing [on|off]'
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from caveql.errors import ConfigError, did_you_mean

if TYPE_CHECKING:
    from caveql.repl.session import Session

__all__ = ["REGISTRY", "Command", "command", "find", "help_table", "name_pattern", "split_command"]

Handler = Callable[["Session", str], "bool | None"]


@dataclass(frozen=True)
class Command:
    """One backslash command: its name, a usage line, a one-line help, aliases."""

    name: str
    usage: str
    help: str
    handler: Handler
    aliases: tuple[str, ...] = field(default=())
    #: what Tab completes for the argument: "table", "file", "format", "variable", "onoff", or ""
    arg: str = ""


REGISTRY: dict[str, Command] = {}
_ALIASES: dict[str, str] = {}


def command(name: str, usage: str, help: str, *, aliases: tuple[str, ...] = (),
            arg: str = "") -> Callable[[Handler], Handler]:
    """Register a backslash command (decorator)."""

    def register(fn: Handler) -> Handler:
        REGISTRY[name] = Command(name, usage, help, fn, aliases, arg)
        for a in aliases:
            _ALIASES[a] = name
        return fn

    return register


def split_command(line: str) -> tuple[str, str]:
    """``"\\\\d  foo "`` -> ``("\\\\d", "foo")``.

    >>> split_command("\\\\x auto")
    ('\\\\x', 'auto')
    """
    line = line.strip()
    name, _, rest = line.partition(" ")
    return name, rest.strip().rstrip(";").strip()


def find(name: str) -> Command:
    """The command called ``name`` (or an alias); :class:`ConfigError` with a suggestion if none."""
    key = _ALIASES.get(name, name)
    cmd = REGISTRY.get(key)
    if cmd is None:
        close = did_you_mean(name, list(REGISTRY) + list(_ALIASES))
        hint = (f"did you mean {close[0]}? " if close else "") + "\\? lists the commands"
        raise ConfigError(f"unknown command {name}", hint=hint)
    return cmd


def help_table() -> str:
    """The commands as a Markdown table (``\\?`` prints it; docs/repl.md embeds it)."""
    rows = ["| command | what it does |", "|---|---|"]
    for name in sorted(REGISTRY, key=_order):
        cmd = REGISTRY[name]
        alias = f" (also {', '.join('`' + a + '`' for a in cmd.aliases)})" if cmd.aliases else ""
        rows.append(f"| `{cmd.usage}` | {cmd.help}{alias} |")
    return "\n".join(rows)


_ORDER = ["\\dt", "\\d", "\\dv", "\\values", "\\timing", "\\x", "\\T", "\\o", "\\i", "\\e", "\\s",
          "\\set", "\\unset", "\\explain", "\\last", "\\plot", "\\ng", "\\pager", "\\c", "\\conninfo", "\\?", "\\q"]


def _order(name: str) -> tuple[int, str]:
    return (_ORDER.index(name) if name in _ORDER else len(_ORDER), name)


def _onoff(arg: str, current: bool, name: str) -> bool:
    low = arg.lower()
    if not low:
        return not current
    if low in ("on", "true", "1"):
        return True
    if low in ("off", "false", "0"):
        return False
    raise ConfigError(f"{name} takes on or off, not {arg!r}")


# -- catalog --------------------------------------------------------------------------------------
def name_pattern(pattern: str) -> re.Pattern[str]:
    """A psql name pattern (``\\dt syn*``) as a regular expression matching whole names.

    psql's rules: ``*`` is any text, ``?`` one character, letters outside double quotes are
    lower-cased, ``"..."`` matches its text literally (``""`` is a quote), ``$`` is literal,
    and other regular-expression characters work as such (``[0-9]``, ``a|b``). ``%`` is also
    any text (SQL ``LIKE``'s habit). A datastack has no schemas, so ``.`` outside quotes is
    refused.

    >>> [n for n in ["synapses", "nuclei", "syn_v2", "Synapses"] if name_pattern("SYN*").fullmatch(n)]
    ['synapses', 'syn_v2']
    >>> bool(name_pattern("nucle?").fullmatch("nuclei")), bool(name_pattern('"a*"').fullmatch("a*"))
    (True, True)
    >>> name_pattern("public.cells")
    Traceback (most recent call last):
    ...
    caveql.errors.ConfigError: a datastack has no schemas: 'public.cells' names a schema...
    """
    out: list[str] = []
    quoted = False
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == '"':
            if quoted and pattern[i + 1:i + 2] == '"':
                out.append('"')
                i += 1
            else:
                quoted = not quoted
        elif quoted or ch == "$":
            out.append(re.escape(ch))
        elif ch in "*%":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch == ".":
            raise ConfigError(f"a datastack has no schemas: {pattern!r} names a schema",
                              hint='quote a name with a dot: "a.b"')
        else:
            out.append(ch.lower())
        i += 1
    if quoted:
        raise ConfigError(f"unterminated quoted name in pattern {pattern!r}")
    try:
        return re.compile("(?:" + "".join(out) + ")")
    except re.error as exc:
        raise ConfigError(f"invalid pattern {pattern!r}: {exc}",
                          hint="* any text, ? one character, \"...\" literal text") from exc


def _listing(s: Session, statement: str, pattern: str) -> bool:
    """``statement``'s rows whose first column (the name) matches the psql ``pattern``."""
    if not pattern:
        return s.run_cql(statement)
    rx = name_pattern(pattern)
    frame = s.connection.execute(statement).frame
    if frame is None:  # pragma: no cover - SHOW TABLES/VIEWS always answer rows
        raise ConfigError(f"{statement} returned no rows")
    names = frame.iloc[:, 0].astype(str)
    matching = frame[[rx.fullmatch(n) is not None for n in names]].reset_index(drop=True)
    s.last_frame = matching
    s.show_frame(matching)
    return True


_PATTERN = "pattern as psql's: * any text, ? one character, \"...\" literal"


@command("\\dt", "\\dt [pattern]", f"List tables ({_PATTERN}).", arg="table")
def _dt(s: Session, arg: str) -> bool:
    return _listing(s, "SHOW TABLES", arg)


@command("\\d", "\\d name", "Describe a table or view: description, schema, resolution, columns.",
         arg="table")
def _d(s: Session, arg: str) -> bool:
    if not arg:
        return s.run_cql("SHOW TABLES")
    return s.run_cql(f"DESCRIBE {_ident(arg)}")


@command("\\dv", "\\dv [pattern]", f"List views ({_PATTERN}).")
def _dv(s: Session, arg: str) -> bool:
    return _listing(s, "SHOW VIEWS", arg)


@command("\\values", "\\values table.column", "Distinct values of a string column (e.g. cell types).",
         arg="table")
def _values(s: Session, arg: str) -> None:
    table, dot, column = arg.partition(".")
    if not dot or not table or not column:
        raise ConfigError("usage: \\values table.column")
    values = s.unique_values(table, column)
    s.print_lines([v if v is not None else "NULL" for v in values] or ["(no values)"])


# -- output ---------------------------------------------------------------------------------------
@command("\\timing", "\\timing [on|off]", "Show how long each statement took.", arg="onoff")
def _timing(s: Session, arg: str) -> None:
    s.timing = _onoff(arg, s.timing, "\\timing")
    s.info(f"Timing is {'on' if s.timing else 'off'}.")


@command("\\x", "\\x [on|off|auto]", "Expanded (one line per column) output; auto when too wide.",
         arg="expanded")
def _x(s: Session, arg: str) -> None:
    low = arg.lower()
    if low == "auto":
        s.expanded = "auto"
    elif not low:
        s.expanded = "off" if s.expanded == "on" else "on"
    else:
        s.expanded = "on" if _onoff(low, False, "\\x") else "off"
    s.info(f"Expanded display is {s.expanded}.")


@command("\\T", "\\T format", "Output format: table, vertical, csv, tsv, json, jsonl, markdown, parquet.",
         aliases=("\\mode", ".mode"), arg="format")
def _T(s: Session, arg: str) -> None:
    from caveql.repl.formatting import FORMATS, _format_hint

    if not arg:
        s.info(f"Output format is {s.format}.")
        return
    if arg not in FORMATS:
        raise ConfigError(f"unknown output format {arg!r}", hint=_format_hint(arg))
    s.format = arg
    s.info(f"Output format is {arg}.")


@command("\\o", "\\o [file]", "Send results to a file (format from its extension); no file: back to screen.",
         arg="file")
def _o(s: Session, arg: str) -> None:
    path = _path(arg)
    s.output_file = path or None
    s.info(f"Results go to {path}." if path else "Results go to the screen.")


@command("\\pager", "\\pager [on|off|auto]", "Page long output through $PAGER (auto: when taller than the screen).",
         arg="expanded")
def _pager(s: Session, arg: str) -> None:
    low = arg.lower() or ("off" if s.pager != "off" else "auto")
    if low not in ("on", "off", "auto"):
        raise ConfigError(f"\\pager takes on, off or auto, not {arg!r}")
    s.pager = low
    s.info(f"Pager is {low}.")


@command("\\last", "\\last", "Show the previous result again, in full.")
def _last(s: Session, arg: str) -> None:
    if s.last_frame is None:
        raise ConfigError("no result yet")
    s.show_frame(s.last_frame, full=True)


@command("\\plot", "\\plot kind file [options]", "Plot the last result to a .png/.svg/.pdf file: matrix, "
         "scatter or hist (e.g. \\plot matrix m.png log=true; see docs/tutorial.md).", arg="file")
def _plot(s: Session, arg: str) -> None:
    from caveql import plot  # matplotlib loads on first use only

    try:
        words = shlex.split(arg)
    except ValueError as exc:
        raise ConfigError(f"\\plot: {exc}") from exc
    if len(words) < 2:
        raise ConfigError("\\plot needs a kind and a file", hint="e.g. \\plot matrix out.png; kinds: "
                          + ", ".join(plot.KINDS))
    kind, path, options = words[0], os.path.expanduser(words[1]), words[2:]
    plot.image_format(path)  # a wrong extension is refused before anything is drawn
    spec = plot.parse_spec([kind, *options])
    if s.last_frame is None:
        raise ConfigError("no result to plot yet", hint="run a query, then \\plot")
    plot.save(plot.plot(s.last_frame, [spec[0], *options]), path)
    s.info(f"Wrote the {spec[0]} plot of {len(s.last_frame):,} rows to {path}.")


@command("\\ng", "\\ng [open] [file.json] [key=value ...]", "Neuroglancer link of the last result (open: in "
         "a browser; e.g. \\ng tags=cell_type lines=true; see docs/tutorial.md).", arg="file")
def _ng(s: Session, arg: str) -> None:
    from caveql.neuroglancer import repl_command

    repl_command(s, arg)


# -- files and editing ----------------------------------------------------------------------------
@command("\\i", "\\i file.cql [name=value ...]", "Run a .cql file, binding its parameters.", arg="file")
def _i(s: Session, arg: str) -> bool:
    try:
        parts = shlex.split(arg)
    except ValueError as exc:
        raise ConfigError(f"\\i: {exc}") from exc
    if not parts:
        raise ConfigError("usage: \\i file.cql [name=value ...]")
    params = dict(_kv(p) for p in parts[1:])
    return s.run_file(os.path.expanduser(parts[0]), params)


@command("\\table", "\\table name file [option=value ...]",
         "Make a CSV, Parquet or JSON file the table name (e.g. \\table cells cells.csv delim=';').",
         arg="file")
def _table(s: Session, arg: str) -> None:
    from caveql.cqlfile import parse_param_value

    try:
        parts = shlex.split(arg)
    except ValueError as exc:
        raise ConfigError(f"\\table: {exc}") from exc
    if len(parts) < 2:
        raise ConfigError("usage: \\table name file [option=value ...] (e.g. \\table cells cells.csv)")
    options = {}
    for item in parts[2:]:
        key, value = _kv(item)
        try:
            # (a tab or blank delimiter is itself, not an empty value)
            options[key] = value if value and not value.strip() else parse_param_value(value, "any")
        except ValueError as exc:
            raise ConfigError(f"\\table {parts[0]}: option {key}: {exc}") from exc
    s.connection.register(parts[0], parts[1], **options)
    s.info(f"{parts[0]}: {s.connection.registered()[parts[0]]}")


@command("\\tables", "\\tables",
         "List the tables \\table, --table or register() made of your own files and frames.")
def _tables(s: Session, arg: str) -> None:
    found = s.connection.registered()
    if not found:
        s.info("No tables registered (\\table name file).")
    for name, what in sorted(found.items()):
        s.print_lines([f"{name}: {what}"])


@command("\\e", "\\e [file]", "Edit the last query (or a file) in $EDITOR; the result becomes the next input.",
         arg="file")
def _e(s: Session, arg: str) -> None:
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    path = _path(arg)
    if path:
        target = path
    else:
        fd, target = tempfile.mkstemp(suffix=".cql", prefix="caveql-")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(s.last_query or "")
    try:
        subprocess.run([*shlex.split(editor), target], check=False)
        with open(target, encoding="utf-8-sig") as fh:  # (an editor may add a byte-order mark)
            s.next_input = fh.read().rstrip()
    except OSError as exc:
        raise ConfigError(f"cannot run editor {editor!r}: {exc}") from exc
    finally:
        if not path:
            os.unlink(target)


# -- variables ------------------------------------------------------------------------------------
@command("\\set", "\\set [name [value]]", "Set a variable used as :name (lists bind as IN lists); no args: list them.",
         arg="variable")
def _set(s: Session, arg: str) -> None:
    from caveql.cqlfile import parse_param_value

    if not arg:
        if not s.variables:
            s.info("No variables set.")
        for name, value in sorted(s.variables.items()):
            s.print_lines([f"{name} = {_show(value)}"])
        return
    name, _, value = arg.partition(" ")
    if not name.isidentifier():
        raise ConfigError(f"variable names are identifiers, not {name!r}")
    try:
        s.variables[name] = parse_param_value(value.strip(), "any") if value.strip() else ""
    except ValueError as exc:
        raise ConfigError(f"\\set {name}: {exc}") from exc


@command("\\unset", "\\unset name", "Forget a variable.", arg="variable")
def _unset(s: Session, arg: str) -> None:
    if arg not in s.variables:
        raise ConfigError(f"no variable {arg!r}")
    del s.variables[arg]


@command("\\s", "\\s [n]", "List the last n (default 20) entries of this datastack's history.")
def _s(s: Session, arg: str) -> None:
    if not s.history_file or not os.path.exists(s.history_file):
        s.info("No history yet.")
        return
    try:
        n = int(arg) if arg else 20
    except ValueError:
        raise ConfigError(f"\\s takes a number, not {arg!r}") from None
    from prompt_toolkit.history import FileHistory

    entries = list(FileHistory(s.history_file).load_history_strings())[:n]  # newest first
    width = len(str(len(entries)))
    lines = []
    for i, entry in enumerate(reversed(entries), start=1):
        for j, line in enumerate(entry.splitlines()):
            lines.append(f"{str(i).rjust(width) if j == 0 else ' ' * width}  {line}")
    s.print_lines(lines)


# -- plans and session ----------------------------------------------------------------------------
@command("\\explain", "\\explain [analyze] query", "Show the plan: each remote request, then the local steps.")
def _explain(s: Session, arg: str) -> bool:
    analyze = arg.lower().startswith("analyze ")
    query = arg[len("analyze "):] if analyze else arg
    if not query.strip():
        query = s.last_query or ""
    if not query.strip():
        raise ConfigError("usage: \\explain [analyze] query")
    return s.explain(query, analyze=analyze)


@command("\\c", "\\c name", "Switch datastack, as USE name does: a local one (the demo, one in the config "
         "file) by its name, else the service's.", aliases=("\\connect",))
def _c(s: Session, arg: str) -> bool:
    name = arg.strip().rstrip(";").strip()
    if not name:
        raise ConfigError("usage: \\c name (e.g. \\c minnie65_public)")
    return s.run_cql('USE "' + name.replace('"', '""') + '";')  # quoted: any name, one statement


@command("\\conninfo", "\\conninfo", "The datastack, server/path and settings of this session.")
def _conninfo(s: Session, arg: str) -> None:
    s.print_lines(s.describe_connection())


@command("\\?", "\\?", "List the commands.", aliases=("\\help", "\\h"))
def _help(s: Session, arg: str) -> None:
    width = max(len(c.usage) for c in REGISTRY.values())
    lines = [f"  {REGISTRY[n].usage.ljust(width)}  {REGISTRY[n].help}" for n in sorted(REGISTRY, key=_order)]
    lines.append("  Statements end with ';' (or Esc-Enter). Ctrl-R searches history, Ctrl-C cancels.")
    s.print_lines(lines)


@command("\\q", "\\q", "Quit (also Ctrl-D).", aliases=("\\quit", "exit", "quit", ".quit"))
def _q(s: Session, arg: str) -> None:
    s.quit = True


def _kv(text: str) -> tuple[str, str]:
    name, eq, value = text.partition("=")
    if not eq or not name.isidentifier():
        raise ConfigError(f"parameters are name=value, not {text!r}")
    return name, value


def _path(arg: str) -> str:
    if not arg:
        return ""
    try:
        parts = shlex.split(arg)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    return os.path.expanduser(parts[0]) if parts else ""


def _ident(name: str) -> str:
    if name.replace("_", "a").isalnum() and not name[0].isdigit():
        return name
    if len(name) >= 2 and name[0] == name[-1] == '"':
        return name
    return '"' + name.replace('"', '""') + '"'


def _show(value: object) -> str:
    if isinstance(value, list):
        return "(" + ", ".join(_show(v) for v in value) + ")"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return str(value)


if __name__ == "__main__":  # regenerate the table in docs/repl.md
    print(help_table())
