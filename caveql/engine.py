"""The engine: CQL text in, results out — parse, analyze, plan, execute, and the other statements.

>>> import tempfile
>>> from caveql.backends.local import LocalBackend
>>> from caveql.datastack.tiny import build_tiny
>>> eng = Engine(LocalBackend(build_tiny(tempfile.mkdtemp())))
>>> eng.execute("SELECT id, cell_type FROM cells WHERE cell_type = 'BC'").frame
   id cell_type
0   2        BC
1   5        BC
>>> eng.execute("SELECT COUNT(*) AS n FROM synapses WHERE pre_pt_root_id = :r",
...             params={"r": 1001}).frame.n[0]
np.int64(4)

:meth:`Engine.cancel` (from any thread) stops the statements running on the engine:
each call (``execute``, ``execute_script``, ``explain``) has its own
:class:`caveql.cancel.CancelToken` from the moment it starts parsing, and each of its
statements a child of it, so a cancel stops a script before its next statement (or its parse
within a statement), the next call starts fresh, and ``SET`` parameters, ``USE`` and settings
are kept. Parameter values are checked when bound (:mod:`caveql.bind`).

>>> eng.cancel()                     # nothing running: nothing to stop
False
"""

from __future__ import annotations

import inspect
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

import pandas as pd

from caveql import cancel as cancelling
from caveql.analyze import analyze, parse_timestamp, statement_options
from caveql.analyze.blocks import root_select
from caveql.analyze.catalog import Catalog
from caveql.analyze.local_tables import LocalTables
from caveql.analyze.resolve import constant_value
from caveql.analyze.settings import Settings
from caveql.analyze.values import value_notices
from caveql.backends.base import Backend
from caveql.bind import check_counts, check_names, check_values, param_uses
from caveql.errors import (
    CancelledError,
    CaveqlError,
    ConfigError,
    CqlSemanticError,
    ExecutionError,
    FetchLimitError,
    TransportError,
)
from caveql.execute import execute as run_plan
from caveql.execute import execute_arrow
from caveql.execute.result import Result
from caveql.execute.roots import check_roots
from caveql.identity.fold import fold as fold_identity
from caveql.plan import plan as make_plan
from caveql.plan.estimate import Fetch, requests_for, total
from caveql.plan.explain import explain_text
from caveql.plan.physical import PhysicalPlan, RemoteCall
from caveql.plancache import PlanCache, params_key, storable
from caveql.plancache import key as plan_key
from caveql.surface import hint as surface_hint
from caveql.syntax import ast, parse
from caveql.syntax.parser import MEMO_MAX_TEXT

__all__ = ["DEFAULT_MAX_FETCH_ROWS", "Engine", "Result", "Settings"]

#: Rows a statement may fetch from the service before it is refused (the REPL asks first).
#: 20 million: the demo's whole synapse table (2 million by default, `--synapses` rarely beyond
#: 10 million) and every query of the seed page stay below it; a full scan of a real synapse
#: table (337 million rows in minnie65, thousands of requests, hours) is far above it.
DEFAULT_MAX_FETCH_ROWS = 20_000_000

#: The statements that are queries (a SELECT, a set operation, a WITH).
_QUERIES = (ast.Select, ast.SetOp, ast.With)

#: Whether analysis takes the user's local tables (``analyze(..., tables=)``).
_ANALYZE_TAKES_TABLES = "tables" in inspect.signature(analyze).parameters


class Engine:
    """Runs CQL statements against one backend (``USE`` switches backends via ``opener``)."""

    def __init__(self, backend: Backend, settings: Settings | None = None,
                 opener: Callable[[str], Backend] | None = None, *,
                 max_fetch_rows: int | None = DEFAULT_MAX_FETCH_ROWS) -> None:
        self.backend = backend
        self.settings = settings or Settings()
        self.opener = opener
        self.max_fetch_rows = max_fetch_rows
        #: asked (with the refusal's message) before a statement over ``max_fetch_rows`` runs:
        #: True lets it run (the REPL's y/N prompt); ``None``: refuse
        self.confirm: Callable[[str], bool] | None = None
        self.params: dict[str, Any] = {}
        self._catalogs: dict[int, Catalog] = {}
        self._plans = PlanCache()  # statements run again are not planned again (caveql.plancache)
        self._stamps: dict[int, datetime | None] | None = None
        self._lock = threading.RLock()
        self._owns_backend = False  # only backends USE opened are closed by the engine
        self._running: set[cancelling.CancelToken] = set()  # tokens of the statements in flight
        self._idle = threading.Condition(self._lock)  # notified when the last one ends
        self._call_tables = threading.local()  # the running call's LocalTables (_local_tables)

    @property
    def max_fetch_rows(self) -> int | None:
        """The fetch guard's threshold: rows a statement may fetch (``None``: no limit); see
        :meth:`check_fetch`. ``SET max_fetch_rows = N`` / ``= NONE`` changes it."""
        return self._max_fetch_rows

    @max_fetch_rows.setter
    def max_fetch_rows(self, value: int | None) -> None:
        self._max_fetch_rows = _fetch_limit(value)

    # ------------------------------------------------------------------ catalogs
    def _versions(self) -> list[int]:
        return sorted(self.backend.versions())

    def _catalog(self, version: int) -> Catalog:
        with self._lock:
            cat = self._catalogs.get(version)
            if cat is None:
                cat = self._catalogs[version] = Catalog(self.backend, version)
            return cat

    def _default_version(self) -> int:
        if self.settings.version is not None:
            return self.settings.version
        versions = self._versions()
        if not versions:
            raise ConfigError("the datastack has no materialization versions")
        return versions[-1]

    def _version_at(self, ts: datetime) -> int:
        """The newest version materialized at or before ``ts`` (else the oldest), as the service picks."""
        if self._stamps is None:
            stamps: dict[int, datetime | None] = {}
            for v in self._versions():
                raw = self.backend.version_metadata(v).get("time_stamp")
                try:
                    stamps[v] = parse_timestamp(raw) if raw else None
                except CaveqlError:
                    stamps[v] = None
            self._stamps = stamps
        before = [v for v, t in self._stamps.items() if t is not None and t <= ts]
        if before:
            return max(before, key=lambda v: self._stamps[v])  # type: ignore[index,return-value]
        if self._stamps and all(t is None for t in self._stamps.values()):
            # e.g. an archive of Delta Lake exports: no version says when it was made
            raise ConfigError("no version of this datastack has a time stamp: a timestamp cannot pick one",
                              hint="name the version (AT VERSION n)")
        return min(self._stamps)

    def catalog(self, version: int | None = None) -> Catalog:
        """The catalog at ``version`` (default: the session's version)."""
        return self._catalog(version if version is not None else self._default_version())

    # ------------------------------------------------------------------ public API
    def cancel(self) -> bool:
        """Stop every statement running on this engine (thread-safe; call it from another thread).

        The running statement raises :class:`~caveql.errors.CancelledError` promptly: no further
        remote request is sent, a running DuckDB query is interrupted, an HTTP answer being
        waited for is abandoned (see docs/remote.md); a script, also one still being parsed, stops
        before its next statement. Whether anything was running.
        """
        with self._lock:
            running = list(self._running)
        for token in running:
            token.cancel()
        return bool(running)

    def wait_idle(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until no statement runs; whether none does.

        Waits in short slices, so a ``KeyboardInterrupt`` in the waiting thread ends the wait.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._running:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(min(left, 0.05))
        return True

    def execute(self, text: str, params: Mapping[str, Any] | None = None, *,
                tables: LocalTables | None = None) -> Result:
        """Run one statement (``tables``: the user's local tables it may read, see
        :mod:`caveql.analyze.local_tables`; default: none registered, paths relative to the
        working directory)."""
        with self._call():
            script = self._parse(text)
            if len(script.statements) != 1:
                raise CqlSemanticError(
                    f"execute() runs one statement, got {len(script.statements)}; use execute_script()",
                    span=script.statements[1].span if len(script.statements) > 1 else None,
                ).with_source(text)
            self._check_params(script.statements, text, params)
            with self._local_tables(tables):
                return self._run(script.statements[0], text, params)

    def execute_script(self, text: str, params: Mapping[str, Any] | None = None, *,
                       on_result: Callable[[Result], object] | None = None,
                       tables: LocalTables | None = None) -> list[Result]:
        """Run every statement of a script, in order (none if it does not parse).

        With ``on_result``, each result is handed to it as soon as its statement has run and is
        not kept (the list returned is empty): a long script then holds one result at a time.
        :meth:`cancel` stops the script, also while it is being parsed, before its next statement.
        """
        with self._call() as token:
            script = self._parse(text)
            self._check_params(script.statements, text, params)
            results: list[Result] = []
            total = len(script.statements)
            for i, stmt in enumerate(script.statements):
                if token.cancelled:
                    raise CancelledError(f"the script was cancelled after {i:,} of {total:,} statements",
                                         source=text)
                with self._local_tables(tables):
                    res = self._run(stmt, text, params)
                if on_result is None:
                    results.append(res)
                else:
                    on_result(res)
            return results

    def explain(self, text: str, params: Mapping[str, Any] | None = None, analyze: bool = False, *,
                tables: LocalTables | None = None) -> str:
        """The EXPLAIN text of a SELECT (``analyze``: run it and add figures)."""
        with self._call():
            script = self._parse(text)
            stmt = script.statements[0]
            if isinstance(stmt, ast.Explain):
                analyze, stmt = analyze or stmt.analyze, stmt.statement
            if not isinstance(stmt, _QUERIES):
                raise CqlSemanticError("EXPLAIN takes a SELECT", span=stmt.span).with_source(text)
            self._check_params([stmt], text, params)
            try:
                with self._statement():
                    merged = self._params(params)
                    check_counts(stmt, merged)
                    with self._local_tables(tables):
                        return self._explain(stmt, merged, analyze)
            except CaveqlError as err:
                raise err.with_source(text) from None

    def physical_plan(self, text: str, params: Mapping[str, Any] | None = None, *,
                      tables: LocalTables | None = None) -> PhysicalPlan:
        """The physical plan of one SELECT (for tools and benchmarks)."""
        script = self._parse(text)
        stmt = script.statements[0]
        if isinstance(stmt, ast.Explain):
            stmt = stmt.statement
        if not isinstance(stmt, _QUERIES):
            raise CqlSemanticError("not a SELECT", span=stmt.span).with_source(text)
        self._check_params([stmt], text, params)
        try:
            merged = self._params(params)
            check_counts(stmt, merged)
            with self._local_tables(tables):
                return self._plan(stmt, merged)
        except CaveqlError as err:
            raise err.with_source(text) from None

    # ------------------------------------------------------------------ internals
    @contextmanager
    def _call(self) -> Iterator[cancelling.CancelToken]:
        """The token of one API call (a script, parse included): known to :meth:`cancel` and to
        interpreter exit from the start, so a cancel while the text is parsed is not lost."""
        token = cancelling.CancelToken()
        with self._tracked(token), cancelling.activate(token):
            yield token

    @contextmanager
    def _local_tables(self, tables: LocalTables | None) -> Iterator[None]:
        """``tables`` for the statements analysed in this thread within the block."""
        before = getattr(self._call_tables, "tables", None)
        self._call_tables.tables = tables
        try:
            yield
        finally:
            self._call_tables.tables = before

    @contextmanager
    def _statement(self) -> Iterator[None]:
        """A fresh cancel token (an earlier cancel never leaks into this statement), current
        in this thread, cancelled with its call's, and known to :meth:`cancel` while it runs."""
        token = cancelling.CancelToken()
        with self._tracked(token), cancelling.child(token):
            yield

    @contextmanager
    def _tracked(self, token: cancelling.CancelToken) -> Iterator[None]:
        with self._lock:
            self._running.add(token)
        try:
            with cancelling.running(token):
                yield
        except BaseException:
            token.cancel()  # a KeyboardInterrupt in this thread: stop the statement's workers too
            raise
        finally:
            with self._lock:
                self._running.discard(token)
                if not self._running:
                    self._idle.notify_all()

    @staticmethod
    def _parse(text: str) -> ast.Script:
        try:
            return parse(text)
        except CaveqlError as err:
            raise err.with_source(text) from None

    @staticmethod
    def _check_params(statements: Any, text: str, params: Mapping[str, Any] | None) -> None:
        """Every value in ``params`` must be one CQL can bind, and every name one the statements
        use (:mod:`caveql.bind`: a misspelt name is an error, not a silently ignored value)."""
        if not params:
            return
        try:
            uses = param_uses(statements)
            check_names(params, uses)
            check_values(params, uses)
        except CaveqlError as err:
            raise err.with_source(text) from None

    def _params(self, params: Mapping[str, Any] | None) -> dict[str, Any]:
        merged = dict(self.params)
        merged.update(params or {})
        return merged

    def _run(self, stmt: ast.Statement, text: str, params: Mapping[str, Any] | None) -> Result:
        t0 = time.perf_counter()
        try:
            with self._statement():
                merged = self._params(params)
                check_counts(stmt, merged)
                res = self._dispatch(stmt, merged)
        except CaveqlError as err:
            raise err.with_source(text) from None
        res.statement = stmt
        res.elapsed = time.perf_counter() - t0
        return res

    def _dispatch(self, stmt: ast.Statement, params: dict[str, Any]) -> Result:
        if isinstance(stmt, _QUERIES):
            p = self._plan(stmt, params)
            # a root id not current at the statement's version/timestamp: an error before anything
            # is counted or fetched (or, allowed, notices)
            roots = check_roots(p, self.backend, allow_invalid=self.settings.allow_invalid_root_ids)
            if roots and self.settings.allow_invalid_root_ids:
                p = _allowing_invalid_roots(p)  # (the live endpoint refuses them otherwise)
            res = run_plan(self.check_fetch(p), self.backend)
            if res.frame is not None and res.frame.empty:
                # no rows: say so when a string test names a value its column never has ('bc')
                res.notices = value_notices(stmt, self.catalog(), params)
            res.notices = [*roots, *res.notices]
            return res
        if isinstance(stmt, ast.Explain):
            return Result(kind="message", message=self._explain(stmt.statement, params, stmt.analyze))
        if isinstance(stmt, ast.Show):
            return self._show(stmt)
        if isinstance(stmt, ast.Describe):
            return self._describe(stmt)
        if isinstance(stmt, ast.Set):
            return self._set(stmt, params)
        if isinstance(stmt, ast.Use):
            return self._use(stmt.name, stmt.span)
        raise CqlSemanticError(f"cannot run a {type(stmt).__name__} statement",
                               span=getattr(stmt, "span", None))

    def _plan(self, stmt: ast.Select, params: dict[str, Any]) -> PhysicalPlan:
        # identity functions of constants (LATEST_ROOTS(864...)) become literals the planner pushes
        given = stmt
        stmt, folded = fold_identity(stmt, self.backend, params)
        root = root_select(stmt)  # a set operation or WITH runs at its leftmost SELECT's version
        version, timestamp, _res = statement_options(root, self.settings, params)
        cat = self._block_catalog(version, timestamp, root.cave.version.span if root.cave.version else None)
        tables = getattr(self._call_tables, "tables", None)
        # a plan kept for this statement when nothing it depends on can have changed
        # (caveql.plancache: no identity call folded, no timestamp, not a long text; the
        # registered table names are in the key, and a plan that reads a local table is not kept)
        k = None
        pk = params_key(params)
        if stmt is given and timestamp is None and pk is not None and not _long(stmt):
            names = tuple(sorted(tables.names())) if tables is not None else ()
            k = plan_key(stmt, pk, names, self.settings, self.backend, self.backend.capabilities, cat.version)
            kept = self._plans.get(k) if k is not None else None
            if kept is not None:
                return kept
        if _ANALYZE_TAKES_TABLES:
            logical = analyze(stmt, cat, self.settings, params,
                              tables=tables if tables is not None else LocalTables(),
                              catalogs=lambda v, ts: self._block_catalog(v, ts, None))
        else:  # (until analysis resolves local tables)
            logical = analyze(stmt, cat, self.settings, params)
        p = make_plan(logical, self.backend.capabilities, cat)
        # (not when USE replaced the catalogs, and so dropped the plans, while this one was made)
        if k is not None and storable(p) and self._catalogs.get(cat.version) is cat:
            self._plans.put(k, p)
        return _with_notes(p, folded) if folded else p

    def _block_catalog(self, version: int | None, timestamp: Any, span: Any) -> Catalog:
        """The catalog of a query block at ``version`` (None: at ``timestamp``, else the default)."""
        if version is None:
            version = self._version_at(timestamp) if timestamp is not None else self._default_version()
        elif version not in self._versions():
            raise ConfigError(f"version {version} is not available; versions: "
                              + ", ".join(str(v) for v in self._versions()), span=span)
        return self._catalog(version)

    def _explain(self, stmt: ast.Select, params: dict[str, Any], analyze_: bool) -> str:
        p = self._plan(stmt, params)
        if not analyze_:
            return explain_text(p) + self._guard_note(p)
        # EXPLAIN ANALYZE runs the statement: its root ids are checked as a SELECT's are
        roots = check_roots(p, self.backend, allow_invalid=self.settings.allow_invalid_root_ids)
        if roots and self.settings.allow_invalid_root_ids:
            p = _allowing_invalid_roots(p)
        p = self.check_fetch(p)
        _frame, _arrow, stats = execute_arrow(p, self.backend, keep_arrow=False, analyze=True)
        return explain_text(p, stats) + "".join(f"\nnotice: {n}" for n in roots)

    # ------------------------------------------------------------------ the fetch guard
    def check_fetch(self, p: PhysicalPlan) -> PhysicalPlan:
        """Refuse a plan that would fetch more than ``max_fetch_rows`` rows from the service;
        the plan to run (with the counts the service made, below).

        The rows are what is known before running (:mod:`caveql.plan.estimate`): table counts,
        id lists and ranges, pushed limits. A call whose filters have an unknown selectivity
        (a root id, a cell type) is bounded by its table's count; when that puts the plan over
        the threshold, the service counts the call first (one ``count=True`` request) and the
        count is used (a counted call that fits in one answer is not counted again by the
        executor: it is no longer marked as one that may pass the row cap). Calls fed keys by
        earlier calls are known only when those have run and are not counted here, nor are calls
        the service cannot count in one request (a live query, a merged reference). Over the
        threshold, :attr:`confirm` is asked; without it, or when it says no,
        :class:`~caveql.errors.FetchLimitError` is raised before any row is fetched.

        >>> import tempfile
        >>> from caveql.backends.local import LocalBackend
        >>> from caveql.datastack.tiny import build_tiny
        >>> eng = Engine(LocalBackend(build_tiny(tempfile.mkdtemp())), max_fetch_rows=3)
        >>> eng.execute("SELECT id FROM cells")
        Traceback (most recent call last):
        caveql.errors.FetchLimitError: this statement would fetch exactly 6 rows ...
        >>> eng.execute("SET max_fetch_rows = NONE").message
        'max_fetch_rows = NONE (no limit)'
        >>> len(eng.execute("SELECT id FROM cells").frame)
        6
        """
        limit = self.max_fetch_rows
        if limit is None:
            return p
        calls = p.fetches()
        fetches = {a: c.fetch for a, c in calls if c.fetch is not None}
        known = total(list(fetches.items()))
        if known.rows <= limit:
            return p
        counted: dict[int, Fetch] = {}
        # bounds from table counts may be far above what filters keep: ask the service to count
        # the largest such calls until the plan fits (or none is left)
        for alias, call in sorted(calls, key=lambda ac: -((ac[1].fetch and ac[1].fetch.rows) or 0)):
            f = call.fetch
            if f is None or not f.narrowed or f.fed or f.rows is None:
                continue
            n = self._count(call)
            if n is None:
                continue
            fetches[alias] = counted[id(call)] = Fetch(n, True, "counted by the service",
                                                       requests=requests_for(n, p.capabilities.row_cap))
            known = total(list(fetches.items()))
            if known.rows <= limit:
                return _with_counts(p, counted)
        # a call that could not be counted (live, a merged reference, IN batches) has no known
        # figure: like a fed call it is not held against the statement
        known = total([(a, f) for a, f in fetches.items() if not f.narrowed])
        if known.rows <= limit:
            return _with_counts(p, counted)
        message = (f"this statement would fetch {known.describe()} from the service, more than "
                   f"max_fetch_rows = {limit:,}")
        if self.confirm is not None and self.confirm(message):
            return _with_counts(p, counted)
        narrow = ("narrow it (filters the service applies, a LIMIT; EXPLAIN shows each call's rows), "
                  "or go ahead: ")
        again = "SET max_fetch_rows = NONE (or a larger number)"
        raise FetchLimitError(message, rows=known.rows, limit=limit, hint=narrow + surface_hint(
            python=f"caveql.connect(..., max_fetch_rows=None), db.max_fetch_rows = None, or {again}",
            cli=f"run caveql with --yes, or {again} before it",
            repl=f"answer y when asked, or {again}"))

    def _count(self, call: RemoteCall) -> int | None:
        """Rows of ``call``'s request as the service counts them (``None``: it cannot be counted
        in one request — a join, a live query, an IN list sent in batches)."""
        req = call.request
        caps = self.backend.capabilities
        if not caps.count or req.kind not in ("table", "view") \
                or any(len(v) > caps.max_in_batch for cols in req.filter_in.values() for v in cols.values()):
            return None
        cancelling.check()
        res = self.backend.query(replace(req, count=True, limit=None, offset=None, select_columns=None,
                                         desired_resolution=None))
        t = res.table
        if t.num_rows != 1 or "count" not in t.column_names:
            raise ExecutionError(f"the backend answered a count request with {t.num_rows} rows")
        n = t.column("count")[0].as_py()
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise TransportError(f"the backend counted {n!r} rows of {call.alias}: a count cannot be that")
        return n

    def _guard_note(self, p: PhysicalPlan) -> str:
        """EXPLAIN's word on the fetch guard, when the plan is over the threshold (static: no count)."""
        limit = self.max_fetch_rows
        known = p.fetch_total()
        if limit is None or known.rows <= limit:
            return ""
        if known.narrowed:
            return (f"\nFetch guard: over max_fetch_rows = {limit:,} by the table counts; the service "
                    f"counts scan {', '.join(known.narrowed)} first (where it can) and the statement "
                    f"runs if the counts fit")
        return (f"\nFetch guard: over max_fetch_rows = {limit:,}: refused (the REPL asks first); "
                f"SET max_fetch_rows = NONE or a larger number to run it")

    # ------------------------------------------------------------------ SHOW / DESCRIBE
    def _show(self, s: ast.Show) -> Result:
        cat = self.catalog()
        if s.what == "TABLES":
            names = cat.tables()
            if s.like is not None:
                rx = _like_regex(s.like)
                names = [n for n in names if rx.fullmatch(n)]
            frame = pd.DataFrame({"table_name": pd.array(names, dtype="string")})
        elif s.what == "VIEWS":
            meta = cat._view_meta()
            frame = pd.DataFrame({
                "view_name": pd.array(list(meta), dtype="string"),
                "description": pd.array([m.get("description") for m in meta.values()], dtype="string"),
            })
        elif s.what == "VERSIONS":
            rows = [self.backend.version_metadata(v) for v in self._versions()]
            frame = pd.DataFrame({
                "version": pd.array([r.get("version") for r in rows], dtype="Int64"),
                "time_stamp": pd.to_datetime([r.get("time_stamp") for r in rows], format="ISO8601"),
                "valid": pd.array([r.get("valid") for r in rows], dtype="boolean"),
                "status": pd.array([r.get("status") for r in rows], dtype="string"),
                "expires_on": pd.to_datetime([r.get("expires_on") for r in rows], format="ISO8601"),
            })
            located = getattr(self.backend, "version_location", None)  # a RoutingBackend's
            if located is not None:
                where = [located(v) for v in self._versions()]
                frame["location"] = pd.array([w[0] for w in where], dtype="string")
                frame["expired"] = pd.array([w[1] for w in where], dtype="boolean")
                frame["answered_by"] = pd.array([w[2] for w in where], dtype="string")
        else:  # DATASTACK
            info = cat.info()
            props: list[tuple[str, Any]] = [
                ("datastack_name", cat.datastack), ("description", info.get("description")),
                ("aligned_volume", (info.get("aligned_volume") or {}).get("name")
                 if isinstance(info.get("aligned_volume"), dict) else info.get("aligned_volume")),
                ("synapse_table", info.get("synapse_table")), ("soma_table", info.get("soma_table")),
                ("viewer_resolution", ", ".join(str(info.get(f"viewer_resolution_{a}")) for a in "xyz")),
                ("version", cat.version),
                ("resolution", ", ".join(f"{r:g}" for r in self.settings.resolution)
                 if self.settings.resolution else "table voxels"),
            ]
            if self.settings.timestamp is not None or self.settings.live:
                props.append(("timestamp", "live" if self.settings.live else self.settings.timestamp))
            frame = pd.DataFrame({"property": pd.array([k for k, _ in props], dtype="string"),
                                  "value": pd.array([None if v is None else str(v) for _, v in props],
                                                    dtype="string")})
        return Result(kind="rows", frame=frame)

    def _describe(self, d: ast.Describe) -> Result:
        cat = self.catalog()
        tables = getattr(self._call_tables, "tables", None)
        local = tables.get(d.name) if tables is not None and not cat.has(d.name) else None
        if local is not None:  # a table of the user's (register, --table, \table)
            what = "a frame" if local.kind == "frame" else f"{local.kind} file {local.path}"
            rows = "" if local.rows is None else f"\nrows: {local.rows:,}"
            frame = pd.DataFrame({
                "column": pd.array([n for n, _ in local.columns], dtype="string"),
                "type": pd.array([t for _, t in local.columns], dtype="string"),
                "table": pd.array([local.name] * len(local.columns), dtype="string"),
            })
            return Result(kind="rows", frame=frame, message=f"{local.name} (your table: {what}){rows}")
        info = cat.source(d.name, d.span)
        meta = info.metadata
        lines = [f"{info.name} ({'view' if info.kind == 'view' else 'table'}, version {cat.version})"]
        if meta.get("description"):
            lines.append(f"description: {str(meta['description']).strip()}")
        if meta.get("schema_type") or meta.get("schema"):
            lines.append(f"schema: {meta.get('schema_type') or meta.get('schema')}")
        lines.append("voxel resolution: " + ", ".join(f"{r:g}" for r in info.voxel_resolution) + " nm")
        if info.target:
            lines.append(f"reference table: {info.target} (merged: target columns, then this "
                         f"table's; clashes get _ref)")
        if info.kind != "view":
            n = cat.count(info.name)
            if n is not None:
                lines.append(f"rows: {n:,}")
        if meta.get("notice_text"):
            lines.append(f"notice: {meta['notice_text']}")
        frame = pd.DataFrame({
            "column": pd.array([c.name for c in info.columns], dtype="string"),
            "type": pd.array([c.type for c in info.columns], dtype="string"),
            "table": pd.array([c.owner for c in info.columns], dtype="string"),
        })
        return Result(kind="rows", frame=frame, message="\n".join(lines))

    # ------------------------------------------------------------------ SET / USE
    def _set(self, s: ast.Set, params: dict[str, Any]) -> Result:
        name = s.name.lower()
        try:
            value = self._set_value(s.value, params)
        except ValueError:
            raise ConfigError(f"SET {name} takes a constant value", span=s.value.span) from None
        st = self.settings
        if name == "version":
            if value is None or (isinstance(value, str) and value.lower() == "latest"):
                self.settings = replace(st, version=None)
            elif isinstance(value, int) and not isinstance(value, bool):
                if value not in self._versions():
                    raise ConfigError(f"version {value} is not available; versions: "
                                      + ", ".join(str(v) for v in self._versions()), span=s.value.span)
                self.settings = replace(st, version=value, timestamp=None, live=False)
            else:
                raise ConfigError("SET version takes a whole number (or NULL for the newest)",
                                  span=s.value.span)
        elif name == "resolution":
            if value is None:
                self.settings = replace(st, resolution=None)
            elif (isinstance(value, tuple) and len(value) == 3 and all(
                    isinstance(v, (int, float, Decimal)) and not isinstance(v, bool) and v > 0 for v in value)):
                self.settings = replace(st, resolution=tuple(float(v) for v in value))  # type: ignore[arg-type]
            else:
                raise ConfigError("SET resolution takes three positive numbers, e.g. (1, 1, 1)",
                                  span=s.value.span)
        elif name == "timestamp":
            if value is None:
                self.settings = replace(st, timestamp=None, live=False)
            elif isinstance(value, str) and value.lower() in ("now", "live"):
                self.settings = replace(st, timestamp=None, live=True)
            else:
                self.settings = replace(st, timestamp=parse_timestamp(value, s.value.span), live=False)
        elif name == "live":
            self.settings = replace(st, live=bool(value), timestamp=None if value else st.timestamp)
        elif name == "max_fetch_rows":
            if isinstance(value, str) and value.lower() in ("none", "off"):
                value = None
            try:
                self.max_fetch_rows = _fetch_limit(value)
            except ConfigError as err:
                err.span = s.value.span
                raise
        elif name == "allow_invalid_root_ids":
            if not isinstance(value, bool):
                raise ConfigError("SET allow_invalid_root_ids takes true or false", span=s.value.span)
            self.settings = replace(st, allow_invalid_root_ids=value)
        elif name == "datastack":
            if not isinstance(value, str):
                raise ConfigError("SET datastack takes a name", span=s.value.span)
            return self._use(value, s.span)
        else:
            self.params[s.name] = value
            return Result(kind="message", message=f"parameter :{s.name} = {value!r}")
        return Result(kind="message", message=f"{name} = {self._show_setting(name)}")

    def _show_setting(self, name: str) -> str:
        st = self.settings
        if name == "version":
            return str(st.version) if st.version is not None else f"latest ({self._default_version()})"
        if name == "resolution":
            return ", ".join(f"{r:g}" for r in st.resolution) if st.resolution else "table voxels"
        if name in ("timestamp", "live"):
            return "live" if st.live else (st.timestamp.isoformat() if st.timestamp else "none")
        if name == "max_fetch_rows":
            return "NONE (no limit)" if self.max_fetch_rows is None else f"{self.max_fetch_rows:,}"
        if name == "allow_invalid_root_ids":
            return "true" if st.allow_invalid_root_ids else "false"
        return ""

    def _set_value(self, e: ast.Node, params: dict[str, Any]) -> Any:
        if isinstance(e, ast.ListExpr):
            return tuple(constant_value(x, params) for x in e.items)
        if isinstance(e, ast.Column) and e.table is None:
            return e.name  # SET datastack = minnie65_public, SET timestamp = now
        return constant_value(e, params)

    def _use(self, name: str, span: Any) -> Result:
        if self.opener is None:
            raise ConfigError(f"cannot switch to datastack '{name}': this session has no way to open "
                              "other datastacks", span=span)
        try:
            backend = self.opener(name)
        except CaveqlError as err:
            if err.span is None:
                err.span = span
            raise
        old, owned = self.backend, self._owns_backend
        self.backend = backend
        self._owns_backend = True
        self._catalogs.clear()
        self._plans.clear()
        self._stamps = None
        self.settings = replace(self.settings, version=None)
        if owned and old is not backend:
            try:
                old.close()
            except Exception:  # noqa: BLE001 - closing the old backend must not fail the switch
                pass
        return Result(kind="message", message=f"using datastack {name}")


def _with_counts(p: PhysicalPlan, counted: dict[int, Fetch]) -> PhysicalPlan:
    """``p`` with the calls the service counted (by ``id``) carrying their counts."""
    if not counted:
        return p
    cap = p.capabilities.row_cap

    def call(c: RemoteCall) -> RemoteCall:
        f = counted.get(id(c))
        if f is None:
            return c
        fits = cap is not None and f.rows is not None and f.rows < cap
        return replace(c, fetch=f, may_exceed_cap=c.may_exceed_cap and not fits)

    return p.map_calls(call)


def _allowing_invalid_roots(p: PhysicalPlan) -> PhysicalPlan:
    """``p`` with its live calls asking the service to answer for root ids not current then
    (and so the plan it makes again for a smaller row cap)."""
    def call(c: RemoteCall) -> RemoteCall:
        if c.request.kind != "live":
            return c
        return replace(c, request=replace(c.request, allow_invalid_root_ids=True))

    out = p.map_calls(call)
    again = p.replan
    if again is None:
        return out
    return replace(out, replan=lambda cap: _allowing_invalid_roots(again(cap)))


def _long(stmt: Any) -> bool:
    """A statement longer than the parser keeps (a list of thousands of ids): its plan is not
    kept either (each would hold its lists until pushed out)."""
    span = getattr(stmt, "span", None)
    return span is not None and span.end - span.start > MEMO_MAX_TEXT


def _with_notes(p: PhysicalPlan, notes: tuple[str, ...]) -> PhysicalPlan:
    """``p`` with ``notes`` added for EXPLAIN (and to the plan it makes again for a smaller row cap)."""
    again = p.replan
    return replace(p, notes=p.notes + notes,
                   replan=None if again is None else (lambda cap: _with_notes(again(cap), notes)))


def _fetch_limit(value: Any) -> int | None:
    """A ``max_fetch_rows`` value checked: a whole number of rows, at least 0, or ``None`` (off).

    >>> _fetch_limit(None), _fetch_limit(5)
    (None, 5)
    >>> _fetch_limit(-1)
    Traceback (most recent call last):
    caveql.errors.ConfigError: max_fetch_rows takes a whole number of rows (at least 0) or NONE, not -1
    """
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
        return value
    raise ConfigError(f"max_fetch_rows takes a whole number of rows (at least 0) or NONE, not {value!r}")


def _like_regex(pattern: str) -> re.Pattern[str]:
    out = []
    for ch in pattern:
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
    return re.compile("".join(out), re.DOTALL)




