"""Load a caveql datastack folder into the genuine MaterializationEngine's PostgreSQL layout.

Runs under the ENGINE's Python (it uses the engine's locked DynamicAnnotationDB and
EMAnnotationSchemas packages, never caveql)::

    PYTHONPATH=/tmp/me/src /tmp/me/env/bin/python me_loader.py \
        --datastack-path /tmp/loader-tiny --pg-url postgresql://postgres@127.0.0.1:55432 \
        --layout merged|split [--info-url URL | --aligned-volume NAME --pcg-table-name NAME]

What it creates (everything the engine's frozen and live read paths read, nothing else):

* the aligned-volume database (default: ``datastack.json``'s ``aligned_volume.name``) with the
  DynamicAnnotationDB tables ``annotation_table_metadata``, ``segmentation_table_metadata``,
  ``analysisversion``, ``analysistables``, ``analysisviews`` (+ the other tables of that model
  set, empty), filled so that the metadata routes answer the folder's JSON verbatim:
    - one ``annotation_table_metadata`` row per table from its newest table JSON (every field,
      its ``id`` too), and a ``segmentation_table_metadata`` row (``{table}__{pcg}``, same
      ``created``/``valid``) when that JSON carries the segmentation keys (``pcg_table_name``,
      ``segmentation_source``, ``last_updated``, ``annotation_table``) or the schema has
      segmentation fields: the v3 metadata answer is the AnalysisTable dump updated with the
      join of both rows (api2.py:1031-1050), so every key of the JSON comes back;
    - one ``analysistables`` row per version and table whose ``id`` is that version's JSON
      ``id`` (the ``id`` the metadata routes answer); ``aligned_volume``/``schema`` from the JSON;
    - one ``analysisviews`` row per view (newest JSON, its ``id``);
* the live tables in the aligned-volume database, as a real deployment has them (read by
  ``unique_string_values`` through DynamicAnnotationDB.cached_table, and by the live query's
  production step, api2.py:1763-1781 ``execute_production_query`` with split models): per table
  the annotation table (annotation model, ``created``/``deleted``/``superceded_id``) and
  ``{table}__{pcg_table_name}`` (id + supervoxel/root ids) when the schema has segmentation
  fields, filled with the newest version's rows of the table ("live ≡ frozen at the newest
  version"; ``deleted`` is null, or one microsecond before the newest version for rows not valid);
* one frozen database ``{datastack}__mat{version}`` per version with ``materializedmetadata``,
  ``analysisviews`` (that version's views, their JSON ids) and the tables, built from the EMAnnotationSchemas
  models the engine itself builds:
    - ``merged``: tables with segmentation fields become one flat table (flat-model columns:
      id, valid, fields, supervoxel/root ids; no created/deleted/superceded_id, exactly as the
      engine's merge_tables step leaves them); tables without segmentation fields (reference
      tables) keep the annotation-model columns (with created/deleted/superceded_id), as the
      engine leaves them unmerged;
    - ``split``: annotation table (annotation model, with CRUD columns) plus
      ``{table}__{pcg_table_name}`` (id + supervoxel/root ids) when the schema has
      segmentation fields; ``is_merged`` false;
  positions are POINTZ geometries; rows are inserted in id order (the engine's queries have no
  ORDER BY, so a sequential scan then returns id order);
* views: the stored DuckDB SQL, translated to PostgreSQL, over helper views in the schema
  ``me_loader`` that expose each table with split ``X_x/X_y/X_z`` columns (what the DuckDB SQL
  names); the public view turns each ``X_x, X_y, X_z`` integer triple back into a POINTZ column
  ``X``, so the engine scales and splits it like a table's position.

Rows where ``valid`` is false are loaded unchanged (the engine filters ``valid = true``).
Older versions' ``root_id_map`` is applied to every ``*_root_id`` column while loading.

Idempotent: every database it creates carries the comment ``me_loader:<datastack>``; a rerun
drops and recreates those (and frozen databases of versions no longer in the folder). It refuses
to drop a database it did not create unless given ``--force``.

Prints one JSON line: databases, tables (rows, valid rows), views, timings and rows/s.

Note: the engine takes the aligned-volume name and the pcg table name (``{table}__{pcg}``
segmentation tables) from the info service's datastack record, so they must match what the info
service serving the engine returns: pass ``--info-url`` (the names are read from it) or
``--aligned-volume`` / ``--pcg-table-name``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import re
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The engine's environment: running needs it; importing (pytest --doctest-modules collects
# this file under caveql's venv) must not, nor may it change the importer's warning filters.
# The folder readers (read_folder, read_rows, read_root_columns) need only numpy and pyarrow.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # geoalchemy2 / pkg_resources deprecation noise
    try:
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - both are in caveql's and the engine's environments
        pass
    try:
        import psycopg2
        from dynamicannotationdb.models import (
            AnalysisTable,
            AnalysisVersion,
            AnalysisView,
            AnnoMetadata,
            Base,
            CombinedTableMetadata,
            MaterializedMetadata,
            SegmentationMetadata,
            VersionErrorTable,
        )
        from dynamicannotationdb.schema import DynamicSchemaClient
        from geoalchemy2.types import Geometry
        from sqlalchemy import create_engine
        from sqlalchemy.dialects import postgresql
        from sqlalchemy.pool import NullPool
    except ImportError as exc:
        MISSING: ImportError | None = exc
    else:
        MISSING = None

# the view translation lives beside this script (run as a script, or imported by pytest)
sys.path.insert(0, str(Path(__file__).resolve().parent))
from me_sql import duckdb_to_postgres  # noqa: E402

OWNER_TAG = "me_loader"
SPLIT_SCHEMA = "me_loader"  # helper views exposing split positions to the view SQL
INT_OIDS = {20, 21, 23}  # int8, int2, int4


# ------------------------------------------------------------------------------ the folder

@dataclass
class TableSpec:
    name: str
    metadata: dict[str, Any]
    path: Path
    root_id_map: Path | None


@dataclass
class VersionSpec:
    version: int
    metadata: dict[str, Any]
    tables: dict[str, TableSpec] = field(default_factory=dict)
    views: dict[str, dict[str, Any]] = field(default_factory=dict)


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def read_folder(root: Path) -> tuple[dict[str, Any], dict[int, VersionSpec]]:
    """``datastack.json`` and every version (tables: first stored copy + root id map)."""
    info = _json(root / "datastack.json")
    versions: dict[int, VersionSpec] = {}
    for folder in sorted((root / "versions").iterdir()):
        if not folder.is_dir():
            continue
        v = int(folder.name)
        spec = VersionSpec(v, {"version": v, "valid": True, **_json(folder / "version.json")})
        for p in sorted((folder / "tables").glob("*.json")):
            md = _json(p)
            storage = md.pop("_storage", None) or {}
            files = storage.get("files") or []
            first = files[0] if files else None
            if isinstance(first, dict):
                first = first["path"]
            data = (root / first) if first else p.with_suffix(".parquet")
            remap = storage.get("root_id_map")
            if "voxel_resolution" in md and "voxel_resolution_x" not in md:
                for axis, r in zip("xyz", md.pop("voxel_resolution")):
                    md[f"voxel_resolution_{axis}"] = float(r)
            spec.tables[p.stem] = TableSpec(p.stem, md, data, (root / remap) if remap else None)
        for p in sorted((folder / "views").glob("*.json")):
            spec.views[p.stem] = _json(p)
        versions[v] = spec
    return info, versions


def _ts(value: Any, default: dt.datetime | None = None) -> dt.datetime | None:
    if value in (None, ""):
        return default
    if isinstance(value, dt.datetime):
        return value
    out = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return out.astimezone(dt.timezone.utc).replace(tzinfo=None) if out.tzinfo else out


# ------------------------------------------------------------------------------ models

@dataclass
class Layout:
    """The physical tables the engine reads for one annotation table."""

    annotation: list  # SQLAlchemy columns of the (flat or annotation) table, in order
    segmentation: list | None  # columns of {table}__{pcg} (split layout), else None
    seg_required: bool


_REF_TYPES: dict[str, str] = {}  # table name -> schema type, for reference targets


def engine_layout(name: str, schema_type: str, reference: str | None, layout: str,
                  pcg: str) -> Layout:
    schemas = DynamicSchemaClient()
    table_md = {"reference_table": reference} if reference else None
    seg_required = schemas.is_segmentation_table_required(schema_type)
    if reference:  # the engine registers the target's models first (its FK target)
        ref_type = _REF_TYPES.get(reference)
        if ref_type:
            schemas.get_split_models(reference, ref_type, pcg)
    ann, seg = schemas.get_split_models(name, schema_type, pcg, table_metadata=table_md)
    if layout == "split":
        return Layout(list(ann.__table__.columns),
                      list(seg.__table__.columns) if seg is not None else None, seg_required)
    if seg_required:
        flat = schemas.create_flat_model(name, schema_type, table_metadata=table_md)
        return Layout(list(flat.__table__.columns), None, True)
    return Layout(list(ann.__table__.columns), None, False)


def pg_type(column) -> str:
    return column.type.compile(dialect=postgresql.dialect())


def qi(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# ------------------------------------------------------------------------------ rows

def read_rows(spec: TableSpec, cache: dict[Path, pa.Table]) -> pa.Table:
    """The table's rows, sorted by id, with the version's root ids."""
    table = cache.get(spec.path)
    if table is None:
        table = pq.read_table(spec.path)
        if "id" in table.column_names:
            table = table.take(pc.sort_indices(table, [("id", "ascending")]))
        cache[spec.path] = table
    return apply_root_id_map(table, spec)


def apply_root_id_map(table: pa.Table, spec: TableSpec) -> pa.Table:
    """Every ``*_root_id`` column rewritten through the version's ``root_id_map`` (if any)."""
    if spec.root_id_map is not None:
        m = pq.read_table(spec.root_id_map, columns=["root_id", "version_root_id"])
        keys, values = m.column("root_id").combine_chunks(), m.column("version_root_id").combine_chunks()
        for i, col in enumerate(table.column_names):
            if col.endswith("_root_id"):
                stored = table.column(i)
                mapped = pc.take(values, pc.index_in(stored, value_set=keys))
                table = table.set_column(i, col, pc.coalesce(mapped, stored).cast(pa.int64()))
    return table


def read_root_columns(spec: TableSpec) -> pa.Table:
    """Only the table's ``*_supervoxel_id`` and ``*_root_id`` columns (the version's root ids)."""
    names = pq.read_schema(spec.path).names
    cols = [c for c in names if c.endswith(("_supervoxel_id", "_root_id"))]
    if not cols:
        return pa.table({})
    return apply_root_id_map(pq.read_table(spec.path, columns=cols), spec)


def ewkb_points(x: pa.Array, y: pa.Array, z: pa.Array) -> pa.Array:
    """Hex EWKB POINT Z strings (what PostGIS parses for a geometry column), null where any is."""
    hexdigits = np.frombuffer(b"0123456789ABCDEF", dtype=np.uint8)
    ewkb = np.dtype([("order", "u1"), ("type", "<u4"), ("x", "<f8"), ("y", "<f8"), ("z", "<f8")])
    n = len(x)
    rec = np.empty(n, dtype=ewkb)  # packed: 29 bytes a point
    rec["order"], rec["type"] = 1, 0x80000001  # little endian, Point with the EWKB Z flag
    for axis, arr in (("x", x), ("y", y), ("z", z)):
        rec[axis] = pc.fill_null(arr, 0).to_numpy(zero_copy_only=False)
    raw = rec.view(np.uint8).reshape(n, ewkb.itemsize)
    text = np.empty((n, 2 * ewkb.itemsize), dtype=np.uint8)
    text[:, 0::2], text[:, 1::2] = hexdigits[raw >> 4], hexdigits[raw & 15]
    offsets = np.arange(0, text.size + 1, text.shape[1], dtype=np.int32)
    out = pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(text))
    valid = pc.and_(pc.and_(pc.is_valid(x), pc.is_valid(y)), pc.is_valid(z))
    if pc.all(valid).as_py():
        return out
    return pc.if_else(valid, out, pa.scalar(None, pa.string()))


def project(batch: pa.RecordBatch, columns: list, defaults: dict[str, Any],
            missing: set[str]) -> pa.Table:
    """The batch as the given model columns (positions joined into EWKB, absent ones null)."""
    names = batch.schema.names
    arrays, out_names = [], []
    for col in columns:
        name = col.name
        if isinstance(col.type, Geometry):
            parts = [f"{name}_{a}" for a in "xyz"]
            if all(p in names for p in parts):
                arr = ewkb_points(*(batch.column(names.index(p)) for p in parts))
            else:
                missing.add(name)
                arr = pa.nulls(batch.num_rows, pa.string())
        elif name in names:
            arr = batch.column(names.index(name))
        elif name in defaults:
            arr = pa.array([defaults[name]] * batch.num_rows)
        else:
            if name != "deleted":
                missing.add(name)
            arr = pa.nulls(batch.num_rows, pa.string())
        arrays.append(arr)
        out_names.append(name)
    return pa.Table.from_arrays(arrays, names=out_names)


def csv_parts(rows: pa.Table, targets: list, defaults: dict[str, Any], missing: set[str],
              batch_rows: int):
    """(table, columns, CSV buffer) for each batch of rows and each physical table."""
    for batch in rows.to_batches(max_chunksize=batch_rows):
        for tname, cols in targets:
            part = project(batch, cols, defaults, missing)
            buf = io.BytesIO()
            pacsv.write_csv(part, buf, pacsv.WriteOptions(include_header=False, batch_size=65536))
            buf.seek(0)
            yield tname, part.column_names, buf


def copy_rows(cur, parts) -> None:
    """COPY every part, building the next one in a thread while PostgreSQL parses this one."""
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(next, parts, None)
        while (item := pending.result()) is not None:
            pending = pool.submit(next, parts, None)
            table, columns, buf = item
            cols = ", ".join(qi(c) for c in columns)
            cur.copy_expert(f"COPY {qi(table)} ({cols}) FROM STDIN WITH (FORMAT csv, FREEZE true)",
                            buf, size=1 << 20)


# ------------------------------------------------------------------------------ databases

class Cluster:
    """Connections to the cluster (``base`` = URL without a database)."""

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")

    def connect(self, db: str, autocommit: bool = False):
        conn = psycopg2.connect(f"{self.base}/{db}")
        conn.autocommit = autocommit
        return conn

    def engine(self, db: str):
        return create_engine(f"{self.base}/{db}", poolclass=NullPool)


def database_comments(admin) -> dict[str, str | None]:
    with admin.cursor() as cur:
        cur.execute("SELECT d.datname, shobj_description(d.oid, 'pg_database') FROM pg_database d")
        return dict(cur.fetchall())


def recreate_database(admin, name: str, tag: str, existing: dict[str, str | None],
                      force: bool) -> None:
    with admin.cursor() as cur:
        if name in existing:
            if not (existing[name] or "").startswith(OWNER_TAG) and not force:
                raise SystemExit(f"me_loader: database {name} exists and was not created by "
                                 "me_loader; pass --force to replace it")
            cur.execute(f"DROP DATABASE {qi(name)} WITH (FORCE)")
        cur.execute(f"CREATE DATABASE {qi(name)}")
        cur.execute(f"COMMENT ON DATABASE {qi(name)} IS %s", (tag,))


def create_model_tables(cluster: Cluster, db: str, tables: list) -> None:
    eng = cluster.engine(db)
    try:
        with eng.begin() as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        Base.metadata.create_all(eng, tables=[t.__table__ for t in tables], checkfirst=True)
    finally:
        eng.dispose()


# ------------------------------------------------------------------------------ the load

@dataclass
class Summary:
    databases: list[str] = field(default_factory=list)
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    views: dict[str, list[str]] = field(default_factory=dict)
    rows: int = 0
    copy_seconds: float = 0.0
    index_seconds: float = 0.0
    live_rows: int = 0
    live_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def live_rows(rows: pa.Table, newest_ts: dt.datetime) -> pa.Table:
    """A version's rows as a live (annotation) table holds them: ``deleted`` null for valid rows;
    rows not valid get ``deleted`` one microsecond before the newest version (they were deleted
    before it, so no live query window after it contains the deletion)."""
    if "deleted" in rows.column_names or "valid" not in rows.column_names:
        return rows
    valid = pc.fill_null(rows.column("valid"), True)
    if pc.all(valid).as_py():
        return rows
    stamp = pa.scalar(newest_ts - dt.timedelta(microseconds=1), pa.timestamp("us"))
    return rows.append_column("deleted", pc.if_else(valid, pa.scalar(None, pa.timestamp("us")), stamp))


def load_table(conn, spec: TableSpec, lay: Layout, rows: pa.Table, version_ts: dt.datetime,
               pcg: str, indexes: str, batch_rows: int, summary: Summary, key: str) -> int:
    """Create and fill the table(s) of one annotation table in the frozen database."""
    name = spec.name
    seg_name = f"{name}__{pcg}"
    targets = [(name, lay.annotation)]
    if lay.segmentation is not None:
        targets.append((seg_name, [c for c in lay.segmentation]))
    missing: set[str] = set()
    defaults = {"created": version_ts, "valid": True}
    t0 = time.perf_counter()
    with conn.cursor() as cur:
        for tname, cols in targets:
            body = ", ".join(
                f"{qi(c.name)} {pg_type(c)}" + ("" if c.nullable or c.primary_key else " NOT NULL")
                for c in cols)
            cur.execute(f"CREATE TABLE {qi(tname)} ({body})")
        copy_rows(cur, csv_parts(rows, targets, defaults, missing, batch_rows))
        conn.commit()
        t1 = time.perf_counter()
        summary.copy_seconds += t1 - t0
        copy_s = t1 - t0
        for tname, cols in targets:
            if indexes == "none":
                continue
            cur.execute(f"ALTER TABLE {qi(tname)} ADD PRIMARY KEY (id)")
            for c in cols:
                if c.primary_key:
                    continue
                if c.index and not isinstance(c.type, Geometry):
                    cur.execute(f"CREATE INDEX {qi(f'ix_{tname}_{c.name}')} ON {qi(tname)} ({qi(c.name)})")
                elif isinstance(c.type, Geometry) and indexes == "all":
                    cur.execute(f"CREATE INDEX {qi(f'idx_{tname}_{c.name}'.lower())} ON {qi(tname)} "
                                f"USING GIST ({qi(c.name)} gist_geometry_ops_nd)")
        cur.execute(f"ANALYZE {qi(name)}")
        if lay.segmentation is not None:
            cur.execute(f"ANALYZE {qi(seg_name)}")
        conn.commit()
        summary.index_seconds += time.perf_counter() - t1
    used = {c.name for _, cols in targets for c in cols}
    used |= {f"{c.name}_{a}" for _, cols in targets for c in cols if isinstance(c.type, Geometry)
             for a in "xyz"}
    ignored = [c for c in rows.column_names if c not in used]
    entry = summary.tables.setdefault(key, {})
    entry.update(rows=rows.num_rows, tables=[t for t, _ in targets],
                 copy_seconds=round(copy_s, 3), index_seconds=round(time.perf_counter() - t1, 3))
    if ignored:
        entry["ignored_columns"] = ignored
    if missing:
        entry["null_columns"] = sorted(missing)
    return rows.num_rows


def create_split_view(cur, spec: TableSpec, lay: Layout, rows_schema: pa.Schema, pcg: str) -> None:
    """``me_loader.<table>``: the table with the folder's columns (positions split to ints)."""
    physical = {c.name: c for c in lay.annotation}
    src = f"public.{qi(spec.name)} a"
    if lay.segmentation is not None:
        physical.update({c.name: c for c in lay.segmentation if c.name != "id"})
        src += f" LEFT JOIN public.{qi(spec.name + '__' + pcg)} s ON s.id = a.id"
    seg_cols = {c.name for c in (lay.segmentation or []) if c.name != "id"}
    out = []
    for name in rows_schema.names:
        alias = "s" if name in seg_cols else "a"
        base, _, axis = name.rpartition("_")
        if axis in ("x", "y", "z") and isinstance(getattr(physical.get(base), "type", None), Geometry):
            out.append(f"ST_{axis.upper()}(a.{qi(base)})::integer AS {qi(name)}")
        elif name in physical:
            out.append(f"{alias}.{qi(name)}")
    cur.execute(f"CREATE VIEW {SPLIT_SCHEMA}.{qi(spec.name)} AS SELECT {', '.join(out)} FROM {src}")


def create_view(cur, name: str, duck_sql: str) -> list[str]:
    """The view in public: the translated SQL, its ``X_x, X_y, X_z`` integer triples as POINTZ."""
    inner = duckdb_to_postgres(duck_sql)
    cur.execute(f"SET search_path = {SPLIT_SCHEMA}, public")
    cur.execute(f"SELECT * FROM ({inner}) AS _v LIMIT 0")
    desc = [(d.name, d.type_code) for d in cur.description]
    out, i = [], 0
    while i < len(desc):
        col, oid = desc[i]
        trio = desc[i:i + 3]
        if (col.endswith("_x") and len(trio) == 3
                and [c for c, _ in trio] == [col[:-2] + s for s in ("_x", "_y", "_z")]
                and all(o in INT_OIDS for _, o in trio)):
            x, y, z = (qi(c) for c, _ in trio)
            out.append(f"ST_MakePoint({x}, {y}, {z})::geometry(PointZ) AS {qi(col[:-2])}")
            i += 3
            continue
        out.append(qi(col))
        i += 1
    cur.execute(f"CREATE VIEW public.{qi(name)} AS SELECT {', '.join(out)} FROM ({inner}) AS _v")
    cur.execute("SET search_path = public")
    return [d for d, _ in desc]


def fetch_info(url: str, datastack: str) -> dict[str, Any]:
    """The datastack record from an info service (``url`` = global server, or its ``/info``)."""
    import requests

    base = url.rstrip("/")
    base = base[:-len("/info")] if base.endswith("/info") else base
    r = requests.get(f"{base}/info/api/v2/datastack/full/{datastack}", timeout=30)
    r.raise_for_status()
    return r.json()


# ------------------------------------------------------------------------------ metadata rows

# annotation_table_metadata / segmentation_table_metadata / analysistables columns, and where
# the v3 metadata answer takes each key from (api2.py:1031-1050: the AnalysisTable dump updated
# with DynamicAnnotationDB.get_table_metadata -- annotation row, then segmentation row on top --
# minus id and deleted, annotation_table moved into table_name)
_ANNO_KEYS = ("schema_type", "table_name", "valid", "created", "user_id", "description",
              "notice_text", "reference_table", "flat_segmentation_source", "voxel_resolution_x",
              "voxel_resolution_y", "voxel_resolution_z", "write_permission", "read_permission",
              "last_modified")
_SEG_KEYS = ("segmentation_source", "pcg_table_name", "last_updated", "annotation_table")
_ANALYSIS_TABLE_KEYS = ("id", "aligned_volume", "schema", "table_name", "valid", "created")


def _int_id(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def assign_ids(mds: dict[str, dict[str, Any]]) -> dict[str, int]:
    """Row ids: each JSON's ``id`` (the first one to claim it), the rest numbered after the
    largest (so no sequence value can collide with an explicit id)."""
    out: dict[str, int] = {}
    used: set[int] = set()
    for name, md in mds.items():
        i = _int_id(md.get("id"))
        if i is not None and i not in used:
            out[name] = i
            used.add(i)
    nxt = max(used, default=0) + 1
    for name in mds:
        if name not in out:
            out[name], nxt = nxt, nxt + 1
    return out


def insert_table_metadata(cur, name: str, md: dict[str, Any], row_id: int, pcg: str,
                          default_ts: dt.datetime, summary: Summary) -> None:
    """The aligned volume's ``annotation_table_metadata`` row of a table (its newest JSON, every
    field verbatim) and, when the JSON carries segmentation-metadata keys or the schema has
    segmentation fields, its ``segmentation_table_metadata`` row (same created/valid)."""
    schema_type = md.get("schema_type") or md["schema"]
    created = _ts(md.get("created"), default_ts)
    valid = md.get("valid", True)
    cur.execute(
        "INSERT INTO annotation_table_metadata (id, schema_type, table_name, valid, created, "
        "deleted, user_id, description, notice_text, reference_table, flat_segmentation_source, "
        "voxel_resolution_x, voxel_resolution_y, voxel_resolution_z, write_permission, "
        "read_permission, last_modified) "
        "VALUES (%s,%s,%s,%s,%s,NULL,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
        (row_id, schema_type, name, valid, created,
         str(md["user_id"]) if md.get("user_id") is not None else "0",
         md["description"] if md.get("description") is not None else "",
         md.get("notice_text"), md.get("reference_table"), md.get("flat_segmentation_source"),
         *(float(md.get(f"voxel_resolution_{a}", 1.0)) for a in "xyz"),
         md.get("write_permission") or "PRIVATE", md.get("read_permission") or "PUBLIC",
         _ts(md.get("last_modified"), created)))
    if any(k in md for k in _SEG_KEYS) or DynamicSchemaClient.is_segmentation_table_required(schema_type):
        seg_pcg = md["pcg_table_name"] if md.get("pcg_table_name") is not None else pcg
        cur.execute(
            "INSERT INTO segmentation_table_metadata (schema_type, table_name, valid, created, "
            "deleted, segmentation_source, pcg_table_name, last_updated, annotation_table) "
            "VALUES (%s,%s,%s,%s,NULL,%s,%s,%s,%s)",
            (schema_type, f"{name}__{seg_pcg}", valid, created, md.get("segmentation_source"),
             seg_pcg, _ts(md.get("last_updated")), name))
    known = set(_ANNO_KEYS) | set(_SEG_KEYS) | set(_ANALYSIS_TABLE_KEYS) | {"voxel_resolution"}
    extra = sorted(k for k in md if k not in known)
    if extra:
        summary.notes.append(f"{name}: metadata keys {extra} have no column in the engine's "
                             "metadata tables; the engine does not return them")


def insert_view_metadata(cur, name: str, md: dict[str, Any], row_id: int, datastack: str) -> None:
    """An ``analysisviews`` row with the view JSON's id and fields."""
    cur.execute(
        "INSERT INTO analysisviews (id, table_name, description, datastack_name, "
        "voxel_resolution_x, voxel_resolution_y, voxel_resolution_z, notice_text, "
        "live_compatible) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s)",
        (row_id, name, md.get("description") or "", md.get("datastack_name") or datastack,
         *(float(md.get(f"voxel_resolution_{a}", 1.0)) for a in "xyz"),
         md.get("notice_text"), bool(md.get("live_compatible", False))))


def insert_analysis_tables(cur, versions: dict[int, VersionSpec], version_ids: dict[int, int],
                           aligned: str, summary: Summary) -> None:
    """One ``analysistables`` row per version and table. Its ``id`` is what the metadata routes
    answer as ``id`` (the AnalysisTable dump; ``get_table_metadata``'s own id is popped), so it
    is the table JSON's ``id`` of that version. A folder may give a table the same id at two
    versions, which the engine's own materialization never does (a serial primary key): the
    primary key is then dropped so both rows can carry it (the engine looks rows up by version
    id and table name, never by id)."""
    seen: dict[int, tuple[int, str]] = {}
    clashes = []
    for v in sorted(versions):
        for t in versions[v].tables.values():
            tid = _int_id(t.metadata.get("id"))
            if tid is not None:
                if tid in seen:
                    clashes.append((tid, seen[tid], (v, t.name)))
                seen.setdefault(tid, (v, t.name))
    if clashes:
        cur.execute("ALTER TABLE analysistables DROP CONSTRAINT analysistables_pkey")
        summary.notes.append(
            f"{len(clashes)} table ids repeat across versions (e.g. {clashes[0][0]} at "
            f"{clashes[0][1]} and {clashes[0][2]}); analysistables has no primary key so that "
            "each version answers its JSON's id")
    nxt = max(seen, default=0) + 1
    for v in sorted(versions):
        ts = _ts(versions[v].metadata.get("time_stamp"))
        for t in versions[v].tables.values():
            md = t.metadata
            tid = _int_id(md.get("id"))
            if tid is None:
                tid, nxt = nxt, nxt + 1
            cur.execute(
                "INSERT INTO analysistables (id, aligned_volume, schema, table_name, valid, "
                "created, analysisversion_id) VALUES (%s,%s,%s,%s,%s,%s,%s)",
                (tid, md.get("aligned_volume") or aligned, md.get("schema") or md.get("schema_type"),
                 t.name, md.get("valid", True), ts, version_ids[v]))


def load(args: argparse.Namespace) -> dict[str, Any]:
    t_start = time.perf_counter()
    root = Path(args.datastack_path)
    info, versions = read_folder(root)
    datastack = info["datastack_name"]
    if args.info_url:  # the names the engine will read, from the info service it will ask
        info = {**info, **fetch_info(args.info_url, datastack)}
    aligned = args.aligned_volume or (info.get("aligned_volume") or {}).get("name") or datastack
    seg_source = info.get("segmentation_source") or ""
    pcg = args.pcg_table_name or seg_source.rstrip("/").split("/")[-1] or f"{datastack}_pcg"
    merged = args.layout == "merged"
    cluster = Cluster(args.pg_url)
    summary = Summary()
    tag = f"{OWNER_TAG}:{datastack}"

    # newest metadata per table / view; schema types of reference targets
    table_md: dict[str, dict[str, Any]] = {}
    view_md: dict[str, dict[str, Any]] = {}
    for v in sorted(versions):
        for t in versions[v].tables.values():
            table_md[t.name] = t.metadata
        for n, m in versions[v].views.items():
            view_md[n] = m
    for name, md in table_md.items():
        _REF_TYPES[name] = md.get("schema_type") or md["schema"]

    admin = cluster.connect("postgres", autocommit=True)
    existing = database_comments(admin)
    wanted = [aligned] + [f"{datastack}__mat{v}" for v in sorted(versions)]
    stale = [d for d, c in existing.items()
             if c == tag and d not in wanted and re.fullmatch(rf"{re.escape(datastack)}__mat\d+", d)]
    for d in stale:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE {qi(d)} WITH (FORCE)")
    for d in wanted:
        recreate_database(admin, d, tag, existing, args.force)
    summary.databases = wanted
    admin.close()

    # ---- aligned-volume database: metadata
    create_model_tables(cluster, aligned, [AnnoMetadata, SegmentationMetadata, CombinedTableMetadata,
                                           AnalysisVersion, AnalysisTable, AnalysisView,
                                           VersionErrorTable])
    av = cluster.connect(aligned)
    newest_ts = _ts(versions[max(versions)].metadata.get("time_stamp"), dt.datetime(2000, 1, 1))
    with av.cursor() as cur:
        ids = assign_ids(table_md)
        for name, md in table_md.items():
            insert_table_metadata(cur, name, md, ids[name], pcg, newest_ts, summary)
        ids = assign_ids(view_md)
        for name, md in view_md.items():
            insert_view_metadata(cur, name, md, ids[name], datastack)
        version_ids: dict[int, int] = {}
        for v in sorted(versions):
            vm = versions[v].metadata
            cur.execute(
                "INSERT INTO analysisversion (id, datastack, version, time_stamp, valid, "
                "expires_on, parent_version, status, is_merged) "
                "VALUES (%s,%s,%s,%s,%s,%s,NULL,%s,%s) RETURNING id",
                (int(vm.get("id", v)), datastack, v, _ts(vm.get("time_stamp")),
                 bool(vm.get("valid", True)), _ts(vm.get("expires_on")),
                 vm.get("status") or "AVAILABLE", merged))
            version_ids[v] = cur.fetchone()[0]
        insert_analysis_tables(cur, versions, version_ids, aligned, summary)
        for table in ("analysisversion", "analysistables", "analysisviews",
                      "annotation_table_metadata", "segmentation_table_metadata"):
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"coalesce((SELECT max(id) FROM {table}), 0) + 1, false)")
    av.commit()

    # ---- frozen databases, and the live tables in the aligned-volume database
    live_version = {name: max(v for v in versions if name in versions[v].tables) for name in table_md}
    uses: dict[Path, int] = {}
    for spec in versions.values():
        for t in spec.tables.values():
            uses[t.path] = uses.get(t.path, 0) + 1
    cache: dict[Path, pa.Table] = {}
    for v in sorted(versions):
        spec = versions[v]
        db = f"{datastack}__mat{v}"
        ts = _ts(spec.metadata.get("time_stamp"))
        create_model_tables(cluster, db, [AnnoMetadata, SegmentationMetadata, AnalysisView])
        eng = cluster.engine(db)
        MaterializedMetadata.__table__.create(eng, checkfirst=True)
        eng.dispose()
        conn = cluster.connect(db)
        layouts: dict[str, tuple[Layout, pa.Schema]] = {}
        for t in spec.tables.values():
            schema_type = t.metadata.get("schema_type") or t.metadata["schema"]
            lay = engine_layout(t.name, schema_type, t.metadata.get("reference_table"),
                                args.layout, pcg)
            rows = read_rows(t, cache)
            uses[t.path] -= 1
            if uses[t.path] == 0:
                cache.pop(t.path, None)
            n = load_table(conn, t, lay, rows, ts, pcg, args.indexes, args.batch_rows, summary,
                           f"{db}.{t.name}")
            summary.rows += n
            valid = (pc.sum(pc.cast(rows.column("valid"), pa.int64())).as_py() or 0
                     if "valid" in rows.column_names else n)
            summary.tables[f"{db}.{t.name}"]["valid_rows"] = valid
            with conn.cursor() as cur:
                cur.execute(
                    "INSERT INTO materializedmetadata (schema, table_name, row_count, "
                    "materialized_timestamp, segmentation_source, is_merged) "
                    "VALUES (%s,%s,%s,%s,%s,%s)",
                    (schema_type, t.name, valid, ts, seg_source if lay.seg_required else None,
                     merged if lay.seg_required else None))
            conn.commit()
            layouts[t.name] = (lay, rows.schema)
            if live_version.get(t.name) == v:  # the live table: this (its newest) version's rows
                t_live = time.perf_counter()
                live_lay = lay if args.layout == "split" else engine_layout(
                    t.name, schema_type, t.metadata.get("reference_table"), "split", pcg)
                summary.live_rows += load_table(av, t, live_lay, live_rows(rows, newest_ts), ts, pcg,
                                                args.indexes, args.batch_rows, summary,
                                                f"{aligned}.{t.name}")
                summary.live_seconds += time.perf_counter() - t_live
            del rows
        with conn.cursor() as cur:
            cur.execute(f"CREATE SCHEMA {SPLIT_SCHEMA}")
            for t in spec.tables.values():
                create_split_view(cur, t, layouts[t.name][0], layouts[t.name][1], pcg)
            ids = assign_ids(spec.views)
            for name, md in spec.views.items():
                try:
                    create_view(cur, name, md["sql"])
                except psycopg2.Error as exc:
                    raise SystemExit(f"me_loader: view {name} at version {v}: {exc}".strip()) from exc
                insert_view_metadata(cur, name, md, ids[name], datastack)
            cur.execute("SELECT setval(pg_get_serial_sequence('analysisviews', 'id'), "
                        "coalesce((SELECT max(id) FROM analysisviews), 0) + 1, false)")
            summary.views[db] = sorted(spec.views)
        conn.commit()
        conn.close()

    av.close()

    total = time.perf_counter() - t_start
    if any(t.get("valid_rows") == 0 for t in summary.tables.values()):
        summary.notes.append("tables with no valid rows are loaded, although the engine's "
                             "materialization would leave them out of the version")
    return {
        "datastack": datastack, "aligned_volume": aligned, "pcg_table_name": pcg,
        "layout": args.layout, "databases": summary.databases, "tables": summary.tables,
        "views": summary.views, "rows": summary.rows, "live_rows": summary.live_rows,
        "live_seconds": round(summary.live_seconds, 2),
        "seconds": round(total, 2), "copy_seconds": round(summary.copy_seconds, 2),
        "index_seconds": round(summary.index_seconds, 2),
        "copy_rows_per_s": round(summary.rows / summary.copy_seconds) if summary.copy_seconds else None,
        "rows_per_s": round(summary.rows / total) if total else None,
        "notes": summary.notes,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datastack-path", required=True, help="caveql datastack folder")
    p.add_argument("--pg-url", required=True,
                   help="cluster URL without a database, e.g. postgresql://postgres@127.0.0.1:55432")
    p.add_argument("--layout", choices=("merged", "split"), required=True)
    p.add_argument("--aligned-volume", help="aligned-volume database name (default: the info's)")
    p.add_argument("--pcg-table-name",
                   help="segmentation table suffix (default: last part of segmentation_source); "
                        "must equal what the engine's info service returns")
    p.add_argument("--info-url",
                   help="take the aligned-volume and pcg table names from this info service's "
                        "datastack record (what the engine will read), e.g. caveql serve's URL")
    p.add_argument("--indexes", choices=("none", "btree", "all"), default="btree",
                   help="btree: primary keys and the schema's indexed columns (default); all: "
                        "also the engine's GiST indexes on positions")
    p.add_argument("--batch-rows", type=int, default=200_000, help="rows per COPY")
    p.add_argument("--force", action="store_true",
                   help="replace databases of the same names not created by me_loader")
    args = p.parse_args(argv)
    if MISSING is not None:
        p.error(f"run me with the engine's Python (PYTHONPATH=<engine src> <engine env>/bin/python): {MISSING}")
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    args.pg_url = re.sub(r"/[^/:@]*$", "", args.pg_url.rstrip("/")) if args.pg_url.count("/") > 2 \
        else args.pg_url.rstrip("/")
    print(json.dumps(load(args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
