"""The local datastack folder format: reading and writing it (see docs/datastacks.md).

A local datastack is a folder::

    <root>/
      datastack.json                    what get_datastack_info() returns
      versions/<v>/version.json         what get_version_metadata(v) returns
      versions/<v>/tables/<t>.json      what get_table_metadata(t) returns (+ optional "_storage")
      versions/<v>/tables/<t>.parquet   the rows (default location when "_storage" is absent)
      versions/<v>/views/<name>.json    what get_views()[name] returns + "sql" (DuckDB SQL over
                                        the version's tables), or + "_storage" (the view's rows)

Parquet columns are the columns a query of the table returns, in the service's order
and types, with every position split into three integer columns ``<col>_x/_y/_z`` in
the table's voxels (exactly what ``query_table(..., split_positions=True)`` gives).

``_storage`` (optional, never returned as metadata) lets a table's files live elsewhere,
for example shared with another version::

    {"files": [{"path": "shared/synapses.parquet", "sorted_by": "pre_pt_root_id"}, ...],
     "root_id_map": "versions/343/root_id_map.parquet"}

``files`` are alternative copies of the same rows (sorted differently); ``root_id_map``
(columns ``root_id``, ``version_root_id``) rewrites every ``*_root_id`` column, for a
version that differs from the shared file only by the root ids of edited cells.

A view is either defined (``"sql"``: DuckDB SQL over the version's tables, evaluated at each
query) or materialized (``"_storage": {"files": [{"path": ...}]}``: its rows as of the version,
as ``caveql snapshot`` copies them from a service, which publishes no view's SQL; the default
file is ``views/<name>.parquet`` beside the JSON). Its Parquet columns are those of the view's
answer, positions split as for tables.

>>> import tempfile
>>> root = Path(tempfile.mkdtemp())
>>> write_info(root, {"datastack_name": "tiny", "description": "d"})
>>> read_info(root)["datastack_name"]
'tiny'
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from caveql.errors import DatastackError

__all__ = [
    "StoredFile",
    "TableEntry",
    "ViewEntry",
    "VersionEntry",
    "read_info",
    "read_versions",
    "table_metadata_public",
    "write_info",
    "write_json",
    "write_table_metadata",
    "write_version",
    "write_view",
]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class StoredFile:
    """One Parquet copy of a table's rows; ``sorted_by`` names its sort column, if any."""

    path: Path
    sorted_by: str | None = None


@dataclass(frozen=True)
class TableEntry:
    """A table at one version: its metadata and where its rows are."""

    name: str
    metadata: dict[str, Any]
    files: tuple[StoredFile, ...]
    root_id_map: Path | None = None


@dataclass(frozen=True)
class ViewEntry:
    """A view at one version: its metadata (as get_views() gives it) and either its DuckDB SQL
    or (``sql`` None) the Parquet file of its materialized rows."""

    name: str
    metadata: dict[str, Any]
    sql: str | None
    files: tuple[StoredFile, ...] = ()


@dataclass(frozen=True)
class VersionEntry:
    """One materialization version: its metadata, tables and views."""

    version: int
    metadata: dict[str, Any]
    tables: dict[str, TableEntry] = field(default_factory=dict)
    views: dict[str, ViewEntry] = field(default_factory=dict)


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DatastackError(f"missing file {path}") from exc
    except (OSError, ValueError) as exc:
        raise DatastackError(f"cannot read {path}: {exc}") from exc


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON, creating parent folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n", encoding="utf-8")


def read_info(root: Path) -> dict[str, Any]:
    """The datastack info of the folder ``root`` (``datastack.json``)."""
    root = Path(root)
    if not root.is_dir():
        raise DatastackError(f"no local datastack at {root} (not a folder)",
                             hint="build the demo with `caveql demo`, or check the path")
    info = _load(root / "datastack.json")
    if not isinstance(info, dict) or not isinstance(info.get("datastack_name"), str):
        raise DatastackError(f"{root / 'datastack.json'}: needs an object with 'datastack_name'")
    return info


def write_info(root: Path, info: dict[str, Any]) -> None:
    """Write ``datastack.json``."""
    write_json(Path(root) / "datastack.json", info)


def write_version(root: Path, version: int, metadata: dict[str, Any]) -> Path:
    """Write ``versions/<v>/version.json``; returns the version folder."""
    folder = Path(root) / "versions" / str(version)
    write_json(folder / "version.json", metadata)
    return folder


def write_table_metadata(root: Path, version: int, table: str, metadata: dict[str, Any],
                         storage: dict[str, Any] | None = None) -> None:
    """Write ``versions/<v>/tables/<t>.json`` (``storage`` becomes the ``_storage`` key)."""
    data = dict(metadata)
    if storage is not None:
        data["_storage"] = storage
    write_json(Path(root) / "versions" / str(version) / "tables" / f"{table}.json", data)


def write_view(root: Path, version: int, name: str, metadata: dict[str, Any], sql: str) -> None:
    """Write ``versions/<v>/views/<name>.json``."""
    write_json(Path(root) / "versions" / str(version) / "views" / f"{name}.json",
               {**metadata, "sql": sql})


def table_metadata_public(metadata: dict[str, Any]) -> dict[str, Any]:
    """The metadata as the service returns it: ``_storage`` dropped, and a caveclient-style
    ``voxel_resolution`` list unfolded into ``voxel_resolution_x/y/z``.

    >>> table_metadata_public({"voxel_resolution": [4, 4, 40], "_storage": {}})
    {'voxel_resolution_x': 4.0, 'voxel_resolution_y': 4.0, 'voxel_resolution_z': 40.0}
    """
    out = {k: v for k, v in metadata.items() if k != "_storage"}
    res = out.pop("voxel_resolution", None)
    if res is not None and "voxel_resolution_x" not in out:
        x, y, z = (float(v) for v in res)
        out.update(voxel_resolution_x=x, voxel_resolution_y=y, voxel_resolution_z=z)
    return out


def _check_name(kind: str, name: str, where: Path) -> None:
    if not _NAME.match(name):
        raise DatastackError(f"{where}: {kind} name {name!r} is not a plain identifier "
                             "(letters, digits, underscore)")


def _resolve(root: Path, rel: str, where: Path) -> Path:
    path = (root / rel).resolve()
    if not path.is_relative_to(root.resolve()):
        raise DatastackError(f"{where}: storage path {rel!r} leaves the datastack folder")
    return path


def _read_table(root: Path, path: Path) -> TableEntry:
    name = path.stem
    _check_name("table", name, path)
    raw = _load(path)
    if not isinstance(raw, dict):
        raise DatastackError(f"{path}: table metadata must be a JSON object")
    storage = raw.get("_storage") or {}
    files: list[StoredFile] = []
    for item in storage.get("files", ()):
        if isinstance(item, str):
            item = {"path": item}
        files.append(StoredFile(_resolve(root, item["path"], path), item.get("sorted_by")))
    if not files:
        files.append(StoredFile(path.with_suffix(".parquet"), storage.get("sorted_by")))
    for f in files:
        if not f.path.exists():
            raise DatastackError(f"{path}: data file {f.path} is missing")
    remap = storage.get("root_id_map")
    remap_path = _resolve(root, remap, path) if remap else None
    if remap_path is not None and not remap_path.exists():
        raise DatastackError(f"{path}: root id map {remap_path} is missing")
    metadata = table_metadata_public(raw)
    metadata.setdefault("table_name", name)
    for axis in "xyz":
        metadata.setdefault(f"voxel_resolution_{axis}", 1.0)
    return TableEntry(name, metadata, tuple(files), remap_path)


def _read_view(root: Path, path: Path) -> ViewEntry:
    name = path.stem
    _check_name("view", name, path)
    raw = _load(path)
    storage = raw.get("_storage") if isinstance(raw, dict) else None
    if not isinstance(raw, dict) or (storage is None) == (not isinstance(raw.get("sql"), str)) \
            or (storage is not None and "sql" in raw):
        raise DatastackError(f"{path}: a view needs an object with either an 'sql' string or "
                             "'_storage' (its materialized rows), not both")
    meta = {k: v for k, v in raw.items() if k not in ("sql", "_storage")}
    for axis in "xyz":
        meta.setdefault(f"voxel_resolution_{axis}", 1.0)
    if storage is None:
        return ViewEntry(name, meta, raw["sql"])
    items = storage.get("files") if isinstance(storage, dict) else None
    if not isinstance(storage, dict) or not isinstance(items, list | type(None)):
        raise DatastackError(f"{path}: '_storage' must be an object whose 'files' is a list")
    files = []
    for item in items or ({"path": str(path.with_suffix(".parquet").relative_to(root))},):
        rel = item.get("path") if isinstance(item, dict) else item
        if not isinstance(rel, str):
            raise DatastackError(f"{path}: each of '_storage.files' needs a 'path' string")
        f = StoredFile(_resolve(root, rel, path), item.get("sorted_by") if isinstance(item, dict) else None)
        if not f.path.exists():
            raise DatastackError(f"{path}: data file {f.path} is missing")
        files.append(f)
    return ViewEntry(name, meta, None, tuple(files))


def read_versions(root: Path) -> dict[int, VersionEntry]:
    """Every version folder of the datastack at ``root``, by version number."""
    root = Path(root)
    base = root / "versions"
    if not base.is_dir():
        raise DatastackError(f"{root}: no versions/ folder", hint="see docs/datastacks.md")
    out: dict[int, VersionEntry] = {}
    for folder in sorted(base.iterdir()):
        if not folder.is_dir():
            continue
        if not folder.name.isdigit():
            raise DatastackError(f"{folder}: version folders are named by their number")
        v = int(folder.name)
        meta = _load(folder / "version.json")
        if not isinstance(meta, dict):
            raise DatastackError(f"{folder / 'version.json'}: must be a JSON object")
        meta = {"version": v, "valid": True, **meta}
        tables = {e.name: e for e in (_read_table(root, p)
                                      for p in sorted((folder / "tables").glob("*.json")))}
        views = {e.name: e for e in (_read_view(root, p) for p in sorted((folder / "views").glob("*.json")))}
        out[v] = VersionEntry(v, meta, tables, views)
    if not out:
        raise DatastackError(f"{root}: no version folders under versions/")
    return out
