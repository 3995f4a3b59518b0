"""The demo's cells: 144,120 nuclei and every cell-type / proofreading / coregistration table.

Vectorised numpy, deterministic from the seed. Positions follow the minnie65 geometry of
microns-data.md §3 (volume bounds, 5°-tilted pia, layer depths); the cell-type mix follows §4b;
the seed page's cells are planted (see demo_meta).

>>> cells = make_cells(0)
>>> int(cells.nucleus_id.size), int((cells.type_code == TYPES.index("BC")).sum()) > 3084
(144120, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa

from caveql.datastack.demo_meta import (
    ROOT_BASE,
    SEED_CELLS,
    SEED_SYNAPSES,
    SYNAPSE_CELL,
    TOP_PARTNERS,
)

__all__ = ["TYPES", "Cells", "first_occurrences", "make_cells", "position_columns", "supervoxels", "uniq"]

N_NUCLEI = 144_120
N_NEURONS = 82_247
ORIGIN = np.array([52_770, 60_616, 14_850])  # PCG grid origin (4x4x40 voxels)
VOLUME_MAX = np.array([414_200, 280_300, 28_160])
SIN5, COS5 = math.sin(math.radians(5)), math.cos(math.radians(5))

# name, reference count (microns-data §4b), depth range in µm from pia, E/I/glia/other
_TYPE_TABLE = (
    ("23P", 19_656, (110, 272), "E"), ("4P", 14_728, (280, 408), "E"),
    ("5P-IT", 7_899, (400, 530), "E"), ("5P-ET", 2_167, (430, 530), "E"),
    ("5P-NP", 958, (430, 530), "E"), ("6P-IT", 11_641, (540, 700), "E"),
    ("6P-CT", 6_761, (560, 765), "E"), ("BC", 3_319, (106, 765), "I"),
    ("BPC", 1_484, (106, 700), "I"), ("MC", 2_439, (106, 765), "I"), ("NGC", 621, (5, 200), "I"),
    ("astrocyte", 7_133, (0, 900), "G"), ("microglia", 2_410, (0, 900), "G"),
    ("oligo", 6_902, (0, 900), "G"), ("OPC", 1_471, (0, 900), "G"), ("pericyte", 845, (0, 900), "G"),
    ("unknown", 0, (0, 950), "U"),
)
TYPES = tuple(t[0] for t in _TYPE_TABLE)
KIND = np.array([t[3] for t in _TYPE_TABLE])
NEURON = np.isin(KIND, ["E", "I"])
BC_ROWS = 3_084  # the seed's count of BC rows in aibs_soma_nuc_metamodel_preds_v117
METAMODEL_ROWS = 86_916


def _largest_remainder(weights: np.ndarray, total: int) -> np.ndarray:
    raw = weights / weights.sum() * total
    out = np.floor(raw).astype(np.int64)
    out[np.argsort(-(raw - out), kind="stable")[: total - out.sum()]] += 1
    return out


def supervoxels(rng: np.random.Generator, pos: np.ndarray) -> np.ndarray:
    """Supervoxel ids whose chunk bits match the positions (layer 1, 10 bits per chunk axis)."""
    chunk = np.clip((pos - ORIGIN) // 512, 0, 1023).astype(np.int64)
    seg = rng.integers(1, 720_000, size=len(pos), dtype=np.int64)
    return (np.int64(1) << 56) | (chunk[:, 0] << 46) | (chunk[:, 1] << 36) | (chunk[:, 2] << 26) | seg


def position_columns(name: str, pos: np.ndarray) -> dict[str, pa.Array]:
    """``<name>_x/_y/_z`` int32 columns of an (n, 3) array."""
    return {f"{name}_{a}": pa.array(pos[:, i].astype(np.int32)) for i, a in enumerate("xyz")}


def y_from_depth(x: np.ndarray, depth_um: np.ndarray) -> np.ndarray:
    """Raw y voxel of a cortical depth, pia tilted 5° (standard_transform, minnie65)."""
    return 83_535 + (depth_um * 250 - (x - 183_013) * SIN5) / COS5


def uniq(a: np.ndarray, return_counts: bool = False) -> Any:
    """Sorted distinct values (and their counts): ``np.unique`` by sorting, which on this numpy
    is many times faster than ``np.unique`` itself for large int64 arrays."""
    s = np.sort(np.asarray(a), kind="stable")
    if s.size == 0:
        return (s, np.zeros(0, dtype=np.int64)) if return_counts else s
    start = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    if not return_counts:
        return s[start]
    return s[start], np.diff(np.r_[start, s.size])


def first_occurrences(a: np.ndarray) -> np.ndarray:
    """Indices of the first occurrence of each distinct value, in original order."""
    order = np.argsort(a, kind="stable")
    s = a[order]
    return np.sort(order[np.r_[True, s[1:] != s[:-1]]]) if a.size else order


def unique_counters(rng: np.random.Generator, lo: int, hi: int, n: int, avoid: set[int]) -> np.ndarray:
    """``n`` distinct random integers in ``[lo, hi)`` that are not in ``avoid``."""
    out = np.empty(0, dtype=np.int64)
    while out.size < n:
        more = rng.integers(lo, hi, size=int((n - out.size) * 1.1) + 16, dtype=np.int64)
        out = np.concatenate([out, more])
        out = out[first_occurrences(out)]
        out = out[~np.isin(out, np.fromiter(avoid, np.int64, len(avoid)))] if avoid else out
    return out[:n]


@dataclass
class Cells:
    """Per-nucleus arrays (row i = nucleus i, sorted by nucleus id) and derived tables."""

    nucleus_id: np.ndarray
    pos: np.ndarray
    volume: np.ndarray
    type_code: np.ndarray
    sv: np.ndarray
    root: dict[int, np.ndarray]  # version -> root id per nucleus (0 = no segment)
    created: np.ndarray  # datetime64[us]
    synapse_cell: int  # row of the seed's synapse cell
    partner_rows: np.ndarray  # rows whose roots are the seed's named partners
    edited: np.ndarray  # bool: root differs between 343 and 661
    tables: dict[int, dict[str, pa.Table]] = field(default_factory=dict)

    def root_map(self) -> pa.Table:
        """``root_id`` (661) → ``version_root_id`` (343) for the edited cells."""
        new, old = self.root[661][self.edited], self.root[343][self.edited]
        first = first_occurrences(new)
        return pa.table({"root_id": pa.array(new[first]), "version_root_id": pa.array(old[first])})


def _ts(base: datetime, seconds: np.ndarray) -> np.ndarray:
    return np.datetime64(base, "us") + (seconds * 1e6).astype("timedelta64[us]")


def make_cells(seed: int) -> Cells:
    """All nuclei with positions, types, roots at 343 and 661 (see module docstring)."""
    rng = np.random.default_rng([seed, 1])
    weights = np.array([t[1] for t in _TYPE_TABLE], dtype=float)
    counts = np.zeros(len(TYPES), dtype=np.int64)
    counts[NEURON] = _largest_remainder(weights[NEURON], N_NEURONS)
    glia = KIND == "G"
    counts[glia] = _largest_remainder(weights[glia], 2 * int(weights[glia].sum()))
    counts[TYPES.index("unknown")] = N_NUCLEI - counts.sum()
    type_code = rng.permutation(np.repeat(np.arange(len(TYPES)), counts))
    n = N_NUCLEI
    x = rng.uniform(56_000, 381_500, n)
    lo = np.array([t[2][0] for t in _TYPE_TABLE], dtype=float)[type_code]
    hi = np.array([t[2][1] for t in _TYPE_TABLE], dtype=float)[type_code]
    y = np.clip(y_from_depth(x, rng.uniform(lo, hi)), 62_000, 279_300)
    z = rng.integers(15_000, 27_400, n)
    pos = np.stack([(x // 16 * 16), (y // 16 * 16), z], axis=1).astype(np.int64)

    # planted cells: the seed's three 23P cells and the synapse cell (a 23P in the V1 column)
    special_rows = np.arange(len(SEED_CELLS) + 1)
    t23 = TYPES.index("23P")
    type_code[special_rows] = t23
    for i, cell in enumerate(SEED_CELLS):
        pos[i] = cell[1]
    syn_row = len(SEED_CELLS)
    pos[syn_row] = (176_000, 128_000, 20_512)

    # volumes (µm³): lognormal by kind; tiny false positives just above the 25 µm³ floor
    median = np.select([NEURON[type_code], KIND[type_code] == "G"], [300.0, 120.0], 40.0)
    volume = np.maximum(25.2, median * np.exp(rng.normal(0, 0.28, n)))
    for i, cell in enumerate(SEED_CELLS):
        volume[i] = cell[2]

    # nucleus ids: nearly linear in x (id ≈ 2.12·x − 111,000), unique, the seed's ids kept
    raw = np.maximum(1, np.round(2.12 * pos[:, 0] - 111_000 + rng.normal(0, 15_000, n))).astype(np.int64)
    seed_ids = {c[0] for c in SEED_CELLS}
    order = np.argsort(raw, kind="stable")
    inc = np.maximum.accumulate(raw[order] - np.arange(n)) + np.arange(n)
    nid = np.empty(n, dtype=np.int64)
    nid[order] = inc
    clash = np.isin(nid, list(seed_ids))
    nid[clash] = nid.max() + 1 + np.arange(clash.sum())
    for i, cell in enumerate(SEED_CELLS):
        nid[i] = cell[0]

    # roots: 0 near the far x / deep faces; merged multi-nucleus roots; edited cells
    p_zero = np.where((pos[:, 0] > 340_000) | (pos[:, 1] > 268_000), 0.5, 0.012)
    zero = rng.random(n) < p_zero
    zero[special_rows] = False
    fixed = {c[4] for c in SEED_CELLS} | {SYNAPSE_CELL} | {r for r, _ in TOP_PARTNERS} | {
        s[5] for s in SEED_SYNAPSES}
    counters = unique_counters(rng, 4_900_000_000, 8_000_000_000, n, {f - ROOT_BASE for f in fixed})
    root = ROOT_BASE + counters
    for i, cell in enumerate(SEED_CELLS):
        root[i] = cell[4]
    root[syn_row] = SYNAPSE_CELL
    # the seed's named partners of the synapse cell are neurons next to it
    neuron = NEURON[type_code] & ~zero
    d2 = ((pos - pos[syn_row]) * np.array([1, 1, 10])) ** 2
    dist = d2.sum(axis=1).astype(float)
    dist[~neuron] = np.inf
    dist[special_rows] = np.inf
    named = [r for r, _ in TOP_PARTNERS] + [s[5] for s in SEED_SYNAPSES if s[5] not in
                                            {r for r, _ in TOP_PARTNERS}]
    partner_rows = np.argsort(dist, kind="stable")[: len(named)]
    root[partner_rows] = named
    protected = np.zeros(n, dtype=bool)
    protected[special_rows] = True
    protected[partner_rows] = True

    # multi-nucleus merges: a few large ones (346, 102, 60, 43) and ~2,300 small ones
    free = ~zero & ~protected
    for size in (346, 102, 60, 43):
        centre = rng.choice(np.flatnonzero(free))
        dd = (((pos - pos[centre]) * np.array([1, 1, 10])) ** 2).sum(axis=1).astype(float)
        dd[~free] = np.inf
        members = np.argsort(dd, kind="stable")[:size]
        root[members] = root[members[0]]
        free[members] = False
    by_x = np.argsort(pos[:, 0], kind="stable")
    starts = rng.choice(np.arange(0, n - 3, 3), size=2_300, replace=False)
    for k, s in enumerate(np.sort(starts)):
        members = by_x[s: s + (2 if k % 7 else 3)]
        if free[members].all():
            root[members] = root[members[0]]
            free[members] = False
    root[zero] = 0

    # cells edited between 343 and 661 get a new, larger root id at 661
    roots_u = uniq(root[(root != 0) & ~protected])
    edited_roots = roots_u[rng.random(roots_u.size) < 0.12]
    new_ids = ROOT_BASE + unique_counters(rng, 8_000_000_000, 8_750_000_000, edited_roots.size,
                                          {f - ROOT_BASE for f in fixed})
    remap = dict(zip(edited_roots.tolist(), new_ids.tolist(), strict=True))
    edited = np.isin(root, edited_roots)
    root661 = root.copy()
    root661[edited] = np.array([remap[r] for r in root[edited].tolist()], dtype=np.int64)

    sv = supervoxels(rng, pos)
    for i, cell in enumerate(SEED_CELLS):
        sv[i] = cell[3]
    sv[zero] = 0
    created = _ts(datetime(2020, 9, 28, 22, 40, 41), rng.uniform(0, 290, n))
    for i, cell in enumerate(SEED_CELLS):
        created[i] = np.datetime64(cell[6], "us")

    order = np.argsort(nid, kind="stable")
    inv = np.empty(n, dtype=np.int64)
    inv[order] = np.arange(n)
    return Cells(
        nucleus_id=nid[order], pos=pos[order], volume=volume[order], type_code=type_code[order],
        sv=sv[order], root={343: root[order], 661: root661[order]}, created=created[order],
        synapse_cell=int(inv[syn_row]), partner_rows=inv[partner_rows], edited=edited[order])


def nucleus_table(cells: Cells, version: int) -> pa.Table:
    """nucleus_detection_v0 at ``version`` (split layout: created, superceded_id kept)."""
    n = cells.nucleus_id.size
    none3 = {f"{b}_{a}": pa.nulls(n, pa.int32()) for b in ("bb_start_position", "bb_end_position")
             for a in "xyz"}
    return pa.table({
        "id": pa.array(cells.nucleus_id), "created": pa.array(cells.created),
        "superceded_id": pa.nulls(n, pa.int64()), "valid": pa.array(np.ones(n, dtype=bool)),
        "volume": pa.array(cells.volume.astype(np.float32)),
        **position_columns("pt_position", cells.pos), **none3,
        "pt_supervoxel_id": pa.array(cells.sv), "pt_root_id": pa.array(cells.root[version]),
    })


def _reference(rng: np.random.Generator, rows: np.ndarray, cells: Cells, system: np.ndarray | str,
               cell_type: np.ndarray, base: datetime, span_s: float,
               fixed_ids: dict[int, tuple[int, datetime]] | None = None) -> pa.Table:
    """A cell_type_reference table over nucleus ``rows`` (ids sequential-ish, ordered by id)."""
    n = rows.size
    pool = np.arange(1, int(n * 1.03) + 50)
    fixed_ids = fixed_ids or {}
    taken = np.array([v[0] for v in fixed_ids.values()], dtype=np.int64)
    pool = pool[~np.isin(pool, taken)]
    ids = np.sort(rng.choice(pool, size=n, replace=False))
    ids = rng.permutation(ids)
    created = _ts(base, ids / pool.max() * span_s + rng.uniform(0, 0.2, n))
    target = cells.nucleus_id[rows]
    for k, t in enumerate(target.tolist()):
        if t in fixed_ids:
            ids[k] = fixed_ids[t][0]
            created[k] = np.datetime64(fixed_ids[t][1], "us")
    system_arr = np.full(n, system, dtype=object) if isinstance(system, str) else system
    order = np.argsort(ids, kind="stable")
    return pa.table({
        "id": pa.array(ids[order]), "created": pa.array(created[order]),
        "superceded_id": pa.nulls(n, pa.int64()), "valid": pa.array(np.ones(n, dtype=bool)),
        "target_id": pa.array(target[order]),
        "classification_system": pa.array(system_arr[order].tolist(), pa.string()),
        "cell_type": pa.array(np.asarray(cell_type, dtype=object)[order].tolist(), pa.string()),
    })


def _pick(rng: np.random.Generator, candidates: np.ndarray, k: int, must: np.ndarray | None = None) -> np.ndarray:
    must = np.zeros(0, dtype=np.int64) if must is None else must
    rest = candidates[~np.isin(candidates, must)]
    return np.sort(np.concatenate([must, rng.choice(rest, size=k - must.size, replace=False)]))


_MTYPES = {"23P": ("L2a", "L2b", "L3a", "L3b", "L3c"), "4P": ("L4a", "L4b", "L4c"),
           "5P-IT": ("L5a", "L5b"), "5P-ET": ("L5ET",), "5P-NP": ("L5NP",),
           "6P-IT": ("L6a", "L6b", "L6c"), "6P-CT": ("L6CT", "L6wm"),
           "BC": ("PTC",), "BPC": ("DTC", "STC"), "MC": ("DTC",), "NGC": ("ITC", "STC")}


def _mtype(rng: np.random.Generator, types: np.ndarray) -> np.ndarray:
    out = np.empty(types.size, dtype=object)
    for name, choices in _MTYPES.items():
        sel = types == TYPES.index(name)
        out[sel] = rng.choice(np.array(choices, dtype=object), size=int(sel.sum()))
    return out


def make_tables(cells: Cells, seed: int) -> dict[int, dict[str, pa.Table]]:
    """Every table except synapses_pni_2, at 343 and 661."""
    rng = np.random.default_rng([seed, 2])
    tc = cells.type_code
    n = tc.size
    rows = np.arange(n)
    names = np.array(TYPES, dtype=object)
    has_root = cells.root[661] != 0
    is_neuron = NEURON[tc]
    seed_rows = np.flatnonzero(np.isin(cells.nucleus_id, [c[0] for c in SEED_CELLS]))
    syn_row = np.array([cells.synapse_cell])
    out: dict[int, dict[str, pa.Table]] = {343: {}, 661: {}}
    for v in (343, 661):
        out[v]["nucleus_detection_v0"] = nucleus_table(cells, v)

    # aibs_soma_nuc_metamodel_preds_v117: exact per-type counts, BC = 3,084
    weights = np.array([t[1] for t in _TYPE_TABLE], dtype=float)
    per_type = np.zeros(len(TYPES), dtype=np.int64)
    keep = (np.arange(len(TYPES)) != TYPES.index("BC")) & (KIND != "U")
    per_type[keep] = _largest_remainder(weights[keep], METAMODEL_ROWS - BC_ROWS)
    per_type[TYPES.index("BC")] = BC_ROWS
    # typed tables rarely point at root-0 nuclei (175 of 94,014 rows in the real metamodel)
    typed_ok = has_root | (rng.random(n) < 0.012)
    chosen = []
    for t, k in enumerate(per_type):
        if k:
            must = np.concatenate([seed_rows, syn_row]) if TYPES[t] == "23P" else None
            chosen.append(_pick(rng, rows[(tc == t) & typed_ok], int(k), must))
    meta_rows = np.sort(np.concatenate(chosen))
    system = np.where(is_neuron[meta_rows], "aibs_neuronal", "aibs_non-neuronal").astype(object)
    fixed = {c[0]: (c[5], c[7]) for c in SEED_CELLS}
    metamodel = _reference(rng, meta_rows, cells, system, names[tc[meta_rows]],
                           datetime(2022, 7, 26, 23, 54, 50), 16 * 60, fixed)
    out[343]["aibs_soma_nuc_metamodel_preds_v117"] = metamodel
    out[661]["aibs_soma_nuc_metamodel_preds_v117"] = metamodel

    t661 = out[661]
    exc = rows[(KIND[tc] == "E") & typed_ok]
    r = _pick(rng, exc, 58_624)
    t661["aibs_soma_nuc_exc_mtype_preds_v117"] = _reference(
        rng, r, cells, "excitatory", _mtype(rng, tc[r]), datetime(2022, 7, 28, 10, 0), 900)
    neuron_rows = rows[is_neuron & typed_ok]
    t661["nucleus_ref_neuron_svm"] = _reference(
        rng, rows, cells, "is_neuron", np.where(is_neuron, "neuron", "not-neuron").astype(object),
        datetime(2021, 6, 4, 11, 0), 600)
    r = _pick(rng, neuron_rows, 55_063)
    ei = np.where(KIND[tc[r]] == "E", "excitatory", "inhibitory").astype(object)
    flip = rng.random(r.size) < 0.03
    ei[flip] = np.where(ei[flip] == "excitatory", "inhibitory", "excitatory")
    t661["baylor_log_reg_cell_type_coarse_v1"] = _reference(
        rng, r, cells, "baylor_log_reg_cell_type_coarse", ei, datetime(2023, 2, 1, 9, 0), 300)
    r = _pick(rng, neuron_rows, 49_051)
    fine = names[tc[r]].copy()
    fine[fine == "5P-ET"] = "5P-PT"
    confuse = rng.random(r.size) < 0.08
    fine[confuse] = rng.choice(np.array(["23P", "4P", "5P-IT", "5P-NP", "5P-PT", "6P-CT", "6P-IT",
                                         "BC", "BPC", "MC", "NGC"], dtype=object), int(confuse.sum()))
    t661["baylor_gnn_cell_type_fine_model_v2"] = _reference(
        rng, r, cells, "baylor_gnn_cell_type_fine", fine, datetime(2023, 3, 2, 9, 0), 300)

    # the V1 column: 1,194 excitatory + 163 inhibitory neurons and 542 glia nearest its axis
    axis = ((cells.pos[:, 0] - 175_000) ** 2 + ((cells.pos[:, 2] - 21_800) * 10) ** 2).astype(float)
    in_l = (cells.pos[:, 1] > 90_000) & (cells.pos[:, 1] < 270_000) & has_root

    def nearest(mask: np.ndarray, k: int, must: np.ndarray | None = None) -> np.ndarray:
        d = np.where(mask & in_l, axis, np.inf)
        if must is not None:
            d[must] = -1.0
        return np.sort(np.argsort(d, kind="stable")[:k])

    col_e = nearest(KIND[tc] == "E", 1_194, syn_row)
    col_i = nearest(KIND[tc] == "I", 163)
    column = np.sort(np.concatenate([col_e, col_i]))
    inh = KIND[tc[column]] == "I"
    mt = _mtype(rng, tc[column])
    t661["allen_column_mtypes_v1"] = _reference(
        rng, column, cells, np.where(inh, "inhibitory", "excitatory").astype(object), mt,
        datetime(2022, 11, 1, 12, 0), 120)
    coarse = names[tc[column]].copy()
    unsure = rng.random(column.size) < 0.02
    coarse[unsure] = np.where(inh[unsure], "Unsure I", "Unsure E")
    t661["allen_v1_column_types_slanted_ref"] = _reference(
        rng, column, cells, np.where(inh, "aibs_coarse_inhibitory", "aibs_coarse_excitatory").astype(object),
        coarse, datetime(2023, 3, 18, 5, 0), 120)
    col_g = nearest(KIND[tc] == "G", 542)
    t661["aibs_column_nonneuronal_ref"] = _reference(
        rng, col_g, cells, "aibs_coarse_nonneuronal", names[tc[col_g]], datetime(2023, 3, 18, 6, 0), 60)
    groups = np.array([str(k) for k in range(1, 19)], dtype=object)
    t661["connectivity_groups_v507"] = _reference(
        rng, col_i, cells, "connectivity_group", rng.choice(groups, col_i.size),
        datetime(2023, 1, 20, 8, 0), 30)

    for name, k, base in (("apl_functional_coreg_forward_v5", 68_436, datetime(2023, 3, 1, 8, 0)),
                          ("coregistration_manual_v3", 11_412, datetime(2022, 12, 1, 8, 0))):
        r = _pick(rng, rows[KIND[tc] == "E"], k)
        ref = _reference(rng, r, cells, "x", np.full(r.size, "x", dtype=object), base, 600)
        m = r.size
        t661[name] = pa.table({
            "id": ref["id"], "created": ref["created"], "superceded_id": ref["superceded_id"],
            "valid": ref["valid"], "target_id": ref["target_id"],
            "session": pa.array(rng.integers(4, 10, m).astype(np.int32)),
            "scan_idx": pa.array(rng.integers(1, 10, m).astype(np.int32)),
            "unit_id": pa.array(rng.integers(1, 9_000, m).astype(np.int32)),
            "field": pa.array(rng.integers(1, 9, m).astype(np.int32)),
            "residual": pa.array(rng.uniform(0.2, 10, m).astype(np.float32)),
            "score": pa.array(rng.normal(2.0, 2.5, m).astype(np.float32)),
        })

    # nucleus_alternative_points: 8,388 nuclei, mostly those whose centroid missed the cell
    zero_rows = rows[~has_root]
    alt = np.sort(np.concatenate([
        rng.choice(zero_rows, min(zero_rows.size, 7_000), replace=False),
        rng.choice(rows[has_root], 8_388 - min(zero_rows.size, 7_000), replace=False)]))
    ref = _reference(rng, alt, cells, "x", np.full(alt.size, "x", dtype=object), datetime(2023, 2, 14, 8, 0), 60)
    target_pos = {t: i for i, t in enumerate(cells.nucleus_id[alt].tolist())}
    src = np.array([target_pos[t] for t in ref["target_id"].to_pylist()])
    apos = cells.pos[alt][src] + np.stack([rng.integers(-400, 400, alt.size) // 16 * 16,
                                           rng.integers(-400, 400, alt.size) // 16 * 16,
                                           rng.integers(-8, 8, alt.size)], axis=1)
    aroot = cells.root[661][alt][src].copy()
    missing = aroot == 0
    aroot[missing] = ROOT_BASE + unique_counters(rng, 8_000_000_000, 8_750_000_000, int(missing.sum()),
                                                 set((cells.root[661] - ROOT_BASE).tolist()))
    t661["nucleus_alternative_points"] = pa.table({
        "id": ref["id"], "created": ref["created"], "superceded_id": ref["superceded_id"],
        "valid": ref["valid"], "target_id": ref["target_id"],
        **position_columns("pt_position", apos),
        "pt_supervoxel_id": pa.array(supervoxels(rng, apos)), "pt_root_id": pa.array(aroot),
    })

    # proofreading_status_public_release: 1,272 column-ish neurons at 661, 601 of them at 343
    proof661 = nearest(is_neuron, 1_272, syn_row)
    proof343 = _pick(rng, proof661, 601, syn_row)
    pid = rng.permutation(np.arange(1, 1_273))
    dend = rng.choice(np.array(["extended", "clean"], dtype=object), 1_272, p=[0.75, 0.25])
    axon = rng.choice(np.array(["extended", "clean", "non"], dtype=object), 1_272, p=[0.15, 0.65, 0.2])
    axon[proof661 == cells.synapse_cell] = "extended"
    for v, subset in ((661, proof661), (343, proof343)):
        sel = np.isin(proof661, subset)
        prow = proof661[sel]
        order = np.argsort(pid[sel], kind="stable")
        prow = prow[order]
        root_v = cells.root[v][prow]
        # valid_id: the root when assessed (the 343 root: edited cells changed since)
        t = pa.table({
            "id": pa.array(pid[sel][order].astype(np.int64)),
            "created": pa.array(_ts(datetime(2021, 6, 8, 14, 0), pid[sel][order] * 2.0)),
            "superceded_id": pa.nulls(prow.size, pa.int64()),
            "valid": pa.array(np.ones(prow.size, dtype=bool)),
            **position_columns("pt_position", cells.pos[prow]),
            "valid_id": pa.array(cells.root[343][prow]),
            "status_dendrite": pa.array(dend[sel][order].tolist(), pa.string()),
            "status_axon": pa.array(axon[sel][order].tolist(), pa.string()),
            "pt_supervoxel_id": pa.array(cells.sv[prow]), "pt_root_id": pa.array(root_v),
        })
        out[v]["proofreading_status_public_release"] = t
    return out


def neuron_pool(cells: Cells) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(positions, 661 roots, output weights) of the neurons that make and receive synapses.

    The seed's synapse cell gets weight 0: its outputs are planted, never random.
    """
    tc = cells.type_code
    ok = NEURON[tc] & (cells.root[661] != 0)
    w = np.where(KIND[tc] == "I", 2.5, 1.0)
    w[cells.synapse_cell] = 0.0
    rows = np.flatnonzero(ok)
    return cells.pos[rows], cells.root[661][rows], w[rows]


def timestamps(base: datetime, seconds: np.ndarray) -> np.ndarray:
    """``base`` + seconds as datetime64[us] (helper shared with the synapse generator)."""
    return _ts(base, seconds)

