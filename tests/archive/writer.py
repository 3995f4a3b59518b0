"""Write a caveql local datastack as the Delta Lake exports MaterializationEngine 5.26 writes.

A test-side stand-in for ``materializationengine/workflows/deltalake_export.py`` (the upstream
exporter reads a frozen PostgreSQL database we do not have in the tests). It follows that code
step by step, and names the upstream function each step mirrors:

- ``{root}/{datastack}/v{version}/{table}/{spec}/`` (``write_deltalake_table``'s
  ``output_uri_base`` + ``spec.name``);
- the rows as the frozen database streams them (``stream_table_to_arrow``): annotation columns
  then segmentation columns, ``created``/``deleted``/``superceded_id`` dropped
  (``_DEFAULT_DROP_COLUMNS``), every PostGIS point as (E)WKB bytes (plain WKB POINT Z as
  the genuine exporter writes them; ``srid`` for EWKB), floats as ``double precision``;
- tables: specs ``id`` + one per indexed non-timestamp column (root ids, ``target_id``) + at most
  one ``{geom}_morton`` (``discover_default_output_specs``, ctr > post > pre > pt > bb); a table
  under the small-table threshold keeps only its first spec (``resolved_specs[:1]``);
- only the Morton spec's geometry column is decoded to Int32 ``{col}_x/_y/_z`` (appended, the
  WKB column dropped: ``decode_geometry_columns``), for every spec of the table; the other
  points stay WKB;
- ``{col}_morton`` Int64 (``add_morton_column``), ``{partition_by}_partition`` Int32 from
  percentile (ids) or uniform Morton bounds (``assign_partition``: ``pl.cut``, right-closed);
- ``write_deltalake(uri, ..., mode="append", partition_by=[...])`` per flush, then
  ``optimize.z_order(zorder_columns)`` and ``vacuum`` (``optimize_deltalake``);
- views: a ``flat`` lake with every geometry decoded, then ``id`` and Morton specs
  re-partitioned from it (``export_view_to_deltalake``).

Polars is replaced by the equivalent pyarrow/numpy steps (noted where the semantics matter).
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from caveql.backends.local import LocalBackend
from caveql.datastack import delta_export
from caveql.datastack.delta_export import DROP


def ewkb_points(x: pa.Array, y: pa.Array, z: pa.Array, *, srid: int | None = None) -> pa.Array:
    """PostGIS POINT Z values as the database streams them: EWKB, little-endian (``srid``: with
    one; else as caveql.datastack.delta_export writes them)."""
    if srid is None:
        return delta_export.wkb_points(x, y, z)
    out: list[bytes | None] = []
    for a, b, c in zip(x.to_pylist(), y.to_pylist(), z.to_pylist(), strict=True):
        out.append(None if a is None else struct.pack("<BIi3d", 1, 0xA0000001, srid, a, b, c))
    return pa.array(out, pa.binary())


def _rank(col: str) -> int:
    return delta_export._rank(col)


def morton_encode_3d(x: Any, y: Any, z: Any) -> np.ndarray:
    """The exporter's ``morton_encode_3d``."""
    return delta_export.morton_codes(x, y, z)


def _db_rows(backend: LocalBackend, version: int, table: str, srid: int | None) -> tuple[pa.Table, list[str]]:
    """The rows as ``stream_table_to_arrow`` yields them, and the geometry columns."""
    rel = f'"v{version}"."{table}"'
    data = backend._con.sql(f"SELECT * FROM {rel} ORDER BY id").to_arrow_table()
    names = [n for n in data.column_names if not n.startswith("__stored_")]
    cols: dict[str, pa.Array] = {}
    geoms: list[str] = []
    i = 0
    while i < len(names):
        n = names[i]
        if n.endswith("_x") and i + 2 < len(names) and names[i + 1] == n[:-2] + "_y":
            g = n[:-2]
            cols[g] = ewkb_points(*(data.column(f"{g}_{a}").combine_chunks() for a in "xyz"), srid=srid)
            geoms.append(g)
            i += 3
            continue
        if n not in DROP:
            cols[n] = _as_stored(data.column(n).combine_chunks())
        i += 1
    return pa.table(cols), geoms


def _as_stored(col: pa.Array) -> pa.Array:
    """A column as PostgreSQL holds it: the schemas' ``Float`` is ``double precision`` there
    (the genuine export of a float32 ``size`` is float64)."""
    return col.cast(pa.float64()) if pa.types.is_float32(col.type) else col


def _decode(table: pa.Table, geom: str) -> pa.Table:
    """``decode_geometry_columns``: WKB → Int32 x/y/z appended, the WKB column dropped."""
    vals = table.column(geom).to_pylist()
    out = table.drop_columns([geom])
    for k, axis in enumerate("xyz"):
        coords = [None if v is None else int(np.int32(struct.unpack_from(
            "<3d", v, len(v) - 24)[k])) for v in vals]
        out = out.append_column(f"{geom}_{axis}", pa.array(coords, pa.int32()))
    return out


def _add_morton(table: pa.Table, geom: str) -> pa.Table:
    x, y, z = (table.column(f"{geom}_{a}").to_numpy(zero_copy_only=False) for a in "xyz")
    ok = ~(np.isnan(x.astype(float)) | np.isnan(y.astype(float)) | np.isnan(z.astype(float)))
    codes = np.zeros(len(x), np.int64)
    if ok.any():
        codes[ok] = morton_encode_3d(x[ok].astype(np.uint64), y[ok].astype(np.uint64),
                                     z[ok].astype(np.uint64))
    return table.append_column(f"{geom}_morton", pa.array(codes, pa.int64(), mask=~ok))


def export_archive(local: str | Path, root: str | Path, *, n_partitions: int = 1,
                   small_tables: tuple[str, ...] = (), flushes: int = 1,
                   srid: int | None = None) -> Path:
    """Export every table and view of the local datastack ``local`` under ``root``.

    ``n_partitions``: what ``resolve_n_partitions`` would give (the tests' tables are tiny, so
    more than 1 stands for big tables); ``small_tables`` are trimmed to their first spec as the
    exporter trims tables under ``DELTALAKE_SMALL_TABLE_THRESHOLD_MB``; ``flushes`` appends per spec.
    Returns the datastack folder ``root/<datastack>``.
    """
    backend = LocalBackend(local)
    try:
        base = Path(root) / backend.name
        for v in backend.all_versions():
            for table in backend.tables(v):
                rows, geoms = _db_rows(backend, v, table, srid)
                specs: list[dict[str, Any]] = [{"name": "id", "partition_by": "id", "zorder": ["id"]}]
                for col in rows.column_names:
                    if col.endswith("_root_id") or col == "target_id":
                        specs.append({"name": col, "partition_by": col, "zorder": [col]})
                if geoms:
                    g = min(geoms, key=_rank)
                    specs.append({"name": f"{g}_morton", "partition_by": f"{g}_morton",
                                  "zorder": [f"{g}_morton"], "geom": g})
                if table in small_tables:
                    specs = specs[:1]
                decoded = [s["geom"] for s in specs if s.get("geom")]
                for g in sorted(decoded):
                    rows = _decode(rows, g)
                for spec in specs:
                    out = rows
                    if spec.get("geom"):
                        out = _add_morton(out, spec["geom"])
                        bounds = delta_export._morton_bounds(out, spec["geom"], n_partitions)
                    else:
                        vals = out.column(spec["partition_by"]).to_numpy(zero_copy_only=False).astype(float)
                        bounds = delta_export._percentile_bounds(vals, n_partitions)
                    out = delta_export._assign(out, spec["partition_by"], bounds)
                    delta_export._write_spec(base / f"v{v}" / table / spec["name"], out, spec, flushes)
            for view in backend.views(v):
                entry = backend._version(v).views[view]
                backend._con.execute(f"SET search_path = 'v{v}'")
                data = backend._con.sql(f"SELECT * FROM ({entry.sql})").to_arrow_table()
                # every point of a view is decoded, the x/y/z appended in the points' order
                # (_stream_view_to_flat_lake -> decode_geometry_columns)
                names = data.column_names
                points = [n[:-2] for i, n in enumerate(names) if n.endswith("_x")
                          and names[i + 1:i + 3] == [n[:-2] + "_y", n[:-2] + "_z"]]
                trios = [f"{g}_{a}" for g in points for a in "xyz"]
                data = data.select([n for n in names if n not in trios] + trios)
                data = pa.table({n: _as_stored(data.column(n).combine_chunks()) for n in data.column_names})
                folder = base / f"v{v}" / view
                delta_export._write_spec(folder / "flat", data, {"name": "flat"}, flushes)
                if "id" in data.column_names:  # discover_view_output_specs
                    ids = data.column("id").to_numpy(zero_copy_only=False).astype(float)
                    bounds = delta_export._percentile_bounds(ids, n_partitions)
                    delta_export._write_spec(folder / "id", delta_export._assign(data, "id", bounds),
                                             {"name": "id", "partition_by": "id", "zorder": ["id"]}, flushes)
                if points:
                    g = min(points, key=_rank)
                    out = _add_morton(data, g)
                    out = delta_export._assign(out, f"{g}_morton",
                                               delta_export._morton_bounds(out, g, n_partitions))
                    spec = {"name": f"{g}_morton", "partition_by": f"{g}_morton", "zorder": [f"{g}_morton"]}
                    delta_export._write_spec(folder / spec["name"], out, spec, flushes)
        return base
    finally:
        backend.close()
