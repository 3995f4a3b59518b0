"""A disk cache of versioned query answers: a materialized version never changes.

Keys are SHA-256 digests of (server, datastack, version, request); values are
Arrow IPC files (ZSTD) whose schema metadata carries the service's warnings and
``dataframe_resolution``. Writes are atomic (temp file + rename), so concurrent
writers and interrupted runs never leave a torn entry; only fully validated tables
are stored, and an entry that fails to read or validate reads as a miss and is removed. The cache holds at most ``max_bytes``; the least recently
used entries go first. Live queries are never cached (the HTTP backend never
asks). ``caveql cache clear`` empties it; ``--no-cache`` bypasses it.

>>> import tempfile, pyarrow as pa
>>> c = ResultCache(tempfile.mkdtemp())
>>> k = cache_key("https://global.daf-apis.com", "minnie65_public", 661, "POST /q", b"{}")
>>> c.get(k) is None
True
>>> c.put(k, pa.table({"id": [1, 2]}), warnings=("w",), resolution=(4.0, 4.0, 40.0))
>>> entry = c.get(k)
>>> entry.table.num_rows, entry.warnings, entry.resolution
(2, ('w',), (4.0, 4.0, 40.0))
>>> c.clear()
1
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

__all__ = ["CacheEntry", "ResultCache", "cache_key", "default_cache_dir"]

_META = b"caveql.cache"


def default_cache_dir() -> Path:
    """``<user cache dir>/caveql/results`` (``CAVEQL_CACHE_DIR`` overrides).

    >>> isinstance(default_cache_dir(), Path)
    True
    """
    override = os.environ.get("CAVEQL_CACHE_DIR")
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("caveql")) / "results"


def cache_key(server: str, datastack: str, version: int, request: str, body: bytes) -> str:
    """The digest naming one versioned answer.

    >>> len(cache_key("s", "d", 1, "POST /p?a=1", b"{}"))
    64
    """
    h = hashlib.sha256()
    for part in (server.rstrip("/"), datastack, str(version), request):
        h.update(part.encode())
        h.update(b"\0")
    h.update(body)
    return h.hexdigest()


@dataclass(frozen=True)
class CacheEntry:
    """One cached answer."""

    table: pa.Table
    warnings: tuple[str, ...]
    resolution: tuple[float, float, float] | None
    nbytes: int


class ResultCache:
    """Versioned answers on disk under ``directory`` (created on first write)."""

    def __init__(self, directory: str | Path | None = None, max_bytes: int = 4 << 30) -> None:
        self.directory = Path(directory) if directory is not None else default_cache_dir()
        self.max_bytes = max_bytes
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ResultCache({str(self.directory)!r})"

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.arrow"

    def get(self, key: str) -> CacheEntry | None:
        """The entry for ``key``, or ``None``."""
        path = self._path(key)
        try:
            data = path.read_bytes()
            with pa.ipc.open_file(pa.py_buffer(data)) as reader:
                table = reader.read_all()
            table.validate(full=True)  # a damaged file never reaches DuckDB
            meta = json.loads((table.schema.metadata or {})[_META])
        except FileNotFoundError:
            return None
        except (OSError, KeyError, ValueError, pa.ArrowException):
            path.unlink(missing_ok=True)  # damaged: drop it, refetch
            return None
        os.utime(path)  # recently used
        rest = {k: v for k, v in (table.schema.metadata or {}).items() if k != _META}
        table = table.replace_schema_metadata(rest or None)
        res = meta.get("resolution")
        return CacheEntry(table, tuple(meta.get("warnings", ())), tuple(res) if res else None, len(data))

    def put(self, key: str, table: pa.Table, *, warnings: tuple[str, ...] = (),
            resolution: tuple[float, float, float] | None = None) -> None:
        """Store an answer atomically, then trim the cache to ``max_bytes``.

        Only whole, valid tables are stored: ``table`` is validated fully first (an invalid
        one raises ``pyarrow.ArrowInvalid``; the HTTP backend has checked it already).
        """
        table.validate(full=True)
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = json.dumps({"warnings": list(warnings), "resolution": list(resolution) if resolution else None})
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), _META: meta.encode()})
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh, pa.ipc.new_file(
                fh, table.schema, options=pa.ipc.IpcWriteOptions(compression="zstd")
            ) as writer:
                writer.write_table(table)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._trim()

    def entries(self) -> list[Path]:
        """Every entry file."""
        if not self.directory.is_dir():
            return []
        return sorted(self.directory.glob("*/*.arrow"))

    def size(self) -> int:
        """Bytes used by the entries."""
        return sum(p.stat().st_size for p in self.entries() if p.exists())

    def _trim(self) -> None:
        with self._lock:
            files = []
            for p in self.entries():
                try:
                    st = p.stat()
                except FileNotFoundError:
                    continue
                files.append((st.st_mtime, st.st_size, p))
            total = sum(size for _, size, _ in files)
            for _, size, p in sorted(files):
                if total <= self.max_bytes:
                    break
                p.unlink(missing_ok=True)
                total -= size

    def clear(self) -> int:
        """Remove every entry; returns how many were removed."""
        n = 0
        for p in self.entries():
            p.unlink(missing_ok=True)
            n += 1
        for tmp in self.directory.glob("*/*.tmp") if self.directory.is_dir() else ():
            tmp.unlink(missing_ok=True)
        return n
