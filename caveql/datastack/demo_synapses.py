"""The demo's synapses: a distance-dependent model between cells, generated in chunks.

Model (microns-data.md §5, "ASSUMPTION"s there made concrete):

- a connection starts at a presynaptic soma neuron (60 %, interneurons 2.5× as prolific) or
  at a soma-less axon fragment (40 %); its site lies around the presynaptic soma (σ ≈ 60 µm);
- the postsynaptic partner is a neuron whose soma lies in the site's 50-µm bin (70 %) or a
  soma-less dendrite fragment of that bin (30 %), so connection probability falls with
  distance and ~30 % of a neuron's partners are fragments;
- a connection carries k synapses, P(1) = .72, P(2) = .17, P(3) = .06, then a power-law tail;
- sizes are lognormal multiples of 4 voxels (10^N(3.35, 0.55)); ~1.5 % of rows are
  degenerate autapses (pre = post root, supervoxel and position); ~1 % of post roots are 0;
- ids are x-major and not contiguous: ``(ctr_x − 49,770) · 2^16 + chunk · 2^10 + rank``.

The seed page's synapse cell (root 864691135808473885) gets exactly 1,498 planted outputs
onto 1,038 partners with the seed's top-five counts; random synapses never start at it.

>>> from caveql.datastack.demo_cells import make_cells
>>> gen = SynapseGenerator(make_cells(0), total=20_000, seed=0)
>>> gen.planted().num_rows, sum(t.num_rows for t in gen.chunks())
(1498, 18502)
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime

import numpy as np
import pyarrow as pa

from caveql.datastack.demo_cells import (
    ORIGIN,
    VOLUME_MAX,
    Cells,
    neuron_pool,
    position_columns,
    supervoxels,
    timestamps,
    uniq,
)
from caveql.datastack.demo_meta import (
    ROOT_BASE,
    SEED_SYNAPSES,
    SYNAPSE_CELL_OUTPUTS,
    SYNAPSE_CELL_PARTNERS,
    TAIL_PARTNERS,
    TOP_PARTNERS,
)

__all__ = ["SynapseGenerator"]

BIN = np.array([12_500, 12_500, 1_250])  # 50 µm
NBINS = np.ceil((VOLUME_MAX - ORIGIN) / BIN).astype(np.int64)
FRAG_LO = 3_900_000_000  # fragment root counters: disjoint from the cells' [4.9e9, 8.75e9)
FRAG_P = 999_999_937  # a prime: i -> (i * FRAG_A) mod FRAG_P is a permutation
FRAG_A = 2_654_435_761 % FRAG_P
ID_X0 = 49_770  # below the volume's x origin, so the seed's planted ids never clash
PLANTED_CHUNK = 63
MIN_CHUNK = 2_000_000
_K = np.arange(1, 21)
_K_P = np.concatenate([[0.72, 0.17, 0.06, 0.02, 0.015], 0.015 * (_K[5:] ** -2.0) / (_K[5:] ** -2.0).sum()])
_LO = ORIGIN + 1
_HI = VOLUME_MAX - 1


def _inside(pos: np.ndarray) -> np.ndarray:
    """Integer voxels mirrored back into the volume (clipping would pile points on a face)."""
    p = np.rint(pos).astype(np.int64)
    p = np.where(p < _LO, 2 * _LO - p, p)
    p = np.where(p > _HI, 2 * _HI - p, p)
    return np.clip(p, _LO, _HI)  # (a second reflection is never needed for σ ≪ the volume)


def _bin(pos: np.ndarray) -> np.ndarray:
    b = np.clip((pos - ORIGIN) // BIN, 0, NBINS - 1)
    return (b[:, 0] * NBINS[1] + b[:, 1]) * NBINS[2] + b[:, 2]


class SynapseGenerator:
    """Chunks of synapses_pni_2 rows (661 root ids) for ``total`` synapses in all."""

    def __init__(self, cells: Cells, total: int, seed: int) -> None:
        if total < SYNAPSE_CELL_OUTPUTS:
            raise ValueError(f"the demo needs at least {SYNAPSE_CELL_OUTPUTS} synapses")
        self.cells = cells
        self.seed = seed
        self.total = total
        self.random_total = total - SYNAPSE_CELL_OUTPUTS
        self.chunk_size = max(MIN_CHUNK, math.ceil(self.random_total / PLANTED_CHUNK))
        self.n_chunks = math.ceil(self.random_total / self.chunk_size)
        pos, roots, w = neuron_pool(cells)
        self.npos, self.nroot = pos, roots
        self.cum_w = np.cumsum(w) / w.sum()
        nb = int(np.prod(NBINS))
        bins = _bin(pos)
        self.order = np.argsort(bins, kind="stable")
        self.bin_start = np.searchsorted(bins[self.order], np.arange(nb))
        self.bin_count = np.bincount(bins, minlength=nb)
        self.frag_per_bin = max(8, math.ceil(0.12 * total / nb))

    def fragment(self, bins: np.ndarray, k: np.ndarray) -> np.ndarray:
        """Root id of fragment ``k`` of each bin (a fixed permutation of counters)."""
        i = bins.astype(np.int64) * self.frag_per_bin + k
        return ROOT_BASE + FRAG_LO + (i * FRAG_A) % FRAG_P

    def chunks(self) -> Iterator[pa.Table]:
        """The random synapses, chunk by chunk (each a pyarrow Table)."""
        for c in range(self.n_chunks):
            size = min(self.chunk_size, self.random_total - c * self.chunk_size)
            yield self._chunk(c, size)

    def _chunk(self, c: int, size: int) -> pa.Table:
        rng = np.random.default_rng([self.seed, 3, c])
        n_conn = int(size / 1.45) + 64
        k = rng.choice(_K, size=n_conn, p=_K_P)
        while k.sum() < size:
            k = np.concatenate([k, rng.choice(_K, size=n_conn // 4 + 64, p=_K_P)])
        # connections: presynaptic root and site
        soma = rng.random(k.size) < 0.6
        pre_idx = np.searchsorted(self.cum_w, rng.random(k.size), side="right")
        pre_idx = np.minimum(pre_idx, self.nroot.size - 1)
        site = np.where(soma[:, None], self.npos[pre_idx] + rng.normal(0, 1, (k.size, 3)) *
                        np.array([15_000, 15_000, 1_200]),
                        rng.uniform([56_000, 62_000, 15_000], [381_500, 279_300, 27_400], (k.size, 3)))
        site = _inside(site)
        sbin = _bin(site)
        pre = np.where(soma, self.nroot[pre_idx],
                       self.fragment(sbin, rng.integers(0, self.frag_per_bin, k.size)))
        # postsynaptic: a neuron of the site's bin, else a dendrite fragment there
        cnt = self.bin_count[sbin]
        to_cell = (rng.random(k.size) < 0.7) & (cnt > 0)
        pick = self.bin_start[sbin] + (rng.random(k.size) * np.maximum(cnt, 1)).astype(np.int64)
        post = self.nroot[self.order[np.minimum(pick, self.order.size - 1)]]
        to_cell &= post != pre  # autapses come only from the degenerate rows below
        fk = rng.integers(0, self.frag_per_bin, k.size)
        post = np.where(to_cell, post, self.fragment(sbin, fk))
        same = ~to_cell & (post == pre)  # the axon fragment itself: take its neighbour
        post[same] = self.fragment(sbin[same], (fk[same] + 1) % self.frag_per_bin)
        # synapses of each connection, spread along the dendrite
        rep = np.repeat(np.arange(k.size), k)[:size]
        pre, post = pre[rep], post[rep]
        ctr = _inside(site[rep] + rng.normal(0, 1, (size, 3)) * np.array([400, 400, 15]))
        jit = np.array([45, 45, 3])
        pre_pos = _inside(ctr + rng.normal(0, 1, (size, 3)) * jit)
        post_pos = _inside(ctr + rng.normal(0, 1, (size, 3)) * jit)
        pre_sv = supervoxels(rng, pre_pos)
        post_sv = supervoxels(rng, post_pos)
        # degenerate autapses: one point, one supervoxel, one root
        auto = rng.random(size) < 0.015
        post[auto] = pre[auto]
        pre_pos[auto] = ctr[auto]
        post_pos[auto] = ctr[auto]
        post_sv[auto] = pre_sv[auto]
        # points outside the segmentation
        zero_post = ~auto & (rng.random(size) < 0.01)
        zero_pre = ~auto & (rng.random(size) < 0.002)
        post[zero_post], post_sv[zero_post] = 0, 0
        pre[zero_pre], pre_sv[zero_pre] = 0, 0
        size_v = 4 * np.rint(10 ** rng.normal(3.35, 0.55, size) / 4)
        size_v = np.clip(size_v, 40, 60_000).astype(np.float32)
        created = timestamps(datetime(2020, 11, 4, 6, 45), rng.uniform(0, 4 * 3600, size))
        return _table(_ids(ctr, c), created, pre_pos, post_pos, ctr, size_v, pre_sv, pre, post_sv, post)

    def planted(self) -> pa.Table:
        """The seed cell's 1,498 output synapses (the seed's five example rows included)."""
        rng = np.random.default_rng([self.seed, 4])
        cells = self.cells
        me = cells.pos[cells.synapse_cell]
        named = {r for r, _ in TOP_PARTNERS} | {s[5] for s in SEED_SYNAPSES} | set(TAIL_PARTNERS)
        counts: dict[int, int] = dict(TOP_PARTNERS)
        for r in TAIL_PARTNERS:
            counts[r] = 1
        for s in SEED_SYNAPSES:
            counts.setdefault(s[5], int(rng.integers(1, 6)))
        n_rest = SYNAPSE_CELL_PARTNERS - len(counts)
        # ~70 % of the other partners are nearby neurons, ~30 % dendrite fragments
        n_cells = round(n_rest * 0.7)
        d = ((self.npos - me) * np.array([1, 1, 10])) ** 2
        near = np.argsort(d.sum(axis=1), kind="stable")[:6000]
        cand = uniq(self.nroot[near])
        cand = cand[~np.isin(cand, list(named | {int(cells.root[661][cells.synapse_cell])}))]
        cell_partners = rng.choice(cand, size=n_cells, replace=False)
        spots = _inside(me + rng.normal(0, 1, (n_rest - n_cells, 3)) * np.array([15_000, 15_000, 1_200]))
        frags = uniq(self.fragment(_bin(spots), rng.integers(0, self.frag_per_bin, spots.shape[0])))
        while frags.size < n_rest - n_cells:  # (collisions are rare; top up)
            more = self.fragment(rng.integers(0, int(np.prod(NBINS)), 64), rng.integers(0, self.frag_per_bin, 64))
            frags = uniq(np.concatenate([frags, more]))
        rest = np.concatenate([cell_partners, rng.permutation(frags)[: n_rest - n_cells]])
        rest_counts = np.ones(rest.size, dtype=np.int64)
        extra = SYNAPSE_CELL_OUTPUTS - sum(counts.values()) - rest.size
        weights = rng.pareto(1.5, rest.size) + 0.05
        while extra > 0:  # spread the remaining synapses, at most 10 per partner
            take = rng.choice(rest.size, size=extra, p=weights / weights.sum())
            for i in take.tolist():
                if extra and rest_counts[i] < 10:
                    rest_counts[i] += 1
                    extra -= 1
        for r, cnt in zip(rest.tolist(), rest_counts.tolist(), strict=True):
            counts[r] = cnt
        seed_rows = {s[5]: s for s in SEED_SYNAPSES}
        post = np.array([r for r, cnt in counts.items() for _ in range(cnt - (r in seed_rows))],
                        dtype=np.int64)
        n = post.size
        partner_site = {r: _inside(me + rng.normal(0, 1, (1, 3)) * np.array([15_000, 15_000, 1_200]))[0]
                        for r in counts}
        site = np.array([partner_site[r] for r in post.tolist()], dtype=np.int64).reshape(n, 3)
        ctr = _inside(site + rng.normal(0, 1, (n, 3)) * np.array([400, 400, 15]))
        jit = np.array([45, 45, 3])
        pre_pos = _inside(ctr + rng.normal(0, 1, (n, 3)) * jit)
        post_pos = _inside(ctr + rng.normal(0, 1, (n, 3)) * jit)
        size_v = np.clip(4 * np.rint(10 ** rng.normal(3.35, 0.55, n) / 4), 40, 60_000)
        created = timestamps(datetime(2020, 11, 4, 6, 45), rng.uniform(0, 4 * 3600, n))
        ids = _ids(ctr, PLANTED_CHUNK)
        pre_sv, post_sv = supervoxels(rng, pre_pos), supervoxels(rng, post_pos)
        # the seed's five rows, exactly
        s_ids = np.array([s[0] for s in SEED_SYNAPSES], dtype=np.int64)
        s_created = np.array([np.datetime64(s[1], "us") for s in SEED_SYNAPSES])
        s_pre = np.array([s[6] for s in SEED_SYNAPSES], dtype=np.int64)
        s_post = np.array([s[7] for s in SEED_SYNAPSES], dtype=np.int64)
        s_ctr = np.array([s[8] for s in SEED_SYNAPSES], dtype=np.int64)
        me_root = np.full(n + 5, cells.root[661][cells.synapse_cell], dtype=np.int64)
        return _table(
            np.concatenate([ids, s_ids]), np.concatenate([created, s_created]),
            np.concatenate([pre_pos, s_pre]), np.concatenate([post_pos, s_post]),
            np.concatenate([ctr, s_ctr]),
            np.concatenate([size_v, [s[2] for s in SEED_SYNAPSES]]).astype(np.float32),
            np.concatenate([pre_sv, [s[3] for s in SEED_SYNAPSES]]).astype(np.int64), me_root,
            np.concatenate([post_sv, [s[4] for s in SEED_SYNAPSES]]).astype(np.int64),
            np.concatenate([post, [s[5] for s in SEED_SYNAPSES]]).astype(np.int64))


def _ids(ctr: np.ndarray, chunk: int) -> np.ndarray:
    """x-major ids, unique across chunks: (x − 49,770)·2^16 + chunk·2^10 + rank among equal x."""
    x = ctr[:, 0]
    order = np.argsort(x, kind="stable")
    xs = x[order]
    first = np.searchsorted(xs, xs, side="left")
    rank = np.arange(xs.size) - first
    if rank.size and rank.max() >= 1024:
        raise RuntimeError("too many synapses share one x coordinate in a chunk")
    ids = np.empty(x.size, dtype=np.int64)
    ids[order] = (xs - ID_X0) * 65_536 + chunk * 1_024 + rank
    return ids


def _table(ids: np.ndarray, created: np.ndarray, pre_pos: np.ndarray, post_pos: np.ndarray,
           ctr: np.ndarray, size: np.ndarray, pre_sv: np.ndarray, pre: np.ndarray,
           post_sv: np.ndarray, post: np.ndarray) -> pa.Table:
    n = ids.size
    return pa.table({
        "id": pa.array(ids), "created": pa.array(created),
        "superceded_id": pa.nulls(n, pa.int64()), "valid": pa.array(np.ones(n, dtype=bool)),
        **position_columns("pre_pt_position", pre_pos),
        **position_columns("post_pt_position", post_pos),
        **position_columns("ctr_pt_position", ctr),
        "size": pa.array(size.astype(np.float32)),
        "pre_pt_supervoxel_id": pa.array(pre_sv), "pre_pt_root_id": pa.array(pre),
        "post_pt_supervoxel_id": pa.array(post_sv), "post_pt_root_id": pa.array(post),
    })
