"""The Python API: :func:`connect` to a datastack, then query it in CQL.

>>> import caveql, tempfile
>>> from caveql.datastack.tiny import build_tiny
>>> folder = build_tiny(tempfile.mkdtemp())                     # a small local datastack
>>> db = caveql.connect(path=folder)
>>> db.query("SELECT id, pt_root_id FROM cells WHERE cell_type = :t", t="BC")
   id  pt_root_id
0   2        1002
1   5        1005
>>> db.close()

Three ways to reach data, one interface:

- ``caveql.connect()``: the demo datastack (a synthetic MICrONS-like datastack
  built locally on first use, with a message on stderr);
- ``caveql.connect("minnie65_public")``: the real CAVE service (token found as
  caveclient finds it), or any CAVE-compatible server with ``server=``;
- ``caveql.connect(path="my_datastack/")``: a local datastack folder.

A name opens a local datastack when it is one (``connect("minnie65_demo")`` is the demo; see
:func:`local_datastack`), the same rule for ``caveql --datastack``, ``USE`` and ``%cql``.

Connections are cheap to create and close; settings (``version``,
``resolution``, ``timestamp``, ``live``) are attributes and also change with
``SET`` statements run on the connection.

Stopping a statement: :meth:`Connection.cancel` from another thread makes the
running statement raise :class:`~caveql.errors.CancelledError`; Ctrl-C (a
``KeyboardInterrupt``) while a statement runs in the main thread cancels it and
re-raises. Either way the connection stays usable, with its settings and ``SET``
parameters.
"""

from __future__ import annotations

import math
import os
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from types import EllipsisType
from typing import TYPE_CHECKING, Any

from caveql.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

    from caveql.backends.base import Backend
    from caveql.engine import Engine, Result

__all__ = ["DEFAULT_SERVER", "Connection", "connect", "default_connection", "demo_path", "local_datastack",
           "query"]

#: The global CAVE deployment caveclient uses when no server is given.
DEFAULT_SERVER = "https://global.daf-apis.com"

#: Name of the demo datastack (what ``SHOW DATASTACK`` says for ``connect()``).
DEMO_NAME = "minnie65_demo"

#: Seconds a Ctrl-C waits for the cancelled statement to stop before giving up on it.
CANCEL_GRACE = 5.0


def demo_path() -> str:
    """Where the demo datastack lives (``caveql demo`` builds it there): ``$CAVEQL_DEMO_PATH``,
    else the user cache folder.

    >>> os.path.basename(demo_path()) in ("minnie65_demo", os.path.basename(os.environ.get("CAVEQL_DEMO_PATH", "")))
    True
    """
    from caveql.datastack.demo import default_demo_path

    return os.fspath(default_demo_path())


def local_datastack(name: str, near: str | os.PathLike[str] | None = None) -> str | None:
    """The folder of the local datastack called ``name``, or ``None``: then the name is the service's.

    One rule for every surface (``connect(name)``, ``caveql --datastack``, ``USE``, the magic's
    ``--datastack``): a name is local when it is

    - a folder in ``near`` (the folder holding the local datastack a ``USE`` starts from),
    - the demo's, ``minnie65_demo`` (:func:`demo_path`; built on first use),
    - or registered in the config file (``caveql.repl.config``): the folder its ``[connection]
      path`` gives, under that folder's name (and under its ``datastack`` key when both are set).

    An explicit server (``server=``, ``--server``) sends every name to that server instead.

    >>> import tempfile; d = tempfile.mkdtemp(); os.mkdir(os.path.join(d, "mine"))
    >>> local_datastack("mine", near=d) == os.path.join(d, "mine")
    True
    >>> local_datastack(DEMO_NAME) == demo_path()
    True
    """
    if near is not None and name not in ("", ".", "..") and os.sep not in name:
        sibling = os.path.join(os.fspath(near), name)
        if os.path.isdir(sibling):
            return sibling
    if name == DEMO_NAME:
        return demo_path()
    return _configured().get(name)


def _configured() -> dict[str, str]:
    """The local datastacks the config file registers: ``{name: folder}``."""
    from caveql.repl.config import load_config

    config = load_config()  # a broken config file is a ConfigError naming it, not ignored
    if not config.path:
        return {}
    folder = os.path.abspath(config.path)
    names = {os.path.basename(os.path.normpath(folder)): folder}
    if config.datastack:
        names[config.datastack] = folder
    return names


def _local_backend(name: str, folder: str) -> Backend:
    from caveql.backends.local import LocalBackend

    if name == DEMO_NAME and os.path.abspath(folder) == os.path.abspath(demo_path()):
        return _demo_backend()  # built on first use
    return LocalBackend(folder)


def _demo_backend() -> Backend:
    from caveql.backends.local import LocalBackend

    path = demo_path()
    if not _looks_built(path):
        from caveql.datastack.demo import build_demo

        print(f"caveql: building the demo datastack in {path} (first use; takes a minute or so; "
              "`caveql demo` does the same)...", file=sys.stderr, flush=True)
        build_demo(path)
        print("caveql: demo datastack ready.", file=sys.stderr, flush=True)
    return LocalBackend(path)


def _looks_built(path: str) -> bool:
    if not os.path.isdir(path):
        return False
    with os.scandir(path) as entries:
        return any(True for _ in entries)


def _http_backend(datastack: str, server: str, token: str | None, cache: bool = True) -> Backend:
    from caveql.backends.http import HttpBackend

    return HttpBackend(datastack, server, token=token, cache=cache)


def _open_backend(
    datastack: str | None, server: str | None, path: str | os.PathLike[str] | None, token: str | None,
    cache: bool = True,
) -> tuple[Backend, Callable[[str], Backend] | None]:
    """The backend a connection starts on, and the opener its ``USE`` statements call.

    Names follow :func:`local_datastack`'s rule; the others go to ``server``, else
    ``$CAVEQL_SERVER``, else :data:`DEFAULT_SERVER`.
    """
    from caveql.surface import hint

    backend: Backend | None = None
    near: str | None = None  # the folder whose subfolders USE opens as local datastacks
    if path is not None:
        if datastack is not None or server is not None:
            raise ConfigError("a local datastack folder does not combine with a datastack name or server",
                              hint=hint(python="give either path= or datastack/server=",
                                        cli="give either --path or --datastack/--server"))
        from caveql.backends.local import LocalBackend

        root = os.fspath(path)
        from caveql.backends.archive import is_archive

        if is_archive(root):  # a datastack folder of Delta Lake exports (docs/datastacks.md)
            from caveql.backends.archive import ArchiveBackend

            backend, near = ArchiveBackend(root), os.path.dirname(os.path.abspath(root))
        else:
            backend, near = LocalBackend(root), os.path.dirname(os.path.abspath(root))
    elif datastack is None and server is None:
        backend, near = _demo_backend(), os.path.dirname(demo_path())
    elif datastack is None:
        raise ConfigError("a server needs a datastack name",
                          hint=hint(python="connect('minnie65_public', server=URL)",
                                    cli="--server URL --datastack NAME"))
    elif server is None and (folder := local_datastack(datastack)) is not None:
        backend, near = _local_backend(datastack, folder), os.path.dirname(folder)
    base = server or os.environ.get("CAVEQL_SERVER") or DEFAULT_SERVER

    def open_named(name: str) -> Backend:
        # USE <name>: the same rule as connect(name); an explicit server keeps every name on it
        local = local_datastack(name, near) if server is None else None
        if local is not None:
            return _local_backend(name, local)
        other = _http_backend(name, base, token, cache)
        try:
            other.info()  # asked now, so that a name the service does not know fails at the USE
        except BaseException:
            other.close()
            raise
        return other

    if backend is None:
        assert datastack is not None
        backend = _http_backend(datastack, base, token, cache)
    return backend, open_named


def _open_routed(
    datastack: str | None, server: str | None, path: str | os.PathLike[str] | None, token: str | None,
    cache: bool, places: list[Any],
) -> tuple[Backend, Callable[[str], Backend] | None]:
    """A :class:`~caveql.backends.routing.RoutingBackend` over the datastack (when one is named)
    and the archives at ``places``."""
    from caveql.backends.routing import RoutingBackend, open_archive

    service, opener = (_open_backend(datastack, server, path, token, cache)
                       if datastack is not None or server is not None or path is not None else (None, None))
    opened: list[Backend] = []
    try:
        for place in places:
            if not isinstance(place, str | os.PathLike):
                raise ConfigError(f"archives: a path or URL, not {type(place).__name__}")
            opened.append(open_archive(os.fspath(place), datastack))
        return RoutingBackend(service, opened), opener
    except BaseException:
        for b in [*opened, *([service] if service is not None else [])]:
            b.close()
        raise


class Connection:
    """A session on one datastack: an engine plus its settings.

    Use :func:`connect` to make one. Methods take CQL text and ``:name``
    parameters as keyword arguments (lists bind as IN lists).
    """

    def __init__(self, engine: Engine, *, name: str | None = None) -> None:
        self._engine = engine
        self._name = name
        self._lock = threading.RLock()  # one statement at a time per connection
        self._closed = False
        # statements called from the main thread run here, so that Ctrl-C reaches the main thread
        # at once (a DuckDB query holds it until done) and can cancel them (see _run)
        self._worker: ThreadPoolExecutor | None = None
        # the user's own tables (register): a frame's LocalTable, or a file's maker
        self._local: dict[str, Any] = {}
        self._scope: tuple[str | None, Mapping[str, Any]] = (None, {})  # see local_scope

    # -- settings ---------------------------------------------------------------------------------
    @property
    def engine(self) -> Engine:
        """The :class:`caveql.engine.Engine` behind this connection."""
        self._check_open()
        return self._engine

    @property
    def datastack(self) -> str:
        """The datastack's name (changes with ``USE``)."""
        backend = getattr(self._engine, "backend", None)
        # the HTTP backend's `name` is its kind ("http"); its datastack is `datastack`
        return str(getattr(backend, "datastack", None) or getattr(backend, "name", None) or self._name or "")

    def _setting(self, name: str) -> Any:
        return getattr(self._engine.settings, name)

    def _set(self, **changes: Any) -> None:
        settings = self._engine.settings
        try:
            self._engine.settings = replace(settings, **changes)
        except TypeError as exc:  # pragma: no cover - Settings is a dataclass by contract
            raise ConfigError(str(exc)) from exc

    @property
    def version(self) -> int | None:
        """Default materialization version (``None``: the latest)."""
        return self._setting("version")

    @version.setter
    def version(self, value: int | None) -> None:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ConfigError(f"version must be an integer or None, not {value!r}")
        self._set(version=value)

    @property
    def resolution(self) -> tuple[float, float, float] | None:
        """Default resolution (nm per unit) of positions; ``None``: each table's voxels."""
        return self._setting("resolution")

    @resolution.setter
    def resolution(self, value: Any) -> None:
        if value is not None:
            try:
                x, y, z = (float(v) for v in value)
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"resolution must be three numbers, not {value!r}") from exc
            if not all(math.isfinite(v) and v > 0 for v in (x, y, z)):
                raise ConfigError(f"resolution must be three positive finite numbers (nm per unit), "
                                  f"not {value!r}")
            value = (x, y, z)
        self._set(resolution=value)

    @property
    def timestamp(self) -> datetime | None:
        """Default timestamp for live queries (``None``: materialized versions)."""
        return self._setting("timestamp")

    @timestamp.setter
    def timestamp(self, value: datetime | str | None) -> None:
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError as exc:
                raise ConfigError(f"timestamp must be ISO-8601, not {value!r}") from exc
        if value is not None and not isinstance(value, datetime):
            raise ConfigError(f"timestamp must be a datetime or ISO-8601 string, not {value!r}")
        self._set(timestamp=value)

    @property
    def max_fetch_rows(self) -> int | None:
        """Rows a statement may fetch from the service before it is refused (``None``: no limit)."""
        return self._engine.max_fetch_rows

    @max_fetch_rows.setter
    def max_fetch_rows(self, value: int | None) -> None:
        self._engine.max_fetch_rows = value

    @property
    def live(self) -> bool:
        """Whether queries run live (``AT LIVE``) by default."""
        return bool(self._setting("live"))

    @live.setter
    def live(self, value: bool) -> None:
        self._set(live=bool(value))

    @property
    def allow_invalid_root_ids(self) -> bool:
        """Whether a query naming a root id that is not current at its version or timestamp runs
        (with notices) instead of failing with :class:`~caveql.errors.InvalidRootIdError`; also
        ``SET allow_invalid_root_ids = true``."""
        return bool(self._setting("allow_invalid_root_ids"))

    @allow_invalid_root_ids.setter
    def allow_invalid_root_ids(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise ConfigError(f"allow_invalid_root_ids must be True or False, not {value!r}")
        self._set(allow_invalid_root_ids=value)

    # -- running ----------------------------------------------------------------------------------
    def cancel(self) -> bool:
        """Stop the statement running on this connection (call it from another thread).

        The statement raises :class:`~caveql.errors.CancelledError` (code CQL070) promptly — no
        further remote request is sent, a running DuckDB query is interrupted, an HTTP answer
        being waited for is abandoned — and the connection stays usable, settings, ``SET``
        parameters and ``USE`` included. Returns whether a statement was running.

        >>> import tempfile; from caveql.datastack.tiny import build_tiny
        >>> with connect(path=build_tiny(tempfile.mkdtemp())) as db:
        ...     db.cancel()
        False
        """
        if self._closed:
            return False
        return self._engine.cancel()

    def interrupt(self, grace: float = CANCEL_GRACE) -> bool:
        """Cancel the running statement and wait up to ``grace`` seconds for it to stop;
        whether nothing runs any more (``False``: a call that cannot be interrupted is still
        running — it ends alone). What Ctrl-C does; a second Ctrl-C ends the wait.

        >>> import tempfile; from caveql.datastack.tiny import build_tiny
        >>> with connect(path=build_tiny(tempfile.mkdtemp())) as db:
        ...     db.interrupt()
        True
        """
        if self._closed:
            return True
        self._engine.cancel()
        return self._engine.wait_idle(grace)

    def _run(self, work: Callable[[Engine], Any]) -> Any:
        """``work(engine)`` under the connection's lock; from the main thread, on the worker, so
        that a ``KeyboardInterrupt`` cancels the statement (and is then re-raised)."""
        engine = self.engine
        with self._lock:
            if threading.current_thread() is not threading.main_thread():
                return work(engine)
            if self._worker is None:
                self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="caveql-statement")
            future = self._worker.submit(work, engine)
            try:
                # in slices: a Ctrl-C that the kernel hands to another thread only sets a flag,
                # which the main thread reads when its wait wakes
                while not wait_for([future], timeout=0.1)[0]:
                    pass
                return future.result()
            except KeyboardInterrupt:
                self._interrupted(future)
                raise

    def _interrupted(self, future: Future[Any]) -> None:
        """Ctrl-C while ``future`` ran: cancel it and wait (briefly) for it to stop."""
        stopped = False
        try:
            stopped = self.interrupt(CANCEL_GRACE)
            if stopped:  # (the statement's thread may still be returning)
                wait_for([future], timeout=1.0)
        finally:  # (a second Ctrl-C ends the wait)
            if not (stopped and future.done()) and self._worker is not None:
                # stuck where it cannot be interrupted: leave it to finish alone, use a new worker
                self._worker.shutdown(wait=False)
                self._worker = None

    def execute(self, text: str, /, **params: Any) -> Result:
        """Run one statement; returns the engine's :class:`~caveql.engine.Result`."""
        tables = self._tables()
        return self._run(lambda engine: engine.execute(text, params=params, tables=tables))

    def execute_script(self, text: str, on_result: Callable[[Result], object] | None = None, /,
                       **params: Any) -> list[Result]:
        """Run a script (statements separated by ``;``); one result per statement.

        ``on_result`` (positional): called with each result as soon as its statement has run,
        which is then not kept (an empty list is returned), so a script of any length holds one
        result at a time. :meth:`cancel` stops the script before its next statement, also while
        a long script is still being parsed.
        """
        tables = self._tables()
        return self._run(lambda engine: engine.execute_script(text, params=params, on_result=on_result,
                                                              tables=tables))

    def query(self, text: str, /, **params: Any) -> pd.DataFrame:
        """Run CQL and return the last statement's rows as a DataFrame.

        Statements that return no rows (``SET``, ``USE``) give a one-column frame
        ``message``.

        >>> import tempfile; from caveql.datastack.tiny import build_tiny
        >>> db = connect(path=build_tiny(tempfile.mkdtemp()))
        >>> db.query("SELECT COUNT(*) AS n FROM cells WHERE pt_root_id IN :ids", ids=[0, 1001])
           n
        0  2
        >>> db.close()
        """
        last: list[Result] = []

        def keep_last(result: Result) -> None:
            last[:] = [result]  # the earlier statements' results are not kept

        self.execute_script(text, keep_last, **params)
        if not last:
            raise ConfigError("no statement to run")
        return _as_frame(last[0], text, self)

    def explain(self, text: str, /, *, analyze: bool = False, **params: Any) -> str:
        """The plan of a SELECT: every remote call as the exact request, then local steps.

        >>> import tempfile; from caveql.datastack.tiny import build_tiny
        >>> with connect(path=build_tiny(tempfile.mkdtemp())) as db:
        ...     print(db.explain("SELECT id FROM cells LIMIT 1").splitlines()[0])
        Logical plan:
        """
        tables = self._tables()
        return self._run(lambda engine: engine.explain(text, params=params, analyze=analyze, tables=tables))

    def run_file(self, path: str | os.PathLike[str], /, **params: Any) -> list[Result]:
        """Run a ``.cql`` file; keyword arguments override its declared parameters.

        Errors name ``file:line:column``. A keyword the file neither declares nor uses (a
        misspelt name) is a :class:`~caveql.errors.CqlFileError` with "did you mean", as an
        unused keyword of :meth:`query` / :meth:`execute` is a ``ParameterError``.
        """
        from caveql.cqlfile import CqlFile

        cql = CqlFile.load(path)
        return self.run_cql(cql, params)

    def run_cql(self, cql: Any, params: Mapping[str, Any], *, from_text: bool = False) -> list[Result]:
        """Run a loaded :class:`~caveql.cqlfile.CqlFile` with ``params`` bound over its defaults."""
        from caveql.errors import CaveqlError

        # bind() refuses a name neither declared nor used; declared ones the statements never
        # use are not passed on (the engine refuses unused names)
        values = cql.used(cql.bind(params, from_text=from_text))
        try:
            with self.local_scope(base_dir=cql.base_dir):  # its files are relative to its folder
                return self.execute_script(cql.text, **values)
        except CaveqlError as err:
            raise err.with_source(cql.text, cql.filename) from None

    def tables(self) -> list[str]:
        """Table names at the connection's version."""
        return list(self.engine.catalog().tables())

    # -- the user's own tables --------------------------------------------------------------------
    def register(self, name: str, data: Any, /, *, function: str | None = None, **options: Any) -> None:
        """Make ``data`` a table called ``name`` in this connection's statements: a pandas or
        polars DataFrame, an Arrow table, or the path of a CSV, Parquet or JSON file (format from
        the extension, or ``function="read_csv"``; ``options`` as ``read_csv``'s, e.g.
        ``delim=";"``). A frame is taken as it is now (register it again after changing it); a
        file is read when a statement uses it, again whenever it has changed. A name the
        datastack already uses for a table or view is refused: CAVE's tables come first.
        See docs/language.md, "Your own data as tables".

        >>> import tempfile, pandas as pd; from caveql.datastack.tiny import build_tiny
        >>> with connect(path=build_tiny(tempfile.mkdtemp())) as db:
        ...     db.register("picked", pd.DataFrame({"root_id": [1002, 1005]}))
        ...     db.registered()
        {'picked': 'a frame: 2 rows, columns root_id int'}
        """
        from caveql.analyze.local_tables import registration, valid_name

        self._check_open()
        if valid_name(name):
            catalog = self.engine.catalog()
            if name.lower() in {n.lower() for n in [*catalog.tables(), *catalog.views()]}:
                raise ConfigError(f"cannot register {name!r}: the datastack has a table or view of "
                                  "that name (its tables come first in FROM)", hint="choose another name")
        self._local[name] = registration(name, data, options, function=function,
                                         base_dir=self._scope[0])

    def unregister(self, name: str, /) -> None:
        """Forget the table registered as ``name`` (:meth:`register`)."""
        if self._local.pop(name, None) is None:
            from caveql.errors import did_you_mean

            close = did_you_mean(name, list(self._local))
            raise ConfigError(f"no table {name!r} is registered" + (
                f"; registered: {', '.join(sorted(self._local))}" if self._local else ""),
                hint=f"did you mean {close[0]!r}?" if close else None)

    def registered(self) -> dict[str, str]:
        """The registered tables, each with what it is (a frame, or a file and its columns)."""
        from caveql.analyze.local_tables import LocalTables, describe

        tables = LocalTables(self._local)
        return {name: describe(tables, name) for name in self._local}

    @contextmanager
    def local_scope(self, *, base_dir: str | os.PathLike[str] | None = None,
                    tables: Mapping[str, Any] | None = None) -> Iterator[None]:
        """Within the block, file paths in statements are relative to ``base_dir`` (default: the
        working directory) and ``tables`` (name -> frame or path) are registered besides
        :meth:`register`'s, for that block only (the Jupyter magic's notebook variables)."""
        from caveql.analyze.local_tables import registration

        before = self._scope
        folder = os.fspath(base_dir) if base_dir is not None else before[0]
        extra = dict(before[1])
        for name, data in (tables or {}).items():
            extra[name] = registration(name, data, base_dir=folder)
        self._scope = (folder, extra)
        try:
            yield
        finally:
            self._scope = before

    def _tables(self) -> Any:
        """The local tables of the next statement: registered, the scope's, its folder."""
        from caveql.analyze.local_tables import LocalTables

        folder, extra = self._scope
        return LocalTables({**self._local, **extra}, base_dir=folder)

    def close(self) -> None:
        """Release the backend (files, HTTP connections). Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._worker is not None:
            self._worker.shutdown(wait=False)
            self._worker = None
        closer = getattr(self._engine, "close", None)
        if closer is not None:
            closer()
        else:
            backend = getattr(self._engine, "backend", None)
            if backend is not None:
                backend.close()

    def _check_open(self) -> None:
        if self._closed:
            raise ConfigError("this connection is closed")

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"version={self.version!r}"
        return f"<caveql.Connection {self.datastack or '?'} {state}>"


def _as_frame(result: Result, text: str, conn: Connection) -> pd.DataFrame:
    """The result's frame with ``attrs`` (caveclient's keys and ``attrs["caveql"]``: see
    :mod:`caveql.frames`); ``text`` is the script that ran, of which ``result`` is the last."""
    from caveql.frames import result_frame

    span = getattr(result.statement, "span", None)
    statement = text[span.start:span.end] if span is not None else text
    engine = conn._engine
    return result_frame(result, text=statement.strip() or text, datastack=conn.datastack,
                        backend=getattr(engine, "backend", None), settings=engine.settings)


def connect(
    datastack: str | None = None,
    *,
    server: str | None = None,
    path: str | os.PathLike[str] | None = None,
    token: str | None = None,
    version: int | None = None,
    resolution: Any = None,
    timestamp: datetime | str | None = None,
    cache: bool = True,
    max_fetch_rows: int | None | EllipsisType = ...,
    archives: Any = None,
    allow_invalid_root_ids: bool = False,
) -> Connection:
    """Open a :class:`Connection` (see the module docstring for the three kinds).

    ``archives``: Delta Lake archive locations (paths or ``gs://``/``s3://``/``https://`` URLs;
    one or a list) joined to the datastack: ``AT VERSION N`` is answered from an archive when
    the service lists N as expired (or not at all, or is unreachable), else by the service
    (:class:`~caveql.backends.routing.RoutingBackend`); alone, the archives are the datastack.

    ``cache=False`` neither reads nor writes the HTTP backend's disk cache of answers from
    materialized versions (local datastacks have none). ``max_fetch_rows``: a statement that
    would fetch more rows from the service is refused with
    :class:`~caveql.errors.FetchLimitError` before it fetches any (default
    :data:`caveql.engine.DEFAULT_MAX_FETCH_ROWS`, 20 million; ``None``: no limit); also
    ``Connection.max_fetch_rows`` and ``SET max_fetch_rows = N`` / ``NONE``.
    ``allow_invalid_root_ids``: run queries naming root ids that are not current at their version
    or timestamp (notices instead of :class:`~caveql.errors.InvalidRootIdError`).

    >>> import tempfile; from caveql.datastack.tiny import build_tiny
    >>> with connect(path=build_tiny(tempfile.mkdtemp()), version=1) as db:
    ...     db.version, db.tables()
    (1, ['cells', 'nuclei', 'synapses'])
    >>> db = connect("minnie65_public")  # doctest: +SKIP
    """
    from caveql.engine import Engine, Settings

    places = [archives] if isinstance(archives, str | os.PathLike) else list(archives or ())
    if places:
        backend, opener = _open_routed(datastack, server, path, token, cache, places)
    else:
        backend, opener = _open_backend(datastack, server, path, token, cache)
    try:
        engine = Engine(backend, settings=Settings(), opener=opener)
        if max_fetch_rows is not ...:
            engine.max_fetch_rows = max_fetch_rows
        conn = Connection(engine, name=datastack or (os.path.basename(os.fspath(path).rstrip("/\\"))
                                                    if path is not None else backend.name if places
                                                    else DEMO_NAME))
        conn.version = version
        conn.resolution = resolution
        conn.timestamp = timestamp
        conn.allow_invalid_root_ids = allow_invalid_root_ids
    except BaseException:
        backend.close()
        raise
    return conn


_default: Connection | None = None
_default_lock = threading.Lock()


def default_connection() -> Connection:
    """The shared connection :func:`query` uses (the demo datastack, opened on first use)."""
    global _default
    with _default_lock:
        if _default is None or _default._closed:
            _default = connect()
        return _default


def query(text: str, /, **params: Any) -> pd.DataFrame:
    """One-shot query on the default connection (the demo datastack).

    >>> import os, tempfile; from caveql.datastack.tiny import build_tiny
    >>> os.environ["CAVEQL_DEMO_PATH"] = str(build_tiny(tempfile.mkdtemp()))  # a stand-in demo
    >>> int(query("SELECT COUNT(*) AS n FROM cells").n[0])
    6
    >>> default_connection().close(); del os.environ["CAVEQL_DEMO_PATH"]
    """
    return default_connection().query(text, **params)
