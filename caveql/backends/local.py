"""The embedded backend: a local datastack folder answered by DuckDB over Parquet.

It answers exactly what the materialization service answers (see
materialization-server.md §2 and docs/datastacks.md), so that caveql runs offline
and the engine has an exact twin of the service to test against:

- filters → SQL with every value bound as a parameter and every identifier
  checked against the catalog (unknown names raise :class:`ServiceError` as the
  service does, with a "did you mean");
- the inclusive spatial box in table voxels (``min < max`` required), regex on
  string columns only, empty IN → no rows, equality with ``None`` → IS NULL,
  ``filter_notin`` honoured (``server_compat=True`` ignores it like the service);
- positions split into ``<col>_x/_y/_z`` int32, rescaled as
  ``trunc(round_half_even(v) * table_res / desired)``;
- ``select_columns`` order with the supervoxel id added before a root id; joins
  with the service's suffix rule; views; live queries = frozen at the version
  the service would pick; ``count``;
- rows ordered by ``id`` (joins: first table's id, then the next);
- an optional row cap with the service's silent truncation and ``Warning: 201``.

>>> import tempfile
>>> from caveql.datastack.tiny import build_tiny
>>> b = LocalBackend(build_tiny(tempfile.mkdtemp()))
>>> r = b.query(QueryRequest(kind="table", table="cells", version=2,
...                          filter_equal={"cells": {"cell_type": "BC"}}))
>>> r.table.column("id").to_pylist()
[2, 5]
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from caveql.backends.base import FILTER_KINDS, Capabilities, QueryRequest, QueryResult
from caveql.datastack.layout import TableEntry, VersionEntry, read_info, read_versions
from caveql.errors import DatastackError, ServiceError, did_you_mean

__all__ = ["LocalBackend"]

_OPS = {"greater": ">", "less": "<", "greater_equal": ">=", "less_equal": "<="}
_CRUD_SIMPLE = ("deleted",)
_CRUD_JOIN = ("deleted", "superceded_id")
_MAX_INLINE_IN = 2000  # longer IN lists are bound as one list parameter
_INT64 = (-(2**63), 2**63 - 1)


@dataclass(frozen=True)
class _Col:
    """A model column: a plain value, or a position stored as three int columns."""

    name: str
    position: bool
    type: pa.DataType  # output type (a position's component type)


@dataclass(frozen=True)
class _Source:
    """A table or view at one version, as the query builder sees it."""

    name: str
    version: int
    view: bool
    relation: str  # qualified DuckDB relation of the primary copy
    copies: tuple[tuple[str, str], ...]  # (sort column, relation) of alternative copies
    columns: tuple[_Col, ...]
    resolution: tuple[float, float, float]
    remap: bool  # root ids rewritten through a root_id_map
    notice: str | None

    def col(self, name: str) -> _Col:
        for c in self.columns:
            if c.name == name:
                return c
        raise _error(f"column '{name}' not in table '{self.name}'",
                     hint=_hint(name, [c.name for c in self.columns]), status=500)


def _hint(name: str, choices: Sequence[str]) -> str | None:
    found = did_you_mean(name, choices)
    return f"did you mean {', '.join(repr(f) for f in found)}?" if found else None


def _error(message: str, *, hint: str | None = None, status: int = 500) -> ServiceError:
    return ServiceError(message, status=status, detail=message, hint=hint)


def _q(name: str) -> str:
    """A quoted SQL identifier (names are checked against the catalog before this)."""
    return '"' + name.replace('"', '""') + '"'


def _lit(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _out_type(t: pa.DataType) -> pa.DataType:
    """The Arrow type the service returns for a stored column type."""
    if pa.types.is_boolean(t):
        return pa.bool_()
    if pa.types.is_int32(t):
        return pa.int32()
    if pa.types.is_integer(t):
        return pa.int64()
    if pa.types.is_floating(t):
        return pa.float32()
    if pa.types.is_timestamp(t):
        return pa.timestamp("ns")
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return pa.string()
    return t


def _columns_of(schema: pa.Schema, where: str, require_id: bool = True) -> tuple[_Col, ...]:
    """Model columns from stored columns: ``X_x, X_y, X_z`` integer trios are positions."""
    names = schema.names
    out: list[_Col] = []
    i = 0
    while i < len(names):
        n = names[i]
        if (n.endswith("_x") and i + 2 < len(names) and names[i + 1] == n[:-2] + "_y"
                and names[i + 2] == n[:-2] + "_z"
                and all(pa.types.is_integer(schema.field(names[i + k]).type) for k in range(3))):
            out.append(_Col(n[:-2], True, pa.int32()))
            i += 3
            continue
        t = schema.field(n).type
        if not (pa.types.is_boolean(t) or pa.types.is_integer(t) or pa.types.is_floating(t)
                or pa.types.is_timestamp(t) or pa.types.is_string(t) or pa.types.is_large_string(t)):
            raise DatastackError(f"{where}: column '{n}' has unsupported type {t}")
        out.append(_Col(n, False, _out_type(t)))
        i += 1
    if require_id and not any(c.name == "id" for c in out):
        raise DatastackError(f"{where}: every table needs an 'id' column")
    return tuple(out)


class LocalBackend:
    """The Backend protocol over a local datastack folder (see docs/datastacks.md).

    ``row_cap``: rows one call returns at most (``None``: no cap; ``200_000``
    mimics the service, truncating silently with ``Warning: 201``).
    ``server_compat``: ignore ``filter_notin`` as the real service does.
    ``profile``: report the bytes DuckDB read in ``QueryResult.bytes_read`` (for EXPLAIN ANALYZE).
    """

    def __init__(self, path: str | Path, row_cap: int | None = None, *,
                 server_compat: bool = False, parallel: int = 4, threads: int | None = None,
                 profile: bool = True) -> None:
        self.path = Path(path)
        self._info = read_info(self.path)
        self._versions: dict[int, VersionEntry] = read_versions(self.path)
        self.name = str(self._info["datastack_name"])
        self.row_cap = row_cap
        self.server_compat = server_compat
        self.profile = profile
        filters = set(FILTER_KINDS) - ({"notin"} if server_compat else set())
        self.capabilities = Capabilities(row_cap=row_cap, max_in_batch=10_000,
                                         filters=frozenset(filters), parallel=parallel)
        self._lock = threading.Lock()
        try:
            self._con = duckdb.connect(":memory:", config={"threads": threads} if threads else {})
        except duckdb.Error as exc:
            raise DatastackError(f"cannot start DuckDB: {exc}") from exc
        self._sources: dict[tuple[int, str], _Source] = {}
        self._inverse: dict[tuple[int, str], dict[int, list[int]]] = {}
        self._remapped: dict[tuple[int, str], set[int]] = {}
        try:
            for v, entry in self._versions.items():
                self._con.execute(f"CREATE SCHEMA {_q(f'v{v}')}")
                for t in entry.tables.values():
                    self._register_table(v, t)
        except duckdb.Error as exc:
            raise DatastackError(f"{self.path}: cannot open a table: {exc}") from exc

    # -- catalog ---------------------------------------------------------------------------

    def _register_table(self, v: int, t: TableEntry) -> None:
        schema = pq.read_schema(t.files[0].path)
        where = f"{self.path.name} v{v} {t.name}"
        cols = _columns_of(schema, where)
        roots = [c.name for c in cols if c.name.endswith("_root_id") and not c.position]
        rels: list[tuple[str | None, str]] = []
        for k, f in enumerate(t.files):
            rel = f"{_q(f'v{v}')}.{_q(t.name if k == 0 else f'{t.name}__copy{k}')}"
            scan = f"read_parquet({_lit(f.path)})"
            if t.root_id_map is not None and roots:
                repl = ", ".join(f"coalesce(m{i}.version_root_id, s.{_q(r)}) AS {_q(r)}"
                                 for i, r in enumerate(roots))
                stored = ", ".join(f"s.{_q(r)} AS {_q('__stored_' + r)}" for r in roots)
                joins = " ".join(f"LEFT JOIN read_parquet({_lit(t.root_id_map)}) m{i} "
                                 f"ON s.{_q(r)} = m{i}.root_id" for i, r in enumerate(roots))
                body = f"SELECT s.* REPLACE ({repl}), {stored} FROM {scan} s {joins}"
            else:
                body = f"SELECT * FROM {scan}"
            self._con.execute(f"CREATE VIEW {rel} AS {body}")
            rels.append((f.sorted_by, rel))
        if t.root_id_map is not None:
            m = pq.read_table(t.root_id_map, columns=["root_id", "version_root_id"])
            inv: dict[int, list[int]] = {}
            for new, old in zip(m.column(0).to_pylist(), m.column(1).to_pylist(), strict=True):
                inv.setdefault(old, []).append(new)
            self._inverse[(v, t.name)] = inv
            self._remapped[(v, t.name)] = set(m.column(0).to_pylist())
        meta = t.metadata
        res = tuple(float(meta[f"voxel_resolution_{a}"]) for a in "xyz")
        self._sources[(v, t.name)] = _Source(
            name=t.name, version=v, view=False, relation=rels[0][1],
            copies=tuple((s, r) for s, r in rels if s), columns=cols,
            resolution=res, remap=t.root_id_map is not None and bool(roots),  # type: ignore[arg-type]
            notice=meta.get("notice_text") or None)

    def _version(self, version: int | None) -> VersionEntry:
        if version is None:
            version = max(self.versions())
        entry = self._versions.get(int(version))
        if entry is None:
            raise _error(f"No version found: {version} is not a version of {self.name}", status=404,
                         hint=f"versions: {', '.join(map(str, self.versions()))}")
        return entry

    def _source(self, version: int, name: str, *, view: bool = False) -> _Source:
        entry = self._version(version)
        if not isinstance(name, str):
            raise _error(f"table name must be a string, not {type(name).__name__}")
        if view:
            if name not in entry.views:
                raise _error(f"Cannot find view {name} in datastack {self.name} at version {version}",
                             status=404, hint=_hint(name, list(entry.views)))
            key = (entry.version, "view:" + name)
            if key not in self._sources:
                self._sources[key] = self._view_source(entry, name)
            return self._sources[key]
        if name not in entry.tables:
            hint = _hint(name, list(entry.tables))
            if name in entry.views:
                hint = f"'{name}' is a view: query it through the view endpoint"
            raise _error(f"Cannot find table {name} in datastack {self.name} at version {version}",
                         status=404, hint=hint)
        return self._sources[(entry.version, name)]

    def _view_source(self, entry: VersionEntry, name: str) -> _Source:
        view = entry.views[name]
        rel = f"({view.sql})"
        try:
            with self._cursor(entry.version) as cur:
                schema = cur.sql(f"SELECT * FROM {rel} AS v LIMIT 0").to_arrow_table().schema
        except duckdb.Error as exc:
            raise DatastackError(f"view {name} at version {entry.version}: {exc}") from exc
        cols = _columns_of(schema, f"view {name}", require_id=False)
        res = tuple(float(view.metadata[f"voxel_resolution_{a}"]) for a in "xyz")
        return _Source(name, entry.version, True, rel, (), cols, res, False,  # type: ignore[arg-type]
                       view.metadata.get("notice_text") or None)

    # -- protocol: metadata ----------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """Datastack info (``datastack.json``)."""
        return dict(self._info)

    def versions(self) -> list[int]:
        """Valid versions, ascending."""
        return sorted(v for v, e in self._versions.items() if e.metadata.get("valid", True))

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
        cols = [c for c in src.columns if src.view or c.name not in _CRUD_SIMPLE]
        return pa.schema(_fields(cols, {}))

    def table_count(self, version: int, table: str) -> int:
        """Rows of ``table`` at ``version``."""
        self._source(version, table)
        t = self._version(version).tables[table]
        return int(pq.ParquetFile(t.files[0].path).metadata.num_rows)

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
                            rows = cur.sql(f"SELECT DISTINCT {_q(c.name)} FROM {src.relation} "
                                           f"ORDER BY 1 NULLS LAST").fetchall()
                            out[c.name] = [r[0] for r in rows]
                return out
        raise _error(f"Cannot find table {table} in datastack {self.name}", status=404)

    def close(self) -> None:
        """Close the DuckDB database."""
        self._con.close()

    def __enter__(self) -> LocalBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- protocol: query -------------------------------------------------------------------

    def _cursor(self, version: int) -> _Cursor:
        with self._lock:  # cursor() on a shared connection is not thread-safe
            cur = self._con.cursor()
        cur.execute(f"SET search_path = '{'v' + str(int(version))}'; SET enable_progress_bar = false")
        return _Cursor(cur)

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

    def query(self, request: QueryRequest) -> QueryResult:
        """Run one query call (see the module docstring for the semantics)."""
        sql, params, out_fields, res, warnings, limit = _Builder(self, request).build()
        try:
            with self._cursor(self._request_version(request)) as cur:
                if self.profile:
                    cur.execute("SET enable_profiling = 'no_output'")
                table = cur.sql(sql, params=params).to_arrow_table()
                nbytes = _bytes_read(cur) if self.profile else 0
        except duckdb.Error as exc:
            raise _error(f"query failed: {_first_line(exc)}") from exc
        table = _conform(table, out_fields)
        if limit is not None and table.num_rows == limit and not request.count:
            warnings.append(f'201 - "Limited query to {limit} rows')
        return QueryResult(table=table, warnings=tuple(warnings), resolution=res, bytes_read=nbytes)

    def _request_version(self, request: QueryRequest) -> int:
        if request.kind == "live":
            return self.live_version(request.timestamp)
        return self._version(request.version).version


class _Cursor:
    def __init__(self, cur: duckdb.DuckDBPyConnection) -> None:
        self.cur = cur

    def __enter__(self) -> duckdb.DuckDBPyConnection:
        return self.cur

    def __exit__(self, *exc: object) -> None:
        self.cur.close()


def _bytes_read(cur: duckdb.DuckDBPyConnection) -> int:
    """Bytes DuckDB read from files for the last query (its profiler's I/O counter)."""
    get = getattr(cur, "get_profiling_information", None)
    if get is None:
        return 0
    try:
        return int(json.loads(get(format="json")).get("io", {}).get("total_bytes_read", 0))
    except (duckdb.Error, ValueError, TypeError, AttributeError):
        return 0


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _parse_ts(value: Any) -> datetime | None:
    if value is None:
        return None
    ts = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return ts.astimezone(UTC).replace(tzinfo=None) if ts.tzinfo else ts


def _fields(cols: Sequence[_Col], rename: Mapping[str, str]) -> list[pa.Field]:
    out: list[pa.Field] = []
    for c in cols:
        name = rename.get(c.name, c.name)
        if c.position:
            out += [pa.field(f"{name}_{a}", pa.int32()) for a in "xyz"]
        else:
            out.append(pa.field(name, c.type))
    return out


def _conform(table: pa.Table, fields: list[pa.Field]) -> pa.Table:
    """Cast DuckDB's answer to the service's types (names are already right)."""
    arrays = []
    for i, f in enumerate(fields):
        col = table.column(i)
        if col.type != f.type:
            col = col.cast(f.type)
        arrays.append(col)
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields)) if fields else table


def _scale_sql(expr: str, ratio: float, params: list[Any]) -> str:
    """``trunc(v * ratio)`` with the service's arithmetic: PostgreSQL multiplies the integer
    by the ratio's decimal literal exactly (numeric), pandas then goes through float64."""
    exact = Decimal(repr(ratio))
    if exact == Decimal(ratio):  # binary-exact ratio: the double product is the exact one
        params.append(ratio)
        return f"CAST(trunc(CAST({expr} AS DOUBLE) * ${len(params)}) AS INTEGER)"
    scale = max(0, -exact.as_tuple().exponent)  # type: ignore[operator]
    if scale > 18 or exact.adjusted() > 8:
        params.append(ratio)
        return f"CAST(trunc(CAST({expr} AS DOUBLE) * ${len(params)}) AS INTEGER)"
    params.append(str(exact))
    return (f"CAST(trunc(CAST(CAST({expr} AS DECIMAL(10,0)) * CAST(${len(params)} AS "
            f"DECIMAL(28,{scale})) AS DOUBLE)) AS INTEGER)")


class _Builder:
    """Turns one QueryRequest into one parameterised DuckDB statement."""

    def __init__(self, backend: LocalBackend, request: QueryRequest) -> None:
        self.b = backend
        self.r = request
        self.params: list[Any] = []

    def p(self, value: Any) -> str:
        self.params.append(value)
        return f"${len(self.params)}"

    def build(self) -> tuple[str, list[Any], list[pa.Field], tuple[float, float, float],
                             list[str], int | None]:
        r = self.r
        b = self.b
        if r.kind not in ("table", "join", "view", "live"):
            raise _error(f"unknown query kind {r.kind!r}")
        if r.kind == "live":
            version = b.live_version(r.timestamp)
        else:
            version = b._version(r.version).version
        names = self._names()
        srcs = [b._source(version, n, view=r.kind == "view") for n in names]
        if len(set(names)) != len(names):
            raise _error(f"a table appears twice in the query: {names}")
        aliases = {n: f"t{i}" for i, n in enumerate(names)}
        conds, eq_cols, box_cols = self._filters(srcs, aliases)
        from_sql = self._from(srcs, aliases, eq_cols, box_cols)
        joined = len(srcs) > 1
        desired = self._desired(srcs)
        warnings = [f"Table Owner Notice on {s.name}: {s.notice}".replace("\n", " ")
                    for s in srcs if s.notice]
        where = " AND ".join(conds) if conds else "TRUE"
        if r.count and r.kind in ("table", "view"):
            sql = f"SELECT count(*) AS {_q('count')} FROM {from_sql} WHERE {where}"
            return sql, self.params, [pa.field("count", pa.int64())], desired, warnings, None
        proj, fields = self._projection(srcs, aliases, desired, joined)
        order = ", ".join(f"{aliases[s.name]}.{_q('id')}" for s in srcs if any(
            c.name == "id" for c in s.columns))
        limit = self._limit()
        sql = f"SELECT {proj} FROM {from_sql} WHERE {where}"
        # a view without an id is ordered by all its columns, so the answer is deterministic
        sql += f" ORDER BY {order}" if order else " ORDER BY ALL"
        if limit is not None:
            sql += f" LIMIT {self.p(limit)}"
        if r.offset:
            if not isinstance(r.offset, int) or isinstance(r.offset, bool) or r.offset < 0:
                raise _error(f"OFFSET must be a non-negative integer, not {r.offset!r}")
            sql += f" OFFSET {self.p(r.offset)}"
        return sql, self.params, fields, desired, warnings, limit

    def _names(self) -> list[str]:
        r = self.r
        if r.kind == "join":
            if r.join is None or len(r.join) != 2 or any(len(j) != 2 for j in r.join):
                raise _error("a join needs tables=[[table1, column1], [table2, column2]]")
            return [r.join[0][0], r.join[1][0]]
        if not r.table:
            raise _error(f"a {r.kind} query needs a table")
        if r.kind == "live":
            return list(r.tables())
        return [r.table]

    def _limit(self) -> int | None:
        lim = self.r.limit
        if lim is not None and (not isinstance(lim, int) or isinstance(lim, bool) or lim < 0):
            raise _error(f"LIMIT must be a non-negative integer, not {lim!r}")
        cap = self.b.row_cap
        if lim is None:
            return cap
        return lim if cap is None else min(lim, cap)

    def _desired(self, srcs: list[_Source]) -> tuple[float, float, float]:
        d = self.r.desired_resolution
        if d is None:
            # frozen join: the last table's resolution (§2.6); otherwise the (first) table's
            return srcs[-1].resolution if self.r.kind == "join" else srcs[0].resolution
        try:
            vals = tuple(float(v) for v in d)
        except (TypeError, ValueError) as exc:
            raise _error(f"desired_resolution must be three numbers, not {d!r}") from exc
        if len(vals) != 3 or not all(math.isfinite(v) and v > 0 for v in vals):
            raise _error(f"desired_resolution must be three positive numbers, not {d!r}")
        return vals  # type: ignore[return-value]

    # -- FROM with the sorted copy that suits the filters ----------------------------------

    def _from(self, srcs: list[_Source], aliases: dict[str, str], eq_cols: dict[str, set[str]],
              box_cols: dict[str, set[str]]) -> str:
        def rel(s: _Source) -> str:
            # a copy sorted by a column with an equality/IN filter reads a few row groups; else
            # a copy sorted by a position (its x) when a spatial filter applies
            wanted = eq_cols.get(s.name, set())
            for col, relation in s.copies:
                if col in wanted:
                    return relation
            boxes = box_cols.get(s.name, set())
            if boxes:
                spatial = [(c, r) for c, r in s.copies if any(x.name == c and x.position for x in s.columns)]
                for col, relation in spatial:
                    if col in boxes:
                        return relation
                if spatial:
                    return spatial[0][1]
            return s.relation

        first = srcs[0]
        out = f"{rel(first)} AS {aliases[first.name]}"
        r = self.r
        if r.kind == "join":
            (t1, c1), (t2, c2) = r.join  # type: ignore[misc]
            s1, s2 = srcs
            k1, k2 = s1.col(c1), s2.col(c2)
            self._check_join_cols(s1, k1, s2, k2)
            out += f" JOIN {rel(s2)} AS t1 ON t0.{_q(c1)} = t1.{_q(c2)}"
        elif r.kind == "live":
            seen = {first.name}
            by_name = {s.name: s for s in srcs}
            for t1, c1, t2, c2 in r.live_joins:
                for t in (t1, t2):
                    if t not in by_name:
                        raise _error(f"join table {t} is not part of the query")
                new = t2 if t2 not in seen else t1
                if new in seen:
                    raise _error(f"join [{t1}, {c1}, {t2}, {c2}] joins no new table")
                k1, k2 = by_name[t1].col(c1), by_name[t2].col(c2)
                self._check_join_cols(by_name[t1], k1, by_name[t2], k2)
                out += (f" JOIN {rel(by_name[new])} AS {aliases[new]} ON "
                        f"{aliases[t1]}.{_q(c1)} = {aliases[t2]}.{_q(c2)}")
                seen.add(new)
        return out

    @staticmethod
    def _check_join_cols(s1: _Source, k1: _Col, s2: _Source, k2: _Col) -> None:
        if k1.position or k2.position:
            raise _error(f"cannot join on a position column ({s1.name}.{k1.name} = {s2.name}.{k2.name})")
        kinds = {_kind(k1.type), _kind(k2.type)}
        if len(kinds) != 1:
            raise _error(f"cannot join {s1.name}.{k1.name} ({k1.type}) to {s2.name}.{k2.name} ({k2.type})")

    # -- projection -------------------------------------------------------------------------

    def _projection(self, srcs: list[_Source], aliases: dict[str, str],
                    desired: tuple[float, float, float], joined: bool) -> tuple[str, list[pa.Field]]:
        r = self.r
        chosen: list[tuple[_Source, list[_Col]]] = []
        sel = r.select_columns
        if sel is not None and not isinstance(sel, Mapping):
            raise _error("select_columns must map table names to column lists")
        for key in sel or {}:
            if key not in aliases:
                raise _error(f"select_columns names table {key!r}, which is not part of the query",
                             hint=_hint(str(key), list(aliases)))
        for s in srcs:
            if sel is None:
                crud = () if s.view else (_CRUD_JOIN if joined else _CRUD_SIMPLE)
                chosen.append((s, [c for c in s.columns if c.name not in crud]))
                continue
            wanted = sel.get(s.name, ())
            if isinstance(wanted, str):
                raise _error(f"select_columns for {s.name} must be a list of names")
            cols: list[_Col] = []
            for name in wanted:
                c = s.col(name) if isinstance(name, str) else s.col(repr(name))
                if c in cols:
                    continue
                sv = c.name[: -len("_root_id")] + "_supervoxel_id"
                if (r.kind != "live" and c.name.endswith("_root_id")
                        and any(x.name == sv for x in s.columns) and all(x.name != sv for x in cols)):
                    cols.append(s.col(sv))  # the service adds it right before the root id
                cols.append(c)
            chosen.append((s, cols))
        counts: dict[str, int] = {}
        for _s, cols in chosen:
            for c in cols:
                counts[c.name] = counts.get(c.name, 0) + 1
        suffix_map = dict(r.suffix_map or {})
        exprs: list[str] = []
        fields: list[pa.Field] = []
        for idx, (s, cols) in enumerate(chosen):
            a = aliases[s.name]
            suffix = suffix_map.get(s.name, ["x", "y", "z", "xx", "yy", "zz"][idx % 6])
            ratios = [tr / dr for tr, dr in zip(s.resolution, desired, strict=True)]
            scale = any(x != 1.0 for x in ratios)
            for c in cols:
                name = c.name + suffix if counts[c.name] > 1 else c.name
                if c.position:
                    for axis, ratio in zip("xyz", ratios, strict=True):
                        stored = f"{a}.{_q(c.name + '_' + axis)}"
                        e = _scale_sql(stored, ratio, self.params) if scale else f"CAST({stored} AS INTEGER)"
                        exprs.append(f"{e} AS {_q(name + '_' + axis)}")
                        fields.append(pa.field(f"{name}_{axis}", pa.int32()))
                else:
                    exprs.append(f"{a}.{_q(c.name)} AS {_q(name)}")
                    fields.append(pa.field(name, c.type))
        names = [f.name for f in fields]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise _error(f"duplicate output columns {dup}: give the tables different suffixes")
        return (", ".join(exprs) if exprs else "NULL AS __none"), fields

    # -- filters -----------------------------------------------------------------------------

    def _filters(self, srcs: list[_Source], aliases: dict[str, str]
                 ) -> tuple[list[str], dict[str, set[str]], dict[str, set[str]]]:
        conds: list[str] = []
        eq_cols: dict[str, set[str]] = {}
        box_cols: dict[str, set[str]] = {}
        by_name = {s.name: s for s in srcs}
        for s in srcs:
            if not s.view:
                conds.append(f"{aliases[s.name]}.{_q('valid')} = TRUE" if any(
                    c.name == "valid" for c in s.columns) else "TRUE")
        for kind in FILTER_KINDS:
            spec = getattr(self.r, f"filter_{kind}")
            if not spec:
                continue
            if not isinstance(spec, Mapping):
                raise _error(f"filter_{kind}_dict must map table names to {{column: value}}")
            if kind == "notin" and self.b.server_compat:
                continue  # the service reads filter_out_dict and so ignores these (§2.3)
            for table, cols in spec.items():
                if table not in by_name:
                    raise _error(f"filter_{kind}_dict names table {table!r}, which is not part of "
                                 f"the query", hint=_hint(str(table), list(by_name)))
                if not isinstance(cols, Mapping):
                    raise _error(f"filter_{kind}_dict[{table!r}] must be a {{column: value}} object")
                s = by_name[table]
                for name, value in cols.items():
                    c = s.col(str(name))
                    conds.append(self._cond(kind, s, aliases[s.name], c, value))
                    if kind in ("in", "equal") and not c.position:
                        eq_cols.setdefault(s.name, set()).add(c.name)
                    elif kind == "spatial":
                        box_cols.setdefault(s.name, set()).add(c.name)
        return conds, eq_cols, box_cols

    def _cond(self, kind: str, s: _Source, a: str, c: _Col, value: Any) -> str:
        col = f"{a}.{_q(c.name)}"
        what = f"filter_{kind}_dict {s.name}.{c.name}"
        if kind == "spatial":
            return self._spatial(a, c, value, what)
        if c.position:
            raise _error(f"{what}: a position column takes only filter_spatial_dict",
                         hint=f"use a box on {c.name}, e.g. [[x0, y0, z0], [x1, y1, z1]]")
        if kind == "regex":
            if not pa.types.is_string(c.type):
                raise _error(f"{what}: regex filters apply to string columns only ({c.type})")
            if not isinstance(value, str):
                raise _error(f"{what}: the regex must be a string, not {value!r}")
            return f"regexp_matches({col}, {self.p(value)})"
        if kind in ("in", "notin"):
            if hasattr(value, "tolist") and not isinstance(value, str):
                value = value.tolist()  # numpy arrays, pandas Series
            if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence | set | frozenset):
                raise _error(f"{what}: needs a list of values, not {value!r}")
            vals: list[Any] = []
            for v in value:
                ok, conv = self._value(what, c, "equal", v)
                if ok and conv is not None:
                    vals.append(conv)
            if kind == "notin":
                if any(v is None for v in value):
                    return "FALSE"  # x NOT IN (..., NULL) is never true in SQL
                return f"({col} NOT IN {self._in_list(vals)})" if vals else "TRUE"
            if not vals:
                return "FALSE"  # the service renders an empty IN as 1 != 1
            cond = f"({col} IN {self._in_list(vals)}"
            cand = self._stored_candidates(s, c, vals)
            if cand is not None:
                cond += f" AND {a}.{_q('__stored_' + c.name)} IN (SELECT unnest({self.p(cand)}))"
            return cond + ")"
        if kind == "equal":
            if value is None:
                return f"{col} IS NULL"
            ok, conv = self._value(what, c, kind, value)
            if not ok:
                return conv  # type: ignore[no-any-return]
            cand = self._stored_candidates(s, c, [conv])
            extra = f" AND {a}.{_q('__stored_' + c.name)} IN (SELECT unnest({self.p(cand)}))" if cand else ""
            return f"({col} = {self.p(conv)}{extra})"
        op = _OPS[kind]
        if value is None:
            return "FALSE"  # a comparison with NULL is never true
        ok, conv = self._value(what, c, kind, value)
        if not ok:
            return f"{col} IS NOT NULL" if conv == "NOTNULL" else conv  # type: ignore[no-any-return]
        if isinstance(conv, tuple):  # a non-integral bound on an integer column
            conv, op = conv
        return f"{col} {op} {self.p(conv)}"

    def _in_list(self, vals: list[Any]) -> str:
        if len(vals) <= _MAX_INLINE_IN:
            return "(" + ", ".join(self.p(v) for v in vals) + ")"
        return f"(SELECT unnest({self.p(vals)}))"

    def _stored_candidates(self, s: _Source, c: _Col, vals: list[Any]) -> list[int] | None:
        """For a remapped root id column: the stored ids that map to ``vals`` (lets the scan
        prune row groups although the rewritten column cannot be pushed down)."""
        key = (s.version, s.name)
        if not s.remap or not c.name.endswith("_root_id") or key not in self.b._inverse:
            return None
        inv, moved = self.b._inverse[key], self.b._remapped[key]
        out: list[int] = []
        for v in vals:
            if isinstance(v, int):
                if v not in moved:
                    out.append(v)
                out.extend(inv.get(v, ()))
        return out

    def _spatial(self, a: str, c: _Col, value: Any, what: str) -> str:
        if not c.position:
            raise _error(f"{what}: spatial filters apply to position columns only")
        try:
            (lo, hi) = value
            lo = [_num(_py(v)) for v in lo]
            hi = [_num(_py(v)) for v in hi]
            if len(lo) != 3 or len(hi) != 3:
                raise ValueError
        except (TypeError, ValueError) as exc:
            raise _error(f"{what}: a box is [[x0, y0, z0], [x1, y1, z1]], not {value!r}") from exc
        for axis, l, h in zip("xyz", lo, hi, strict=True):
            if not l < h:
                raise _error(f"{what}: the box needs min < max on every axis ({axis}: {l} >= {h})")
        return " AND ".join(
            f"{a}.{_q(c.name + '_' + axis)} BETWEEN {self.p(l)} AND {self.p(h)}"
            for axis, l, h in zip("xyz", lo, hi, strict=True))

    def _value(self, what: str, c: _Col, kind: str, v: Any) -> tuple[bool, Any]:
        """Check ``v`` against the column type. Returns (True, bound value) or
        (False, constant SQL) when the comparison's outcome does not depend on the row."""
        t = c.type
        v = _py(v)
        if v is None:
            return True, None
        if pa.types.is_boolean(t):
            if not isinstance(v, bool):
                raise _error(f"{what}: a boolean column compares with true/false, not {v!r}")
            return True, v
        if pa.types.is_string(t):
            if not isinstance(v, str):
                raise _error(f"{what}: a string column compares with strings, not {v!r}")
            return True, v
        if pa.types.is_timestamp(t):
            if isinstance(v, str):
                try:
                    v = datetime.fromisoformat(v)
                except ValueError as exc:
                    raise _error(f"{what}: not an ISO timestamp: {v!r}") from exc
            if not isinstance(v, datetime):
                raise _error(f"{what}: a timestamp column compares with timestamps, not {v!r}")
            return True, (v.astimezone(UTC).replace(tzinfo=None) if v.tzinfo else v)
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise _error(f"{what}: a numeric column compares with numbers, not {v!r}")
        if pa.types.is_floating(t):
            return True, float(v) if isinstance(v, float) else v
        return _int_bound(kind, v)


def _py(v: Any) -> Any:
    """numpy/pandas scalars as Python values (the engine passes ids taken from frames)."""
    if type(v).__name__ in ("NAType", "NaTType"):
        return None
    item = getattr(v, "item", None)
    if item is not None and type(v).__module__ == "numpy":
        return item()
    return v


def _num(v: Any) -> float | int:
    if isinstance(v, bool) or not isinstance(v, int | float) or (isinstance(v, float) and math.isnan(v)):
        raise ValueError(v)
    return v


def _kind(t: pa.DataType) -> str:
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return "number"
    return str(t)


def _int_bound(kind: str, v: int | float) -> tuple[bool, Any]:
    """Compare an integer column with ``v`` exactly (never through float64, which would
    merge neighbouring 18-digit root ids). Non-integral and out-of-range values become
    the equivalent integer bound or a constant condition."""
    not_null = "NOTNULL"  # true for every row whose value is not NULL
    if isinstance(v, float):
        if math.isnan(v):
            # PostgreSQL orders NaN above every number
            return (False, "FALSE") if kind in ("equal", "greater", "greater_equal") else (False, not_null)
        if math.isinf(v):
            big = v > 0
            if kind == "equal":
                return False, "FALSE"
            return False, ("FALSE" if (kind in ("greater", "greater_equal")) == big else not_null)
        if not v.is_integer():
            if kind == "equal":
                return False, "FALSE"
            return True, (math.floor(v), ">") if kind in ("greater", "greater_equal") else (
                math.ceil(v), "<")
        v = int(v)
    if _INT64[0] <= v <= _INT64[1]:
        return True, v
    if kind == "equal":
        return False, "FALSE"
    above = v > _INT64[1]
    if kind in ("greater", "greater_equal"):
        return False, "FALSE" if above else not_null
    return False, not_null if above else "FALSE"
