"""Jupyter/IPython magics: ``%load_ext caveql``, then ``%cql`` and ``%%cql``.

::

    %load_ext caveql
    %cql --path my_datastack/ SHOW TABLES          # options are remembered for later cells
    df = %cql SELECT * FROM cells WHERE pt_root_id IN :ids      # ids = [..] from the notebook
    %%cql -o bc
    SELECT * FROM aibs_soma_nuc_metamodel_preds_v117 WHERE cell_type = {my_type}

- The result is a pandas DataFrame (the last statement's); ``-o name`` also
  stores it in the notebook as ``name``.
- ``--plot 'matrix log=true'`` also draws it under the cell (:mod:`caveql.plot`;
  ``matrix``, ``scatter``, ``hist``); ``--ng`` (or ``--ng='tags=cell_type lines=true'``) shows
  its Neuroglancer link (:mod:`caveql.neuroglancer`).
- ``:name`` binds a notebook variable as a parameter (lists, tuples, sets,
  numpy arrays and Series become IN lists; a DataFrame or Arrow table is a table:
  ``FROM :cells``); ``{name}`` puts its value in the text as a CQL literal (quoted
  and escaped, never raw text).
- A DataFrame (pandas, polars) or Arrow table variable named right after ``FROM`` or
  ``JOIN`` is a table for that cell (``FROM picked``), unless the datastack has a table
  or view of that name (it comes first); see :func:`frame_tables`.
- Connection options are the CLI's: ``--path``, ``--datastack``/``-d``,
  ``--server``, ``--version``, ``--token``; without any, the demo datastack.
- A failing query fails its cell ("Run All", nbconvert and papermill stop there); the
  error shows with its caret, without a Python traceback.

>>> magic_args("--path data/ -o df SELECT 1")
(Namespace(path='data/', datastack=None, server=None, version=None, token=None, out='df', plot=None,
           ng=None), 'SELECT 1')
"""

from __future__ import annotations

import argparse
import re
import shlex
from collections.abc import Mapping
from typing import Any

from caveql.errors import CaveqlError, ConfigError

__all__ = ["CqlMagics", "bind_text", "frame_tables", "load_ipython_extension", "magic_args"]


class _ArgParser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # type: ignore[override]
        raise ConfigError(f"%cql: {message}", hint="options: --path DIR, --datastack NAME, --server URL, "
                                                  "--version N, --token T, -o NAME")


def _parser() -> argparse.ArgumentParser:
    p = _ArgParser(prog="%cql", add_help=False)
    p.add_argument("--path")
    p.add_argument("--datastack", "-d")
    p.add_argument("--server")
    p.add_argument("--version", type=int)
    p.add_argument("--token")
    p.add_argument("-o", "--out")
    p.add_argument("--plot")  # a caveql.plot spec: 'matrix', 'scatter color=cell_type', ...
    p.add_argument("--ng", nargs="?", const="", default=None)  # a Neuroglancer link; --ng='tags=x'
    return p


def magic_args(line: str) -> tuple[argparse.Namespace, str]:
    """Split a magic line into its options and the query text that follows them."""
    try:
        words = shlex.split(line, posix=True)
    except ValueError:
        words = line.split()
    # options come first; the query starts at the first word that is not an option or its value
    takes_value = {"--path", "--datastack", "-d", "--server", "--version", "--token", "-o", "--out", "--plot",
                   "--ng"}
    i = 0
    while i < len(words) and words[i].startswith("-"):
        opt = words[i].split("=", 1)[0]
        if opt not in takes_value:
            if re.fullmatch(r"--[A-Za-z][\w-]*", opt):  # an option typo, not a `-- comment`
                from caveql.errors import did_you_mean

                close = did_you_mean(opt, sorted(takes_value))
                raise ConfigError(f"%cql: unknown option {opt}",
                                  hint=f"did you mean {close[0]}?" if close else
                                  "options: --path, --datastack/-d, --server, --version, --token, -o")
            break
        i += 1 if "=" in words[i] or opt == "--ng" else 2  # (--ng: a flag, or --ng=options)
    opts = _parser().parse_args(words[:i])
    rest = line
    for w in words[:i]:  # cut the options off the original text (keeps the query's own quoting)
        pos = rest.find(w) if w in rest else rest.find(w.split("=", 1)[0])
        rest = rest[pos + len(w):] if pos >= 0 else rest
    if i and rest.startswith(("'", '"')):
        rest = rest[1:]
    return opts, rest.strip()


_NAME = re.compile(r"(?<![:\w]):([A-Za-z_][A-Za-z0-9_]*)|\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _literal(value: Any) -> str:
    value = _plain(value)
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, list):
        if not value:
            raise ConfigError("an empty list cannot be written as a CQL literal; bind it as :name")
        return "(" + ", ".join(_literal(v) for v in value) + ")"
    raise ConfigError(f"cannot write a {type(value).__name__} as a CQL literal")


def _plain(value: Any) -> Any:
    """Notebook values as plain Python: numpy/pandas scalars and sequences, sets, tuples (a
    DataFrame or Arrow table stays itself: ``FROM :name`` binds it as a table)."""
    from caveql.analyze.local_tables import is_table_value

    if is_table_value(value):
        return value
    if hasattr(value, "tolist") and not isinstance(value, str):
        value = value.tolist()
    elif isinstance(value, set | frozenset):
        value = sorted(value)
    elif isinstance(value, tuple):
        value = list(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, int | float | str | bool):
        return value.item()
    return value


def bind_text(text: str, namespace: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """Substitute ``{name}`` literals and collect ``:name`` parameters from ``namespace``.

    Quoted strings, quoted names and comments are left alone.

    >>> bind_text("SELECT * FROM t WHERE id IN :ids AND cell_type = {t} AND x = '{t}'",
    ...           {"ids": (1, 2), "t": "it's"})
    ("SELECT * FROM t WHERE id IN :ids AND cell_type = 'it''s' AND x = '{t}'", {'ids': [1, 2]})
    """
    out: list[str] = []
    params: dict[str, Any] = {}
    for code, chunk in _segments(text):
        if not code:
            out.append(chunk)
            continue

        def sub(m: re.Match[str]) -> str:
            name = m.group(1) or m.group(2)
            if name not in namespace:
                if m.group(2):
                    raise ConfigError(f"{{{name}}}: no variable '{name}' in the notebook")
                return m.group(0)  # left for the engine (SET name = ...) or its error
            if m.group(1):
                params[name] = _plain(namespace[name])
                return m.group(0)
            return _literal(namespace[name])

        out.append(_NAME.sub(sub, chunk))
    return "".join(out), params


_FROM_NAME = re.compile(r"\b(?:FROM|JOIN)\s+([A-Za-z_][A-Za-z0-9_]*)\b(?!\s*\()", re.IGNORECASE)


def frame_tables(text: str, namespace: Mapping[str, Any]) -> dict[str, Any]:
    """The notebook's DataFrames (pandas, polars) and Arrow tables that ``text`` names as tables:
    right after ``FROM`` or ``JOIN``, outside strings and comments. The magic registers them for
    the cell (a datastack table of the same name comes first: it is not taken).

    >>> import pandas as pd
    >>> ns = {"picked": pd.DataFrame({"root_id": [1]}), "n": 3, "other": pd.DataFrame()}
    >>> list(frame_tables("SELECT * FROM synapses s JOIN picked p ON p.root_id = s.pre_pt_root_id", ns))
    ['picked']
    """
    from caveql.analyze.local_tables import is_table_value

    found: dict[str, Any] = {}
    code = " ".join(chunk if is_code else " " for is_code, chunk in _segments(text))
    for m in _FROM_NAME.finditer(code):
        name = m.group(1)
        if name in namespace and is_table_value(namespace[name]):
            found[name] = namespace[name]
    return found


def _segments(text: str) -> list[tuple[bool, str]]:
    """``(is_code, chunk)`` pieces: strings, quoted names and comments are not code."""
    pattern = re.compile(r"'(?:[^']|'')*'?|\"(?:[^\"]|\"\")*\"?|--[^\n]*|/\*.*?(?:\*/|$)", re.DOTALL)
    out: list[tuple[bool, str]] = []
    pos = 0
    for m in pattern.finditer(text):
        if m.start() > pos:
            out.append((True, text[pos:m.start()]))
        out.append((False, m.group()))
        pos = m.end()
    if pos < len(text):
        out.append((True, text[pos:]))
    return out


def _shown_short(err: CaveqlError) -> CaveqlError:
    """``err``, made to show in IPython as its rendered message (caret and help) instead of a
    Python traceback.

    A failing cell must raise: that is how ``run_cell(...).success``, "Run All", nbconvert and
    papermill learn that it failed. IPython shows an exception by its ``_render_traceback_``
    when it has one (ipyparallel and jupysql rely on this).

    >>> from caveql.errors import UnknownTableError
    >>> _shown_short(UnknownTableError("unknown table 'cels'"))._render_traceback_()
    ["error[CQL011]: unknown table 'cels'"]
    """
    setattr(err, "_render_traceback_", lambda: err.render().splitlines())  # noqa: B010 - per instance
    return err


def _magics_class() -> Any:
    from IPython.core.magic import Magics, line_cell_magic, magics_class

    @magics_class
    class CqlMagics(Magics):
        """``%cql`` / ``%%cql``: run CQL on a remembered connection."""

        def __init__(self, shell: Any) -> None:
            super().__init__(shell)
            self.connection: Any = None
            self.key: tuple[Any, ...] | None = None

        def _connect(self, opts: argparse.Namespace) -> Any:
            key = (opts.path, opts.datastack, opts.server, opts.token)
            given = any(k is not None for k in key)
            if self.connection is None or (given and key != self.key):
                from caveql.api import connect

                new = connect(opts.datastack, server=opts.server, path=opts.path, token=opts.token)
                if self.connection is not None:
                    self.connection.close()
                self.connection, self.key = new, key
            if opts.version is not None:
                self.connection.version = opts.version
            return self.connection

        @line_cell_magic
        def cql(self, line: str, cell: str | None = None) -> Any:
            """Run CQL; returns the last statement's DataFrame (``-o name`` stores it too)."""
            text = ""
            try:
                opts, rest = magic_args(line)
                text = cell if cell is not None else rest
                if not text.strip():
                    if cell is None and any(v is not None for v in vars(opts).values()):
                        self._connect(opts)  # `%cql --path x`: just (re)connect
                        return None
                    raise ConfigError("%cql needs a query: %cql SELECT ... or a %%cql cell")
                conn = self._connect(opts)
                text, params = bind_text(text, self.shell.user_ns)
                from caveql.api import _as_frame
                from caveql.surface import using

                frames = frame_tables(text, self.shell.user_ns)
                if frames:  # `FROM picked` with a DataFrame `picked`: a table for this cell
                    catalog = conn.engine.catalog()
                    cave = {n.lower() for n in [*catalog.tables(), *catalog.views()]}
                    frames = {k: v for k, v in frames.items() if k.lower() not in cave}
                with using("magic"), conn.local_scope(tables=frames):
                    results = conn.execute_script(text, **params)
            except CaveqlError as err:
                if text and err.source is None:
                    err.with_source(text)
                raise _shown_short(err) from None
            last = None
            for r in results:
                if r.message and (r.frame is None or type(r.statement).__name__ == "Describe"):
                    print(r.message)
                for notice in r.notices:
                    print(f"notice: {notice}")
                if r.frame is not None:
                    last = r
            # the frame with its attrs (caveclient's keys, attrs["caveql"]), as Connection.query gives it
            frame = None if last is None else _as_frame(last, text, conn)
            if opts.out and frame is not None:
                self.shell.user_ns[opts.out] = frame
            if opts.plot and frame is not None:  # `%%cql --plot matrix`: the figure under the cell
                from IPython.display import Image, display

                from caveql import plot

                try:
                    display(Image(data=plot.to_bytes(plot.plot(frame, opts.plot)), format="png"))
                except CaveqlError as err:
                    raise _shown_short(err) from None
            if opts.ng is not None and frame is not None:  # `%%cql --ng`: a link under the cell
                from caveql.neuroglancer import notebook

                try:
                    notebook(last, opts.ng,
                             backend=conn.engine.backend)
                except CaveqlError as err:
                    raise _shown_short(err) from None
            return frame

    return CqlMagics


def __getattr__(name: str) -> Any:
    if name == "CqlMagics":  # built on first use: IPython is only imported inside a notebook
        return _magics_class()
    raise AttributeError(name)


def cql_at_cursor(full_text: str, line: int, column: int) -> tuple[str, int] | None:
    """The CQL text of a ``%cql`` line or ``%%cql`` cell and the cursor's offset in it (``None``:
    the cursor is not in CQL).

    >>> cql_at_cursor("%%cql -o df\\nSELECT * FROM nuc", 1, 17)
    ('SELECT * FROM nuc', 17)
    >>> cql_at_cursor("x = 1\\ndf = %cql --path d/ SHOW TAB", 1, 29)
    ('SHOW TAB', 8)
    >>> cql_at_cursor("print(1)", 0, 3) is None
    True
    """
    lines = full_text.split("\n")
    if lines and lines[0].lstrip().startswith("%%cql"):
        if line == 0:
            return None
        body = "\n".join(lines[1:])
        return body, sum(len(x) + 1 for x in lines[1:line]) + column
    current = lines[line] if 0 <= line < len(lines) else ""
    at = current.find("%cql")
    if at < 0 or column < at + 4:
        return None
    try:
        _opts, rest = magic_args(current[at + 4:column])
    except ConfigError:
        return None
    return rest, len(rest)


def _matcher(magics: Any) -> Any:
    """An IPython completion matcher for %cql/%%cql: the REPL's completion on the magic's
    connection (tables, scoped columns, values), nothing else (Jedi is suppressed there)."""
    from IPython.core.completer import SimpleCompletion, context_matcher

    from caveql.repl.completion import CompletionCatalog, suggest

    state: dict[str, Any] = {"conn": None, "catalog": None}

    def catalog() -> CompletionCatalog:
        conn = magics.connection
        if conn is None:
            return CompletionCatalog()
        if state["conn"] is not conn:
            cat = conn.engine.catalog()
            state["conn"], state["catalog"] = conn, CompletionCatalog(
                tables=list(cat.tables()), views=list(cat.views()), load_columns=cat.columns,
                load_values=lambda t, c: _values(cat, t, c))
        return state["catalog"]

    @context_matcher()
    def cql_matcher(context: Any) -> dict[str, Any]:
        found = cql_at_cursor(context.full_text, context.cursor_line, context.cursor_position)
        if found is None:
            return {"completions": [], "suppress": False}
        text, cursor = found
        try:
            got = suggest(text, cursor, catalog())
        except CaveqlError:
            got = []
        token = context.token
        out = []
        for c in got:
            fragment = text[cursor + c.start:cursor]
            if token.endswith(fragment):
                out.append(SimpleCompletion(text=c.text, type=c.kind))
        fragment = text[cursor + got[0].start:cursor] if got else ""
        return {"completions": out, "matched_fragment": fragment, "suppress": bool(out),
                "ordered": True}

    return cql_matcher


def _values(cat: Any, table: str, column: str) -> list[str | None]:
    info = cat.source(table)
    col = info.column(column)
    if col is None:
        return []
    return list(cat.backend.unique_string_values(col.owner).get(col.owner_column, []))


def load_ipython_extension(ipython: Any) -> None:
    """Register the magics (``%load_ext caveql`` calls this) and their Tab completion."""
    cls = _magics_class()
    magics = cls(ipython)
    ipython.register_magics(magics)
    completer = getattr(ipython, "Completer", None)
    if completer is not None and hasattr(completer, "custom_matchers"):
        completer.custom_matchers.append(_matcher(magics))
