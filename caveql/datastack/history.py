"""Proofreading history of a local datastack: which root id each supervoxel had at any instant.

A root id names a cell only until the next edit. A local datastack may carry its segmentation's
edit history in ``<folder>/history.parquet`` (one row per edit); :class:`History` reads it and
answers what the ChunkedGraph answers: the roots of supervoxels at a timestamp, whether roots are
latest, what a root became, the lineage graph, root timestamps, delta roots, operation details.

The model's rules (docs/datastacks.md, "Proofreading history"):

- An edit is a **merge** (``old_roots = (a, b)`` → ``new_roots = (m,)``) or a **split**
  (``old_roots = (m,)`` → ``new_roots = (a, b)``). ``moved_supervoxels`` are the supervoxels of
  ``b``: the root merged into ``a`` (merge) or the piece split off (split). Every other
  supervoxel of the edit's roots belongs to ``a``. Supervoxels keep their ids forever.
- An edit at ``t`` is visible at ``t``: a root created by it is the root at ``t`` and the roots it
  replaced are not (PyChunkedGraph reads parents with an inclusive end time,
  ``get_inclusive_time_range_filter(end=time_stamp)``; the materialization engine materializes a
  version with ``get_roots(..., time_stamp=version.time_stamp)``).
- A root is valid from its creation (the edit that made it, else ``base_timestamp``) until the
  edit that replaced it (exclusive), or for ever.
- Which root a supervoxel has at the **anchor version** (``anchor_version``, the frozen version
  whose tables store the roots as they are) is read from that version's tables (every
  ``X_supervoxel_id`` / ``X_root_id`` column pair); any other instant follows from the edits.
  A supervoxel no table holds has root 0 (as has supervoxel 0).

>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> t = lambda d: datetime(2023, 1, d, tzinfo=UTC)
>>> path = write_history(folder, [Edit(1, t(2), "merge", (10, 20), (30,), moved_supervoxels=(2,)),
...                        Edit(2, t(4), "split", (30,), (40, 50), moved_supervoxels=(2,))],
...               anchor_version=1, anchor_timestamp=t(3), base_timestamp=t(1),
...               anchor_index=([1, 2], [30, 30]))
>>> h = History.load(folder)
>>> h.roots_at([1, 2, 7], t(1)).tolist(), h.roots_at([1, 2], t(3)).tolist(), h.roots_at([1, 2], None).tolist()
([10, 20, 0], [30, 30], [40, 50])
>>> h.is_latest([10, 30, 40]).tolist(), h.latest_roots(10).tolist(), h.past_ids([40], t(1))
([False, False, True], [40, 50], {40: [10, 20]})
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute  # noqa: F401 - pa.compute
import pyarrow.parquet as pq

from caveql.errors import DatastackError

__all__ = ["FILE", "Edit", "History", "to_us", "write_history"]

#: The history's file inside a datastack folder.
FILE = "history.parquet"
_FORMAT = "caveql-history/1"
_META_KEY = b"caveql_history"
_NOW = np.iinfo(np.int64).max  # "no timestamp": the latest state


def to_us(ts: datetime | None) -> int:
    """Microseconds since the epoch (UTC) of a timestamp; a naive one means UTC; None = latest.

    >>> to_us(datetime(1970, 1, 1, 0, 0, 1)), to_us(None) == _NOW
    (1000000, True)
    """
    if ts is None:
        return _NOW
    if not isinstance(ts, datetime):
        raise TypeError(f"a timestamp must be a datetime, not {type(ts).__name__}")
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    delta = ts - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _dt(us: int) -> datetime:
    return datetime.fromtimestamp(us // 1_000_000, UTC).replace(microsecond=us % 1_000_000)


@dataclass(frozen=True)
class Edit:
    """One proofreading operation (see the module docstring for the model's rules)."""

    operation_id: int
    timestamp: datetime  # timezone-aware UTC
    kind: str  # "merge" | "split"
    old_roots: tuple[int, ...]
    new_roots: tuple[int, ...]
    user: str | None = None
    source_supervoxels: tuple[int, ...] = ()  # the edit's source points' supervoxels (PCG's source_ids)
    sink_supervoxels: tuple[int, ...] = ()  # (PCG's sink_ids)
    moved_supervoxels: tuple[int, ...] = ()  # the supervoxels of old_roots[1] (merge) / new_roots[1] (split)

    def __post_init__(self) -> None:
        shape = {"merge": (2, 1), "split": (1, 2)}.get(self.kind)
        if shape is None:
            raise DatastackError(f"edit {self.operation_id}: kind must be 'merge' or 'split', not {self.kind!r}")
        if (len(self.old_roots), len(self.new_roots)) != shape:
            raise DatastackError(f"edit {self.operation_id}: a {self.kind} has {shape[0]} old and "
                                 f"{shape[1]} new roots, not {len(self.old_roots)} and {len(self.new_roots)}")
        if self.timestamp.tzinfo is None:
            object.__setattr__(self, "timestamp", self.timestamp.replace(tzinfo=UTC))


def _i64(values: Any) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind == "u":
        return arr.astype(np.uint64).view(np.int64) if arr.dtype == np.uint64 else arr.astype(np.int64)
    return arr.astype(np.int64, copy=False).reshape(-1)


def _lookup(keys: np.ndarray, values: np.ndarray, query: np.ndarray, missing: int) -> np.ndarray:
    """``values[keys == q]`` for each q (``keys`` sorted and distinct), ``missing`` where absent."""
    pos = np.searchsorted(keys, query)
    pos = np.minimum(pos, max(keys.size - 1, 0))
    hit = (keys[pos] == query) if keys.size else np.zeros(query.shape, dtype=bool)
    return np.where(hit, values[pos] if keys.size else missing, missing)


class History:
    """The edit history of a datastack folder (see the module docstring). Read-only, thread-safe.

    Timestamps given are datetimes (naive = UTC) or None (= now, the latest state); timestamps
    returned are timezone-aware UTC. Root and supervoxel ids are returned as uint64 arrays.
    """

    def __init__(self, edits: Sequence[Edit], *, anchor_version: int, anchor_timestamp: datetime,
                 base_timestamp: datetime, folder: Path | None = None,
                 anchor_index: tuple[Iterable[int], Iterable[int]] | None = None) -> None:
        stamped = sorted(((to_us(e.timestamp), e.operation_id, e) for e in edits), key=lambda x: x[:2])
        self.edits: tuple[Edit, ...] = tuple(e for _t, _o, e in stamped)
        us = {e.operation_id: t for t, _o, e in stamped}  # each edit's timestamp in µs, once
        self.anchor_version = anchor_version
        self.anchor_timestamp = anchor_timestamp.replace(tzinfo=anchor_timestamp.tzinfo or UTC)
        self.base_timestamp = base_timestamp.replace(tzinfo=base_timestamp.tzinfo or UTC)
        self.folder = folder
        self._lock = threading.Lock()
        self._index: tuple[np.ndarray, np.ndarray] | None = None
        self._known: np.ndarray | None = None
        self.index_conflicts = 0  # supervoxels the anchor's tables give different roots
        self._by_op = {e.operation_id: e for e in self.edits}
        if len(self._by_op) != len(self.edits):
            raise DatastackError("history: operation ids repeat")
        created: dict[int, Edit] = {}
        superseded: dict[int, Edit] = {}
        for e in self.edits:
            for r in e.new_roots:
                if r in created or r in superseded:
                    raise DatastackError(f"history: edit {e.operation_id} creates root {r}, which exists already")
                created[r] = e
            for r in e.old_roots:
                if r in superseded:
                    raise DatastackError(f"history: root {r} is replaced twice (edits "
                                         f"{superseded[r].operation_id} and {e.operation_id})")
                superseded[r] = e
        self._created, self._superseded = created, superseded
        base = to_us(self.base_timestamp)
        roots = np.array(sorted(set(created) | set(superseded)), dtype=np.int64)
        self._roots = roots  # every root an edit names, sorted
        self._born = np.array([us[created[r].operation_id] if r in created else base for r in roots.tolist()],
                              dtype=np.int64)
        self._died = np.array([us[superseded[r].operation_id] if r in superseded else _NOW
                               for r in roots.tolist()], dtype=np.int64)
        # the successor of a root for supervoxels that are not moved, and its predecessor likewise
        self._next = np.array([superseded[r].new_roots[0] if r in superseded else r for r in roots.tolist()],
                              dtype=np.int64)
        self._prev = np.array([created[r].old_roots[0] if r in created else r for r in roots.tolist()],
                              dtype=np.int64)
        # moved supervoxels: (root replaced by a split, sv) -> piece; (root made by a merge, sv) -> merged-in root
        self._fwd_moves = {(e.old_roots[0], sv): e.new_roots[1] for e in self.edits if e.kind == "split"
                           for sv in e.moved_supervoxels}
        self._back_moves = {(e.new_roots[0], sv): e.old_roots[1] for e in self.edits if e.kind == "merge"
                            for sv in e.moved_supervoxels}
        self._stamps = np.array([t for t, _o, _e in stamped], dtype=np.int64)
        self._fwd_svs = np.array(sorted({sv for _, sv in self._fwd_moves}), dtype=np.int64)
        self._back_svs = np.array(sorted({sv for _, sv in self._back_moves}), dtype=np.int64)
        if anchor_index is not None:
            self._set_index(_i64(list(anchor_index[0])), _i64(list(anchor_index[1])))
            self._known = self._with_edited(_i64(list(anchor_index[1])))

    # -- reading ---------------------------------------------------------------------------------

    @classmethod
    def load(cls, folder: str | Path) -> History | None:
        """The history of the datastack folder ``folder``, or None when it has none.

        Loads are shared within the process while the file is unchanged: every backend over the
        folder then shares one supervoxel index, built once (seconds at millions of rows).
        """
        path = Path(folder) / FILE
        if not path.exists():
            return None
        try:
            st = path.stat()
        except OSError as exc:
            raise DatastackError(f"cannot read the history {path}: {exc}") from exc
        key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
        with _LOADED_LOCK:
            found = _LOADED.get(key)
        if found is not None:
            return found
        made = cls._read(folder, path)
        with _LOADED_LOCK:
            for k in [k for k in _LOADED if k[0] == key[0]]:
                del _LOADED[k]  # (an older state of the same file)
            return _LOADED.setdefault(key, made)

    @classmethod
    def _read(cls, folder: str | Path, path: Path) -> History:
        try:
            table = pq.read_table(path)
            meta = json.loads((table.schema.metadata or {})[_META_KEY])
        except (OSError, ValueError, KeyError, pa.ArrowException) as exc:
            raise DatastackError(f"cannot read the history {path}: {exc}") from exc
        if meta.get("format") != _FORMAT:
            raise DatastackError(f"{path}: unknown history format {meta.get('format')!r}")
        cols = {name: table[name].to_pylist() for name in table.column_names}  # (column-wise: fast)
        stamps = pa.compute.assume_timezone(table["timestamp"], "UTC").to_pylist()
        edits = [Edit(*row) for row in zip(
            cols["operation_id"], stamps, cols["kind"], map(tuple, cols["old_roots"]), map(tuple, cols["new_roots"]),
            cols["user"], map(tuple, cols["source_supervoxels"]), map(tuple, cols["sink_supervoxels"]),
            map(tuple, cols["moved_supervoxels"]), strict=True)]
        return cls(edits, anchor_version=int(meta["anchor_version"]),
                   anchor_timestamp=datetime.fromisoformat(meta["anchor_timestamp"]),
                   base_timestamp=datetime.fromisoformat(meta["base_timestamp"]), folder=Path(folder),
                   anchor_index=meta.get("anchor_index"))

    def _set_index(self, svs: np.ndarray, roots: np.ndarray) -> None:
        # the edits' own supervoxels (pieces no table holds) are known too: their root at the
        # edit, carried to the anchor (a step's direction needs only its target time)
        moved = np.array(sorted({sv for e in self.edits for sv in e.moved_supervoxels}), dtype=np.int64)
        # the moved supervoxels the tables hold: a binary search over the sorted supervoxels
        # (np.isin hashes all of them: seconds at millions)
        ordered = np.sort(svs)
        at = np.minimum(np.searchsorted(ordered, moved), max(ordered.size - 1, 0))
        held = set(moved[ordered[at] == moved].tolist()) if ordered.size else set()
        extra: dict[int, tuple[int, int]] = {}
        for e in self.edits:
            ts = to_us(e.timestamp)
            for sv in e.moved_supervoxels:
                if sv not in held and sv not in extra:
                    extra[sv] = (e.new_roots[1], ts) if e.kind == "split" else (e.old_roots[1], ts - 1)
        if extra:
            anchor = to_us(self.anchor_timestamp)
            esv = np.array(list(extra), dtype=np.int64)
            eroot = np.array([r for r, _ in extra.values()], dtype=np.int64)
            ets = np.array([t for _, t in extra.values()], dtype=np.int64)
            out = eroot.copy()
            for later in (False, True):
                sel = (ets > anchor) if later else (ets <= anchor)
                if sel.any():
                    origin = None if later else _dt(int(ets[sel].min()))
                    out[sel] = self.advance(esv[sel], eroot[sel], origin, self.anchor_timestamp).view(np.int64)
            svs, roots = np.concatenate([svs, esv]), np.concatenate([roots, out])
        keep = svs != 0
        svs, roots = svs[keep], roots[keep]
        order = np.lexsort((roots, svs))  # one root per supervoxel: the smallest if tables disagree
        svs, roots = svs[order], roots[order]
        first = np.r_[True, svs[1:] != svs[:-1]] if svs.size else np.zeros(0, dtype=bool)
        pair = np.r_[True, (svs[1:] != svs[:-1]) | (roots[1:] != roots[:-1])] if svs.size else first
        self.index_conflicts = int(np.unique(svs[pair & ~first]).size)
        self._index = (svs[first], roots[first])

    def _anchor(self) -> tuple[np.ndarray, np.ndarray]:
        """(supervoxels, roots) at the anchor version, sorted by supervoxel (read once, lazily)."""
        if self._index is not None:
            return self._index
        with self._lock:
            if self._index is None:
                svs, roots = _read_anchor(self.folder, self.anchor_version)
                self._set_index(svs, roots)
        assert self._index is not None
        return self._index

    def _with_edited(self, roots: np.ndarray) -> np.ndarray:
        """``roots`` (0 left out) and every root an edit names, sorted, each once."""
        return _distinct(np.concatenate([roots[roots != 0], self._roots]))

    def _anchor_known(self) -> np.ndarray:
        """Every root id of the anchor version's tables and of the edits, sorted (read once,
        lazily: only the root columns, without the supervoxel index a root check does not need)."""
        if self._known is not None:
            return self._known
        with self._lock:
            if self._known is None:
                self._known = _distinct(np.concatenate([_anchor_roots(self.folder, self.anchor_version),
                                                        self._roots]))
        return self._known

    def known(self, root_ids: Any) -> np.ndarray:
        """Whether each id is a root id of the history or of the anchor version's tables."""
        ids = _i64(root_ids)
        if self.edited(ids).all():  # (the anchor's tables are read only for an id no edit names)
            return np.ones(ids.shape, dtype=bool)
        self._anchor_known()
        assert self._known is not None
        # _known is sorted and holds _roots: a binary search (np.isin hashes the whole of it per call)
        if self._known.size == 0:
            return np.zeros(ids.shape, dtype=bool)
        return self._known[np.minimum(np.searchsorted(self._known, ids), self._known.size - 1)] == ids

    def edited(self, root_ids: Any) -> np.ndarray:
        """Whether an edit made or replaced each root (any other root never changes)."""
        ids = _i64(root_ids)
        if self._roots.size == 0:
            return np.zeros(ids.shape, dtype=bool)
        return self._roots[np.minimum(np.searchsorted(self._roots, ids), self._roots.size - 1)] == ids

    # -- the ChunkedGraph's questions -------------------------------------------------------------

    def roots_at(self, supervoxel_ids: Any, timestamp: datetime | None) -> np.ndarray:
        """The root id of each supervoxel at ``timestamp`` (None: now); 0 for 0 and unknown ones."""
        svs = _i64(supervoxel_ids)
        keys, values = self._anchor()
        roots = _lookup(keys, values, svs, 0)
        return self.advance(svs, roots, self.anchor_timestamp, timestamp)

    def advance(self, supervoxel_ids: Any, root_ids: Any, t_from: datetime | None,
                t_to: datetime | None) -> np.ndarray:
        """Roots at ``t_to`` of supervoxels whose roots at ``t_from`` are ``root_ids``.

        The live path's mapping (a frozen version's rows carry both ids): it needs no lookup of
        the supervoxels. Roots the history does not name are unchanged; 0 stays 0.
        """
        svs, roots = _i64(supervoxel_ids), _i64(root_ids).copy()
        if svs.shape != roots.shape:
            raise ValueError("supervoxel_ids and root_ids differ in length")
        a, b = to_us(t_from), to_us(t_to)
        if self._roots.size == 0 or a == b:
            return roots.view(np.uint64)
        forward = b > a
        for _ in range(len(self.edits) + 1):
            pos = np.minimum(np.searchsorted(self._roots, roots), self._roots.size - 1)
            named = self._roots[pos] == roots
            if forward:
                step = named & (self._died[pos] <= b) & (self._died[pos] != _NOW)
            else:
                step = named & (self._born[pos] > b) & (self._prev[pos] != roots)
            rows = np.flatnonzero(step)
            if rows.size == 0:
                break
            nxt = (self._next if forward else self._prev)[pos[rows]]
            moves, move_svs = (self._fwd_moves, self._fwd_svs) if forward else (self._back_moves, self._back_svs)
            if move_svs.size:
                for i in rows[np.isin(svs[rows], move_svs)].tolist():
                    piece = moves.get((int(roots[i]), int(svs[i])))
                    if piece is not None:
                        nxt[np.searchsorted(rows, i)] = piece
            roots[rows] = nxt
        return roots.view(np.uint64)

    def epoch(self, timestamp: datetime | None) -> int:
        """How many edits are visible at ``timestamp`` (None: all): instants with the same
        epoch see the same segmentation."""
        return int(np.searchsorted(self._stamps, to_us(timestamp), side="right"))

    def remap(self, t_from: datetime | None, t_to: datetime | None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The mapping of roots at ``t_from`` to roots at ``t_to``, for a table's rows:
        ``(roots, new_roots, moved_roots, moved_svs, moved_new_roots)`` (int64): a row whose
        (root, supervoxel) is a moved pair takes ``moved_new_roots``, else a row whose root is in
        ``roots`` takes ``new_roots``, else it keeps its root.

        >>> t = lambda d: datetime(2023, 1, d, tzinfo=UTC)
        >>> h = History([Edit(1, t(2), "split", (30,), (40, 50), moved_supervoxels=(2,))],
        ...             anchor_version=1, anchor_timestamp=t(1), base_timestamp=t(1))
        >>> [a.tolist() for a in h.remap(t(1), t(3))]
        [[30], [40], [30], [2], [50]]
        """
        a, b = to_us(t_from), to_us(t_to)
        alive = (self._born <= a) & (self._died > a)
        if b > a:
            changed = alive & (self._died <= b) & (self._died != _NOW)
        else:
            changed = alive & (self._born > b)
        roots = self._roots[changed]
        new = self.advance(np.zeros(roots.size, dtype=np.int64), roots, t_from, t_to).view(np.int64)
        keep = new != roots
        roots, new = roots[keep], new[keep]
        # supervoxels whose fate differs from their root's: the pieces of the edits in between,
        # traced back to t_from from their edit (a step's direction needs only its target time)
        lo, hi = min(a, b), max(a, b)
        kind = "split" if b > a else "merge"
        picked = [e for e in self.edits if e.kind == kind and e.moved_supervoxels and lo < to_us(e.timestamp) <= hi]
        starts_sv = [sv for e in picked for sv in e.moved_supervoxels]
        # just before a split its pieces were in its old root; just after a merge, in its new one
        starts = np.array([(e.old_roots[0] if b > a else e.new_roots[0]) for e in picked
                           for _ in e.moved_supervoxels], dtype=np.int64)
        origin = (None if hi == _NOW else _dt(hi)) if b > a else _dt(lo)
        starts_root = self.advance(np.array(starts_sv, dtype=np.int64), starts, origin,
                                   t_from).view(np.int64).tolist() if starts_sv else []
        msv = np.array(starts_sv, dtype=np.int64)
        mroot = np.array(starts_root, dtype=np.int64)
        if msv.size:
            pairs = np.unique(np.stack([mroot, msv], axis=1), axis=0)
            mroot, msv = pairs[:, 0], pairs[:, 1]
        mnew = self.advance(msv, mroot, t_from, t_to).view(np.int64)
        plain = _lookup(roots, new, mroot, -1) if roots.size else np.full(mroot.size, -1)
        plain = np.where(plain == -1, mroot, plain)
        differ = mnew != plain
        return roots, new, mroot[differ], msv[differ], mnew[differ]

    def related(self, root_id: int, t_from: datetime | None, t_to: datetime | None) -> list[int]:
        """The roots at ``t_from`` whose supervoxels can have root ``root_id`` at ``t_to``
        (past ids when ``t_to`` is later, future ids when earlier; the id itself when no edit
        names it): what a live query's root-id filter reads in the frozen version."""
        r = int(root_id)
        if r not in self._created and r not in self._superseded:
            return [r]
        a, b = to_us(t_from), to_us(t_to)
        return self._walk(r, b < a, a) if a != b else [r]

    def _span(self, root_ids: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(born, died, known) in µs for each root; roots no edit names live from the base on."""
        ids = _i64(root_ids)
        known = self.known(ids)
        born = _lookup(self._roots, self._born, ids, to_us(self.base_timestamp))
        died = _lookup(self._roots, self._died, ids, _NOW)
        return born, died, known

    def is_latest(self, root_ids: Any, timestamp: datetime | None = None) -> np.ndarray:
        """Whether each root is a current root at ``timestamp`` (None: now); unknown ids: False."""
        t = to_us(timestamp)
        born, died, known = self._span(root_ids)
        if timestamp is None:
            return known & (died == _NOW)
        return known & (born <= t) & (died > t)

    def spans(self, root_ids: Any) -> tuple[list[datetime], list[datetime | None], np.ndarray]:
        """(created, superseded or None, known) of each root, at once (unknown ids: the base
        time and None, known False)."""
        born, died, known = self._span(root_ids)
        made = {int(u): _dt(int(u)) for u in np.unique(born).tolist()}
        gone = {int(u): _dt(int(u)) for u in np.unique(died[died != _NOW]).tolist()}
        return ([made[int(b)] for b in born.tolist()],
                [None if d == _NOW else gone[int(d)] for d in died.tolist()], known)

    def valid_range(self, root_id: int) -> tuple[datetime, datetime | None]:
        """(created, superseded or None) of a root; ``KeyError`` for an id that was never a root."""
        born, died, known = self._span([root_id])
        if not known[0]:
            raise KeyError(root_id)
        return _dt(int(born[0])), None if died[0] == _NOW else _dt(int(died[0]))

    def why_not_valid(self, root_id: int, timestamp: datetime | None = None) -> str | None:
        """None when ``root_id`` is a current root at ``timestamp`` (None: now); else a sentence
        naming it, saying when it was (or will be) current and which roots hold it then — for
        "not valid" errors that give the next step.

        >>> t = lambda d: datetime(2023, 1, d, tzinfo=UTC)
        >>> h = History([Edit(7, t(2), "split", (30,), (40, 50))], anchor_version=1,
        ...             anchor_timestamp=t(1), base_timestamp=t(1), anchor_index=([1], [30]))
        >>> h.why_not_valid(40) is None
        True
        >>> print(h.why_not_valid(30, t(3)))
        root id 30 is not current at 2023-01-03 00:00:00+00:00: it stopped being current at 2023-01-02 00:00:00+00:00 (operation 7); its latest roots then are 40, 50
        """
        r = int(root_id)
        when = "now" if timestamp is None else f"at {_dt(to_us(timestamp))}"
        if not self.known([r])[0]:
            return f"root id {r} is not a root id of this datastack (at any time)"
        if self.is_latest([r], timestamp)[0]:
            return None
        born, died = self.valid_range(r)
        if timestamp is not None and to_us(timestamp) < to_us(born):
            return f"root id {r} is not current {when}: it was made at {born}"
        latest = ", ".join(str(x) for x in self.latest_roots(r, timestamp).tolist()) or "none"
        op = self._superseded[r].operation_id if r in self._superseded else None
        return (f"root id {r} is not current {when}: it stopped being current at {died}"
                f"{f' (operation {op})' if op is not None else ''}; its latest roots then are {latest}")

    def _walk(self, root: int, forward: bool, stop: int) -> list[int]:
        """Roots reachable from ``root`` through edits (forward: successors created at or before
        ``stop``; backward: predecessors alive at ``stop``), ending at those valid at ``stop``."""
        out, todo, seen = [], [root], {root}
        while todo:
            r = todo.pop()
            e = self._superseded.get(r) if forward else self._created.get(r)
            born = to_us(self._created[r].timestamp) if r in self._created else to_us(self.base_timestamp)
            died = to_us(self._superseded[r].timestamp) if r in self._superseded else _NOW
            if born <= stop and (died > stop or died == _NOW):
                out.append(r)
                continue
            if e is None or (forward and to_us(e.timestamp) > stop) or (not forward and to_us(e.timestamp) <= stop):
                continue
            for nxt in (e.new_roots if forward else e.old_roots):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return sorted(out)

    def latest_roots(self, root_id: int, timestamp: datetime | None = None) -> np.ndarray:
        """The roots ``root_id`` became by ``timestamp`` (None: now): itself if it is current then;
        empty for an unknown id or one created after ``timestamp``."""
        r = int(_i64([root_id])[0])
        if not self.known([r])[0]:
            return np.zeros(0, dtype=np.uint64)
        return np.array(self._walk(r, True, to_us(timestamp)), dtype=np.int64).view(np.uint64)

    def past_ids(self, root_ids: Any, timestamp_past: datetime,
                 timestamp_future: datetime | None = None) -> dict[int, list[int]]:
        """For each root: the roots at ``timestamp_past`` it came from (itself if valid then).

        ``timestamp_future`` bounds nothing here (PCG uses it for the future map; see
        :meth:`future_ids`).
        """
        t = to_us(timestamp_past)
        return {int(r): self._walk(int(r), False, t) for r in _i64(root_ids).tolist()}

    def future_ids(self, root_ids: Any, timestamp_future: datetime | None = None) -> dict[int, list[int]]:
        """For each root: the roots at ``timestamp_future`` (None: now) it became."""
        t = to_us(timestamp_future)
        return {int(r): self._walk(int(r), True, t) for r in _i64(root_ids).tolist()}

    def lineage(self, root_ids: Any, timestamp_past: datetime | None = None,
                timestamp_future: datetime | None = None) -> tuple[list[dict[str, Any]], list[tuple[int, int]]]:
        """The lineage graph around ``root_ids``: every ancestor created after ``timestamp_past``
        (or the first one before it) and every descendant created up to ``timestamp_future``.

        Nodes are dicts ``{"id", "timestamp" (its creation), "operation_id" (the edit that made
        it, None for a root from the base)}``; edges are ``(older root, newer root)`` pairs.
        """
        past = to_us(timestamp_past) if timestamp_past is not None else -1
        future = to_us(timestamp_future)
        nodes: dict[int, dict[str, Any]] = {}
        edges: set[tuple[int, int]] = set()
        todo = [(int(r), 0) for r in _i64(root_ids).tolist()]
        seen: set[tuple[int, int]] = set()
        while todo:
            r, direction = todo.pop()
            if (r, direction) in seen:
                continue
            seen.add((r, direction))
            e_made = self._created.get(r)
            nodes.setdefault(r, {"id": r, "timestamp": e_made.timestamp if e_made else self.base_timestamp,
                                 "operation_id": e_made.operation_id if e_made else None})
            if direction <= 0 and e_made is not None and to_us(e_made.timestamp) > past:
                for o in e_made.old_roots:
                    edges.add((o, r))
                    todo.append((o, -1))
            e_gone = self._superseded.get(r)
            if direction >= 0 and e_gone is not None and to_us(e_gone.timestamp) <= future:
                for n in e_gone.new_roots:
                    edges.add((r, n))
                    todo.append((n, 1))
        return sorted(nodes.values(), key=lambda n: n["id"]), sorted(edges)

    def root_timestamps(self, root_ids: Any, latest: bool = False) -> list[datetime]:
        """When each root was created; with ``latest``, when it stopped being current (now if it
        still is). Unknown ids: ``KeyError``."""
        born, died, known = self._span(root_ids)
        if not known.all():
            raise KeyError(int(_i64(root_ids)[~known][0]))
        if not latest:
            return [_dt(int(b)) for b in born.tolist()]
        now = datetime.now(UTC)
        return [now if d == _NOW else _dt(int(d)) for d in died.tolist()]

    def delta_roots(self, timestamp_past: datetime, timestamp_future: datetime | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
        """(roots current at ``timestamp_past`` but not at ``timestamp_future``, roots current at
        ``timestamp_future`` but not at ``timestamp_past``), each sorted (edits' roots only)."""
        a, b = to_us(timestamp_past), to_us(timestamp_future)
        alive_a = (self._born <= a) & (self._died > a)
        alive_b = (self._born <= b) & (self._died > b)
        return (self._roots[alive_a & ~alive_b].view(np.uint64), self._roots[alive_b & ~alive_a].view(np.uint64))

    def operation_details(self, operation_ids: Any) -> dict[int, dict[str, Any]]:
        """What each operation did (unknown ids are left out): timestamp, kind, user, roots,
        source/sink supervoxels and the edges added (merge) or removed (split)."""
        out: dict[int, dict[str, Any]] = {}
        for op in _i64(operation_ids).tolist():
            e = self._by_op.get(op)
            if e is None:
                continue
            pairs = [[s, k] for s in e.source_supervoxels for k in e.sink_supervoxels]
            out[op] = {"operation_id": op, "timestamp": e.timestamp, "kind": e.kind, "user": e.user,
                       "old_roots": list(e.old_roots), "new_roots": list(e.new_roots),
                       "source_ids": list(e.source_supervoxels), "sink_ids": list(e.sink_supervoxels),
                       ("added_edges" if e.kind == "merge" else "removed_edges"): pairs}
        return out


# History.load's loads, by (file, mtime, size)
_LOADED: dict[tuple[str, int, int], History] = {}
_LOADED_LOCK = threading.Lock()


def _anchor_entry(folder: Path, version: int) -> Any:
    """The layout's entry of the history's anchor version (a missing one is an error naming it)."""
    from caveql.datastack.layout import read_versions

    entry = read_versions(folder).get(version)
    if entry is None:
        raise DatastackError(f"{folder}: the history's anchor version {version} is missing")
    return entry


def _read_anchor(folder: Path | None, version: int, roots_only: bool = False, entry: Any = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Every (supervoxel, root) pair the tables of ``version`` hold (their first stored copy);
    ``roots_only``: the roots alone (the supervoxels left unread: an empty array); ``entry``: the
    version's layout entry, when the caller has read it."""
    if folder is None:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    entry = entry if entry is not None else _anchor_entry(folder, version)
    svs: list[np.ndarray] = []
    roots: list[np.ndarray] = []
    for table in entry.tables.values():
        names = pq.read_schema(table.files[0].path).names
        pairs = [(n, n[: -len("supervoxel_id")] + "root_id") for n in names if n.endswith("_supervoxel_id")]
        pairs = [(s, r) for s, r in pairs if r in names]
        if not pairs:
            continue
        cols = pq.read_table(table.files[0].path, columns=[c for p in pairs for c in p[roots_only:]])
        for s, r in pairs:
            if not roots_only:
                svs.append(cols[s].to_numpy(zero_copy_only=False).astype(np.int64))
            # (uint64 ids read as int64 in place: the same bits, no copy of millions of values)
            root = _bits64(cols[r].to_numpy(zero_copy_only=False))
            if table.root_id_map is not None:
                m = pq.read_table(table.root_id_map)
                root = _lookup(*_sorted_map(m), root, -1)
                root = np.where(root == -1, _bits64(cols[r].to_numpy(zero_copy_only=False)), root)
            roots.append(root)
    if not roots:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return (np.concatenate(svs) if svs else np.zeros(0, dtype=np.int64)), np.concatenate(roots)


_ROOTS_KEPT = 32  # anchor-root files kept in the cache folder


def _distinct(ids: np.ndarray) -> np.ndarray:
    """The distinct values of an int64 array, sorted: a sort and a mask (numpy's ``unique``
    hashes first: 0.55 s for 4 M ids, against 0.04 s).

    >>> _distinct(np.array([3, 1, 3, 2], dtype=np.int64)).tolist()
    [1, 2, 3]
    """
    s = np.sort(ids)
    return s[np.r_[True, s[1:] != s[:-1]]] if s.size else s


def _anchor_roots(folder: Path | None, version: int) -> np.ndarray:
    """The distinct root ids (0 left out) the tables of ``version`` hold, sorted; kept between
    processes in the user's cache folder, keyed by each file's path, size and modification time
    (every CLI call or notebook kernel would otherwise read them again: 0.4 s of sorting alone on
    4 M ids). The cache is private, written whole (a temporary file renamed) and read without
    pickles; any problem with it means reading the tables."""
    if folder is None:
        return np.zeros(0, dtype=np.int64)
    import hashlib
    import os
    import tempfile

    import platformdirs

    entry = _anchor_entry(folder, version)
    stats = []
    for table in entry.tables.values():
        for p in (table.files[0].path, table.root_id_map):
            if p is not None:
                st = os.stat(p)
                stats.append([str(Path(p).resolve()), st.st_size, st.st_mtime_ns])
    key = hashlib.sha256(json.dumps(["anchor-roots/1", version, stats]).encode()).hexdigest()[:32]
    cache = Path(platformdirs.user_cache_dir("caveql")) / "roots" / f"{key}.npy"
    try:
        found = np.load(cache, allow_pickle=False)
        if found.dtype == np.int64 and found.ndim == 1:
            return found
    except (OSError, ValueError):
        pass
    roots = _read_anchor(folder, version, roots_only=True, entry=entry)[1]
    out = _distinct(roots[roots != 0])
    tmp = None
    try:
        cache.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache.parent, suffix=".npy.part")
        with os.fdopen(fd, "wb") as f:
            np.save(f, out, allow_pickle=False)
        os.replace(tmp, cache)
        tmp = None
        kept = sorted(cache.parent.glob("*.npy"), key=lambda f: f.stat().st_mtime_ns)
        for old in kept[:-_ROOTS_KEPT]:  # (datastacks come and go: the newest few are kept)
            old.unlink(missing_ok=True)
    except OSError:
        pass  # (an unwritable cache: read the tables next time too)
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
    return out


def _bits64(arr: np.ndarray) -> np.ndarray:
    """A 64-bit integer array as int64 (a view when it is one already or uint64)."""
    return arr.view(np.int64) if arr.dtype in (np.int64, np.uint64) else arr.astype(np.int64)


def _sorted_map(m: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    k = m["root_id"].to_numpy().astype(np.int64)
    v = m["version_root_id"].to_numpy().astype(np.int64)
    order = np.argsort(k, kind="stable")
    return k[order], v[order]


def write_history(folder: str | Path, edits: Sequence[Edit], *, anchor_version: int,
                  anchor_timestamp: datetime, base_timestamp: datetime,
                  anchor_index: tuple[Sequence[int], Sequence[int]] | None = None) -> Path:
    """Write ``<folder>/history.parquet``; returns its path. The edits are checked first (by
    building a :class:`History`). ``anchor_index`` (supervoxels, roots) is stored instead of
    reading the anchor version's tables: for small hand-made datastacks."""
    History(edits, anchor_version=anchor_version, anchor_timestamp=anchor_timestamp,
            base_timestamp=base_timestamp)
    meta = {"format": _FORMAT, "anchor_version": anchor_version,
            "anchor_timestamp": anchor_timestamp.isoformat(), "base_timestamp": base_timestamp.isoformat()}
    if anchor_index is not None:
        meta["anchor_index"] = [[int(v) for v in anchor_index[0]], [int(v) for v in anchor_index[1]]]
    ids = pa.list_(pa.int64())
    ordered = sorted(edits, key=lambda e: (to_us(e.timestamp), e.operation_id))
    table = pa.table({
        "operation_id": pa.array([e.operation_id for e in ordered], pa.int64()),
        "timestamp": pa.array([e.timestamp.astimezone(UTC).replace(tzinfo=None) for e in ordered],
                              pa.timestamp("us")),
        "kind": pa.array([e.kind for e in ordered], pa.string()),
        "old_roots": pa.array([list(e.old_roots) for e in ordered], ids),
        "new_roots": pa.array([list(e.new_roots) for e in ordered], ids),
        "user": pa.array([e.user for e in ordered], pa.string()),
        "source_supervoxels": pa.array([list(e.source_supervoxels) for e in ordered], ids),
        "sink_supervoxels": pa.array([list(e.sink_supervoxels) for e in ordered], ids),
        "moved_supervoxels": pa.array([list(e.moved_supervoxels) for e in ordered], ids),
    }).replace_schema_metadata({_META_KEY: json.dumps(meta).encode()})
    path = Path(folder) / FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{FILE}.tmp")
    pq.write_table(table, tmp, compression="zstd")
    tmp.replace(path)
    return path
