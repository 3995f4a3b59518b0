"""The embedded backend: a local datastack folder answered by DuckDB over Parquet.

It answers exactly what the materialization service answers (see
materialization-server.md §2 and docs/datastacks.md), so that caveql runs offline
and the engine has an exact twin of the service to test against:

- filters → SQL with every value bound as a parameter and every identifier
  checked against the catalog (unknown names raise :class:`ServiceError` as the
  service does, with a "did you mean");
- the inclusive spatial box in table voxels (``min < max`` required), regex on
  string columns only, empty IN → no rows, equality with ``None`` → IS NULL,
  ``filter_notin`` honoured (``server_compat=True`` ignores it like the service;
  ``caveql serve`` builds the rest of the genuine answer);
- the service's types: a table's ``Float`` columns float32, its ``DateTime`` columns
  ``timestamp[ns, tz=UTC]`` (the stored value read as UTC); a view's columns as the service
  reflects them: every integer int64, every float and numeric float64 (the double), timestamps
  as stored (naive unless the stored column has a zone);
- positions split into ``<col>_x/_y/_z`` int32, rescaled as
  ``trunc(round_half_even(v) * table_res / desired)``;
- ``select_columns``: exactly the columns given, in their order (the genuine engine also adds
  ``X_supervoxel_id`` before a selected ``X_root_id``: ``caveql serve`` adds it); joins
  with the service's suffix rule; views; live queries = the version the service would pick,
  with root ids as of the timestamp when the folder has a proofreading history
  (:mod:`caveql.backends.local_live`); ``count``;
- rows ordered by ``id`` (joins: first table's id, then the next; a reference merge: the
  target's id, then the reference's);
- an optional row cap with the service's silent truncation and ``Warning: 201``;
- cancellation (:mod:`caveql.cancel`): a query whose statement is cancelled is interrupted
  inside DuckDB and raises :class:`~caveql.errors.CancelledError`.

>>> import tempfile
>>> from caveql.datastack.tiny import build_tiny
>>> b = LocalBackend(build_tiny(tempfile.mkdtemp()))
>>> r = b.query(QueryRequest(kind="table", table="cells", version=2,
...                          filter_equal={"cells": {"cell_type": "BC"}}))
>>> r.table.column("id").to_pylist()
[2, 5]
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from caveql.backends.base import FILTER_KINDS, Capabilities, QueryRequest, QueryResult
from caveql.backends.local_live import LiveMaps, version_time
from caveql.backends.local_sql import CRUD_SIMPLE, Builder, Col, Source, error, fields_of, q, suggest
from caveql.backends.graph import LocalGraph
from caveql.datastack.history import FILE as HISTORY_FILE
from caveql.datastack.history import History
from caveql.datastack.layout import TableEntry, VersionEntry, read_info, read_versions
from caveql import cancel
from caveql.errors import CancelledError, DatastackError

__all__ = ["LocalBackend"]


def _lit(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _out_type(t: pa.DataType, *, reflected: bool = False) -> pa.DataType:
    """The Arrow type the service returns for a stored column type.

    A table's column has its model's type (``dtype_map``: Float → float32, Integer → int32,
    BigInteger → int64; every ``DateTime`` becomes ``datetime64[ns, UTC]``, the stored naive
    value read as UTC). ``reflected``: a view's column as the genuine service types it (its
    reflected INTEGER/BIGINT/DOUBLE PRECISION/NUMERIC/TIMESTAMP are not in ``dtype_map``: every
    integer is int64, every float and numeric float64, a timestamp as the database holds it).

    >>> _out_type(pa.timestamp("us")), _out_type(pa.timestamp("us"), reflected=True)
    (TimestampType(timestamp[ns, tz=UTC]), TimestampType(timestamp[ns]))
    """
    if pa.types.is_boolean(t):
        return pa.bool_()
    if pa.types.is_int32(t) and not reflected:
        return pa.int32()
    if pa.types.is_integer(t):
        return pa.int64()
    if pa.types.is_floating(t) or (reflected and pa.types.is_decimal(t)):
        return pa.float64() if reflected else pa.float32()
    if pa.types.is_timestamp(t):
        return pa.timestamp("ns", tz="UTC" if not reflected or t.tz is not None else None)
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return pa.string()
    return t


def _columns_of(schema: pa.Schema, where: str, require_id: bool = True, reflected: bool = False) -> tuple[Col, ...]:
    """Model columns from stored columns: ``X_x, X_y, X_z`` integer trios are positions."""
    names = schema.names
    out: list[Col] = []
    i = 0
    while i < len(names):
        n = names[i]
        if (n.endswith("_x") and i + 2 < len(names) and names[i + 1] == n[:-2] + "_y"
                and names[i + 2] == n[:-2] + "_z"
                and all(pa.types.is_integer(schema.field(names[i + k]).type) for k in range(3))):
            out.append(Col(n[:-2], True, pa.int32(),
                           cast=not all(pa.types.is_int32(schema.field(names[i + k]).type) for k in range(3))))
            i += 3
            continue
        t = schema.field(n).type
        if not (pa.types.is_boolean(t) or pa.types.is_integer(t) or pa.types.is_floating(t)
                or pa.types.is_timestamp(t) or pa.types.is_string(t) or pa.types.is_large_string(t)
                or (reflected and pa.types.is_decimal(t))):
            raise DatastackError(f"{where}: column '{n}' has unsupported type {t}")
        out.append(Col(n, False, _out_type(t, reflected=reflected)))
        i += 1
    if require_id and not any(c.name == "id" for c in out):
        raise DatastackError(f"{where}: every table needs an 'id' column")
    return tuple(out)


class LocalBackend:
    """The Backend protocol over a local datastack folder (see docs/datastacks.md).

    ``row_cap``: rows one call returns at most (``None``: no cap; ``200_000``
    mimics the service, truncating silently with ``Warning: 201``).
    ``server_compat``: behave as the genuine service where ``caveql serve`` needs its rows: ignore
    ``filter_notin`` (unless ``honor_notin``) and match regexes as PostgreSQL does (``.`` matches
    a newline). Columns are always typed as the service types them (see the module docstring).
    ``profile``: report the bytes DuckDB read in ``QueryResult.bytes_read`` (for EXPLAIN ANALYZE).
    """

    def __init__(self, path: str | Path, row_cap: int | None = None, *,
                 server_compat: bool = False, honor_notin: bool = False, parallel: int = 4,
                 threads: int | None = None, profile: bool = True) -> None:
        self.path = Path(path)
        self._info = read_info(self.path)
        self._versions: dict[int, VersionEntry] = read_versions(self.path)
        self.name = str(self._info["datastack_name"])
        self.row_cap = row_cap
        self.server_compat = server_compat
        self.ignore_notin = server_compat and not honor_notin
        self.profile = profile
        filters = set(FILTER_KINDS) - ({"notin"} if self.ignore_notin else set())
        self.capabilities = Capabilities(row_cap=row_cap, max_in_batch=10_000,
                                         filters=frozenset(filters), parallel=parallel,
                                         graph=(self.path / HISTORY_FILE).exists())
        self._lock = threading.Lock()
        self._local = threading.local()
        try:
            self._con = duckdb.connect(":memory:", config={"threads": threads} if threads else {})
            # naive timestamps (stored columns, filter values) are UTC, as in the service's
            # PostgreSQL: never the machine's zone when DuckDB mixes them with zoned ones
            self._con.execute("SET GLOBAL TimeZone = 'UTC'")
            # keep parsed Parquet footers (checked against the file's mtime): a 100M-synapse
            # copy has 1,526 row groups whose footer costs more CPU than the lookup itself
            self._con.execute("SET GLOBAL parquet_metadata_cache = true")
        except duckdb.Error as exc:
            raise DatastackError(f"cannot start DuckDB: {exc}") from exc
        try:
            # DuckDB splits an ORDER BY id into id ranges (row-group statistics), one scan of the
            # file each: on the x-sorted copy, whose ids follow x, every range rescans the box's
            # row groups (100M synapses, a 20 µm box: 914 MB read in 2.7 s; without: 76 MB, 0.25 s)
            self._con.execute("SET GLOBAL disabled_optimizers = 'partitioned_execution'")
        except duckdb.Error:
            pass  # a DuckDB without this optimizer: nothing to turn off
        self._sources: dict[tuple[int, str], Source] = {}
        self._inverse: dict[tuple[int, str], dict[int, list[int]]] = {}
        self._remapped: dict[tuple[int, str], set[int]] = {}
        try:
            for v, entry in self._versions.items():
                self._con.execute(f"CREATE SCHEMA {q(f'v{v}')}")
                for t in entry.tables.values():
                    self._register_table(v, t)
        except duckdb.Error as exc:
            raise DatastackError(f"{self.path}: cannot open a table: {exc}") from exc
        # the proofreading history and the live maps over it: read at the first live query
        self._history_loaded = False
        self._history: History | None = None
        self._live: LiveMaps | None = None

    # -- catalog ---------------------------------------------------------------------------

    def _register_table(self, v: int, t: TableEntry) -> None:
        schema = pq.read_schema(t.files[0].path)
        where = f"{self.path.name} v{v} {t.name}"
        cols = _columns_of(schema, where)
        roots = [c.name for c in cols if c.name.endswith("_root_id") and not c.position]
        rels: list[tuple[str | None, str]] = []
        for k, f in enumerate(t.files):
            rel = f"{q(f'v{v}')}.{q(t.name if k == 0 else f'{t.name}__copy{k}')}"
            scan = f"read_parquet({_lit(f.path)})"
            if t.root_id_map is not None and roots:
                repl = ", ".join(f"coalesce(m{i}.version_root_id, s.{q(r)}) AS {q(r)}"
                                 for i, r in enumerate(roots))
                stored = ", ".join(f"s.{q(r)} AS {q('__stored_' + r)}" for r in roots)
                joins = " ".join(f"LEFT JOIN read_parquet({_lit(t.root_id_map)}) m{i} "
                                 f"ON s.{q(r)} = m{i}.root_id" for i, r in enumerate(roots))
                body = f"SELECT s.* REPLACE ({repl}), {stored} FROM {scan} s {joins}"
                inline = f"({body})"
            else:
                body = f"SELECT * FROM {scan}"
                inline = scan
            # the view serves the datastack's views (their SQL names tables); queries read the
            # relation inline: binding a view costs ~0.5 ms a call, a tenth of a root lookup
            self._con.execute(f"CREATE VIEW {rel} AS {body}")
            rels.append((f.sorted_by, inline))
        if t.root_id_map is not None:
            m = pq.read_table(t.root_id_map, columns=["root_id", "version_root_id"])
            inv: dict[int, list[int]] = {}
            for new, old in zip(m.column(0).to_pylist(), m.column(1).to_pylist(), strict=True):
                inv.setdefault(old, []).append(new)
            self._inverse[(v, t.name)] = inv
            self._remapped[(v, t.name)] = set(m.column(0).to_pylist())
        meta = t.metadata
        res = tuple(float(meta[f"voxel_resolution_{a}"]) for a in "xyz")
        self._sources[(v, t.name)] = Source(
            name=t.name, version=v, view=False, relation=rels[0][1],
            copies=tuple((s, r) for s, r in rels if s), columns=cols,
            resolution=res, remap=t.root_id_map is not None and bool(roots),  # type: ignore[arg-type]
            notice=meta.get("notice_text") or None)

    def _version(self, version: int | None) -> VersionEntry:
        if version is None:
            version = max(self.versions())
        entry = self._versions.get(int(version))
        if entry is None:
            raise error(f"No version found: {version} is not a version of {self.name}", status=404,
                        hint=f"versions: {', '.join(map(str, self.versions()))}")
        return entry

    def _source(self, version: int, name: str, *, view: bool = False) -> Source:
        entry = self._version(version)
        if not isinstance(name, str):
            raise error(f"table name must be a string, not {type(name).__name__}")
        if view:
            if name not in entry.views:
                raise error(f"Cannot find view {name} in datastack {self.name} at version {version}",
                            status=404, hint=suggest(name, list(entry.views)))
            key = (entry.version, "view:" + name)
            if key not in self._sources:
                self._sources[key] = self._view_source(entry, name)
            return self._sources[key]
        if name not in entry.tables:
            hint = suggest(name, list(entry.tables))
            if name in entry.views:
                hint = f"'{name}' is a view: query it through the view endpoint"
            raise error(f"Cannot find table {name} in datastack {self.name} at version {version}",
                        status=404, hint=hint)
        return self._sources[(entry.version, name)]

    @property
    def history(self) -> History | None:
        """The folder's proofreading history (``history.parquet``), None when it has none: live
        queries then read the frozen version as it is (see caveql.backends.local_live)."""
        if not self._history_loaded:
            with self._lock:
                if not self._history_loaded:
                    self._history = History.load(self.path)
                    if self._history is not None:
                        self._live = LiveMaps(self._history, self._con, self._lock)
                    self._history_loaded = True
        return self._history

    def graph(self) -> LocalGraph | None:
        """The segmentation's proofreading graph (the folder's history), None when it has none."""
        h = self.history
        return None if h is None else LocalGraph(h)

    def _live_source(self, version: int, name: str, timestamp: datetime | None) -> Source:
        """Table ``name`` of ``version`` as a live query at ``timestamp`` reads it: root ids as
        of the timestamp when the datastack has a history (local_live), else as frozen."""
        src = self._source(version, name)
        stamp = version_time(self._versions[version].metadata)
        if self.history is None or self._live is None or stamp is None:
            return src
        key = (version, name)
        return self._live.source(src, stamp, timestamp, self._inverse.get(key), self._remapped.get(key))

    def _view_source(self, entry: VersionEntry, name: str) -> Source:
        view = entry.views[name]
        # a defined view is its SQL over the version's tables; a materialized one (a snapshot's
        # copy of the service's rows) its Parquet file
        rel = f"({view.sql})" if view.sql is not None else f"read_parquet({_lit(view.files[0].path)})"
        try:
            with self._cursor(entry.version) as cur:
                schema = cur.sql(f"SELECT * FROM {rel} AS v LIMIT 0").to_arrow_table().schema
        except duckdb.Error as exc:
            raise DatastackError(f"view {name} at version {entry.version}: {exc}") from exc
        # a view's columns typed as the genuine service types them (reflected: Int64, Float64 —
        # the double values, not their float32 roundings — and timestamps as stored)
        cols = _columns_of(schema, f"view {name}", require_id=False, reflected=True)
        res = tuple(float(view.metadata[f"voxel_resolution_{a}"]) for a in "xyz")
        return Source(name, entry.version, True, rel, (), cols, res, False,  # type: ignore[arg-type]
                       view.metadata.get("notice_text") or None)

    # -- protocol: metadata ----------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """Datastack info (``datastack.json``)."""
        return dict(self._info)

    def versions(self) -> list[int]:
        """Valid versions, ascending."""
        return sorted(v for v, e in self._versions.items() if e.metadata.get("valid", True))

    def all_versions(self) -> list[int]:
        """Every version of the folder, valid or not (the service's ``?expired=true``), ascending."""
        return sorted(self._versions)

    def version_metadata(self, version: int) -> dict[str, Any]:
        """The version's ``version.json``."""
        return dict(self._version(version).metadata)

    def tables(self, version: int) -> list[str]:
        """Table names at ``version``, sorted."""
        return sorted(self._version(version).tables)

    def table_metadata(self, version: int, table: str) -> dict[str, Any]:
        """The table's metadata as the service returns it."""
        self._source(version, table)
        return dict(self._version(version).tables[table].metadata)

    def table_columns(self, version: int, table: str) -> pa.Schema:
        """The Arrow schema of an unfiltered query of ``table`` (or view ``table``)."""
        entry = self._version(version)
        src = self._source(version, table, view=table in entry.views and table not in entry.tables)
        cols = [c for c in src.columns if src.view or c.name not in CRUD_SIMPLE]
        return pa.schema(fields_of(cols, {}))

    def table_count(self, version: int, table: str) -> int:
        """Valid rows of ``table`` at ``version`` (the service's ``/count``: the row count it
        recorded in ``materializedmetadata`` when it froze the version, of valid rows)."""
        src = self._source(version, table)
        t = self._version(version).tables[table]
        meta = pq.ParquetFile(t.files[0].path).metadata
        if not any(c.name == "valid" for c in src.columns) or _all_true(meta, "valid"):
            return int(meta.num_rows)
        res = self.query(QueryRequest(kind="table", table=table, version=version, count=True))
        return int(res.table.column(0)[0].as_py())

    def views(self, version: int) -> dict[str, dict[str, Any]]:
        """``{view: metadata}`` at ``version``."""
        return {n: dict(v.metadata) for n, v in sorted(self._version(version).views.items())}

    def unique_string_values(self, table: str) -> dict[str, list[str | None]]:
        """Distinct values of the table's string columns (latest version holding it)."""
        for v in sorted(self._versions, reverse=True):
            if table in self._versions[v].tables:
                src = self._sources[(v, table)]
                out: dict[str, list[str | None]] = {}
                with self._cursor(v) as cur:
                    for c in src.columns:
                        if pa.types.is_string(c.type):
                            rows = cur.sql(f"SELECT DISTINCT {q(c.name)} FROM {src.relation} "
                                           f"ORDER BY 1 NULLS LAST").fetchall()
                            out[c.name] = [r[0] for r in rows]
                return out
        raise error(f"Cannot find table {table} in datastack {self.name}", status=404)

    def close(self) -> None:
        """Close the DuckDB database."""
        self._con.close()

    def __enter__(self) -> LocalBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- protocol: query -------------------------------------------------------------------

    def _cursor(self, version: int) -> _Cursor:
        """This thread's cursor, set to ``version``'s schema (cursors are reused per thread:
        opening one and setting it up costs about as much as a small lookup)."""
        state = self._local.__dict__
        cur = state.get("cur")
        if cur is None:
            with self._lock:  # cursor() on a shared connection is not thread-safe
                cur = self._con.cursor()
            cur.execute("SET enable_progress_bar = false")
            if self.profile:
                cur.execute("SET enable_profiling = 'no_output'")
            state["cur"], state["version"] = cur, None
        if state["version"] != version:
            cur.execute(f"SET search_path = '{'v' + str(int(version))}'")
            state["version"] = version
        return _Cursor(cur, state)

    def live_version(self, timestamp: datetime | None) -> int:
        """The version a live query at ``timestamp`` reads (materialization-server.md §2.10):
        the newest valid version at or before it, else the oldest newer one."""
        if timestamp is None:
            return max(self.versions())
        if timestamp.tzinfo is not None:
            timestamp = timestamp.astimezone(UTC).replace(tzinfo=None)
        stamps = {v: _parse_ts(self._versions[v].metadata.get("time_stamp")) for v in self.versions()}
        before = [v for v, ts in stamps.items() if ts is not None and ts <= timestamp]
        if before:
            return max(before, key=lambda v: stamps[v])  # type: ignore[arg-type,return-value]
        return min(stamps, key=lambda v: stamps[v] or datetime.max)

    def query(self, request: QueryRequest, *, sample_percent: float | None = None) -> QueryResult:
        """Run one query call (see the module docstring for the semantics).

        ``sample_percent`` (for ``caveql serve``'s ``random_sample``): read only about that
        percentage of the (first) table, sampled by blocks before any filter, as the service's
        ``TABLESAMPLE SYSTEM`` does."""
        sql, params, out_fields, res, warnings, limit = Builder(self, request, sample_percent).build()
        try:
            with self._cursor(self._request_version(request)) as cur, cancel.on_cancel(cur.interrupt):
                cancel.check()  # (an interrupt that lands before DuckDB starts is re-sent)
                table = cur.sql(sql, params=params).to_arrow_table()
                nbytes = _bytes_read(cur) if self.profile else 0
        except duckdb.InterruptException as exc:
            raise CancelledError("the statement was cancelled while the local datastack ran "
                                 f"{request.kind} query on {request.table or 'a join'}") from exc
        except duckdb.Error as exc:
            raise error(f"query failed: {_first_line(exc)}") from exc
        table = _conform(table, out_fields)
        if limit is not None and table.num_rows == limit and not request.count:
            warnings.append(f'201 - "Limited query to {limit} rows')
        return QueryResult(table=table, warnings=tuple(warnings), resolution=res, bytes_read=nbytes)

    def _request_version(self, request: QueryRequest) -> int:
        if request.kind == "live":
            return self.live_version(request.timestamp)
        return self._version(request.version).version


class _Cursor:
    """Hands out a thread's cursor; drops it when a statement failed (its state is unknown)."""

    def __init__(self, cur: duckdb.DuckDBPyConnection, state: dict[str, Any]) -> None:
        self.cur = cur
        self.state = state

    def __enter__(self) -> duckdb.DuckDBPyConnection:
        return self.cur

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is not None:
            self.state.pop("cur", None)
            self.cur.close()


def _bytes_read(cur: duckdb.DuckDBPyConnection) -> int:
    """Bytes DuckDB read from files for the last query (its profiler's I/O counter)."""
    get = getattr(cur, "get_profiling_information", None)
    if get is None:
        return 0
    try:
        # the whole operator tree comes as ~13 KB of JSON: parsing it cost 0.2 ms a call
        found = _BYTES_READ.search(get(format="json"))
    except (duckdb.Error, TypeError):
        return 0
    return int(found.group(1)) if found else 0


_BYTES_READ = re.compile(r'"total_bytes_read"\s*:\s*(\d+)')


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _all_true(meta: pq.FileMetaData, column: str) -> bool:
    """Whether the Parquet statistics prove a boolean column true in every row."""
    try:
        idx = meta.schema.names.index(column)
    except ValueError:
        return False
    for g in range(meta.num_row_groups):
        stats = meta.row_group(g).column(idx).statistics
        if stats is None or not stats.has_min_max or stats.null_count or stats.min is not True:
            return False
    return True


def _parse_ts(value: Any) -> datetime | None:
    if value is None:
        return None
    ts = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return ts.astimezone(UTC).replace(tzinfo=None) if ts.tzinfo else ts


def _conform(table: pa.Table, fields: list[pa.Field]) -> pa.Table:
    """Cast DuckDB's answer to the service's types (names are already right)."""
    arrays = []
    for i, f in enumerate(fields):
        col = table.column(i)
        if col.type != f.type:
            col = col.cast(f.type)
        arrays.append(col)
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields)) if fields else table


