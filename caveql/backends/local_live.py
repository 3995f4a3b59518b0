"""Live queries of a local datastack with a proofreading history (``history.parquet``).

The genuine service answers a query at a timestamp from the frozen version it picks, with every
root id mapped to the root its supervoxel has at the timestamp (the ChunkedGraph's
``get_roots(supervoxels, timestamp)`` for rows whose roots are not latest then), and reads a
root-id filter's values as their past (or future) ids at the version. :class:`LiveMaps` does the
same inside DuckDB: a table's relation at the timestamp is its frozen relation with each
``X_root_id`` rewritten through two small tables (root → root, and (root, supervoxel) → root for
the supervoxels an edit moved away from the rest of their root), built once per version and
*epoch* (the number of edits visible at the timestamp: instants between two edits see the same
segmentation). Filters, joins, limits and counts then apply to the rewritten roots; a root-id
filter also restricts the stored column to the ids that can map to its values, so the scan still
prunes row groups.

An edit at ``t`` is visible at ``t`` (PyChunkedGraph reads with an inclusive end time).

>>> import tempfile
>>> from caveql.backends.base import QueryRequest
>>> from caveql.backends.local import LocalBackend
>>> from caveql.datastack.tiny import build_tiny
>>> b = LocalBackend(build_tiny(tempfile.mkdtemp()))
>>> ask = lambda ts: b.query(QueryRequest(kind="live", table="nuclei", timestamp=ts,
...                          filter_equal={"nuclei": {"id": 14}})).table.column("pt_root_id").to_pylist()
>>> ask(datetime(2022, 6, 1)), ask(datetime(2022, 9, 1)), ask(datetime(2023, 5, 1))
([905], [1005], [1005])
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from caveql.backends.local_sql import Source, q
from caveql.datastack.history import History

__all__ = ["LiveMaps", "version_time"]

_SCHEMA = "__live"
_KEEP = 128  # mapping tables kept (per version and epoch); the oldest is dropped beyond


class LiveMaps:
    """The per-(version, epoch) root mappings of a backend's live queries."""

    def __init__(self, history: History, con: duckdb.DuckDBPyConnection, lock: threading.Lock) -> None:
        self.history = history
        self._con = con
        self._lock = lock
        self._made: OrderedDict[tuple[int, int], tuple[str, str, dict[str, Any]]] = OrderedDict()
        self._building = threading.Lock()

    def source(self, src: Source, version_ts: datetime, timestamp: datetime | None,
               inverse: dict[int, list[int]] | None, remapped: set[int] | None) -> Source:
        """``src`` (a table at its version, stamped ``version_ts``) as of ``timestamp``."""
        h = self.history
        roots = [c.name for c in src.columns if c.name.endswith("_root_id") and not c.position]
        if not roots or src.view:
            return src
        epoch = h.epoch(timestamp)
        if epoch == h.epoch(version_ts):
            return src
        m, x, info = self._tables(src.version, epoch, version_ts, timestamp)
        names = {c.name for c in src.columns}
        repl, joins, stored = [], [], []
        for i, r in enumerate(roots):
            sv = r[: -len("root_id")] + "supervoxel_id"
            moved = sv in names and info["moved"]
            repl.append(f"coalesce({f'x{i}.new_root, ' if moved else ''}m{i}.new_root, s.{q(r)}) AS {q(r)}")
            joins.append(f"LEFT JOIN {m} m{i} ON s.{q(r)} = m{i}.root_id")
            if moved:
                joins.append(f"LEFT JOIN {x} x{i} ON s.{q(r)} = x{i}.root_id AND s.{q(sv)} = x{i}.sv")
            if not src.remap:
                stored.append(f"s.{q(r)} AS {q('__stored_' + r)}")

        def wrap(rel: str) -> str:
            extra = "".join(", " + s for s in stored)
            return f"(SELECT s.* REPLACE ({', '.join(repl)}){extra} FROM {rel} s {' '.join(joins)})"

        def candidates(column: str, values: list[Any]) -> list[int]:
            """Stored ids whose rows can have one of ``values`` in ``column`` at the timestamp."""
            wanted = [v for v in values if isinstance(v, int)]
            at_version: set[int] = set()
            for v in wanted:
                at_version.update(h.related(v, version_ts, timestamp))
            hit = np.isin(info["x_new"], wanted)
            at_version.update(info["x_root"][hit].tolist())
            if inverse is None:
                return sorted(at_version)
            out: list[int] = []
            for r in sorted(at_version):
                if remapped is None or r not in remapped:
                    out.append(r)
                out.extend(inverse.get(r, ()))
            return out

        return dataclasses.replace(src, relation=wrap(src.relation),
                                   copies=tuple((c, wrap(rel)) for c, rel in src.copies),
                                   remap=True, stored=candidates)

    def _tables(self, version: int, epoch: int, version_ts: datetime, timestamp: datetime | None
                ) -> tuple[str, str, dict[str, Any]]:
        key = (version, epoch)
        with self._building:
            made = self._made.get(key)
            if made is not None:
                self._made.move_to_end(key)
                return made
            roots, new, xr, xs, xn = self.history.remap(version_ts, timestamp)
            m = f"{q(_SCHEMA)}.{q(f'm_{version}_{epoch}')}"
            x = f"{q(_SCHEMA)}.{q(f'x_{version}_{epoch}')}"
            with self._lock:
                cur = self._con.cursor()
            try:
                cur.execute(f"CREATE SCHEMA IF NOT EXISTS {q(_SCHEMA)}")
                mt = pa.table({"root_id": pa.array(roots, pa.int64()), "new_root": pa.array(new, pa.int64())})
                xt = pa.table({"root_id": pa.array(xr, pa.int64()), "sv": pa.array(xs, pa.int64()),
                               "new_root": pa.array(xn, pa.int64())})
                cur.register("__m", mt)
                cur.register("__x", xt)
                cur.execute(f"CREATE OR REPLACE TABLE {m} AS SELECT * FROM __m")
                cur.execute(f"CREATE OR REPLACE TABLE {x} AS SELECT * FROM __x")
                cur.unregister("__m")
                cur.unregister("__x")
                while len(self._made) >= _KEEP:
                    (_old, (om, ox, _i)) = self._made.popitem(last=False)
                    cur.execute(f"DROP TABLE IF EXISTS {om}")
                    cur.execute(f"DROP TABLE IF EXISTS {ox}")
            finally:
                cur.close()
            made = (m, x, {"moved": bool(xr.size), "x_root": xr, "x_new": xn})
            self._made[key] = made
            return made


def version_time(metadata: dict[str, Any]) -> datetime | None:
    """A version's ``time_stamp`` as an aware UTC datetime (None when it has none).

    >>> version_time({"time_stamp": "2022-02-24T08:10:00.184668"}).isoformat()
    '2022-02-24T08:10:00.184668+00:00'
    """
    value = metadata.get("time_stamp")
    if value is None:
        return None
    ts = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return ts.astimezone(UTC) if ts.tzinfo else ts.replace(tzinfo=UTC)
