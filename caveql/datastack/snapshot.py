"""``caveql snapshot``: copy tables of a service at one version into a local datastack folder.

Each table is fetched whole, as the service stores it, with the executor's splitter
(:func:`caveql.execute.remote.run_call`): past the row cap it is cut into id ranges fetched in
parallel, each split further by counts until every answer fits. Its rows must add up to the
service's count (and its ids must not repeat), else :class:`~caveql.errors.TruncatedResultError`
and nothing of it is written. It is written in the folder format of docs/datastacks.md (a
synapse table with the sorted copies the local backend uses) under temporary names renamed into
place, its JSON last; the JSON records the rows written, so a snapshot run again skips the
tables already complete (resuming an interrupted one).

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
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from caveql import cancel
from caveql.backends.base import Backend, QueryRequest
from caveql.backends.endpoints import schema_columns, spare_column
from caveql.datastack.layout import write_info, write_json, write_version
from caveql.engine import Engine
from caveql.errors import CaveqlError, ConfigError, DatastackError, TruncatedResultError
from caveql.execute.remote import RowCapLearned, run_call
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
    """Copy ``tables`` (default: every table) of ``source`` at ``version`` into the local
    datastack folder ``dest``; returns what was done.

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
    names = list(dict.fromkeys(tables)) if tables is not None else sorted(available)
    unknown = [t for t in names if t not in available]
    if unknown:
        raise DatastackError(f"no table {', '.join(map(repr, unknown))} at version {version}",
                             hint=f"tables: {', '.join(sorted(available))}")
    if not names:
        raise ConfigError("no tables to snapshot")
    # a reference table is only usable beside its target (CQL reads it merged): the target comes
    # too, whole (the condition is meant for the tables named)
    conds = {t: cond for t in names}
    for t in list(names):
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
    expected = {t: _expected(backend, version, t, conds[t]) for t in names}
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
        if format == "delta":
            from caveql.datastack import delta_export

            skipped = delta_export.archive_complete(root, version, name, n, conds[name])
            if not skipped:
                data = _fetched(backend, version, name, n, conds[name])
                delta_export.write_archive_table(
                    root, version, name, data, backend.table_metadata(version, name), conds[name], _LOCK,
                    **delta)
        else:
            skipped = _complete(root, version, name, n, conds[name])
            if not skipped:
                _copy(backend, root, version, name, n, conds[name])
        with _LOCK:
            state["rows"] += n
            state["tables"] += 1
            report(_bar(state["tables"], len(names), state["rows"], total, time.perf_counter() - start))
        return TableCopy(name, n, skipped, time.perf_counter() - t0)

    pool = ThreadPoolExecutor(max_workers=min(workers, len(names)), thread_name_prefix="snapshot")
    try:
        futures = [pool.submit(one, name) for name in names]
        done = tuple(f.result() for f in futures)
    except BaseException:
        token.cancel()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    report(f"done: {root} (version {version}, {len(done)} tables, "
           f"{sum(t.rows for t in done):,} rows)")
    return SnapshotReport(root, version, done)


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
    for stale in (folder / "tables").glob(".*"):
        if stale.is_file() and stale.name.rsplit(".", 1)[-1].isdigit():
            stale.unlink(missing_ok=True)


def _statement(table: str, version: int, cond: str | None, what: str = "*") -> str:
    return f"SELECT {what} FROM {table}" + (f" WHERE ({cond})" if cond else "") + f" AT VERSION {version}"


def _engine(backend: Backend) -> Engine:
    # the user asked for whole tables: the fetch guard (a protection for ad-hoc statements) is off
    return Engine(backend, max_fetch_rows=None)


def _expected(backend: Backend, version: int, table: str, cond: str | None) -> int:
    """The rows the service says ``table`` has at ``version`` (those ``cond`` keeps, when given)."""
    if cond is None:
        return int(backend.table_count(version, table))
    try:
        frame = _engine(backend).execute(_statement(table, version, cond, "count(*) AS n")).frame
    except CaveqlError as err:
        err.message = f"--where on table {table}: {err.message}"
        raise
    assert frame is not None
    return int(frame["n"].iloc[0])


def _json_path(root: Path, version: int, table: str) -> Path:
    return root / "versions" / str(version) / "tables" / f"{table}.json"


def _complete(root: Path, version: int, table: str, rows: int, cond: str | None) -> bool:
    """True when ``table`` was written by a snapshot with the same condition and every file of it
    holds the service's ``rows``."""
    path = _json_path(root, version, table)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        storage = doc["_storage"]
        mark = storage[MARKER]
        files = [root / f["path"] for f in storage.get("files", ())] or [path.with_suffix(".parquet")]
        return bool(mark["rows"] == rows and mark.get("where") == cond and all(
            pq.ParquetFile(f).metadata.num_rows == rows for f in files))
    except (OSError, ValueError, KeyError, TypeError, pa.ArrowException):
        return False


def _fetch_whole(backend: Backend, version: int, table: str, rows: int) -> pa.Table:
    """Every row of ``table`` exactly as the service stores it (a reference table unmerged), in as
    many requests as its row cap needs: the executor's splitter (count, then id ranges sized to
    the cap), run on one plain table call."""
    schema = backend.table_columns(version, table)
    has_id = "id" in schema.names
    request = QueryRequest(kind="table", table=table, version=version)
    call = RemoteCall(alias=table, relation="r0", request=request,
                      id_column=(table, "id") if has_id else None, id_local="id" if has_id else None,
                      may_exceed_cap=True, table_rows=rows, columns=tuple(schema.names),
                      spare=spare_column(schema_columns(schema), {"id"}))
    caps = backend.capabilities
    spans = _id_spans(backend, call.request, rows, caps) if has_id else [None]

    token = cancel.current()

    def run(span: tuple[int, int] | None) -> pa.Table | None:
        with cancel.activate(token):  # (in the pool's threads: the snapshot's token)
            return run_piece(span)

    def run_piece(span: tuple[int, int] | None) -> pa.Table | None:
        piece = call if span is None else replace(call, request=_id_range(call.request, *span))
        local = caps
        for _ in range(4):
            try:
                return run_call(backend, piece, local, lambda _s, _c: [], None)[0]
            except RowCapLearned as signal:  # the service caps lower than it said: split smaller
                local = replace(local, row_cap=signal.cap)
        raise TruncatedResultError(f"table {table}: the service kept lowering its row cap")

    if len(spans) > 1:
        with ThreadPoolExecutor(max_workers=min(len(spans), caps.parallel)) as pool:
            parts = [t for t in pool.map(run, spans) if t is not None]
    else:
        parts = [t for t in (run(spans[0]),) if t is not None]
    if not parts:
        return schema.empty_table()
    got = pa.concat_tables([t.select(schema.names).cast(schema) for t in parts])
    return got


def _id_range(req: QueryRequest, lo: int, hi: int) -> QueryRequest:
    t = req.table or ""
    return replace(req, filter_greater_equal={t: {"id": lo}}, filter_less={t: {"id": hi}})


def _count(backend: Backend, req: QueryRequest, lo: int, hi: int) -> int:
    res = backend.query(replace(_id_range(req, lo, hi), count=True))
    return int(res.table.column("count")[0].as_py())


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
    # ok(hi) is true, ok(lo) false
    while hi - lo > 1 and (rel == 0 or hi - lo > hi // rel):
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return lo + 1, hi


def _id_spans(backend: Backend, req: QueryRequest, rows: int, caps: Any) -> list[tuple[int, int] | None]:
    """Disjoint id ranges covering every row of a table larger than the row cap, one per parallel
    fetch: the ids' smallest and largest are bracketed by galloping and bisecting counts (about
    2 log2 of the largest id + 40: ~110 count requests for ids near 10^10, cheap beside the
    fetch), the span between cut in equal widths. ``[None]`` (one
    fetch, split as it goes) for a small table, a service that cannot count, or negative ids."""
    cap = caps.row_cap
    parallel = max(1, int(caps.parallel))
    if cap is None or rows <= cap or parallel < 2 or not caps.count:
        return [None]
    top = 2 ** 63 - 1
    if _count(backend, req, 0, top) != rows:
        return [None]
    # smallest id: the least x with rows in [0, x]; largest: the least x with all rows in [first, x]
    # (to within a thousandth: the spans only need to cover the ids, and be about even)
    first = _bracket(lambda x: _count(backend, req, 0, x + 1) > 0, 0, top)[0]
    end = _bracket(lambda x: _count(backend, req, first, x + 1) == rows, first, top)[1] + 1
    # pieces of ~60% of the cap when the ids are even: each is one count and one fetch (a piece
    # over the cap is split further by counts, which costs a sample and several counts)
    pieces = max(parallel, -(-rows * 10 // (cap * 6)))
    width = max(1, -(-(end - first) // pieces))
    return [(a, min(end, a + width)) for a in range(first, end, width)]


def _fetch_where(backend: Backend, version: int, table: str, cond: str) -> pa.Table:
    """The rows of ``table`` that ``cond`` keeps, through the engine (which pushes what it can of
    the condition to the service and splits past the cap), back in the service's layout."""
    try:
        frame = _engine(backend).execute(_statement(table, version, cond)).frame
    except CaveqlError as err:
        err.message = f"table {table}: {err.message}"
        raise
    assert frame is not None
    return _arrow(frame, backend.table_columns(version, table), table)


def _fetched(backend: Backend, version: int, table: str, rows: int, cond: str | None) -> pa.Table:
    """The rows of ``table`` (those ``cond`` keeps), checked against the service's count."""
    data = (_fetch_whole(backend, version, table, rows) if cond is None
            else _fetch_where(backend, version, table, cond))
    if data.num_rows != rows:
        raise TruncatedResultError(
            f"table {table} at version {version}: fetched {data.num_rows:,} rows, the service counts "
            f"{rows:,}; nothing of it was written",
            hint="run the snapshot again (tables already complete are skipped); if it persists, "
                 "the service (or a proxy) is losing rows")
    ids = data.column("id") if "id" in data.column_names else None
    if ids is not None and pc.count_distinct(ids).as_py() != rows:
        raise TruncatedResultError(f"table {table} at version {version}: the rows fetched repeat ids "
                                   "(pages overlapped); nothing of it was written")
    return data


def _copy(backend: Backend, root: Path, version: int, table: str, rows: int, cond: str | None) -> None:
    data = _fetched(backend, version, table, rows, cond)
    ids = data.column("id") if "id" in data.column_names else None
    folder = root / "versions" / str(version) / "tables"
    folder.mkdir(parents=True, exist_ok=True)
    roots = {"pre_pt_root_id", "post_pt_root_id"} <= set(data.column_names)
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
    storage[MARKER] = {"rows": rows, "where": cond,
                       "server": getattr(backend, "server", None), "written": time.time()}
    meta = {k: v for k, v in backend.table_metadata(version, table).items() if k != "_storage"}
    path = _json_path(root, version, table)
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
                        help="tables to copy (default: every table of the version)")
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
    print(f"{report.path}: {len(report.tables)} tables at version {version}, {report.rows:,} rows copied"
          + (f", {skipped} already complete" if skipped else ""))
    return 0


def _line_progress() -> Progress:
    """Progress on stderr: redrawn in place on a terminal, else one line per table (logs)."""
    tty = _stderr_progress()
    if tty is not None:
        return tty
    return lambda msg: print(msg, file=sys.stderr, flush=True)
