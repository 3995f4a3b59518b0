"""The demo's proofreading history: merges and splits between version 343, version 661 and now.

Every cell edited between the versions (its root is ``r343`` at 343 and ``r661`` at 661) gets one
of three lineages, at random instants between the two versions' timestamps:

- **split off a piece**: ``r343 → (r661, piece)``, the piece a few supervoxels no table holds;
- **merge a piece in**: ``(r343, piece) → r661``, the piece an older root of a few supervoxels;
- **merged, then split back**: ``(r343, piece) → m`` then ``m → (r661, piece')``: ``m`` is a root
  no version ever saw.

After version 661 (until :data:`LAST_EDIT`, so a live query now differs from every version) about
:data:`AFTER_FRACTION` of the cells' roots get one of the same three lineages, and two more kinds
move annotated supervoxels:

- **two cells merged by mistake, then split again**: ``(a, b) → m`` then ``m → (a', b')`` (for a
  few pairs the split has not happened yet: ``m`` is their root now);
- **a multi-nucleus root split**: ``m → (m', c)``, ``c`` taking one nucleus and the synapses
  nearer to it than to the root's other nuclei.

The seed page's cells and partners are never edited. Supervoxels never change ids; the pieces'
supervoxels have segment ids at or above 2^24 (a table's are below 720,000), so none is in a table.

Supervoxel ids are drawn at random per row, so two rows of different roots can draw the same id
(7 pairs in 2M synapses): :func:`fix_collisions` gives the later rows fresh ids (segment ids at or
above 2^25), so every supervoxel has one root, as in a real segmentation.

>>> from caveql.datastack.demo_cells import make_cells
>>> edits = between_versions(make_cells(0), 0)
>>> len(edits) > 15_000, {e.kind for e in edits} == {"merge", "split"}
(True, True)
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from caveql.datastack.demo_cells import ORIGIN, Cells
from caveql.datastack.demo_meta import (
    ROOT_BASE,
    SEED_CELLS,
    SEED_SYNAPSES,
    SYNAPSE_CELL,
    TAIL_PARTNERS,
    TOP_PARTNERS,
    VERSIONS,
)
from caveql.datastack.history import Edit

__all__ = ["AFTER_FRACTION", "BASE", "LAST_EDIT", "after_versions", "between_versions", "fix_collisions"]

#: When the segmentation's roots begin (roots no edit made are valid from here on).
BASE = datetime(2020, 6, 1, tzinfo=UTC)
T343 = datetime.fromisoformat(VERSIONS[343][0]).replace(tzinfo=UTC)
T661 = datetime.fromisoformat(VERSIONS[661][0]).replace(tzinfo=UTC)
#: No edit after this instant: "now" is later.
LAST_EDIT = datetime(2024, 9, 30, tzinfo=UTC)
AFTER_FRACTION = 0.04
MISTAKEN_PAIRS = 12  # cells merged by mistake after 661 (the last UNSPLIT of them not split yet)
UNSPLIT = 3
NUCLEUS_SPLITS = 12
USERS = ("121", "1042", "2291", "3012", "4477", "5310")
PIECE_SEG = 1 << 24
FRESH_SEG = 1 << 25
_SEG_MASK = (1 << 26) - 1
# root counters of the history's own roots (disjoint from the cells', fragments' and 661's)
_OLD_PIECES = 3_000_000_000
_BETWEEN = 8_760_000_000
_AFTER = 9_000_000_000


def protected_roots() -> set[int]:
    """Roots the seed page names: never edited, so its figures hold at every instant."""
    return ({c[4] for c in SEED_CELLS} | {SYNAPSE_CELL} | {r for r, _ in TOP_PARTNERS}
            | set(TAIL_PARTNERS) | {s[5] for s in SEED_SYNAPSES})


class _Ids:
    """Allocates root ids and piece supervoxels; root ids grow with time, as PCG's do."""

    def __init__(self) -> None:
        self.pieces = 0
        self.sv = 0

    def piece_root(self) -> int:
        self.pieces += 1
        return ROOT_BASE + _OLD_PIECES + self.pieces

    def piece_svs(self, rng: np.random.Generator, pos: np.ndarray, n: int) -> tuple[int, ...]:
        """``n`` supervoxels near ``pos`` (chunk bits of the position, as supervoxels() draws)."""
        out = []
        for _ in range(n):
            p = pos + rng.integers(-600, 600, 3) * np.array([1, 1, 0])
            chunk = np.clip((p - ORIGIN) // 512, 0, 1023).astype(np.int64)
            self.sv += 1
            out.append(int((1 << 56) | (int(chunk[0]) << 46) | (int(chunk[1]) << 36) | (int(chunk[2]) << 26)
                           | (PIECE_SEG + self.sv)))
        return tuple(out)


def _stamp(lo: datetime, hi: datetime, u: float) -> datetime:
    """An instant in (lo, hi), microsecond precision."""
    span = int((hi - lo).total_seconds() * 1_000_000)
    return lo + timedelta(microseconds=1 + int(u * (span - 2)))


def _lineage(rng: np.random.Generator, ids: _Ids, old: int, new: int, t0: datetime, t1: datetime,
             pos: np.ndarray, anchor_sv: int, fresh: list[int]) -> list[tuple[datetime, str, tuple, tuple, tuple, tuple]]:
    """The edits turning root ``old`` into ``new`` in (t0, t1): (timestamp, kind, old roots,
    new roots, (source svs, sink svs), moved svs). ``fresh`` hands out intermediate root ids."""
    kind = rng.choice(3, p=[0.45, 0.35, 0.20])
    piece = ids.piece_svs(rng, pos, int(rng.integers(1, 4)))
    ends = (anchor_sv,), (piece[0],)
    if kind == 0:
        return [(_stamp(t0, t1, rng.random()), "split", (old,), (new, fresh.pop()), ends, piece)]
    if kind == 1:
        return [(_stamp(t0, t1, rng.random()), "merge", (old, ids.piece_root()), (new,), ends, piece)]
    a, b = sorted(rng.random(2))
    ta, tb = _stamp(t0, t1, a), _stamp(t0, t1, b)
    if tb <= ta:
        tb = ta + timedelta(microseconds=1)
    m = fresh.pop()
    return [(ta, "merge", (old, ids.piece_root()), (m,), ends, piece),
            (tb, "split", (m,), (new, fresh.pop()), ends, piece)]


def _edits(raw: list[tuple[datetime, str, tuple, tuple, tuple, tuple]], rng: np.random.Generator,
           first_op: int) -> list[Edit]:
    raw.sort(key=lambda e: e[0])
    return [Edit(first_op + i, ts, kind, old, new, str(rng.choice(USERS)), ends[0], ends[1], moved)
            for i, (ts, kind, old, new, ends, moved) in enumerate(raw)]


def _renumber(raw: list, base: int) -> None:
    """Give the roots made in ``raw`` ids that grow with their edit's time (placeholders < 0)."""
    raw.sort(key=lambda e: e[0])
    ids: dict[int, int] = {}
    for e in raw:
        for r in e[3]:
            if r < 0 and r not in ids:
                ids[r] = ROOT_BASE + base + len(ids) + 1
    for k, (ts, kind, old, new, ends, moved) in enumerate(raw):
        raw[k] = (ts, kind, tuple(ids.get(r, r) for r in old), tuple(ids.get(r, r) for r in new), ends, moved)


def between_versions(cells: Cells, seed: int) -> list[Edit]:
    """The edits between version 343 and 661: one lineage per edited cell."""
    rng = np.random.default_rng([seed, 5])
    ids = _Ids()
    old, new = cells.root[343], cells.root[661]
    rows = np.flatnonzero(cells.edited)
    seen: dict[int, int] = {}
    for r in rows.tolist():
        seen.setdefault(int(old[r]), r)
    fresh = list(range(-1, -4 * len(seen) - 10, -1))[::-1]
    raw: list = []
    for r343, row in sorted(seen.items()):
        raw += _lineage(rng, ids, r343, int(new[row]), T343, T661, cells.pos[row], int(cells.sv[row]), fresh)
    _renumber(raw, _BETWEEN)
    return _edits(raw, rng, 1_000_001)


def after_versions(cells: Cells, seed: int, synapses: pa.Table, alt: pa.Table, first_op: int,
                   ids_start: int = 0) -> list[Edit]:
    """The edits after version 661 (see the module docstring). ``synapses`` holds the rows of the
    roots the mistaken merges and nucleus splits touch (pre/post supervoxels, roots, positions);
    ``alt`` is nucleus_alternative_points at 661."""
    rng = np.random.default_rng([seed, 6])
    ids = _Ids()
    ids.pieces, ids.sv = 500_000 + ids_start, 5_000_000 + ids_start
    root = cells.root[661]
    free_roots, picks = candidates(cells, seed)
    fresh = list(range(-1, -10 * free_roots.size - 10, -1))[::-1]
    raw: list = []
    # one lineage for a fraction of the cells' roots
    chosen = free_roots[rng.random(free_roots.size) < AFTER_FRACTION]
    chosen = chosen[~np.isin(chosen, picks["busy"])]
    row_of = {int(r): i for i, r in reversed(list(enumerate(root.tolist())))}
    for r in chosen.tolist():
        row = row_of[r]
        raw += _lineage(rng, ids, r, fresh.pop(), T661, LAST_EDIT, cells.pos[row], int(cells.sv[row]), fresh)
    # two cells merged by mistake, split again later (or not yet)
    for k, (a, b) in enumerate(picks["pairs"]):
        moved = _svs_of(b, cells, synapses, alt)
        t1, t2 = sorted(rng.random(2))
        ta, tb = _stamp(T661, LAST_EDIT, t1), _stamp(T661, LAST_EDIT, t2)
        m = fresh.pop()
        ends = (int(cells.sv[row_of[a]]),), (int(cells.sv[row_of[b]]),)
        raw.append((ta, "merge", (a, b), (m,), ends, moved))
        if k < len(picks["pairs"]) - UNSPLIT:
            raw.append((max(tb, ta + timedelta(seconds=1)), "split", (m,), (fresh.pop(), fresh.pop()), ends, moved))
    # multi-nucleus roots split: one nucleus (and the synapses nearer to it) leaves
    for r in picks["multi"]:
        rows = np.flatnonzero(root == r)
        leave = rows[-1]
        moved = _nearer(r, rows, leave, cells, synapses, alt)
        ends = (int(cells.sv[rows[0]]),), (int(cells.sv[leave]),)
        raw.append((_stamp(T661, LAST_EDIT, rng.random()), "split", (r,), (fresh.pop(), fresh.pop()), ends, moved))
    _renumber(raw, _AFTER)
    return _edits(raw, rng, first_op)


def candidates(cells: Cells, seed: int = 0) -> tuple[np.ndarray, dict]:
    """(roots at 661 that may be edited, the roots of the mistaken pairs and nucleus splits)."""
    rng = np.random.default_rng([seed, 7])
    root = cells.root[661]
    keep = ~np.isin(root, list(protected_roots())) & (root != 0)
    keep[cells.partner_rows] = False
    keep[cells.synapse_cell] = False
    roots, counts = np.unique(root[keep], return_counts=True)
    single = roots[counts == 1]
    multi = roots[(counts >= 2) & (counts <= 3)]
    multi = np.sort(rng.choice(multi, NUCLEUS_SPLITS, replace=False))
    # mistaken pairs: single-nucleus cells next to another single-nucleus cell
    rows = np.flatnonzero(np.isin(root, single))
    order = rows[np.argsort(cells.pos[rows, 0], kind="stable")]
    starts = np.sort(rng.choice(np.arange(0, order.size - 1, 2), MISTAKEN_PAIRS, replace=False))
    pairs = [(int(root[order[s]]), int(root[order[s + 1]])) for s in starts.tolist()]
    busy = np.array(sorted({r for p in pairs for r in p} | set(multi.tolist())), dtype=np.int64)
    return roots, {"pairs": pairs, "multi": multi.tolist(), "busy": busy}


def _svs_of(r: int, cells: Cells, synapses: pa.Table, alt: pa.Table) -> tuple[int, ...]:
    """Every supervoxel that root ``r`` has in a table at 661."""
    svs = [cells.sv[cells.root[661] == r]]
    for side in ("pre", "post"):
        sel = synapses[f"{side}_pt_root_id"].to_numpy() == r
        svs.append(synapses[f"{side}_pt_supervoxel_id"].to_numpy()[sel])
    sel = alt["pt_root_id"].to_numpy() == r
    svs.append(alt["pt_supervoxel_id"].to_numpy()[sel])
    out = np.unique(np.concatenate(svs))
    return tuple(int(v) for v in out[out != 0])


def _nearer(r: int, rows: np.ndarray, leave: int, cells: Cells, synapses: pa.Table, alt: pa.Table) -> tuple[int, ...]:
    """Supervoxels of root ``r`` nearer to nucleus row ``leave`` than to its other nuclei."""
    centres = cells.pos[rows].astype(float) * np.array([4, 4, 40])
    mine = int(np.flatnonzero(rows == leave)[0])
    svs = [np.array([cells.sv[leave]])]
    for side in ("pre", "post"):
        sel = synapses[f"{side}_pt_root_id"].to_numpy() == r
        pos = np.stack([synapses[f"{side}_pt_position_{a}"].to_numpy()[sel] for a in "xyz"], axis=1)
        d = (((pos[:, None, :] * np.array([4, 4, 40])) - centres[None]) ** 2).sum(axis=2)
        svs.append(synapses[f"{side}_pt_supervoxel_id"].to_numpy()[sel][d.argmin(axis=1) == mine])
    sel = alt["pt_root_id"].to_numpy() == r
    apos = np.stack([alt[f"pt_position_{a}"].to_numpy()[sel] for a in "xyz"], axis=1)
    d = (((apos[:, None, :] * np.array([4, 4, 40])) - centres[None]) ** 2).sum(axis=2)
    svs.append(alt["pt_supervoxel_id"].to_numpy()[sel][d.argmin(axis=1) == mine])
    out = np.unique(np.concatenate(svs))
    return tuple(int(v) for v in out[out != 0])


def fix_collisions(parts: list[Path], owners: list[tuple[np.ndarray, np.ndarray]],
                   memory_limit: str = "3GB") -> int:
    """Give synapse rows whose supervoxel another root already has (in ``owners``' (sv, root)
    pairs, which win, or in a row of a smaller root) a fresh supervoxel; rewrites ``parts`` in
    place. Returns the number of supervoxels replaced. (DuckDB groups out of core, in a spill
    folder beside the parts: 100M synapses are 200M pairs.)"""
    spill = parts[0].parent / "_spill" if parts else Path(".")
    con = duckdb.connect(":memory:", config={"memory_limit": memory_limit, "temp_directory": str(spill)})
    try:
        con.execute("SET enable_progress_bar = false")
        files = "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in parts) + "]"
        own_sv = np.concatenate([o[0] for o in owners]).astype(np.int64)
        own_root = np.concatenate([o[1] for o in owners]).astype(np.int64)
        own = pa.table({"sv": own_sv, "root": own_root, "rank": np.zeros(own_sv.size, dtype=np.int64)})
        con.register("own", own)
        bad = con.sql(f"""
            WITH pairs AS (
              SELECT pre_pt_supervoxel_id AS sv, pre_pt_root_id AS root, 1 AS rank FROM read_parquet({files})
              UNION ALL SELECT post_pt_supervoxel_id, post_pt_root_id, 1 FROM read_parquet({files})
              UNION ALL SELECT sv, root, rank FROM own),
            multi AS (SELECT sv FROM pairs WHERE sv != 0 GROUP BY sv HAVING count(DISTINCT root) > 1)
            SELECT p.sv, p.root, min(p.rank) AS rank FROM pairs p JOIN multi USING (sv)
            GROUP BY ALL ORDER BY p.sv, rank, p.root""").fetchall()
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)
    replace: dict[tuple[int, int], int] = {}
    owner: dict[int, int] = {}
    for sv, r, _rank in bad:
        if sv not in owner:
            owner[sv] = r
        elif r != owner[sv]:
            replace[(sv, r)] = (sv & ~_SEG_MASK) | (FRESH_SEG + len(replace) + 1)
    if not replace:
        return 0
    keys_sv = np.array([k[0] for k in replace], dtype=np.int64)
    for path in parts:
        t = pq.read_table(path)
        changed = False
        cols = {}
        for side in ("pre", "post"):
            sv = t[f"{side}_pt_supervoxel_id"].to_numpy().copy()
            rt = t[f"{side}_pt_root_id"].to_numpy()
            for i in np.flatnonzero(np.isin(sv, keys_sv)).tolist():
                new = replace.get((int(sv[i]), int(rt[i])))
                if new is not None:
                    sv[i] = new
                    changed = True
            cols[f"{side}_pt_supervoxel_id"] = sv
        if changed:
            for name, values in cols.items():
                t = t.set_column(t.schema.get_field_index(name), name, pa.array(values))
            pq.write_table(t, path, row_group_size=65_536, compression="zstd")
    return len(replace)
