"""Where an archive's files are: a local folder, or any fsspec filesystem (``gs://``, ``s3://``, ...).

:class:`Store` gives :class:`~caveql.backends.archive.ArchiveBackend` the few file operations it
needs (list folders, test, read) on a local folder or on a filesystem of ``fsspec`` (an optional
dependency: ``pip install 'caveql[archive]'``; ``caveql[archive-gcs]`` adds ``gcsfs`` for
``gs://``, ``caveql[archive-s3]`` ``s3fs`` for ``s3://``; credentials are found as those
libraries find them, e.g. ``gcloud auth application-default login`` or ``AWS_PROFILE``; fsspec's
``FSSPEC_<PROTOCOL>_<OPTION>`` variables set any option, e.g. ``FSSPEC_S3_ANON=true`` for a
public bucket without credentials).

The Delta log of a remote copy is read here (:func:`read_log`: the last checkpoint, then every
JSON commit after it, replayed) rather than by ``deltalake``, whose object stores know neither
fsspec's credentials nor its other filesystems; the Parquet files are read by DuckDB through the
same fsspec filesystem (``register_filesystem``). A local copy's log is read by ``deltalake``.

>>> s = open_store("/tmp")
>>> s.local, s.join("/tmp", "a", "b")
(True, '/tmp/a/b')
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.parquet as pq

from caveql.errors import DatastackError

__all__ = ["DeltaLog", "Store", "open_store", "read_log"]


def _fsspec_of(url: str) -> tuple[Any, str]:
    try:
        import fsspec
    except ImportError as exc:
        raise DatastackError(f"{url}: reading an archive from a URL needs fsspec",
                             hint="pip install 'caveql[archive]' (or caveql[archive-gcs] for gs://, "
                                  "caveql[archive-s3] for s3://)") from exc
    try:
        return fsspec.core.url_to_fs(url)  # type: ignore[no-any-return]
    except (ImportError, ValueError) as exc:  # an unknown protocol, or its library missing
        raise DatastackError(f"{url}: cannot open its filesystem: {exc}",
                             hint="gs:// needs gcsfs, s3:// needs s3fs (pip install 'caveql[archive-gcs]' "
                                  "or 'caveql[archive-s3]')") from exc


@dataclass(frozen=True)
class Store:
    """A filesystem (``fs``: ``None`` for the local one) and the archive's path on it."""

    fs: Any
    root: str

    @property
    def local(self) -> bool:
        """Whether files are read from the local filesystem (by path)."""
        return self.fs is None

    def join(self, *parts: str) -> str:
        """``parts`` joined with ``/`` (the local separator on the local filesystem)."""
        if self.local:
            return os.path.join(*parts)
        return "/".join([parts[0].rstrip("/"), *(p.strip("/") for p in parts[1:])])

    def name(self, path: str) -> str:
        """The last part of ``path``."""
        return os.path.basename(path.rstrip("/\\")) if self.local else path.rstrip("/").rsplit("/", 1)[-1]

    def url(self, path: str) -> str:
        """``path`` as DuckDB and error messages name it (with the protocol when remote)."""
        return path if self.local else str(self.fs.unstrip_protocol(path))

    def isdir(self, path: str) -> bool:
        """Whether ``path`` is a folder."""
        try:
            return os.path.isdir(path) if self.local else bool(self.fs.isdir(path))
        except OSError:
            return False

    def isfile(self, path: str) -> bool:
        """Whether ``path`` is a file."""
        try:
            return os.path.isfile(path) if self.local else bool(self.fs.isfile(path))
        except OSError:
            return False

    def dirs(self, path: str) -> list[str]:
        """The folders inside ``path`` (full paths), sorted by name."""
        try:
            if self.local:
                return sorted(os.path.join(path, n) for n in os.listdir(path)
                              if os.path.isdir(os.path.join(path, n)))
            return sorted(str(e["name"]).rstrip("/") for e in self.fs.ls(path, detail=True)
                          if e.get("type") == "directory" and str(e["name"]).rstrip("/") != path.rstrip("/"))
        except (OSError, ValueError) as exc:
            raise DatastackError(f"{self.url(path)}: cannot list the folder: {exc}") from exc

    def read_bytes(self, path: str) -> bytes:
        """The whole file."""
        if self.local:
            with open(path, "rb") as fh:
                return fh.read()
        with self.fs.open(path, "rb") as fh:
            return fh.read()  # type: ignore[no-any-return]


def open_store(location: str) -> Store:
    """The store of ``location``: a local path or ``file://`` URL → the local filesystem; any
    other URL → its fsspec filesystem."""
    if "://" not in location:
        return Store(None, os.path.abspath(os.path.expanduser(location)))
    if location.startswith("file://"):
        return Store(None, os.path.abspath(location[len("file://"):] or "/"))
    fs, path = _fsspec_of(location)
    return Store(fs, path.rstrip("/") or "/")


@dataclass(frozen=True)
class DeltaLog:
    """What a reader needs of a Delta table: its schema, its files (add actions flattened as
    ``deltalake``'s ``get_add_actions(flatten=True)``) and its protocol."""

    schema: pa.Schema
    files: list[dict[str, Any]]
    min_reader_version: int
    reader_features: tuple[str, ...]


_PRIMITIVE = {"long": pa.int64(), "integer": pa.int32(), "short": pa.int16(), "byte": pa.int8(),
              "double": pa.float64(), "float": pa.float32(), "string": pa.string(), "binary": pa.binary(),
              "boolean": pa.bool_(), "date": pa.date32(), "timestamp": pa.timestamp("us", tz="UTC"),
              "timestamp_ntz": pa.timestamp("us")}


def _arrow_type(t: Any, where: str) -> pa.DataType:
    if isinstance(t, str) and t in _PRIMITIVE:
        return _PRIMITIVE[t]
    if isinstance(t, str) and t.startswith("decimal("):
        p, s = (int(x) for x in t[len("decimal("):-1].split(","))
        return pa.decimal128(p, s)
    raise DatastackError(f"{where}: column type {t!r} of the Delta schema is not supported",
                         hint="the MaterializationEngine exporter writes flat columns of primitive types")


def _value(v: Any, t: pa.DataType) -> Any:
    """A statistic or partition value as ``deltalake`` flattens it."""
    if v is None:
        return None
    try:
        if pa.types.is_integer(t):
            return int(v)
        if pa.types.is_floating(t):
            return float(v)
        if pa.types.is_boolean(t):
            return v if isinstance(v, bool) else str(v).lower() == "true"
        if pa.types.is_timestamp(t):
            ts = datetime.fromisoformat(str(v).replace("Z", "+00:00"))
            return ts if t.tz else ts.replace(tzinfo=None)
    except (TypeError, ValueError):
        return None  # an unreadable statistic prunes nothing
    return v


def _flatten(add: dict[str, Any], schema: pa.Schema, parts: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"path": unquote(add["path"]), "size_bytes": add.get("size"),
                           "modification_time": add.get("modificationTime")}
    stats: dict[str, Any] = {}
    raw = add.get("stats")
    if isinstance(raw, str) and raw:
        try:
            stats = json.loads(raw)
        except ValueError:
            stats = {}
    out["num_records"] = stats.get("numRecords")
    for f in schema:
        if f.name in parts:
            continue
        binary = pa.types.is_binary(f.type)  # deltalake keeps no min/max of bytes
        for key, src in (("null_count", "nullCount"), ("min", "minValues"), ("max", "maxValues")):
            if binary and key != "null_count":
                continue
            v = (stats.get(src) or {}).get(f.name)
            out[f"{key}.{f.name}"] = v if key == "null_count" else _value(v, f.type)
    pv = add.get("partitionValues") or {}
    if isinstance(pv, list):  # a checkpoint's map column: [(key, value), ...]
        pv = dict(pv)
    for p in parts:
        out[f"partition.{p}"] = _value(pv.get(p), schema.field(p).type)
    return out


def _checkpoint_actions(store: Store, log: str, info: dict[str, Any]) -> list[dict[str, Any]]:
    version = int(info["version"])
    parts = int(info.get("parts") or 0)
    names = ([f"{version:020d}.checkpoint.{i:010d}.{parts:010d}.parquet" for i in range(1, parts + 1)]
             if parts else [f"{version:020d}.checkpoint.parquet"])
    out: list[dict[str, Any]] = []
    for name in names:
        path = store.join(log, name)
        data = pq.read_table(pa.BufferReader(store.read_bytes(path)))
        for row in data.to_pylist():
            out.append({k: v for k, v in row.items() if v is not None})
    return out


def read_log(store: Store, folder: str) -> DeltaLog:
    """Replay the Delta log of the table at ``folder``: the last checkpoint (when there is one),
    then each JSON commit after it until the first missing (no listing needed)."""
    log = store.join(folder, "_delta_log")
    where = store.url(folder)
    actions: list[dict[str, Any]] = []
    start = 0
    last = store.join(log, "_last_checkpoint")
    try:
        if store.isfile(last):
            info = json.loads(store.read_bytes(last))
            actions += _checkpoint_actions(store, log, info)
            start = int(info["version"]) + 1
        n = start
        while True:
            path = store.join(log, f"{n:020d}.json")
            if not store.isfile(path):
                break
            for line in store.read_bytes(path).decode("utf-8").splitlines():
                if line.strip():
                    actions.append(json.loads(line))
            n += 1
    except (OSError, ValueError, KeyError, TypeError, pa.ArrowException) as exc:
        raise DatastackError(f"{where}: not a readable Delta table: {exc}") from exc
    if n == 0:
        raise DatastackError(f"{where}: not a readable Delta table: no commit in {store.url(log)}")
    meta: dict[str, Any] | None = None
    proto: dict[str, Any] = {}
    files: dict[str, dict[str, Any]] = {}
    for a in actions:
        if "metaData" in a:
            meta = a["metaData"]
        elif "protocol" in a:
            proto = a["protocol"]
        elif "add" in a:
            files[a["add"]["path"]] = a["add"]
        elif "remove" in a:
            files.pop(a["remove"]["path"], None)
    if meta is None:
        raise DatastackError(f"{where}: not a readable Delta table: its log has no metaData")
    try:
        fields = json.loads(meta["schemaString"])["fields"]
        schema = pa.schema([pa.field(f["name"], _arrow_type(f["type"], where)) for f in fields])
        parts = list(meta.get("partitionColumns") or [])
    except (ValueError, KeyError, TypeError) as exc:
        raise DatastackError(f"{where}: not a readable Delta table: bad schema ({exc})") from exc
    return DeltaLog(schema, [_flatten(add, schema, parts) for add in files.values()],
                    int(proto.get("minReaderVersion", 1)), tuple(proto.get("readerFeatures") or ()))
