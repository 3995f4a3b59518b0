"""Write tables in the Delta Lake export layout of MaterializationEngine 5.26.

The layout ``{root}/v{version}/{table}/{spec}/`` that
``materializationengine/workflows/deltalake_export.py`` writes (and
:class:`~caveql.backends.archive.ArchiveBackend` reads), produced here from the rows a service
answers (``caveql snapshot --format delta``) instead of a frozen PostgreSQL database. Each step
names the upstream function it follows:

- the rows as the database streams them (``stream_table_to_arrow``): ``created``/``deleted``/
  ``superceded_id`` dropped (``_DEFAULT_DROP_COLUMNS``), floats as ``double precision``, every
  point as PostGIS (E)WKB POINT Z bytes;
- specs (``discover_default_output_specs``): ``id`` (percentile ranges), one per indexed
  non-timestamp column (root ids, ``target_id``), at most one ``{geom}_morton`` (``ctr`` >
  ``post`` > ``pre`` > ``pt`` > ``bb``; uniform ranges of the Morton codes of the bounding box's
  corners); a table estimated under ``small_table_mb`` (200 MB upstream) keeps its first spec;
- partitions: ``resolve_n_partitions`` (rows x bytes per row / 256 MB; bytes per row from the
  Arrow answer, upstream from ``pg_class``), ``{col}_partition`` Int32 right-closed bins
  (``assign_partition``: ``pl.cut``);
- only the Morton spec's point decoded to Int32 ``{col}_x/_y/_z``, appended, in every spec
  (``decode_geometry_columns``); ``{col}_morton`` Int64 (``add_morton_column``);
- ``write_deltalake(mode="append", partition_by=...)`` per flush, then ``z_order`` on the
  partition column and a full ``vacuum`` (``optimize_deltalake``);
- views (``export_view_to_deltalake``): ``flat`` with every point decoded, plus ``id`` and
  Morton specs re-partitioned from it.

>>> import numpy as np
>>> int(morton_codes(np.array([1]), np.array([1]), np.array([1]))[0])
7
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

__all__ = ["DROP", "delta_rows", "export_rows", "lake_rows", "morton_codes", "point_columns", "wkb_points"]

DROP = ("created", "deleted", "superceded_id")  # _DEFAULT_DROP_COLUMNS
SPATIAL_PRIORITY = ("ctr", "post", "pre", "pt", "bb")  # _SPATIAL_PREFIX_PRIORITY
SMALL_TABLE_MB = 200  # DELTALAKE_SMALL_TABLE_THRESHOLD_MB's default
TARGET_MB = 256  # resolve_n_partitions' target_file_size_mb
FLUSH_BYTES = 2 * 1024 ** 3  # DELTALAKE_FLUSH_THRESHOLD_BYTES's default


def _rank(col: str) -> int:
    return next((i for i, p in enumerate(SPATIAL_PRIORITY) if col.startswith(p)), len(SPATIAL_PRIORITY))


def point_columns(names: Sequence[str]) -> list[str]:
    """The points of a service-shaped schema: ``{g}_x, {g}_y, {g}_z`` trios, in order.

    >>> point_columns(["id", "pt_position_x", "pt_position_y", "pt_position_z", "x"])
    ['pt_position']
    """
    names = list(names)
    return [n[:-2] for i, n in enumerate(names)
            if n.endswith("_x") and names[i + 1:i + 3] == [n[:-2] + "_y", n[:-2] + "_z"]]


def wkb_points(x: Any, y: Any, z: Any) -> pa.Array:
    """PostGIS POINT Z values as the database streams them (little-endian, Z flag), null where x is.

    >>> one = pa.array([1], pa.int32())
    >>> wkb_points(one, one, one)[0].as_py()[:5]
    b'\\x01\\x01\\x00\\x00\\x80'
    """
    xs, ys, zs = (pa.array(a) if not isinstance(a, pa.Array | pa.ChunkedArray) else a for a in (x, y, z))
    xs, ys, zs = (a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a for a in (xs, ys, zs))
    n = len(xs)
    valid = xs.is_valid().to_numpy(zero_copy_only=False)
    rec = np.zeros(n, dtype=np.dtype([("b", "u1"), ("t", "<u4"), ("x", "<f8"), ("y", "<f8"), ("z", "<f8")]))
    rec["b"], rec["t"] = 1, 0x80000001
    for name, a in zip("xyz", (xs, ys, zs), strict=True):
        rec[name] = a.fill_null(0).to_numpy(zero_copy_only=False).astype(np.float64)
    offsets = pa.py_buffer((np.arange(n + 1, dtype=np.int32) * 29).tobytes())
    bitmap = None if valid.all() else pa.array(valid, pa.bool_()).buffers()[1]
    return pa.Array.from_buffers(pa.binary(), n, [bitmap, offsets, pa.py_buffer(rec.tobytes())])


def _spread(v: np.ndarray) -> np.ndarray:  # _spread_bits_21
    v = np.asarray(v, dtype=np.uint64) & np.uint64(0x1FFFFF)
    v = (v | (v << np.uint64(32))) & np.uint64(0x001F00000000FFFF)
    v = (v | (v << np.uint64(16))) & np.uint64(0x001F0000FF0000FF)
    v = (v | (v << np.uint64(8))) & np.uint64(0x100F00F00F00F00F)
    v = (v | (v << np.uint64(4))) & np.uint64(0x10C30C30C30C30C3)
    v = (v | (v << np.uint64(2))) & np.uint64(0x1249249249249249)
    return v


def morton_codes(x: Any, y: Any, z: Any) -> np.ndarray:
    """The exporter's ``morton_encode_3d`` (21 bits per axis, interleaved x, y, z)."""
    return (_spread(x) | (_spread(y) << np.uint64(1)) | (_spread(z) << np.uint64(2))).astype(np.int64)


def delta_rows(table: pa.Table) -> tuple[pa.Table, list[str]]:
    """A service-shaped table as the frozen database streams it: crud columns dropped, floats as
    float64, every point (E)WKB in its place; and the points' names."""
    names = table.column_names
    points = point_columns(names)
    trios = {f"{g}_{a}": g for g in points for a in "xyz"}
    cols: dict[str, pa.Array] = {}
    for n in names:
        if n in DROP:
            continue
        if n in trios:
            g = trios[n]
            if n.endswith("_x"):
                cols[g] = wkb_points(*(table.column(f"{g}_{a}") for a in "xyz"))
            continue
        col = table.column(n).combine_chunks()
        cols[n] = col.cast(pa.float64()) if pa.types.is_float32(col.type) else col
    return pa.table(cols) if cols else table.select([]), points


def _decode(table: pa.Table, geom: str, source: pa.Table) -> pa.Table:
    """``decode_geometry_columns``: the WKB column dropped, Int32 x/y/z appended (taken from the
    service's integer trio: the same values)."""
    out = table.drop_columns([geom])
    for a in "xyz":
        out = out.append_column(f"{geom}_{a}", source.column(f"{geom}_{a}").cast(pa.int32()))
    return out


def _add_morton(table: pa.Table, geom: str) -> pa.Table:
    cols = [table.column(f"{geom}_{a}") for a in "xyz"]
    ok = np.logical_and.reduce([c.is_valid().to_numpy(zero_copy_only=False) for c in cols])
    codes = np.zeros(table.num_rows, np.int64)
    if ok.any():
        x, y, z = (c.fill_null(0).to_numpy(zero_copy_only=False)[ok].astype(np.int64).astype(np.uint64)
                   for c in cols)
        codes[ok] = morton_codes(x, y, z)
    return table.append_column(f"{geom}_morton", pa.array(codes, pa.int64(), mask=~ok))


def _percentile_bounds(values: np.ndarray, n: int) -> list[float]:
    """``compute_partition_boundaries``: ``percentile_disc`` at i/n."""
    vals = np.sort(values[~np.isnan(values)])
    if n <= 1 or not len(vals):
        return []
    return [float(vals[max(0, math.ceil(i / n * len(vals)) - 1)]) for i in range(1, n)]


def _morton_bounds(table: pa.Table, geom: str, n: int) -> list[float]:
    """``compute_uniform_range_bounds`` + ``resolve_bounds``: the box corners' codes, linspace."""
    if n <= 1 or table.num_rows == 0:
        return []
    vals = [table.column(f"{geom}_{a}").to_numpy(zero_copy_only=False).astype(float) for a in "xyz"]
    if all(np.isnan(v).all() for v in vals):
        return []
    lo, hi = [np.nanmin(v) for v in vals], [np.nanmax(v) for v in vals]
    corners = morton_codes(*(np.array([lo[k], hi[k]]).astype(np.uint64) for k in range(3)))
    cmin, cmax = float(corners.min()), float(corners.max())
    return [] if cmin == cmax else np.linspace(cmin, cmax, n + 1)[1:-1].tolist()


def _assign(table: pa.Table, col: str, bounds: list[float]) -> pa.Table:
    """``assign_partition``: ``pl.cut`` bins are right-closed, so a value on a break goes left."""
    vals = table.column(col).to_numpy(zero_copy_only=False).astype(np.float64)
    part = np.searchsorted(np.sort(np.asarray(bounds, dtype=np.float64)), vals, side="left")
    return table.append_column(f"{col}_partition", pa.array(part.astype(np.int32), pa.int32(),
                                                            mask=np.isnan(vals) if bounds else None))


def _write_spec(uri: Path, table: pa.Table, spec: dict[str, Any], flushes: int) -> None:
    """``_flush_buffer``'s appends, then ``optimize_deltalake`` (z-order or compact, vacuum)."""
    from deltalake import DeltaTable, write_deltalake

    partition_by = [f"{spec['partition_by']}_partition"] if spec.get("partition_by") else None
    step = max(1, math.ceil(table.num_rows / max(1, flushes)))
    for start in range(0, max(table.num_rows, 1), step):
        write_deltalake(str(uri), table.slice(start, step), mode="append", partition_by=partition_by)
    dt = DeltaTable(str(uri))
    if spec.get("zorder"):
        dt.optimize.z_order(columns=spec["zorder"], max_concurrent_tasks=1)
    else:
        dt.optimize.compact(max_concurrent_tasks=1)
    dt.vacuum(dry_run=False, retention_hours=0, enforce_retention_duration=False, full=True)


def _n_partitions(table: pa.Table, target_mb: float) -> int:
    """``resolve_n_partitions("auto", ...)`` with the Arrow answer's bytes per row."""
    if table.num_rows == 0:
        return 1
    per_row = max(1, table.nbytes // table.num_rows)
    return max(1, math.ceil(table.num_rows * per_row / (target_mb * 1024 * 1024)))


def export_rows(table: pa.Table, folder: str | os.PathLike[str], *, view: bool = False,
                n_partitions: int | None = None, small_table_mb: float = SMALL_TABLE_MB,
                target_mb: float = TARGET_MB, flushes: int | None = None) -> list[str]:
    """Write ``table`` (the service's answer: points as Int32 trios) as the exporter's specs
    under ``folder`` (``.../v{N}/{table}``); returns the specs written.

    ``n_partitions``: every spec's partition count (default: from ``target_mb``, as upstream's
    ``"auto"``); ``flushes``: appends per spec before the optimize (default: one per
    ``FLUSH_BYTES`` of the answer, as upstream's flush threshold).
    """
    base = Path(folder)
    rows, points = delta_rows(table)
    flushes = flushes or max(1, math.ceil(table.nbytes / FLUSH_BYTES))
    n = n_partitions or _n_partitions(table, target_mb)
    if view:
        # _stream_view_to_flat_lake: every point decoded, appended in the points' order
        flat = rows
        for g in points:
            flat = _decode(flat, g, table)
        written = ["flat"]
        _write_spec(base / "flat", flat, {"name": "flat"}, flushes)
        if "id" in flat.column_names:  # discover_view_output_specs
            ids = flat.column("id").to_numpy(zero_copy_only=False).astype(float)
            _write_spec(base / "id", _assign(flat, "id", _percentile_bounds(ids, n)),
                        {"name": "id", "partition_by": "id", "zorder": ["id"]}, flushes)
            written.append("id")
        if points:
            g = min(points, key=_rank)
            out = _add_morton(flat, g)
            out = _assign(out, f"{g}_morton", _morton_bounds(out, g, n))
            spec = {"name": f"{g}_morton", "partition_by": f"{g}_morton", "zorder": [f"{g}_morton"]}
            _write_spec(base / spec["name"], out, spec, flushes)
            written.append(spec["name"])
        return written
    specs: list[dict[str, Any]] = [{"name": "id", "partition_by": "id", "zorder": ["id"]}]
    for col in rows.column_names:
        if col.endswith("_root_id") or col == "target_id":
            specs.append({"name": col, "partition_by": col, "zorder": [col]})
    if points:
        g = min(points, key=_rank)
        specs.append({"name": f"{g}_morton", "partition_by": f"{g}_morton", "zorder": [f"{g}_morton"],
                      "geom": g})
    if table.nbytes / (1024 * 1024) < small_table_mb:
        specs = specs[:1]  # write_deltalake_table: a small table keeps its first spec
    for g in sorted(s["geom"] for s in specs if s.get("geom")):
        rows = _decode(rows, g, table)
    for spec in specs:
        out = rows
        if spec.get("geom"):
            out = _add_morton(out, spec["geom"])
            bounds = _morton_bounds(out, spec["geom"], n)
        else:
            vals = out.column(spec["partition_by"]).to_numpy(zero_copy_only=False).astype(float)
            bounds = _percentile_bounds(vals, n)
        _write_spec(base / spec["name"], _assign(out, spec["partition_by"], bounds), spec, flushes)
    return [s["name"] for s in specs]


def lake_rows(folder: str | os.PathLike[str]) -> dict[str, int] | None:
    """``{spec: rows}`` from the Delta logs of a table folder written by :func:`export_rows`
    (``None`` when a log is missing or unreadable: the table is to be written again)."""
    from deltalake import DeltaTable

    base = Path(folder)
    out: dict[str, int] = {}
    try:
        specs = sorted(p for p in base.iterdir() if p.is_dir())
        for spec in specs:
            actions = pa.table(DeltaTable(str(spec)).get_add_actions(flatten=True))
            out[spec.name] = int(sum(actions.column("num_records").to_pylist()))
    except Exception:  # deltalake raises its own, pyarrow and OS errors: not complete
        return None
    return out or None


def replace_folder(tmp: Path, final: Path) -> None:
    """Move a finished table folder into place (an older copy removed first)."""
    if final.exists():
        shutil.rmtree(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp.replace(final)


# -- a snapshot in this layout (``caveql snapshot --format delta``) -------------------------------
SIDECAR = "archive.json"  # what the export does not record (read by ArchiveBackend)
_MARK = "snapshot"  # key of archive.json: {"v{N}/{table}": {"rows": n, "where": cond}}


def _read_sidecar(root: Path) -> dict[str, Any]:
    import json

    from caveql.errors import DatastackError

    path = root / SIDECAR
    if not path.exists():
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DatastackError(f"{path}: unreadable ({exc})",
                             hint="choose another --path, or remove the folder") from exc
    if not isinstance(doc, dict):
        raise DatastackError(f"{path}: not a JSON object", hint="choose another --path, or remove the folder")
    return doc


def _write_sidecar(root: Path, doc: dict[str, Any]) -> None:
    import json

    path = root / SIDECAR
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(doc, indent=1, sort_keys=True, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)


def prepare_archive(root: Path, info: dict[str, Any], version: int, version_meta: dict[str, Any]) -> None:
    """Start (or resume) an archive folder: ``archive.json`` with the datastack info and the
    version's metadata; a folder of another datastack, or not an archive, is refused."""
    from caveql.backends.archive import is_archive
    from caveql.errors import DatastackError

    name = info.get("datastack_name")
    doc = _read_sidecar(root)
    if doc:
        have = (doc.get("info") or {}).get("datastack_name")
        if have != name:
            raise DatastackError(f"{root} holds an archive of {have!r}, not {name!r}; refusing to mix them",
                                 hint="choose another --path")
    elif root.exists() and any(root.iterdir()) and not is_archive(root):
        raise DatastackError(f"{root} exists and is not an archive folder; refusing to write into it",
                             hint="choose another --path, or remove the folder")
    root.mkdir(parents=True, exist_ok=True)
    res = [info.get(f"viewer_resolution_{a}") for a in "xyz"]
    doc.setdefault("info", {}).update({k: v for k, v in info.items() if isinstance(v, str | int | float)
                                       or v is None})
    if all(isinstance(r, int | float) and r > 0 for r in res):
        doc.setdefault("voxel_resolution", res)
    doc.setdefault("versions", {})[str(version)] = {k: v for k, v in version_meta.items() if k != "_storage"}
    doc.setdefault("tables", {})
    doc.setdefault(_MARK, {})
    _write_sidecar(root, doc)


def archive_complete(root: Path, version: int, table: str, rows: int, cond: str | None) -> bool:
    """True when ``table`` was written by a snapshot with the same condition and every spec's
    Delta log holds ``rows``."""
    try:
        mark = _read_sidecar(root).get(_MARK, {}).get(f"v{version}/{table}")
    except Exception:  # an unreadable sidecar: redo (prepare_archive reported it already)
        return False
    if not isinstance(mark, dict) or mark.get("rows") != rows or mark.get("where") != cond:
        return False
    counts = lake_rows(root / f"v{version}" / table)
    return counts is not None and all(n == rows for n in counts.values())


def write_archive_table(root: Path, version: int, table: str, data: pa.Table, meta: dict[str, Any],
                        cond: str | None, lock: Any, *, view: bool = False, **options: Any) -> None:
    """Export ``data`` (the service's rows of ``table``, or of a view: ``flat`` + ``id`` + Morton)
    under ``root/v{version}/{table}`` (written aside, then moved into place), then record its
    metadata and row count in ``archive.json`` (under ``lock``: tables are written in parallel)."""
    tmp = root / ".partial" / f"v{version}" / table
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    export_rows(data, tmp, view=view, **options)
    with lock:
        replace_folder(tmp, root / f"v{version}" / table)
        for empty in (tmp.parent, tmp.parent.parent):
            try:
                empty.rmdir()  # the last table of a run leaves no .partial folder behind
            except OSError:
                pass
        doc = _read_sidecar(root)
        doc.setdefault("tables", {})[table] = {k: v for k, v in meta.items() if k not in ("_storage", "sql")}
        doc.setdefault(_MARK, {})[f"v{version}/{table}"] = {"rows": data.num_rows, "where": cond}
        _write_sidecar(root, doc)
