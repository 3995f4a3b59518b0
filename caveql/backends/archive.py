"""The archive backend: expired versions read from their Delta Lake exports.

MaterializationEngine (5.26, ``workflows/deltalake_export.py``) exports a frozen version as
``{root}/{datastack}/v{version}/{table}/{spec}/``, one Delta table per *spec* — a copy of all
the rows partitioned (Hive folders ``{partition_by}_partition=N``) and z-ordered on one column:

- ``id``: percentile ranges of ``id``; one spec per indexed non-timestamp column (root ids,
  ``target_id``), named after it; at most one ``{geom}_morton`` on the 3-D Morton code of one
  point (``ctr`` > ``post`` > ``pre`` > ``pt`` > ``bb``); a small table keeps only ``id``;
- views: ``flat`` (unpartitioned) + ``id`` + Morton;
- ``created``/``deleted``/``superceded_id`` dropped; the Morton spec's point decoded to Int32
  ``{col}_x/_y/_z`` (in every spec of the table), every other point left as PostGIS (E)WKB bytes;
- no metadata besides the Delta logs: table metadata (voxel resolution, reference table, ...)
  is derived here, completed from the optional caveql file ``archive.json`` in the datastack
  folder or the ``voxel_resolution``/``metadata`` arguments (see docs/datastacks.md).

Queries reuse the local backend's SQL (:class:`~caveql.backends.local_sql.Builder`: the service's
semantics and frame shapes) over the copy the filters suit — equality/IN on a copy's column →
that copy, a box → the Morton copy, else ``id`` — reading with DuckDB only the Parquet files
whose Delta log statistics (min/max per column, the Morton range of a box) may match.

The archive may be a local folder or a URL (``gs://``, ``s3://``, ``https://``, ``file://``, any
fsspec filesystem): :mod:`caveql.backends.archive_store` lists its folders, replays remote Delta
logs, and DuckDB reads the Parquet through the registered fsspec filesystem.

>>> import tempfile
>>> ArchiveBackend(tempfile.mkdtemp(), datastack="none")  # doctest: +ELLIPSIS
Traceback (most recent call last):
caveql.errors.DatastackError: no Delta Lake archive of 'none' in ...
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from caveql import cancel
from caveql.backends.archive_prune import file_test, morton_encode
from caveql.backends.archive_store import DeltaLog, open_store, read_log
from caveql.backends.archive_wkb import decode_axes
from caveql.backends.archive_wkb import wkb_axis as _wkb_axis
from caveql.backends.base import FILTER_KINDS, Capabilities, QueryRequest, QueryResult, Relation
from caveql.backends.local import _bytes_read, _columns_of, _conform, _first_line
from caveql.backends.local_sql import CRUD_SIMPLE, Builder, Source, error, fields_of, q, suggest
from caveql.datastack.layout import VersionEntry
from caveql.errors import CancelledError, DatastackError
from caveql.lru import LRU

__all__ = ["ArchiveBackend", "is_archive", "morton_encode"]

_VERSION_DIR = re.compile(r"^v(\d+)$")
_WKB = "__caveql_wkb"
_TOKEN = "__caveql_archive_{}__"  # a copy's place in a statement, replaced by its pruned scan
_TOKEN_RE = re.compile(r"__caveql_archive_\d+__")
# a column the Builder only projects: t0."pre_pt_position_x" AS "pre_pt_position_x"
_PROJECTED = re.compile(r'(t\d+)\."((?:[^"]|"")+)" AS "((?:[^"]|"")+)"')
# the row order the Builder gives an answer (the service's): a relation's reader orders its own rows
_ORDER_TAIL = re.compile(r' ORDER BY (?:ALL|t\d+\."id"(?:, t\d+\."id")*)$')


def is_archive(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a datastack folder of Delta Lake exports (``v<N>/<table>/<spec>/_delta_log``).

    >>> import tempfile; is_archive(tempfile.mkdtemp())
    False
    """
    try:
        store = open_store(os.fspath(path))
        for v in store.dirs(store.root):
            if _VERSION_DIR.match(store.name(v)):
                return any(store.isdir(store.join(spec, "_delta_log")) for t in store.dirs(v)
                           for spec in store.dirs(t))
    except (OSError, DatastackError):
        return False
    return False


@dataclass(frozen=True)
class _Copy:
    """One spec folder: a Delta table holding all the rows of a table, partitioned on one column."""

    spec: str
    path: str  # the spec folder (on the archive's store)
    sort_col: str | None  # the model column its partitions follow (a point for the Morton copy)
    stored: tuple[str, ...]  # stored (Parquet) columns, partition column excluded
    files: tuple[dict[str, Any], ...]  # add actions: path, size_bytes, num_records, min.*, max.*


@dataclass
class _Table:
    name: str
    version: int
    view: bool
    copies: dict[str, _Copy]
    schema: pa.Schema  # logical columns (points as x/y/z int32 trios)
    select: str  # the SELECT list turning stored columns into logical ones
    metadata: dict[str, Any]
    plain: str = ""  # ``select`` without the columns decoded in Python (the engine's DuckDB lacks the UDF)
    decoded: frozenset[str] = frozenset()  # the logical columns decoded from WKB in Python
    raw: str = ""  # ``select`` with each decoded column as its WKB bytes (decoded after the query)


class ArchiveBackend:
    """The Backend protocol over ``{root}/{datastack}/v{N}/...`` Delta Lake exports.

    ``root`` is the folder holding the datastack folders (then ``datastack`` names one) or a
    datastack folder itself. ``voxel_resolution``: the tables' voxel size (the export does not
    record it; needed for positions); ``metadata``: ``{table: {key: value}}`` completing the
    derived table metadata (``reference_table``, ``voxel_resolution_x``, ...); ``info``: the
    datastack info. Each also comes from ``archive.json`` in the datastack folder.
    """

    def __init__(self, root: str | os.PathLike[str], datastack: str | None = None, *,
                 voxel_resolution: tuple[float, float, float] | None = None,
                 metadata: dict[str, dict[str, Any]] | None = None, info: dict[str, Any] | None = None,
                 parallel: int = 4, threads: int | None = None, profile: bool = True) -> None:
        store = self._store = open_store(os.fspath(root))
        folder = self._folder = store.join(store.root, datastack) if datastack is not None else store.root
        #: the datastack folder: a Path when local, else its URL
        self.path: Path | str = Path(folder) if store.local else store.url(folder)
        if not store.isdir(folder) or not is_archive(store.url(folder)):
            raise DatastackError(f"no Delta Lake archive of {datastack or os.fspath(root)!r} in "
                                 f"{store.url(store.root)}",
                                 hint="expected <root>/<datastack>/v<N>/<table>/<spec>/_delta_log")
        self.name = datastack or store.name(folder)
        extra = self._sidecar()
        res = voxel_resolution or extra.get("voxel_resolution")
        self._res = tuple(float(v) for v in res) if res is not None else None
        self._meta_extra = {**extra.get("tables", {}), **(metadata or {})}
        self._info = {"datastack_name": self.name, "description": f"Delta Lake archive at {self.path}",
                      "aligned_volume": None, "synapse_table": None, "soma_table": None,
                      "analysis_database": None, "segmentation_source": None}
        if self._res is not None:
            self._info.update({f"viewer_resolution_{a}": r for a, r in zip("xyz", self._res, strict=True)})
        self._info.update(extra.get("info", {}), **(info or {}))
        self.row_cap: int | None = None
        self.ignore_notin = False
        self.server_compat = False
        self._inverse: dict[tuple[int, str], dict[int, list[int]]] = {}
        self._remapped: dict[tuple[int, str], set[int]] = {}
        self.profile = profile
        self.capabilities = Capabilities(row_cap=None, filters=frozenset(FILTER_KINDS),
                                         parallel=parallel, live=False, relations=store.local)
        self._versions: dict[int, VersionEntry] = {}
        self._dirs: dict[int, dict[str, str]] = {}
        for v in store.dirs(folder):
            m = _VERSION_DIR.match(store.name(v))
            if m:
                n = int(m.group(1))
                self._dirs[n] = {store.name(t): t for t in store.dirs(v)}
                meta = {"id": n, "datastack": self.name, "version": n, "time_stamp": None, "valid": True,
                        "expires_on": None, "status": "ARCHIVED", "is_merged": True}
                meta.update(extra.get("versions", {}).get(str(n), {}))
                self._versions[n] = VersionEntry(n, meta)
        self._tables: dict[tuple[int, str], _Table] = {}
        self._sources: dict[tuple[int, str, bool], Source] = {}
        self._tokens: dict[str, tuple[_Table, _Copy]] = {}
        self._token_of: dict[tuple[int, str, str], str] = {}
        self._lock = threading.Lock()
        self._local = threading.local()
        self.last_scan: list[tuple[str, tuple[str, ...]]] = []  # (spec folder, files) of the last query
        # relation() by request: the logs are read once, so a request's statement does not change
        self._relations: LRU[tuple[Relation | None, tuple[tuple[_Copy, tuple[str, ...]], ...]]] = LRU(256)
        self._empty_dir: str | None = None
        try:
            self._con = duckdb.connect(":memory:", config={"threads": threads} if threads else {})
            self._con.execute("SET GLOBAL TimeZone = 'UTC'")
            if not store.local:
                self._con.register_filesystem(store.fs)  # DuckDB reads the Parquet through fsspec
            self._con.create_function(_WKB, _wkb_axis, [duckdb.sqltype("BLOB"), duckdb.sqltype("INTEGER")],
                                      duckdb.sqltype("DOUBLE"), type="arrow")
        except duckdb.Error as exc:
            raise DatastackError(f"cannot start DuckDB: {exc}") from exc

    def _sidecar(self) -> dict[str, Any]:
        path = self._store.join(self._folder, "archive.json")
        if not self._store.isfile(path):
            return {}
        path = self._store.url(path)
        try:
            data = json.loads(self._store.read_bytes(self._store.join(self._folder, "archive.json")))
        except (OSError, ValueError) as exc:
            raise DatastackError(f"cannot read {path}: {exc}") from exc
        res = data.get("voxel_resolution") if isinstance(data, dict) else None
        problem = (
            "needs a JSON object" if not isinstance(data, dict)
            else "'voxel_resolution' must be three positive numbers" if res is not None and not (
                isinstance(res, list) and len(res) == 3
                and all(isinstance(r, int | float) and not isinstance(r, bool) and r > 0 for r in res))
            else next((f"'{k}' must be an object" for k in ("info", "tables", "versions")
                       if not isinstance(data.get(k, {}), dict)), None)
            or next((f"'tables.{t}' must be an object" for t, m in data.get("tables", {}).items()
                     if not isinstance(m, dict)), None)
            or next((f"'versions.{v}' must be an object" for v, m in data.get("versions", {}).items()
                     if not isinstance(m, dict)), None))
        if problem:
            raise DatastackError(f"{path}: {problem}", hint="see docs/datastacks.md, 'Archives'")
        return data

    # -- catalog ---------------------------------------------------------------------------

    def _table(self, version: int, name: str) -> _Table:
        key = (version, name)
        with self._lock:
            if key not in self._tables:
                self._tables[key] = self._open(version, name, self._dirs[version][name])
            return self._tables[key]

    def _open(self, version: int, name: str, folder: str) -> _Table:
        copies: dict[str, _Copy] = {}
        logical: dict[str, tuple[pa.Schema, str, str, frozenset[str], str]] = {}
        specs = self._store.dirs(folder)
        if not specs:
            raise DatastackError(f"{self._store.url(folder)}: no exported copy (expected id/, flat/, ...)")
        for spec_dir in specs:
            copy, schema, select, plain, decoded, raw = self._open_copy(spec_dir)
            copies[copy.spec] = copy
            logical[copy.spec] = (schema, select, plain, decoded, raw)
        view = "flat" in copies
        first = "flat" if view else ("id" if "id" in copies else sorted(copies)[0])
        schema, select, plain, decoded, raw = logical[first]
        for spec, (other, *_rest) in logical.items():
            if other != schema:
                raise DatastackError(
                    f"{self._store.url(self._store.join(folder, spec))}: its columns differ from "
                    f"{self._store.url(self._store.join(folder, first))}'s "
                    f"({', '.join(other.names)} vs {', '.join(schema.names)})",
                    hint="every copy of a table holds the same columns; re-export the table")
        meta = self._derive_metadata(version, name, view, schema)
        return _Table(name, version, view, copies, schema, select, meta, plain, decoded, raw)

    def _read_log(self, spec_dir: str) -> DeltaLog:
        """The copy's Delta log: by ``deltalake`` when local, else replayed over fsspec."""
        if not self._store.local:
            return read_log(self._store, spec_dir)
        from deltalake import DeltaTable  # the optional extra 'archive'

        try:
            dt = DeltaTable(spec_dir)
            proto = dt.protocol()
            return DeltaLog(pa.schema(dt.schema().to_arrow()),
                            pa.table(dt.get_add_actions(flatten=True)).to_pylist(),
                            proto.min_reader_version, tuple(proto.reader_features or ()))
        except Exception as exc:  # deltalake raises its own, pyarrow and OS errors
            raise DatastackError(f"{spec_dir}: not a readable Delta table: {_first_line(exc)}") from exc

    def _open_copy(self, spec_dir: str) -> tuple[_Copy, pa.Schema, str, str, frozenset[str], str]:
        log = self._read_log(spec_dir)
        delta_schema, actions = log.schema, log.files
        if log.min_reader_version > 1 or log.reader_features:
            raise DatastackError(f"{self._store.url(spec_dir)}: Delta reader features "
                                 f"{list(log.reader_features)} (reader version {log.min_reader_version}) "
                                 f"are not supported",
                                 hint="the MaterializationEngine exporter writes plain reader-1 tables")
        spec = self._store.name(spec_dir)
        part = f"{spec}_partition"
        fields = [f for f in delta_schema if f.name != part]
        stored = tuple(f.name for f in fields)
        geom = spec[:-len("_morton")] if spec.endswith("_morton") else None
        groups: list[tuple[str, str, list[tuple[str, pa.Field]]]] = []  # (kind, name, [(sql, field)])
        for f in fields:
            if geom is not None and f.name == spec:
                continue  # the Morton code: a partitioning aid, not a column of the table
            if pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type):
                # a PostGIS point: decode as the exporter does (float coordinates cast to Int32)
                groups.append(("wkb", f.name, [
                    (f"CAST(trunc({_WKB}({q(f.name)}, {k})) AS INTEGER) AS {q(f.name + '_' + axis)}",
                     pa.field(f"{f.name}_{axis}", pa.int32())) for k, axis in enumerate("xyz")]))
                continue
            groups.append(("plain", f.name, [(q(f.name), pa.field(f.name, f.type))]))
        groups = _restore_point_order(groups)
        exprs = [sql for _k, _n, items in groups for sql, _f in items]
        out = [fld for _k, _n, items in groups for _s, fld in items]
        files = []
        for a in actions:
            a = dict(a)
            a["path"] = self._store.join(spec_dir, a["path"])
            files.append(a)
        sort_col = None if spec == "flat" else geom if geom is not None else spec
        copy = _Copy(spec, spec_dir, sort_col, stored, tuple(files))
        plain = [sql for k, _n, items in groups if k != "wkb" for sql, _f in items]
        decoded = frozenset(fld.name for k, _n, items in groups if k == "wkb" for _s, fld in items)
        raw = [sql if k != "wkb" else f"{q(n)} AS {q(fld.name)}"
               for k, n, items in groups for sql, fld in items]
        return copy, pa.schema(out), ", ".join(exprs), ", ".join(plain), decoded, ", ".join(raw)

    def _derive_metadata(self, version: int, name: str, view: bool, schema: pa.Schema) -> dict[str, Any]:
        extra = dict(self._meta_extra.get(name, {}))
        res = self._res
        given = [extra.get(f"voxel_resolution_{a}") for a in "xyz"]
        if all(g is not None for g in given):
            res = tuple(float(g) for g in given)  # type: ignore[assignment]
        meta: dict[str, Any] = {
            "table_name": name, "description": None, "notice_text": None,
            "voxel_resolution_x": None, "voxel_resolution_y": None, "voxel_resolution_z": None,
        }
        if view:
            meta.update({"datastack_name": self.name, "live_compatible": False})
        else:
            meta.update({"schema": None, "schema_type": None, "reference_table": None, "valid": True,
                         "aligned_volume": None, "created": None})
        if res is not None:
            meta.update({f"voxel_resolution_{a}": r for a, r in zip("xyz", res, strict=True)})
        meta.update(extra)
        return meta

    def _resolution(self, t: _Table, cols: Any) -> tuple[float, float, float]:
        res = tuple(t.metadata.get(f"voxel_resolution_{a}") for a in "xyz")
        if all(r is not None for r in res):
            return tuple(float(r) for r in res)  # type: ignore[return-value]
        if any(c.position for c in cols):
            raise DatastackError(
                f"{self._store.url(self._dirs[t.version][t.name])}: the voxel resolution of '{t.name}' is "
                f"unknown (Delta Lake exports do not record it)",
                hint="pass voxel_resolution=(x, y, z) or put it in the archive's archive.json")
        return (1.0, 1.0, 1.0)  # no positions: nothing is scaled

    def _version(self, version: int | None) -> VersionEntry:
        if version is None:
            version = max(self.versions())
        entry = self._versions.get(int(version))
        if entry is None:
            raise error(f"No version found: {version} is not a version of {self.name}", status=404,
                        hint=f"versions in the archive: {', '.join(map(str, self.versions()))}")
        return entry

    def _names(self, version: int, *, views: bool) -> list[str]:
        return sorted(n for n in self._dirs[version] if self._is_view(version, n) == views)

    def _is_view(self, version: int, name: str) -> bool:
        """A view's export has a ``flat`` copy (known without reading any Delta log)."""
        return self._store.isdir(self._store.join(self._dirs[version][name], "flat"))

    def _source(self, version: int, name: str, *, view: bool = False) -> Source:
        # (the logs are read once: a table's Source does not change; several calls a statement)
        hit = self._sources.get((version, name, view)) if isinstance(name, str) else None
        if hit is not None:
            return hit
        self._version(version)
        if not isinstance(name, str):
            raise error(f"table name must be a string, not {type(name).__name__}")
        known = self._dirs[version]
        if name not in known or self._is_view(version, name) != view:
            kind = "view" if view else "table"
            raise error(f"Cannot find {kind} {name} in datastack {self.name} at version {version}",
                        status=404, hint=suggest(name, list(known)))
        src = self._make_source(version, name, view)
        with self._lock:
            self._sources[(version, name, view)] = src
        return src

    def _make_source(self, version: int, name: str, view: bool) -> Source:
        t = self._table(version, name)
        cols = _columns_of(t.schema, f"{self.name} v{version} {name}", require_id=not view, reflected=view)
        tokens = {}
        with self._lock:
            for spec, copy in t.copies.items():
                key = (version, name, spec)
                if key not in self._token_of:
                    self._token_of[key] = _TOKEN.format(len(self._token_of))
                    self._tokens[self._token_of[key]] = (t, copy)
                tokens[spec] = self._token_of[key]
        primary = "flat" if view else ("id" if "id" in t.copies else sorted(t.copies)[0])
        alternatives = tuple((c.sort_col, tokens[s]) for s, c in t.copies.items()
                             if c.sort_col and s != primary)
        return Source(name, version, view, tokens[primary], alternatives, cols,  # type: ignore[arg-type]
                      self._resolution(t, cols), False, t.metadata.get("notice_text") or None)

    # -- protocol: metadata ----------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """Datastack info (derived; completed from ``archive.json`` / ``info=``)."""
        return dict(self._info)

    def versions(self) -> list[int]:
        """The ``v<N>`` folders, ascending."""
        return sorted(self._versions)

    def all_versions(self) -> list[int]:
        """Every version of the archive (all are valid)."""
        return self.versions()

    def version_metadata(self, version: int) -> dict[str, Any]:
        """Derived version metadata (``time_stamp`` only when ``archive.json`` gives it)."""
        return dict(self._version(version).metadata)

    def tables(self, version: int) -> list[str]:
        """Table folders of ``version`` (those without a ``flat`` copy), sorted."""
        return self._names(self._version(version).version, views=False)

    def table_metadata(self, version: int, table: str) -> dict[str, Any]:
        """Derived table metadata (see the module docstring)."""
        self._source(version, table)
        return dict(self._table(version, table).metadata)

    def table_columns(self, version: int, table: str) -> pa.Schema:
        """The columns an unfiltered query returns (without the columns the exporter drops)."""
        v = self._version(version).version
        is_view = table in self._dirs[v] and self._is_view(v, table)
        src = self._source(v, table, view=is_view)
        return pa.schema(fields_of([c for c in src.columns if src.view or c.name not in CRUD_SIMPLE], {}))

    def table_count(self, version: int, table: str) -> int:
        """Valid rows of ``table`` (from the Delta log when every row is valid)."""
        self._source(version, table)
        t = self._table(self._version(version).version, table)
        copy = t.copies.get("id") or next(iter(t.copies.values()))
        if all(f.get("min.valid") is True for f in copy.files) and all(f.get("num_records") is not None
                                                                        for f in copy.files):
            return sum(int(f["num_records"]) for f in copy.files)
        res = self.query(QueryRequest(kind="table", table=table, version=version, count=True))
        return int(res.table.column(0)[0].as_py())

    def views(self, version: int) -> dict[str, dict[str, Any]]:
        """``{view: metadata}``: the table folders with a ``flat`` copy."""
        v = self._version(version).version
        return {n: dict(self._table(v, n).metadata) for n in self._names(v, views=True)}

    def unique_string_values(self, table: str) -> dict[str, list[str | None]]:
        """Distinct values of the table's string columns (newest version holding it)."""
        for v in sorted(self._versions, reverse=True):
            if table in self._dirs[v] and not self._is_view(v, table):
                src = self._source(v, table)
                out: dict[str, list[str | None]] = {}
                for c in src.columns:
                    if pa.types.is_string(c.type):
                        sql = f"SELECT DISTINCT {q(c.name)} FROM {src.relation} ORDER BY 1 NULLS LAST"
                        out[c.name] = [r[0] for r in self._run(sql, [], {})[0].to_pylist()]
                return out
        raise error(f"Cannot find table {table} in datastack {self.name}", status=404)

    def live_version(self, timestamp: Any) -> int:
        """An archive has no live data: live queries are refused."""
        raise error("an archive holds frozen versions only: live queries are not available",
                    hint="query a version (AT VERSION n)")

    def close(self) -> None:
        """Close the DuckDB database."""
        self._con.close()

    def __enter__(self) -> ArchiveBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- protocol: query -------------------------------------------------------------------

    def query(self, request: QueryRequest) -> QueryResult:
        """Run one query call over the pruned files of the copies the filters suit."""
        if request.kind == "live":
            self.live_version(request.timestamp)
        sql, params, out_fields, res, warnings, _limit = Builder(self, request).build()
        scans: dict[str, tuple[str, ...]] = {}
        raw = self._raw_outputs(sql)
        table, nbytes = self._run(sql, params, scans, request, raw=raw is not None)
        if raw:
            table = self._decode_outputs(table, raw)
        self.last_scan = list(scans.items())
        return QueryResult(table=_conform(table, out_fields), warnings=tuple(warnings), resolution=res,
                           bytes_read=nbytes)

    def relation(self, request: QueryRequest) -> Relation | None:
        """The request's rows as SQL over the pruned Parquet files, read in place by the engine's
        DuckDB (``Capabilities.relations``): the same statement :meth:`query` runs, without its
        ORDER BY. ``None`` where only :meth:`query` answers exactly: a remote store (the engine's
        DuckDB has no fsspec filesystem), a column decoded from WKB (a Python function of this
        backend's DuckDB), a count, a limit or offset.
        """
        if not self._store.local or request.kind == "live" or request.count \
                or request.limit is not None or request.offset is not None:
            return None
        key = repr(request)  # (a frozen request of plain values: its repr is its identity)
        hit = self._relations.get(key)
        if hit is None:  # (making it checks the files)
            hit = self._make_relation(request)
            self._relations.put(key, hit)
        else:
            for copy, files in hit[1]:  # a file gone since: the error names it, every time
                self._check_files(copy, files)
        rel = hit[0]
        if rel is not None:
            self.last_scan = list(rel.scans)
        return rel

    def _make_relation(self, request: QueryRequest
                       ) -> tuple[Relation | None, tuple[tuple[_Copy, tuple[str, ...]], ...]]:
        # (a table owner's notice is a warning the engine does not read: only cap notices matter,
        # and an archive caps nothing)
        sql, params, out_fields, _res, _warnings, limit = Builder(self, request).build()
        tail = _ORDER_TAIL.search(sql)
        if limit is not None or tail is None:
            return None, ()
        sql = sql[:tail.start()]
        tokens = set(_TOKEN_RE.findall(sql))
        for token in tokens:
            t, _copy = self._tokens[token]
            if not t.plain or any(q(c) in sql for c in t.decoded):
                return None, ()
        scans: dict[str, tuple[str, ...]] = {}
        read = []
        for token in sorted(tokens):
            t, copy = self._tokens[token]
            files = self._prune(t, copy, request)
            scans[str(copy.path)] = tuple(files)
            read.append((copy, tuple(files)))
            sql = sql.replace(token, self._relation(t, copy, files, mode="plain"))
        return Relation(sql, tuple(params), tuple(out_fields), tuple(scans.items())), tuple(read)

    def _raw_outputs(self, sql: str) -> dict[str, tuple[str, int]] | None:
        """``{output column: (point, axis)}`` of the WKB-decoded columns ``sql`` only projects (the
        point: table alias and column, whose bytes the point's three columns hold), when that is
        all it does with them (else ``None``: decoded in the query). DuckDB calls a Python function
        once per vector of rows, and a lookup's few rows come in many sparse vectors (×6 calls for
        two points): one decode of the answer costs a fraction of that."""
        decoded = frozenset().union(*(self._tokens[tok][0].decoded for tok in set(_TOKEN_RE.findall(sql))))
        if not decoded or " ORDER BY ALL" in sql:  # (a view without ids: its points sort the rows)
            return None
        out: dict[str, tuple[str, int]] = {}
        for m in _PROJECTED.finditer(sql):
            if m.group(2) in decoded:
                out[m.group(3)] = (f"{m.group(1)}.{m.group(2)[:-2]}", "xyz".index(m.group(2)[-1]))
        uses = sum(sql.count(f".{q(c)}") for c in decoded)
        return out if uses == len(out) and out else None

    def _decode_outputs(self, table: pa.Table, raw: dict[str, tuple[str, int]]) -> pa.Table:
        """The WKB bytes of ``raw``'s columns decoded as the query would have (truncated to Int32)."""
        try:
            return decode_axes(table, raw)
        except (ValueError, pa.ArrowInvalid) as exc:
            raise DatastackError(f"{self.path}: reading the archive failed: {_first_line(exc)}",
                                 hint="the export may be damaged; re-export the table") from exc

    def _run(self, sql: str, params: list[Any], scans: dict[str, tuple[str, ...]],
             request: QueryRequest | None = None, raw: bool = False) -> tuple[pa.Table, int]:
        for token in set(_TOKEN_RE.findall(sql)):
            t, copy = self._tokens[token]
            files = self._prune(t, copy, request)
            scans[str(copy.path)] = tuple(files)
            # no point decoded: the scan itself (one subquery less for DuckDB to bind)
            plain = bool(t.plain) and not any(q(c) in sql for c in t.decoded)
            sql = sql.replace(token, self._relation(t, copy, files,
                                                    mode="plain" if plain else "raw" if raw else "udf"))
        state = self._local.__dict__
        cur = state.get("cur")
        if cur is None:
            with self._lock:
                cur = self._con.cursor()
            cur.execute("SET enable_progress_bar = false")
            if self.profile:
                cur.execute("SET enable_profiling = 'no_output'")
            state["cur"] = cur
        try:
            with cancel.on_cancel(cur.interrupt):
                cancel.check()
                rel = cur.sql(sql, params=params) if params else cur.sql(sql)
                table = rel.to_arrow_table()
                nbytes = _bytes_read(cur) if self.profile else 0
        except duckdb.InterruptException as exc:
            state.pop("cur", None)
            raise CancelledError("the statement was cancelled while the archive was read") from exc
        except (duckdb.Error, ValueError) as exc:
            state.pop("cur", None)
            raise DatastackError(f"{self.path}: reading the archive failed: {_first_line(exc)}",
                                 hint="the export may be damaged; re-export the table") from exc
        return table, nbytes

    def _relation(self, t: _Table, copy: _Copy, files: list[str], mode: str = "udf") -> str:
        """The copy's rows from ``files``; WKB points decoded by the UDF (``udf``), left as their
        bytes (``raw``), or left out (``plain``)."""
        self._check_files(copy, files)
        files = [self._store.url(f) for f in files]
        where = ""
        if not files:  # nothing can match (or no rows at all): a file read for its schema only
            files, where = [self._empty_file(copy)], " WHERE FALSE"
        lits = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
        scan = f"read_parquet([{lits}], hive_partitioning = false)"
        if mode == "plain" and not where:
            # the statement names only stored columns: the scan itself, without a subquery
            # listing them all (DuckDB binds one level less: ~0.3 ms of a small lookup)
            return scan
        select = {"udf": t.select, "plain": t.plain, "raw": t.raw}[mode]
        return f"(SELECT {select} FROM {scan}{where})"

    def _check_files(self, copy: _Copy, files: Sequence[str]) -> None:
        """A file the Delta log lists but the folder lacks: an error naming it (remote: DuckDB's
        own error names it)."""
        for f in files if self._store.local else ():
            if not os.path.isfile(f):
                raise DatastackError(f"{f}: listed in the Delta log of {copy.path} but missing",
                                     hint="the export is incomplete; re-export the table")

    def _empty_file(self, copy: _Copy) -> str:
        """A Parquet file with the copy's columns and no rows (a table or answer with no files)."""
        if copy.files:
            return self._store.url(str(copy.files[0]["path"]))
        schema = self._read_log(copy.path).schema
        schema = pa.schema([f for f in schema if f.name in copy.stored])
        with self._lock:
            if self._empty_dir is None:
                self._empty_dir = tempfile.mkdtemp(prefix="caveql-archive-")
        path = os.path.join(self._empty_dir, f"{abs(hash(str(copy.path)))}.parquet")
        pq.write_table(schema.empty_table(), path)
        return path

    # -- pruning ---------------------------------------------------------------------------

    def _prune(self, t: _Table, copy: _Copy, request: QueryRequest | None) -> list[str]:
        """The files of ``copy`` whose Delta statistics may hold rows matching the request's
        filters on ``t`` (statistics absent: the file is kept)."""
        if request is None:
            return [str(f["path"]) for f in copy.files]
        tests: list[Any] = []
        for kind in ("equal", "in", "greater", "less", "greater_equal", "less_equal", "spatial"):
            spec = getattr(request, f"filter_{kind}") or {}
            cols = spec.get(t.name) if isinstance(spec, Mapping) else None
            for col, value in (cols or {}).items():
                test = file_test(kind, str(col), value, copy.stored)
                if test is not None:
                    tests.append(test)
        return [str(f["path"]) for f in copy.files if all(test(f) for test in tests)]

    def __repr__(self) -> str:
        return f"ArchiveBackend({str(self.path)!r})"


_POINT_ORDER = ("pre", "post", "ctr", "pt", "bb")  # the points' order in CAVE's schemas


def _point_rank(name: str) -> int:
    return next((i for i, p in enumerate(_POINT_ORDER) if name.startswith(p)), len(_POINT_ORDER))


def _restore_point_order(groups: list[Any]) -> list[Any]:
    """Put the decoded point back among the table's points.

    The exporter appends the decoded ``{col}_x/_y/_z`` at the end (``decode_geometry_columns``);
    the service has it in the schema's order. That order is not in the export: the decoded point
    goes before the first WKB point that comes after it in CAVE's schemas (pre, post, ctr, pt, bb:
    nucleus_detection's ``pt`` before ``bb_start``), else after the last WKB point (synapse's
    ``ctr`` after ``post``); with no WKB point it stays where it is.

    >>> g = [("plain", "id", []), ("wkb", "bb_start_position", []), ("plain", "volume", []),
    ...      ("plain", "pt_position_x", []), ("plain", "pt_position_y", []), ("plain", "pt_position_z", [])]
    >>> [n for _k, n, _i in _restore_point_order(g)]
    ['id', 'pt_position_x', 'pt_position_y', 'pt_position_z', 'bb_start_position', 'volume']
    """
    names = [n for _k, n, _i in groups]
    wkb = [i for i, (k, _n, _i) in enumerate(groups) if k == "wkb"]
    if not wkb:
        return groups
    for i in range(len(groups) - 3, -1, -1):
        n = names[i]
        if not (n.endswith("_x") and names[i + 1:i + 3] == [n[:-2] + "_y", n[:-2] + "_z"]
                and all(groups[i + k][0] == "plain" for k in range(3))):
            continue
        trio, rest = groups[i:i + 3], groups[:i] + groups[i + 3:]
        rank = _point_rank(n[:-2])
        pts = [j for j, (k, _n, _i) in enumerate(rest) if k == "wkb"]
        after = [j for j in pts if _point_rank(rest[j][1]) > rank]
        at = after[0] if after else pts[-1] + 1
        return rest[:at] + trio + rest[at:]
    return groups
