"""The state of one interactive or scripted use of caveql, shared by the CLI and the REPL.

A :class:`Session` owns a (lazily opened) :class:`~caveql.api.Connection` and
the display settings the backslash commands change (format, ``\\x``,
``\\timing``, ``\\o``, pager, ``\\set`` variables). It runs input, prints
results and renders errors; the REPL (repl/app.py) only reads lines and calls
:meth:`Session.run`.

>>> import io
>>> s = Session(connect=lambda: None, out=io.StringIO(), err=io.StringIO())
>>> s.run("\\\\set ids (1, 2)")
True
>>> s.variables
{'ids': [1, 2]}
>>> s.run("\\\\T jsn"), s.err.getvalue().splitlines()[0]
(False, "error[CQL060]: unknown output format 'jsn'")
"""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TextIO

from caveql.api import CANCEL_GRACE
from caveql.bind import only_used
from caveql.errors import CaveqlError, ConfigError

if TYPE_CHECKING:
    import pandas as pd

    from caveql.api import Connection
    from caveql.engine import Result

__all__ = ["Session", "is_command"]

_QUIT_WORDS = {"exit", "quit", "\\q", ".quit", "exit;", "quit;"}


def is_command(text: str) -> bool:
    """Whether a line of input is a backslash command (or a bare ``exit``/``quit``).

    >>> is_command("\\\\dt"), is_command("  quit"), is_command("SELECT 1")
    (True, True, False)
    """
    stripped = text.strip()
    return stripped.startswith("\\") or stripped.startswith(".mode") or stripped.lower() in _QUIT_WORDS


class _FetchQuestion:
    """The fetch guard's question, handed from the statement's thread to the main one."""

    def __init__(self, message: str) -> None:
        self.message = message
        self.answer = False


class Session:
    """Display settings, variables and the connection of one CLI/REPL run."""

    def __init__(
        self,
        connect: Callable[[], Connection | None],
        *,
        out: TextIO | None = None,
        err: TextIO | None = None,
        fmt: str = "table",
        interactive: bool = False,
        color: bool = False,
        max_rows: int = 40,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        self._connect = connect
        self._conn: Connection | None = None
        self._conn_lock = threading.Lock()
        self.out: TextIO = out if out is not None else sys.stdout
        self.err: TextIO = err if err is not None else sys.stderr
        self.format = fmt
        self.interactive = interactive
        self.color = color
        self.max_rows = max_rows
        self.expanded = "off"  # "on" | "off" | "auto"
        self.timing = False
        self.pager = "auto" if interactive else "off"
        self.output_file: str | None = None
        self.variables: dict[str, Any] = dict(params or {})
        self.last_frame: pd.DataFrame | None = None
        self.last_query: str | None = None
        self.last_error: CaveqlError | None = None
        self.next_input: str | None = None
        self.quit = False
        self.null = "NULL"
        self.history_file: str | None = None  # set by the REPL (\\s lists it)
        self.width: int | None = None  # table width (None: the terminal's, 120 when not a terminal)
        #: set by the REPL once the completion catalog has loaded (or failed to)
        self.catalog_ready = threading.Event()
        #: seconds Ctrl-C waits for a cancelled statement to stop before opening a fresh connection:
        #: the connection's own grace (what it waits for a statement of the main thread)
        self.cancel_grace = CANCEL_GRACE

    # -- the connection ---------------------------------------------------------------------------
    @property
    def connection(self) -> Connection:
        """The connection, opened on first use (thread-safe: the REPL warms it up in the background)."""
        with self._conn_lock:
            if self._conn is None:
                conn = self._connect()
                if conn is None:
                    raise ConfigError("no connection")
                self._conn = conn
            return self._conn

    @property
    def connected(self) -> bool:
        """True once the connection is open."""
        return self._conn is not None

    def close(self) -> None:
        """Close the connection if it was opened."""
        with self._conn_lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- running input ----------------------------------------------------------------------------
    def run(self, text: str, *, cancellable: bool = False) -> bool:
        """Run one input (a backslash command or a CQL script); False if it failed."""
        if not text.strip():
            return True
        if is_command(text):
            from caveql.repl.commands import find, split_command

            first, newline, rest = text.strip().partition("\n")
            if newline and rest.strip():
                # pasted "\\timing on" + statements: the command line, then the rest
                return self.run(first, cancellable=cancellable) and (
                    self.quit or self.run(rest, cancellable=cancellable))
            stripped = text.strip()
            if stripped.rstrip(";").lower() in _QUIT_WORDS:
                self.quit = True
                return True
            name, arg = split_command(stripped)
            try:
                ok = find(name).handler(self, arg)
            except CaveqlError as err:
                self.show_error(err, None)
                return False
            except KeyboardInterrupt:
                if not cancellable:
                    raise
                # Ctrl-C in a command that runs a statement (\explain analyze, \values): the
                # connection has cancelled it (caveql.api) and stays usable
                self.info("Cancelled.")
                return False
            return ok is not False
        return self.run_cql(text, cancellable=cancellable)

    def run_cql(self, text: str, params: Mapping[str, Any] | None = None, *,
                cancellable: bool = False, filename: str | None = None) -> bool:
        """Run a CQL script, printing each statement's result as it completes.

        Statements run one at a time, so those before a failing one have printed their results
        (as psql and DuckDB do); a script that does not parse runs nothing. Errors are rendered
        with a caret, at the script's own line and column. Results are printed and dropped as
        they come (a script of any length holds one at a time), and Ctrl-C (or
        :meth:`~caveql.api.Connection.cancel`) stops the script before its next statement,
        also while a long script is still being parsed.
        """
        self.last_query = text
        # variables are offered to every statement: pass on only those it uses (the engine
        # refuses an unused name, as a misspelt one; command-line names are checked in cli.py);
        # found in the statement's thread, as the parse is, where Ctrl-C cancels
        offered = {**self.variables, **(params or {})}
        failed_output: list[CaveqlError] = []
        # \timing times each statement, from the end of the previous one's display: not the
        # display itself (the pager waits for the reader)
        started = [time.perf_counter()]

        def show(result: Result) -> None:
            took = time.perf_counter() - started[0]
            try:
                self.show_result(result)
            except CaveqlError as err:  # writing the output failed (-o path, parquet of odd objects)
                failed_output.append(err)
                raise
            if self.timing:
                self.info(f"Time: {took:.3f}s")
            started[0] = time.perf_counter()

        try:
            if cancellable:
                if self._run_cancellable(
                        lambda c, emit: c.execute_script(text, emit, **only_used(text, offered)),
                        show) is None:
                    return False
            else:
                self.connection.execute_script(text, show, **only_used(text, offered))
        except CaveqlError as err:
            if failed_output and err is failed_output[0]:
                self.show_error(err, None)
            else:
                self.show_error(err, text, filename)
            return False
        return True

    def run_script(self, text: str, *, filename: str | None = None) -> bool:
        """Run a script that may mix CQL and backslash-command lines (stdin, like psql/DuckDB).

        A line starting with ``\\`` between statements is a command; the CQL between commands
        runs as one script, padded with blank lines so errors keep the script's line numbers.
        Stops at the first failure (False).
        """
        lines = text.split("\n")
        pending: list[str] = []
        start = 0

        def flush() -> bool:
            chunk = "\n".join(pending)
            if not chunk.strip():
                return True
            return self.run_cql("\n" * start + chunk, filename=filename)

        for i, line in enumerate(lines):
            before = "\n".join(pending).strip()
            if line.lstrip().startswith("\\") and (not before or before.endswith(";")):
                if not flush() or not self.run(line):
                    return False
                if self.quit:
                    return True
                pending, start = [], i + 1
            else:
                pending.append(line)
        return flush()

    def run_file(self, path: str, params: Mapping[str, str], *, cancellable: bool = False) -> bool:
        """Run a ``.cql`` file with command-line ``params`` (strings, typed by its header)."""
        from caveql.cqlfile import CqlFile

        try:
            cql = CqlFile.load(path)
            values = cql.bind({**{k: v for k, v in self.variables.items() if k in
                                  {p.name for p in cql.params}}, **params}, from_text=True)
        except CaveqlError as err:
            self.show_error(err, err.source, err.filename)
            return False
        try:
            scope = self.connection.local_scope(base_dir=cql.base_dir)  # its files: near it
        except CaveqlError as err:
            self.show_error(err, None)
            return False
        with scope:
            return self.run_cql(cql.text, values, cancellable=cancellable, filename=cql.filename)

    def explain(self, text: str, *, analyze: bool = False) -> bool:
        """Print the plan of a statement."""
        values = only_used(text, self.variables)
        try:
            plan = self.connection.explain(text, analyze=analyze, **values)
        except CaveqlError as err:
            self.show_error(err, text)
            return False
        self._emit(plan)
        return True

    def _run_cancellable(self, work: Callable[..., Any],
                         on_result: Callable[[Any], object] | None = None) -> Any:
        """Run ``work(connection)`` on a worker thread; Ctrl-C cancels it and keeps the session
        usable (returns None).

        With ``on_result``, ``work`` is called as ``work(connection, emit)``: each ``emit(x)``
        in the worker hands ``x`` to ``on_result`` here, in the calling (main) thread — where
        output, the pager and Ctrl-C belong — and waits until it has been shown, so the statements
        never run ahead of what the screen shows. An exception from ``on_result`` is raised in the
        worker (stopping the script) and then here.
        """
        conn = self.connection
        box: dict[str, Any] = {}
        # waited on instead of Thread.join: on Python < 3.13 a join interrupted by Ctrl-C can leave
        # the thread reported as stopped (is_alive() False) while it still runs
        finished = threading.Event()
        handoff: queue.Queue[tuple[Any, dict[str, Any], threading.Event]] = queue.Queue()

        def emit(item: Any) -> None:
            from caveql import cancel

            reply: dict[str, Any] = {}
            shown = threading.Event()
            handoff.put((item, reply, shown))
            while not shown.wait(0.05):
                cancel.check()  # Ctrl-C cancelled the script while the main thread showed it
            if "error" in reply:
                raise reply["error"]

        def confirm(message: str) -> bool:
            # the fetch guard (Engine.check_fetch) asks here in the main thread, where input belongs
            question = _FetchQuestion(message)
            emit(question)
            return question.answer

        def target() -> None:
            engine = getattr(conn, "_engine", None)  # (not opened or closing: no question to ask)
            try:
                if engine is not None and self.interactive:
                    engine.confirm = confirm
                box["value"] = work(conn, emit) if on_result is not None else work(conn)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                box["error"] = exc
            finally:
                if engine is not None:
                    engine.confirm = None
                finished.set()

        worker = threading.Thread(target=target, name="caveql-query", daemon=True)
        worker.start()
        try:
            while not finished.is_set():
                try:
                    item, reply, shown = handoff.get(timeout=0.05)
                except queue.Empty:
                    continue
                try:
                    if isinstance(item, _FetchQuestion):
                        item.answer = self.ask_fetch(item.message)
                        continue
                    assert on_result is not None
                    on_result(item)
                except Exception as exc:  # noqa: BLE001 - stops the script, raised below
                    reply["error"] = exc
                finally:
                    shown.set()
        except KeyboardInterrupt:
            self._abandon(conn, finished)
            self.info("Cancelled.")
            return None
        if "error" in box:
            raise box["error"]
        return box.get("value")

    def ask_fetch(self, message: str) -> bool:
        """Ask whether to run a statement over ``max_fetch_rows`` (y/N; end of input: no)."""
        self.err.write(f"{message}.\n")
        self.err.flush()
        try:
            answer = input("Fetch them anyway? [y/N] ")
        except EOFError:
            return False
        return answer.strip().lower() in ("y", "yes")

    def _abandon(self, conn: Connection, finished: threading.Event) -> None:
        """Cancel the running statement and keep the connection (``SET`` parameters, ``USE``);
        only if it does not stop within ``cancel_grace`` seconds (a call that cannot be
        interrupted), forget the busy connection: the next query opens a fresh one with the same
        settings, and the old one is closed when its call returns.

        Cancelling and waiting are the connection's (:meth:`~caveql.api.Connection.interrupt`);
        a stuck call holds the connection's lock (it was called from the REPL's worker), which is
        why the fallback is a fresh connection rather than a fresh worker."""
        deadline = time.monotonic() + self.cancel_grace
        try:
            conn.interrupt(self.cancel_grace)
            # then the worker returns (or was not yet in a statement, e.g. still lexing a script)
            while not finished.wait(0.05) and time.monotonic() < deadline:
                pass
        except KeyboardInterrupt:
            pass  # a second Ctrl-C: stop waiting
        if finished.is_set():
            return
        settings, params = conn.engine.settings, dict(conn.engine.params)
        local = dict(conn._local)  # the tables \table registered
        with self._conn_lock:
            self._conn = None
        previous = self._connect

        def reconnect() -> Connection | None:
            fresh = previous()
            if fresh is not None:
                fresh.engine.settings = settings
                fresh.engine.params.update(params)
                fresh._local.update(local)
            self._connect = previous
            return fresh

        self._connect = reconnect

        def close_later() -> None:
            finished.wait()
            conn.close()

        threading.Thread(target=close_later, daemon=True).start()

    # -- output -----------------------------------------------------------------------------------
    def show_result(self, result: Result) -> None:
        """Print a statement's result: rows as a table (or to the ``\\o`` file), or its message."""
        kind = type(result.statement).__name__
        if result.message:
            if kind in ("Explain", "Describe"):
                self._emit(result.message)  # the answer itself: stdout
            else:
                self.info(result.message)  # status (SET, USE): stderr in scripts
        if result.frame is not None:
            self.last_frame = result.frame
            self.last_result = result  # (\ng, --format neuroglancer: its plan knows the resolution)
            self.show_frame(result.frame)
        for notice in getattr(result, "notices", ()):
            self.info(f"notice: {notice}")

    def show_frame(self, df: pd.DataFrame, *, full: bool = False) -> None:
        """Render a frame in the session's format (to the ``\\o`` file if one is set)."""
        from caveql.repl.formatting import render, render_to_file

        if self.output_file:
            try:
                fmt = render_to_file(df, self.output_file, None if self.format == "table" else self.format)
            except OSError as exc:
                raise ConfigError(f"cannot write {self.output_file}: {exc.strerror or exc}") from exc
            self.info(f"Wrote {len(df):,} rows to {self.output_file} ({fmt}).")
            return
        if self.format == "parquet":
            data = render(df, "parquet")
            assert isinstance(data, bytes)
            if getattr(self.out, "isatty", lambda: False)():
                raise ConfigError("parquet is binary: write it to a file (-o out.parquet or \\o out.parquet)")
            buffer = getattr(self.out, "buffer", None)
            if buffer is None:
                raise ConfigError("parquet output needs a binary stream; use -o out.parquet")
            self.out.flush()
            buffer.write(data)
            buffer.flush()
            return
        width = self._width()
        max_rows = 0 if full else self.max_rows
        fmt = self.format
        if fmt == "table" and self.expanded == "on":
            fmt = "vertical"
        text = render(df, fmt, max_rows=max_rows, max_width=0 if full else width, null=self.null)
        assert isinstance(text, str)
        if fmt == "table" and self.expanded == "auto" and len(df.columns) > 1:
            natural = render(df, "table", max_rows=max_rows, max_width=0, null=self.null)
            assert isinstance(natural, str)
            if max(len(line) for line in natural.splitlines()) > width:
                text = render(df, "vertical", max_rows=max_rows, null=self.null)  # type: ignore[assignment]
        self._emit(text)

    def _width(self) -> int:
        if self.width is not None:
            return self.width
        return self._terminal_size().columns if self.interactive else 120

    def _terminal_size(self) -> os.terminal_size:
        """The terminal's own size, asked of the terminal: not ``$COLUMNS``/``$LINES`` first, as
        :func:`shutil.get_terminal_size` does, since a shell that exports them leaves them stale
        once the window is resized (and tables were cut to 80 columns on a wider screen)."""
        for stream in (self.out, sys.__stdout__):
            try:
                return os.get_terminal_size(stream.fileno())  # type: ignore[union-attr]
            except (AttributeError, OSError, ValueError):  # not a terminal (io.UnsupportedOperation)
                continue
        return shutil.get_terminal_size((120, 40))

    def _emit(self, text: str) -> None:
        if not text.endswith("\n"):
            text += "\n"
        if self.interactive and self.pager != "off" and self._page(text):
            return
        self.out.write(text)
        self.out.flush()

    def _page(self, text: str) -> bool:
        rows = self._terminal_size().lines
        if self.pager == "auto" and text.count("\n") < rows - 2:
            return False
        if not getattr(self.out, "isatty", lambda: False)():
            return False
        cmd = os.environ.get("CAVEQL_PAGER") or os.environ.get("PAGER") or "less"
        env = dict(os.environ)
        env.setdefault("LESS", "-SRXF")  # chop long lines, keep colours, quit if one screen
        try:
            subprocess.run(cmd, shell=True, input=text, text=True, env=env, check=False)
        except OSError:
            return False
        return True

    def info(self, message: str) -> None:
        """A status line (to stderr in scripts, so stdout stays data)."""
        stream = self.out if self.interactive else self.err
        stream.write(message + "\n")
        stream.flush()

    def print_lines(self, lines: list[str]) -> None:
        """Print lines of command output."""
        self._emit("\n".join(lines))

    def show_error(self, err: CaveqlError, source: str | None, filename: str | None = None) -> None:
        """Render an error with its caret on stderr and remember it (the REPL moves the cursor)."""
        if source is not None:
            err.with_source(source, filename)
        self.last_error = err
        self.err.write(err.render(color=self.color) + "\n")
        self.err.flush()

    # -- catalog helpers for commands ------------------------------------------------------------
    def unique_values(self, table: str, column: str) -> list[str | None]:
        """Distinct values of a string column (from the service's unique-values call)."""
        catalog = self.connection.engine.catalog()
        backend = getattr(catalog, "backend", None)
        owner = table
        source = getattr(catalog, "source", None)
        if source is not None:
            info = source(table)
            col = info.column(column)
            if col is None:
                from caveql.errors import UnknownColumnError, did_you_mean

                raise UnknownColumnError(f"unknown column '{column}' in {table}",
                                         candidates=did_you_mean(column, [c.name for c in info.columns]))
            owner, column = col.owner, col.owner_column
        if backend is None:
            raise ConfigError("this connection cannot list values")
        return list(backend.unique_string_values(owner).get(column, []))

    def where(self) -> tuple[str, str | None]:
        """The datastack's name and, for a service, the server's host (prompt, toolbar,
        ``\\conninfo``).

        Both follow ``USE`` (the backend in use); a local datastack has no host.

        >>> import caveql, io
        >>> s = Session(lambda: caveql.connect("minnie65_public", server="https://cave.example.org:8443",
        ...                                    token="t" * 32, cache=False), out=io.StringIO())
        >>> s.where()
        ('minnie65_public', 'cave.example.org:8443')
        >>> s.close()
        """
        from urllib.parse import urlsplit

        conn = self.connection
        server = getattr(getattr(conn.engine, "backend", None), "server", None)
        host = (urlsplit(server).netloc or server) if isinstance(server, str) else None
        return conn.datastack, host

    def describe_connection(self) -> list[str]:
        """Lines for ``\\conninfo``."""
        conn = self.connection
        backend = getattr(conn.engine, "backend", None)
        where = getattr(backend, "server", None) or getattr(backend, "path", None) or getattr(
            backend, "root", None)
        return [f"datastack:  {conn.datastack}",
                f"source:     {where if where is not None else type(backend).__name__}",
                f"version:    {conn.version if conn.version is not None else 'latest'}",
                f"resolution: {conn.resolution or 'table voxels'}",
                f"timestamp:  {conn.timestamp or '-'}",
                f"live:       {conn.live}"]
