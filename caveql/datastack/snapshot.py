"""``caveql snapshot``: copy tables and views of a service at one version into a local datastack folder.

Each table is fetched whole, as the service stores it, with the executor's splitter
(:func:`caveql.execute.remote.run_call`): past the row cap it is cut into id ranges fetched in
parallel, each split further by counts until every answer fits. Its rows must add up to the
service's count (and its ids must not repeat), else :class:`~caveql.errors.TruncatedResultError`
and nothing of it is written. It is written in the folder format of docs/datastacks.md (a
synapse table with the sorted copies the local backend uses) under temporary names renamed into
place, its JSON last; the JSON records the rows written, so a snapshot run again skips the
tables already complete (resuming an interrupted one).

A view is copied as its rows (the service publishes no view's SQL): a materialized view of the
folder format (``versions/<v>/views/<name>.json`` naming its Parquet file), counted with the view
endpoint's ``count``. The view endpoint honours ``limit`` and ``offset`` but orders nothing, so
pages by offset may repeat or skip rows; like a table, a view past the row cap is cut into ranges
of one integer column, with the same splitter: ``id`` or the column most distinct in a sample
(the next one when a single value holds more rows than the cap), which must hold no NULL
(checked with a count: a NULL lies in no range). Disjoint ranges whose rows add up to the
service's count are every row exactly once.

``where`` (a CQL condition) copies only the rows of each table it keeps, through the engine
(``SELECT * FROM t WHERE (...) AT VERSION N``); the expected count is the engine's count of
the same statement.

>>> import tempfile
>>> from caveql.backends.local import LocalBackend
>>> from caveql.datastack.tiny import build_tiny
>>> src = LocalBackend(build_tiny(tempfile.mkdtemp()))
>>> report = snapshot(src, 2, tempfile.mkdtemp() + "/copy", tables=["cells"], progress=None)
>>> [(t.name, t.rows, t.skipped) for t in report.tables]
[('cells', 6, False)]
>>> [(t.name, t.skipped) for t in snapshot(src, 2, report.path, tables=["cells"], progress=None).tables]
[('cells', True)]
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from caveql import cancel
from caveql.backends.base import Backend, QueryRequest, QueryResult
from caveql.backends.endpoints import schema_columns, spare_column
from caveql.datastack.layout import write_info, write_json, write_version
from caveql.engine import Engine
from caveql.errors import CaveqlError, ConfigError, DatastackError, TruncatedResultError
from caveql.execute.remote import RowCapLearned, run_call, split_candidates
from caveql.plan.physical import RemoteCall
from caveql.syntax import parse

__all__ = ["SnapshotReport", "TableCopy", "snapshot"]

ROW_GROUP = 65_536
MARKER = "caveql_snapshot"  # key under "_storage" of a table JSON: what was written
#: The copies of a synapse table (both root id columns present): (sort column, sorted_by, suffix),
#: as the demo writes them (caveql.datastack.demo.SORTS); a column the table lacks is skipped.
SYNAPSE_SORTS = (("pre_pt_root_id", "pre_pt_root_id", "by_pre"),
                 ("post_pt_root_id", "post_pt_root_id", "by_post"),
                 ("ctr_pt_position_x", "ctr_pt_position", "by_x"),
                 ("size", "size", "by_size"))

Progress = Callable[[str], None]
_LOCK = threading.Lock()  # the progress figures of the worker threads


@dataclass(frozen=True)
class TableCopy:
    """One table of a snapshot: rows written (or found complete), and the seconds it took."""

    name: str
    rows: int
    skipped: bool
    seconds: float
    view: bool = False


@dataclass(frozen=True)
class SnapshotReport:
    """What :func:`snapshot` did: the folder, the version, and every table."""

    path: Path
    version: int
    tables: tuple[TableCopy, ...]

    @property
    def rows(self) -> int:
        """Rows of the tables copied this time (not those skipped)."""
        return sum(t.rows for t in self.tables if not t.skipped)


def _stderr_progress() -> Progress | None:
    if not sys.stderr.isatty():
        return None

    def report(msg: str) -> None:
        sys.stderr.write(f"\r\x1b[K{msg}" + ("\n" if msg.startswith("done") else ""))
        sys.stderr.flush()
    return report


def _backend_of(source: Any) -> Backend:
    """The backend of a backend, an :class:`~caveql.engine.Engine` or a caveql connection."""
    engine = getattr(source, "engine", source)
    backend = getattr(engine, "backend", engine)
    if not all(hasattr(backend, a) for a in ("query", "table_count", "table_metadata", "info")):
        raise ConfigError("snapshot needs a caveql connection, engine or backend, "
                          f"not {type(source).__name__}")
    return backend  # type: ignore[no-any-return]


def _check_where(where: str | None) -> str | None:
    """``where`` parsed alone (as the condition of a one-table SELECT), so that text closing the
    condition and adding more (``1=1) UNION ...``, a second statement) is refused up front."""
    if where is None:
        return None
    if not isinstance(where, str) or not where.strip():
        raise ConfigError("--where needs a CQL condition, e.g. \"pt_root_id != 0\"")
    text = where.strip()
    # one expression alone (raises CqlSyntaxError naming where it is wrong): text that closes the
    # parenthesis and adds a set operation or clauses is not one
    parse(text, start="expression")
    parse(f"SELECT * FROM t WHERE ({text})")
    return text


def snapshot(source: Any, version: int, dest: str | Path, *, tables: Sequence[str] | None = None,
             where: str | None = None, progress: Progress | None | bool = True,
             workers: int = 4, format: str = "local", **delta: Any) -> SnapshotReport:
    """Copy ``tables`` (tables and views; default: every table and view) of ``source`` at
    ``version`` into the local datastack folder ``dest``; returns what was done.

    ``source`` is a caveql connection, an :class:`~caveql.engine.Engine` or a backend (usually an
    HTTP one). ``where`` is a CQL condition applied to every table named (each must have its
    columns). A reference table brings its target table (whole), without which it cannot be read.
    ``progress``: a callable receiving one-line messages, ``True`` (default) for a line on stderr
    when it is a terminal, ``None``/``False`` for none. Tables are fetched ``workers`` at a time.
    A table whose rows do not add up to the service's count raises
    :class:`~caveql.errors.TruncatedResultError` (nothing of it is kept).
    ``format="delta"`` writes MaterializationEngine's Delta Lake export layout instead
    (``dest/v{N}/{table}/{spec}/`` plus ``archive.json``; :mod:`caveql.datastack.delta_export`,
    whose :func:`~caveql.datastack.delta_export.export_rows` options ``delta`` passes on:
    ``small_table_mb``, ``n_partitions``, ``target_mb``), which
    :class:`~caveql.backends.archive.ArchiveBackend` reads.

    >>> import tempfile
    >>> from caveql.backends.local import LocalBackend
    >>> from caveql.datastack.tiny import build_tiny
    >>> src = LocalBackend(build_tiny(tempfile.mkdtemp()))
    >>> r = snapshot(src, 2, tempfile.mkdtemp(), where="pt_root_id != 0", tables=["nuclei"], progress=None)
    >>> r.tables[0].rows
    4
    """
    backend = _backend_of(source)
    if isinstance(version, bool) or not isinstance(version, int):
        raise ConfigError(f"version must be an integer, not {version!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers must be a positive integer, not {workers!r}")
    cond = _check_where(where)
    if format not in ("local", "delta"):
        raise ConfigError(f"format must be 'local' or 'delta', not {format!r}")
    if delta and format != "delta":
        raise ConfigError(f"{', '.join(delta)}: options of format='delta' only")
    report = (_stderr_progress() if progress is True else progress) or (lambda _m: None)
    root = Path(dest).expanduser()
    if version not in backend.versions():
        raise DatastackError(f"version {version} is not a version of the service's datastack",
                             hint=f"versions: {', '.join(map(str, sorted(backend.versions())))}")
    available = list(backend.tables(version))
    views = _views_of(backend, version)
    names = list(dict.fromkeys(tables)) if tables is not None else sorted(available) + sorted(views)
    unknown = [t for t in names if t not in available and t not in views]
    if unknown:
        raise DatastackError(f"no table or view {', '.join(map(repr, unknown))} at version {version}",
                             hint=f"tables: {', '.join(sorted(available))}"
                             + (f"; views: {', '.join(sorted(views))}" if views else ""))
    if not names:
        raise ConfigError("no tables to snapshot")
    # a reference table is only usable beside its target (CQL reads it merged): the target comes
    # too, whole (the condition is meant for the tables named)
    conds = {t: cond for t in names}
    for t in list(names):
        if t in views:
            continue
        target = backend.table_metadata(version, t).get("reference_table")
        if isinstance(target, str) and target in available and target not in conds:
            names.append(target)
            conds[target] = None
    if format == "delta":
        from caveql.datastack import delta_export

        info = backend.info()
        info = {**info, "datastack_name": info.get("datastack_name") or getattr(backend, "datastack", None)
                or "snapshot"}
        delta_export.prepare_archive(root, info, version, backend.version_metadata(version))
    else:
        _prepare(root, backend, version)
    expected = {t: _expected(backend, version, t, conds[t], t in views) for t in names}
    total = sum(expected.values())
    state = {"rows": 0, "tables": 0}
    start = time.perf_counter()

    token = cancel.CancelToken()  # cancelled on an error or Ctrl-C: the other tables stop too

    def one(name: str) -> TableCopy:
        with cancel.activate(token):
            return copy_one(name)

    def copy_one(name: str) -> TableCopy:
        t0 = time.perf_counter()
        n = expected[name]
        view = name in views
        meta = views[name] if view else backend.table_metadata(version, name)
        if format == "delta":
            from caveql.datastack import delta_export

            skipped = delta_export.archive_complete(root, version, name, n, conds[name])
            if not skipped:
                data = _fetched(backend, version, name, n, conds[name], view)
                delta_export.write_archive_table(root, version, name, data, meta, conds[name], _LOCK,
                                                 view=view, **delta)
        else:
            skipped = _complete(root, version, name, n, conds[name], view)
            if not skipped:
                _copy(backend, root, version, name, n, conds[name], meta, view)
        with _LOCK:
            state["rows"] += n
            state["tables"] += 1
            report(_bar(state["tables"], len(names), state["rows"], total, time.perf_counter() - start))
        return TableCopy(name, n, skipped, time.perf_counter() - t0, view)

    pool = ThreadPoolExecutor(max_workers=min(workers, len(names)), thread_name_prefix="snapshot")
    try:
        futures = [pool.submit(one, name) for name in names]
        done = tuple(f.result() for f in futures)
    except BaseException:
        token.cancel()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    report(f"done: {root} (version {version}, {_kinds(done)}, {sum(t.rows for t in done):,} rows)")
    return SnapshotReport(root, version, done)


def _kinds(done: Sequence[TableCopy]) -> str:
    """``"3 tables"``, ``"1 table and 2 views"``.

    >>> _kinds([TableCopy("t", 1, False, 0.0), TableCopy("v", 1, False, 0.0, view=True)])
    '1 table and 1 view'
    """
    views = sum(t.view for t in done)
    tables = len(done) - views
    out = f"{tables} table{'s' * (tables != 1)}"
    return out + (f" and {views} view{'s' * (views != 1)}" if views else "")


def _bar(k: int, n: int, rows: int, total: int, seconds: float) -> str:
    width = 24
    fill = width if total == 0 else int(width * rows / total)
    rate = rows / seconds if seconds > 0 else 0.0
    return (f"[caveql snapshot] [{'#' * fill}{'-' * (width - fill)}] {k}/{n} tables, "
            f"{rows:,}/{total:,} rows ({rate:,.0f} rows/s)")


def _prepare(root: Path, backend: Backend, version: int) -> None:
    """``datastack.json`` and ``version.json``; a folder of another datastack is refused."""
    info = backend.info()
    name = info.get("datastack_name") or getattr(backend, "datastack", None) or "snapshot"
    info = {**info, "datastack_name": name}
    existing = root / "datastack.json"
    if existing.exists():
        try:
            have = json.loads(existing.read_text(encoding="utf-8")).get("datastack_name")
        except (OSError, ValueError, AttributeError) as exc:
            raise DatastackError(f"{existing}: unreadable ({exc})",
                                 hint="choose another --path, or remove the folder") from exc
        if have != name:
            raise DatastackError(f"{root} holds datastack {have!r}, not {name!r}; refusing to mix them",
                                 hint="choose another --path")
    elif root.exists() and any(root.iterdir()):
        raise DatastackError(f"{root} exists and is not a datastack folder; refusing to write into it",
                             hint="choose another --path, or remove the folder")
    write_info(root, info)
    folder = write_version(root, version, backend.version_metadata(version))
    # temporary files of a run that was killed outright (`.<name>.<pid>`): never read, removed
    for stale in [*(folder / "tables").glob(".*"), *(folder / "views").glob(".*")]:
        if stale.is_file() and stale.name.rsplit(".", 1)[-1].isdigit():
            stale.unlink(missing_ok=True)


def _views_of(backend: Backend, version: int) -> dict[str, dict[str, Any]]:
    """``{view: metadata}`` of the service at ``version`` (none when it has no view endpoint)."""
    caps = getattr(backend, "capabilities", None)
    if caps is not None and not caps.views:
        return {}
    return {n: {k: v for k, v in m.items() if k != "_storage"} for n, m in backend.views(version).items()}


def _statement(table: str, version: int, cond: str | None, what: str = "*") -> str:
    return f"SELECT {what} FROM {table}" + (f" WHERE ({cond})" if cond else "") + f" AT VERSION {version}"


def _engine(backend: Backend) -> Engine:
    # the user asked for whole tables: the fetch guard (a protection for ad-hoc statements) is off
    return Engine(backend, max_fetch_rows=None)


def _expected(backend: Backend, version: int, table: str, cond: str | None, view: bool = False) -> int:
    """The rows the service says ``table`` has at ``version`` (those ``cond`` keeps, when given);
    a view's from its query endpoint's ``count`` (the service has no other count of a view)."""
    if cond is None and view:
        res = backend.query(QueryRequest(kind="view", table=table, version=version, count=True))
        return int(res.table.column("count")[0].as_py())
    if cond is None:
        return int(backend.table_count(version, table))
    try:
        frame = _engine(backend).execute(_statement(table, version, cond, "count(*) AS n")).frame
    except CaveqlError as err:
        err.message = f"--where on {'view' if view else 'table'} {table}: {err.message}"
        raise
    assert frame is not None
    return int(frame["n"].iloc[0])


def _json_path(root: Path, version: int, table: str, view: bool = False) -> Path:
    return root / "versions" / str(version) / ("views" if view else "tables") / f"{table}.json"


def _complete(root: Path, version: int, table: str, rows: int, cond: str | None, view: bool = False) -> bool:
    """True when ``table`` was written by a snapshot with the same condition and every file of it
    holds the service's ``rows``."""
    path = _json_path(root, version, table, view)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        storage = doc["_storage"]
        mark = storage[MARKER]
        files = [root / f["path"] for f in storage.get("files", ())] or [path.with_suffix(".parquet")]
        return bool(mark["rows"] == rows and mark.get("where") == cond and all(
            pq.ParquetFile(f).metadata.num_rows == rows for f in files))
    except (OSError, ValueError, KeyError, TypeError, pa.ArrowException):
        return False


def _fetch_whole(backend: Backend, version: int, table: str, rows: int, view: bool = False) -> pa.Table:
    """Every row of ``table`` exactly as the service stores it (a reference table unmerged), in as
    many requests as its row cap needs: the executor's splitter (count, then id ranges sized to
    the cap), run on one plain table call split by ``id``. A view under the cap is one request;
    past it, ranges of the first of :func:`_split_columns` that cuts it under the cap (one value
    holding more rows than the cap cannot be cut: the next column is tried)."""
    schema = backend.table_columns(version, table)
    request = QueryRequest(kind="view" if view else "table", table=table, version=version)
    if not view:
        return _fetch_split(backend, request, schema, rows, "id" if "id" in schema.names else None)
    schema = _view_schema(backend, version, table, schema)
    backend = _Conformed(backend, schema)  # type: ignore[assignment]
    cap = backend.capabilities.row_cap
    if cap is None or rows < cap:
        try:
            return _fetch_split(backend, request, schema, rows, None)
        except TruncatedResultError:
            pass  # the service caps lower than it said: cut it by a column
    failures: list[str] = []
    for col, hint in _split_columns(backend, request, schema, rows):
        try:
            return _fetch_split(backend, request, schema, rows, col, hint)
        except TruncatedResultError as exc:
            failures.append(f"by {col}: {exc.message}")
    cap = backend.capabilities.row_cap
    raise TruncatedResultError(
        f"view {table} at version {version}: {rows:,} rows, more than the service's row cap"
        + (f" of {cap:,}" if cap else "") + ", and no integer column without NULLs cuts it into ranges "
        "under the cap (the view endpoint's offset pages are unordered: never used)"
        + (f"; {'; '.join(failures)}" if failures else ""),
        hint="leave the view out (--tables), or ask the service's operators for its Delta Lake export")


def _fetch_split(backend: Backend, request: QueryRequest, schema: pa.Schema, rows: int,
                 col: str | None, hint: tuple[int, int] | None = None) -> pa.Table:
    """The rows of ``request`` (a whole table or view) split by ranges of ``col`` (``None``: one
    request, an error when capped): cut into spans fetched in parallel (:func:`_id_spans`; ``hint``:
    a sample's least and greatest value of ``col``), each by the executor's splitter."""
    table = request.table or ""
    call = RemoteCall(alias=table, relation="r0", request=request,
                      label="query_view" if request.kind == "view" else "query_table",
                      id_column=(table, col) if col else None, id_local=col,
                      may_exceed_cap=True, table_rows=rows, columns=tuple(schema.names),
                      spare=spare_column(schema_columns(schema), {col or "id"}))
    caps = backend.capabilities
    spans = _id_spans(backend, call.request, rows, caps, col, hint) if col else [None]

    token = cancel.current()

    def run(span: tuple[int, int] | None) -> pa.Table | None:
        with cancel.activate(token):  # (in the pool's threads: the snapshot's token)
            return run_piece(span)

    def run_piece(span: tuple[int, int] | None) -> pa.Table | None:
        piece = call if span is None else replace(call, request=_id_range(call.request, *span, col or "id"))
        local = caps
        for _ in range(4):
            try:
                return run_call(backend, piece, local, lambda _s, _c: [], None)[0]
            except RowCapLearned as signal:  # the service caps lower than it said: split smaller
                local = replace(local, row_cap=signal.cap)
        raise TruncatedResultError(f"{request.kind} {table}: the service kept lowering its row cap")

    if len(spans) > 1:
        with ThreadPoolExecutor(max_workers=min(len(spans), caps.parallel)) as pool:
            parts = [t for t in pool.map(run, spans) if t is not None]
    else:
        parts = [t for t in (run(spans[0]),) if t is not None]
    if not parts:
        return schema.empty_table()
    return pa.concat_tables([t.select(schema.names).cast(schema) for t in parts])


def _id_range(req: QueryRequest, lo: int, hi: int, col: str = "id") -> QueryRequest:
    t = req.table or ""
    return replace(req, filter_greater_equal={t: {col: lo}}, filter_less={t: {col: hi}})


def _count(backend: Backend, req: QueryRequest, lo: int, hi: int, col: str = "id") -> int:
    res = backend.query(replace(_id_range(req, lo, hi, col), count=True))
    return int(res.table.column("count")[0].as_py())


_I64_MIN = -(2 ** 63)
_JSON_TYPES = {"integer": pa.int64(), "float": pa.float64(), "number": pa.float64(), "boolean": pa.bool_()}


def _view_schema(backend: Backend, version: int, view: str, schema: pa.Schema) -> pa.Schema:
    """The view's columns with the types its schema endpoint gives where an answer's differ: the
    genuine service sends a column that is NULL in every row of an answer as text (pandas holds
    it as objects), so the schema of a one-row answer may say string for an integer column."""
    get = getattr(backend, "view_schema", None)
    if get is None:
        return schema
    declared = {k: _JSON_TYPES.get(v.get("type", "")) for k, v in get(version, view).items()}
    return pa.schema([f.with_type(declared[f.name]) if declared.get(f.name) is not None
                      and (pa.types.is_string(f.type) or pa.types.is_null(f.type)) else f for f in schema])


class _Conformed:
    """A backend whose answers' all-NULL columns are cast to ``schema``'s types (see
    :func:`_view_schema`): pieces of one view then concatenate."""

    def __init__(self, inner: Backend, schema: pa.Schema) -> None:
        self.inner = inner
        self.schema = schema

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def query(self, request: QueryRequest) -> QueryResult:
        res = self.inner.query(request)
        t = res.table
        for i, name in enumerate(t.column_names):
            want = self.schema.field(name).type if name in self.schema.names else None
            col = t.column(i)
            if want is not None and col.type != want and col.null_count == len(col):
                t = t.set_column(i, name, pa.nulls(len(col), want))
        return res if t is res.table else replace(res, table=t)


def _split_columns(backend: Backend, req: QueryRequest, schema: pa.Schema,
                   rows: int) -> Iterator[tuple[str, tuple[int, int] | None]]:
    """The integer columns a view past the row cap may be split by, best first, each with its
    least and greatest value in a sample of the view: ``id``, then the columns with the most
    distinct values in the sample (few rows per value: ranges can be cut small); only those
    holding no NULL (a count of ``col >= -2**63`` equals the view's: a NULL lies in no range,
    and would be missing from the copy)."""
    candidates = split_candidates(schema)
    if not candidates:
        return
    cap = backend.capabilities.row_cap
    sample = backend.query(replace(req, limit=max(2, min(1000, (cap or 1001) - 1)))).table

    def spread(col: str) -> tuple[bool, int]:
        values = sample.column(col) if col in sample.column_names else pa.chunked_array([], pa.int64())
        return col == "id", pc.count_distinct(values).as_py() - values.null_count

    t = req.table or ""
    for col in sorted(candidates, key=spread, reverse=True):
        res = backend.query(replace(req, count=True, filter_greater_equal={t: {col: _I64_MIN}}))
        if int(res.table.column("count")[0].as_py()) == rows:
            span = pc.min_max(sample.column(col)).as_py() if col in sample.column_names else {}
            yield col, None if span.get("min") is None else (int(span["min"]), int(span["max"]))


def _bracket(ok: Callable[[int], bool], lo: int, top: int, rel: int = 1024) -> tuple[int, int]:
    """``(a, b)`` with the least x in [lo, top] where ``ok(x)`` (``ok`` monotone, ``ok(top)`` true)
    in ``a <= x <= b`` and ``b - a`` within ``b / rel``: galloping up from ``lo`` then bisecting, so
    few calls (~2 log2 rel + log2 of the distance; ``rel=0``: exact).

    >>> _bracket(lambda x: x >= 1000, 0, 2 ** 63 - 1, rel=0)
    (1000, 1000)
    >>> a, b = _bracket(lambda x: x >= 10 ** 9, 0, 2 ** 63 - 1); a <= 10 ** 9 <= b and b - a < 10 ** 6
    True
    """
    if ok(lo):
        return lo, lo
    step = 1
    while lo + step < top and not ok(lo + step):
        lo, step = lo + step, step * 2
    hi = min(top, lo + step)
    return _bisect(ok, lo, hi, 1 if rel == 0 else hi // rel)


def _bisect(ok: Callable[[int], bool], lo: int, hi: int, tol: int) -> tuple[int, int]:
    """``(a, b)`` holding the least x in (lo, hi] where ``ok(x)`` (``ok(lo)`` false, ``ok(hi)``
    true), ``b - a`` under ``tol``.

    >>> _bisect(lambda x: x >= 37, 0, 1000, 1)
    (37, 37)
    """
    while hi - lo > 1 and hi - lo > tol:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return lo + 1, hi


def _edges(has: Callable[[int, int], int], rows: int, hint: tuple[int, int]) -> tuple[int, int]:
    """``[first, end)`` holding every value of a column (``has(a, b)``: rows with a value in
    [a, b)) near a sample's ``(least, greatest)`` value: galloping out from the sample by its
    spread, then bisecting to a thousandth of it (a few counts where values are far from 0, as
    root ids are: galloping from 0 takes 60 for them, and a thousandth of the value, not of the
    spread, would put every row in one span).

    >>> values = [10 ** 17 + 5, 10 ** 17 + 7, 10 ** 17 + 900]
    >>> a, b = _edges(lambda a, b: sum(a <= v < b for v in values), 3, (10 ** 17 + 7, 10 ** 17 + 8))
    >>> a <= 10 ** 17 + 5 and 10 ** 17 + 900 < b <= 10 ** 17 + 910
    True
    """
    least, most = hint
    spread = max(1, most - least)
    tol = max(1, spread // 1024)
    hi, step = least, spread  # has rows at or below hi
    lo = max(0, hi - step)
    while lo > 0 and has(0, lo + 1):
        hi, step = lo, step * 2
        lo = max(0, hi - step)
    first = 0 if has(0, lo + 1) else _bisect(lambda x: has(0, x + 1) > 0, lo, hi, tol)[0]
    lo, step, top = most - 1, spread, 2 ** 63 - 1  # not every row is in [first, lo]
    hi = most
    while hi < top and has(first, hi + 1) != rows:
        lo, hi, step = hi, min(top, hi + step), step * 2
    return first, _bisect(lambda x: has(first, x + 1) == rows, lo, hi, tol)[1] + 1


def _id_spans(backend: Backend, req: QueryRequest, rows: int, caps: Any, col: str = "id",
              hint: tuple[int, int] | None = None) -> list[tuple[int, int] | None]:
    """Disjoint id ranges covering every row of a table larger than the row cap, one per parallel
    fetch: the ids' smallest and largest are bracketed by galloping and bisecting counts (about
    2 log2 of the largest id + 40: ~110 count requests for ids near 10^10, cheap beside the
    fetch; from a sample's least and greatest value ``hint``: :func:`_edges`), the span between
    cut in equal widths. ``[None]`` (one
    fetch, split as it goes) for a small table, a service that cannot count, or negative ids."""
    cap = caps.row_cap
    parallel = max(1, int(caps.parallel))
    if cap is None or rows <= cap or parallel < 2 or not caps.count:
        return [None]
    top = 2 ** 63 - 1
    if _count(backend, req, 0, top, col) != rows:
        return [None]
    # smallest id: the least x with rows in [0, x]; largest: the least x with all rows in [first, x]
    # (to within a thousandth: the spans only need to cover the ids, and be about even)
    if hint is not None and 0 <= hint[0] <= hint[1]:
        first, end = _edges(lambda a, b: _count(backend, req, a, b, col), rows, hint)
    else:
        first = _bracket(lambda x: _count(backend, req, 0, x + 1, col) > 0, 0, top)[0]
        end = _bracket(lambda x: _count(backend, req, first, x + 1, col) == rows, first, top)[1] + 1
    # pieces of ~60% of the cap when the ids are even: each is one count and one fetch (a piece
    # over the cap is split further by counts, which costs a sample and several counts)
    pieces = max(parallel, -(-rows * 10 // (cap * 6)))
    width = max(1, -(-(end - first) // pieces))
    return [(a, min(end, a + width)) for a in range(first, end, width)]


def _fetch_where(backend: Backend, version: int, table: str, cond: str, view: bool = False) -> pa.Table:
    """The rows of ``table`` that ``cond`` keeps, through the engine (which pushes what it can of
    the condition to the service and splits past the cap: a view only by its ``id``), back in
    the service's layout."""
    try:
        frame = _engine(backend).execute(_statement(table, version, cond)).frame
    except CaveqlError as err:
        err.message = f"{'view' if view else 'table'} {table}: {err.message}"
        raise
    assert frame is not None
    return _arrow(frame, backend.table_columns(version, table), table)


def _fetched(backend: Backend, version: int, table: str, rows: int, cond: str | None,
             view: bool = False) -> pa.Table:
    """The rows of ``table`` (those ``cond`` keeps), checked against the service's count (a
    table's ids also for repeats; a view's rows may repeat)."""
    data = (_fetch_whole(backend, version, table, rows, view) if cond is None
            else _fetch_where(backend, version, table, cond, view))
    if data.num_rows != rows:
        raise TruncatedResultError(
            f"{'view' if view else 'table'} {table} at version {version}: fetched {data.num_rows:,} rows, "
            f"the service counts "
            f"{rows:,}; nothing of it was written",
            hint="run the snapshot again (tables already complete are skipped); if it persists, "
                 "the service (or a proxy) is losing rows")
    ids = data.column("id") if "id" in data.column_names and not view else None
    if ids is not None and pc.count_distinct(ids).as_py() != rows:
        raise TruncatedResultError(f"table {table} at version {version}: the rows fetched repeat ids "
                                   "(pages overlapped); nothing of it was written")
    return data


def _copy(backend: Backend, root: Path, version: int, table: str, rows: int, cond: str | None,
          metadata: dict[str, Any], view: bool = False) -> None:
    data = _fetched(backend, version, table, rows, cond, view)
    ids = data.column("id") if "id" in data.column_names else None
    folder = root / "versions" / str(version) / ("views" if view else "tables")
    folder.mkdir(parents=True, exist_ok=True)
    roots = not view and {"pre_pt_root_id", "post_pt_root_id"} <= set(data.column_names)
    sorts = [s for s in SYNAPSE_SORTS if s[0] in data.column_names] if roots else []
    key = [("id", "ascending")] if ids is not None else []
    storage: dict[str, Any] = {}
    if sorts:
        storage["files"] = [{"path": f"versions/{version}/tables/{table}.{suffix}.parquet", "sorted_by": name}
                            for _c, name, suffix in sorts]
        # Arrow sorts and writes without the GIL: the copies are made side by side
        with ThreadPoolExecutor(max_workers=len(sorts)) as pool:
            list(pool.map(lambda s: _write(data.sort_by([(s[0], "ascending"), *key]),
                                           folder / f"{table}.{s[2]}.parquet"), sorts))
    else:
        _write(data.sort_by(key) if key else data, folder / f"{table}.parquet")
    if view:  # a materialized view: its rows' file named (docs/datastacks.md)
        storage["files"] = [{"path": f"versions/{version}/views/{table}.parquet"}]
    storage[MARKER] = {"rows": rows, "where": cond,
                       "server": getattr(backend, "server", None), "written": time.time()}
    meta = {k: v for k, v in metadata.items() if k not in ("_storage", "sql")}
    path = _json_path(root, version, table, view)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    write_json(tmp, {**meta, "_storage": storage})
    tmp.replace(path)  # the JSON last: a table without it (or with an old one) is redone


def _write(table: pa.Table, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        pq.write_table(table, tmp, row_group_size=ROW_GROUP, compression="zstd")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def _arrow(frame: pd.DataFrame, schema: pa.Schema, table: str) -> pa.Table:
    """The engine's frame back in the service's layout: ``schema``'s columns, order and types, a
    position unpacked into ``<col>_x/_y/_z``."""
    arrays = []
    # a reference table comes merged with its target (as CQL sees it): its own bookkeeping columns
    # are the `_ref` ones, and a merged answer has no superceded_id (NULL on every valid row)
    merged = "id_ref" in frame.columns and "id_ref" not in schema.names
    for field in schema:
        name = field.name
        if merged and f"{name}_ref" in frame.columns:
            values: Any = frame[f"{name}_ref"]
        elif merged and name == "superceded_id":
            values = [None] * len(frame)
        elif name in frame.columns:
            values = frame[name]
        elif name[-2:] in ("_x", "_y", "_z") and name[:-2] in frame.columns:
            i = "xyz".index(name[-1])
            values = [None if p is None or (not hasattr(p, "__len__") and pd.isna(p)) else p[i]
                      for p in frame[name[:-2]]]
        else:
            raise DatastackError(f"table {table}: the answer lacks column {name} of the service's schema")
        try:
            arrays.append(pa.array(values, type=field.type, from_pandas=True))
        except (pa.ArrowException, TypeError, ValueError) as exc:
            raise DatastackError(f"table {table}: column {name} does not convert to {field.type}: "
                                 f"{exc}") from exc
    return pa.Table.from_arrays(arrays, schema=pa.schema([pa.field(f.name, f.type) for f in schema]))


# -- the command line ---------------------------------------------------------------------------
def add_snapshot_arguments(parser: Any) -> None:
    """The options of ``caveql snapshot`` (those the top level also has default to its values).

    >>> import argparse
    >>> p = argparse.ArgumentParser()
    >>> add_snapshot_arguments(p)
    >>> a = p.parse_args(["-d", "tiny", "--version", "2", "--path", "out", "--tables", "cells", "nuclei"])
    >>> a.datastack, a.version, a.tables
    ('tiny', 2, ['cells', 'nuclei'])
    """
    import argparse

    keep = argparse.SUPPRESS  # a value given before the subcommand word stays
    parser.add_argument("--datastack", "-d", metavar="NAME", default=keep, help="the service's datastack")
    parser.add_argument("--server", metavar="URL", default=keep,
                        help="the service (default: $CAVEQL_SERVER, else the global CAVE deployment)")
    parser.add_argument("--token", metavar="TOKEN", default=keep,
                        help="auth token (default: found as caveclient finds it)")
    parser.add_argument("--version", metavar="N", type=int, default=keep, help="materialization version")
    parser.add_argument("--path", metavar="DEST", default=keep, help="the local datastack folder to write")
    parser.add_argument("--tables", metavar="TABLE", nargs="+", default=None,
                        help="tables and views to copy (default: every table and view of the version)")
    parser.add_argument("--where", metavar="CQL", default=None,
                        help="copy only the rows this CQL condition keeps, in every table copied")
    parser.add_argument("--workers", metavar="N", type=int, default=4,
                        help="tables fetched at once (default 4)")
    parser.add_argument("--no-cache", action="store_true", default=keep,
                        help="neither read nor write the disk cache of versioned answers")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress line")
    parser.add_argument("--format", dest="snapshot_format", choices=("local", "delta"), default="local",
                        help="local: a local datastack folder (default); delta: MaterializationEngine's "
                             "Delta Lake export layout (DEST/v<N>/<table>/<spec>/), read with --archive")
    parser.add_argument("--small-table-mb", metavar="MB", type=float, default=None,
                        help="(delta) tables under this size keep only their id copy (default 200, "
                             "as the exporter); 0 writes every copy")
    parser.add_argument("--partitions", metavar="N", type=int, default=None,
                        help="(delta) partitions per copy (default: one per 256 MB, as the exporter)")


def run_snapshot(args: Any) -> int:
    """Handle ``caveql snapshot``: print the folder written; returns the exit code (1: an error,
    printed without a traceback; 2: a usage error)."""
    missing = [f"--{n}" for n in ("datastack", "version", "path") if getattr(args, n, None) is None]
    if missing:
        print(f"caveql snapshot: error: {', '.join(missing)} required", file=sys.stderr)
        return 2
    try:
        version = int(args.version)
    except (TypeError, ValueError):
        print(f"caveql snapshot: error: --version must be a number, not {args.version!r}", file=sys.stderr)
        return 2
    from caveql.backends.http import HttpBackend

    server = getattr(args, "server", None) or os.environ.get("CAVEQL_SERVER")
    kw: dict[str, Any] = {"cache": not getattr(args, "no_cache", False)}
    if server:
        kw["server"] = server
    try:
        with HttpBackend(args.datastack, token=getattr(args, "token", None), **kw) as backend:
            fmt = getattr(args, "snapshot_format", "local")
            delta = {k: v for k, v in (("small_table_mb", getattr(args, "small_table_mb", None)),
                                       ("n_partitions", getattr(args, "partitions", None))) if v is not None}
            if delta and fmt != "delta":
                print("caveql snapshot: error: --small-table-mb and --partitions go with --format delta",
                      file=sys.stderr)
                return 2
            report = snapshot(backend, version, args.path, tables=args.tables, where=args.where,
                              progress=None if args.quiet else _line_progress(), workers=args.workers,
                              format=fmt, **delta)
    except CaveqlError as err:
        print(err.render(), file=sys.stderr)
        return 1
    except OSError as err:
        print(f"caveql snapshot: cannot write {args.path}: {err}", file=sys.stderr)
        return 1
    skipped = sum(t.skipped for t in report.tables)
    print(f"{report.path}: {_kinds(report.tables)} at version {version}, {report.rows:,} rows copied"
          + (f", {skipped} already complete" if skipped else ""))
    return 0


def _line_progress() -> Progress:
    """Progress on stderr: redrawn in place on a terminal, else one line per table (logs)."""
    tty = _stderr_progress()
    if tty is not None:
        return tty
    return lambda msg: print(msg, file=sys.stderr, flush=True)
