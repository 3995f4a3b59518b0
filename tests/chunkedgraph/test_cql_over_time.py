"""CQL over time, three ways, against a plain reading of the demo's history (issue #13).

At random instants (between versions 343 and 661, after 661, exactly at an edit, a microsecond
before one, now) and for random cells (the nuclei whose roots an edit made or replaced: merges,
splits, cells merged then split), the same ``AT TIMESTAMP`` / ``AT LIVE`` statements — nucleus
rows by nucleus id, a cell's synapses by its root id at that instant, counts, a nucleus →
synapses join — run through the engine over the local backend, through the engine over the HTTP
backend against ``caveql serve`` of the same demo, and as caveclient 8.2.1's
``query_table(timestamp=)`` / ``live_query`` against that server. All three must equal the
expected rows computed here from the Parquet files and ``History`` alone: the rows of the version
in force at the instant, every root id the root its supervoxel has then (``roots_at``).

A root id that is not current at the instant (superseded, made later, never a root) is refused by
both engines with InvalidRootIdError (CQL017) saying what the history says of it; the identity
functions (NUCLEUS_ROOT, ROOT_AT, IS_LATEST, LATEST_ROOTS) agree with the history at the instant.

The demo is the small one (20,000 synapses; the same cells and edits as the default one), so
that the file runs in about a minute.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

from caveql.backends.local import LocalBackend
from caveql.datastack.history import Edit, History
from caveql.datastack.layout import read_versions
from caveql.engine import Engine
from caveql.errors import InvalidRootIdError

pytestmark = pytest.mark.timeout(300)

SYN = "synapses_pni_2"
NUC = "nucleus_detection_v0"
SIDES = {SYN: ("pre_pt", "post_pt"), NUC: ("pt",)}
NOW = None  # an instant of None is AT LIVE (the latest state: the demo has no edit after 2024-09-30)


@dataclass(frozen=True)
class Truth:
    """The demo read by hand: its history, its versions' timestamps and each version's rows
    (ids and supervoxels only; roots are recomputed for every instant)."""

    history: History
    stamps: dict[int, datetime]
    rows: dict[tuple[int, str], pd.DataFrame]
    cell_edits: tuple[Edit, ...]  # edits whose roots are (at some instant) a nucleus's
    synapse_edits: tuple[Edit, ...]  # of those, edits of roots with synapses too
    undone: tuple[Edit, ...]  # of those, merges split again later (merged-then-split cells)
    _memo: dict = field(default_factory=dict, compare=False, repr=False)  # (hypothesis re-asks)

    def version_at(self, ts: datetime | None) -> int:
        """The version a live query reads: the newest at or before ``ts``, else the oldest."""
        if ts is None:
            return max(self.stamps, key=self.stamps.__getitem__)
        before = [v for v, t in self.stamps.items() if t <= ts]
        pick = before or list(self.stamps)
        return (max if before else min)(pick, key=self.stamps.__getitem__)

    def table(self, name: str, ts: datetime | None) -> pd.DataFrame:
        """The version's rows, each ``X_root_id`` the root of ``X_supervoxel_id`` at ``ts``
        (read-only: the frame is kept for the next question about the same instant)."""
        key = (name, ts)
        if key not in self._memo:
            out = self.rows[(self.version_at(ts), name)].copy()
            for side in SIDES[name]:
                svs = out[f"{side}_supervoxel_id"].to_numpy()
                out[f"{side}_root_id"] = self.history.roots_at(svs, ts).astype(np.int64)
            if len(self._memo) >= 12:  # the last few instants only (a nucleus frame is ~5 MB)
                self._memo.pop(next(iter(self._memo)))
            self._memo[key] = out
        return self._memo[key]


def _read_truth(folder: Path) -> Truth:
    """The demo's history, version stamps and rows, straight from its files (not the engine)."""
    folder = Path(folder)
    history = History.load(folder)
    assert history is not None and len(history.edits) > 1000
    stamps, rows = {}, {}
    for v, entry in read_versions(folder).items():
        meta = json.loads((folder / "versions" / str(v) / "version.json").read_text())
        stamps[v] = datetime.fromisoformat(meta["time_stamp"]).replace(tzinfo=UTC)
        for name, sides in SIDES.items():
            cols = ["id"] + [f"{s}_supervoxel_id" for s in sides]
            rows[(v, name)] = pq.read_table(entry.tables[name].files[0].path, columns=cols).to_pandas()
    assert set(stamps) == {343, 661}
    # the cells: every root a nucleus has at 343, at 661 or now; an edit naming one of them (the
    # in-between roots of a merge undone by a split are named by the merge's old roots)
    nuc = rows[(661, NUC)].pt_supervoxel_id.to_numpy()
    syn = rows[(661, SYN)]
    roots: set[int] = set()
    with_synapses: set[int] = set()
    for ts in (stamps[343], stamps[661], None):
        roots |= set(history.roots_at(nuc, ts).tolist())
        for side in SIDES[SYN]:
            with_synapses |= set(history.roots_at(syn[f"{side}_supervoxel_id"].to_numpy(), ts).tolist())
    roots.discard(0)
    edits = tuple(e for e in history.edits if roots & set(e.old_roots + e.new_roots))
    both = roots & with_synapses
    synapse_edits = tuple(e for e in edits if both.intersection(e.old_roots + e.new_roots))
    split_later = {e.old_roots[0] for e in history.edits if e.kind == "split"}
    undone = tuple(e for e in synapse_edits if e.kind == "merge" and e.new_roots[0] in split_later)
    for group in (edits, synapse_edits):
        assert {e.kind for e in group} == {"merge", "split"}
    assert len(undone) > 10
    return Truth(history, stamps, rows, edits, synapse_edits, undone)


@pytest.fixture(scope="module")
def truth(small_demo) -> Truth:
    return _read_truth(small_demo)


@pytest.fixture(scope="module")
def engines(small_demo, demo_served):
    """The engine over the local backend and over the HTTP backend against ``caveql serve``."""
    local = LocalBackend(small_demo)
    remote = demo_served.http()
    yield Engine(local), Engine(remote)
    local.close()
    remote.close()


@pytest.fixture(scope="module")
def client(demo_served):
    logging.getLogger("caveclient").setLevel(logging.ERROR)
    return demo_served.caveclient()


@dataclass(frozen=True)
class Case:
    """An instant (None: AT LIVE), the edit it was drawn around, the nuclei of that edit's
    cells and their roots at the instant (valid then by construction)."""

    ts: datetime | None
    edit: Edit
    nuclei: tuple[int, ...]
    roots: tuple[int, ...]

    @property
    def at(self) -> str:
        return "AT LIVE" if self.ts is None else f"AT TIMESTAMP '{self.ts.isoformat()}'"

    def cc_ts(self) -> datetime:
        return datetime.now(UTC) if self.ts is None else self.ts


def _nuclei_of(truth: Truth, edit: Edit) -> np.ndarray:
    """The nucleus ids whose root an edit replaced (just before it) or made (at it)."""
    before = truth.table(NUC, edit.timestamp - timedelta(microseconds=1))
    after = truth.table(NUC, edit.timestamp)
    hit = set(before.id[before.pt_root_id.isin(edit.old_roots)])
    hit |= set(after.id[after.pt_root_id.isin(edit.new_roots)])
    return np.array(sorted(hit), dtype=np.int64)


@st.composite
def cases(draw: st.DrawFn, truth: Truth) -> Case:
    """An edit of a cell, an instant around it or anywhere from 343 to after the last edit, and
    up to three of the edit's nuclei."""
    k = draw(st.integers(0, 9))  # mostly edits of cells with synapses; some merged-then-split; any
    pool = truth.cell_edits if k == 9 else truth.undone if k >= 6 else truth.synapse_edits
    edit = draw(st.sampled_from(pool))
    first = truth.stamps[343]
    last = truth.history.edits[-1].timestamp + timedelta(days=1)
    span = int((last - first).total_seconds())
    made, gone = truth.history.valid_range(edit.new_roots[0])
    ts = draw(st.one_of(
        st.sampled_from([edit.timestamp, edit.timestamp - timedelta(microseconds=1)]),  # at / just before
        st.integers(-30 * 86_400, 30 * 86_400).map(lambda s: edit.timestamp + timedelta(seconds=s)),
        st.just(made + ((gone or last) - made) / 2),  # while the edit's new root is current
        st.integers(0, span).map(lambda s: first + timedelta(seconds=s, microseconds=s % 1_000_000)),
        st.sampled_from([*truth.stamps.values(), NOW]),
    ))
    ids = _nuclei_of(truth, edit)
    if ids.size == 0:  # an edit of a fragment a nucleus's root absorbed later: any nucleus then
        ids = truth.rows[(661, NUC)].id.to_numpy()[:1]
    nuc = truth.table(NUC, ts)
    syn = truth.table(SYN, ts)
    # mostly cells with synapses at the instant (the small demo's synapses touch few cells)
    partners = np.r_[syn.pre_pt_root_id, syn.post_pt_root_id]
    wired = nuc[nuc.id.isin(ids) & nuc.pt_root_id.isin(partners)].id
    if len(wired) and draw(st.integers(0, 3)) < 3:  # (hypothesis favours 0: the wired cells)
        ids = wired.to_numpy()
    picked = sorted(set(draw(st.lists(st.sampled_from(ids.tolist()), min_size=1, max_size=3))))
    roots = sorted({int(r) for r in nuc[nuc.id.isin(picked)].pt_root_id} - {0})
    return Case(ts, edit, tuple(picked), tuple(roots))


def _ids(values) -> str:
    return ", ".join(str(int(v)) for v in values)


def rows(frame: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    """The columns as int64, rows sorted (what must agree, whatever a client's dtypes and order)."""
    return frame[cols].astype("int64").sort_values(cols).reset_index(drop=True)


def agree(engines, cql: str, want: pd.DataFrame, cols: list[str]) -> None:
    for engine in engines:
        got = engine.execute(cql).frame
        pd.testing.assert_frame_equal(rows(got, cols), rows(want, cols), obj=cql)


NUC_COLS = ["id", "pt_supervoxel_id", "pt_root_id"]
SYN_COLS = ["id", "pre_pt_supervoxel_id", "pre_pt_root_id", "post_pt_supervoxel_id", "post_pt_root_id"]


@settings(max_examples=8, deadline=None)
@given(data=st.data())
def test_nucleus_rows_at_any_instant(truth, engines, client, data):
    """A cell's nucleus row by nucleus id: its root at the instant, three ways."""
    case = data.draw(cases(truth))
    nuc = truth.table(NUC, case.ts)
    want = nuc[nuc.id.isin(case.nuclei)]
    assert len(want) == len(case.nuclei)
    agree(engines, f"SELECT {', '.join(NUC_COLS)} FROM {NUC} WHERE id IN ({_ids(case.nuclei)}) {case.at}",
          want, NUC_COLS)
    got = client.materialize.query_table(NUC, filter_in_dict={"id": list(case.nuclei)},
                                         timestamp=case.cc_ts(), split_positions=True)
    pd.testing.assert_frame_equal(rows(got, NUC_COLS), rows(want, NUC_COLS))


@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_synapses_and_counts_of_cells_by_root_at_the_instant(truth, engines, client, data):
    """A cell's synapses by its root id at the instant (inputs and outputs), their counts per
    root, three ways; caveclient wants a root made strictly before the instant."""
    case = data.draw(cases(truth))
    assume(case.roots)  # (nuclei whose root is 0 then name no cell)
    syn = truth.table(SYN, case.ts)
    inputs = syn[syn.post_pt_root_id.isin(case.roots)]
    agree(engines, f"SELECT {', '.join(SYN_COLS)} FROM {SYN} WHERE post_pt_root_id IN ({_ids(case.roots)}) "
          f"{case.at}", inputs, SYN_COLS)
    one = case.roots[0]
    outputs = syn[syn.pre_pt_root_id == one]
    event(f"{case.edit.kind}; at version {truth.version_at(case.ts)}; "
          f"synapses: {'some' if len(inputs) + len(outputs) else 'none'}")
    agree(engines, f"SELECT {', '.join(SYN_COLS)} FROM {SYN} WHERE pre_pt_root_id = {one} {case.at}",
          outputs, SYN_COLS)
    counts = inputs.groupby("post_pt_root_id").size().rename("n").reset_index()
    agree(engines, f"SELECT post_pt_root_id, COUNT(*) AS n FROM {SYN} WHERE post_pt_root_id IN "
          f"({_ids(case.roots)}) GROUP BY post_pt_root_id {case.at}", counts, ["post_pt_root_id", "n"])
    total = pd.DataFrame({"n": [len(outputs)]})
    agree(engines, f"SELECT COUNT(*) AS n FROM {SYN} WHERE pre_pt_root_id = {one} {case.at}", total, ["n"])
    ts = case.cc_ts()
    made = [r for r in case.roots if truth.history.valid_range(r)[0] < ts]
    if made:
        got = client.materialize.live_query(SYN, ts, filter_in_dict={"post_pt_root_id": made},
                                            split_positions=True)
        want = syn[syn.post_pt_root_id.isin(made)]
        pd.testing.assert_frame_equal(rows(got, SYN_COLS), rows(want, SYN_COLS))
    if len(made) < len(case.roots):  # made at the very instant: current, yet "too recent" for caveclient
        with pytest.raises(ValueError, match="too recent"):
            client.materialize.live_query(SYN, ts, filter_in_dict={"post_pt_root_id": list(case.roots)})


@settings(max_examples=8, deadline=None)
@given(data=st.data())
def test_nucleus_to_synapses_join_at_the_instant(truth, engines, client, data):
    """Nucleus ids → their cells' input synapses in one statement (both sides at the instant);
    caveclient: the nucleus rows at the instant, then the synapses of their roots."""
    case = data.draw(cases(truth))
    nuc = truth.table(NUC, case.ts)
    nuc = nuc[nuc.id.isin(case.nuclei) & (nuc.pt_root_id != 0)]
    syn = truth.table(SYN, case.ts)
    want = nuc.merge(syn, left_on="pt_root_id", right_on="post_pt_root_id", suffixes=("_n", "_s"))
    want = want.rename(columns={"id_n": "nucleus_id", "id_s": "synapse_id"})
    cols = ["nucleus_id", "synapse_id", "post_pt_root_id"]
    agree(engines, f"SELECT n.id AS nucleus_id, s.id AS synapse_id, s.post_pt_root_id FROM {NUC} n "
          f"JOIN {SYN} s ON s.post_pt_root_id = n.pt_root_id "
          f"WHERE n.id IN ({_ids(case.nuclei)}) AND n.pt_root_id != 0 {case.at}", want, cols)
    ts = case.cc_ts()
    cells = client.materialize.query_table(NUC, filter_in_dict={"id": list(case.nuclei)}, timestamp=ts,
                                           split_positions=True)
    cells = cells[cells.pt_root_id != 0]
    made = [int(r) for r in set(cells.pt_root_id) if truth.history.valid_range(int(r))[0] < ts]
    if not made:
        return
    inputs = client.materialize.live_query(SYN, ts, filter_in_dict={"post_pt_root_id": made},
                                           split_positions=True)
    got = cells.merge(inputs, left_on="pt_root_id", right_on="post_pt_root_id", suffixes=("_n", "_s"))
    got = got.rename(columns={"id_n": "nucleus_id", "id_s": "synapse_id"})
    pd.testing.assert_frame_equal(rows(got, cols), rows(want[want.post_pt_root_id.isin(made)], cols))


@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_any_root_of_an_edit_is_answered_or_refused_as_the_history_says(truth, engines, data):
    """A root id an edit made or replaced, named at an instant: current then (``is_latest``,
    born ≤ t < superseded) → the rows of the plain reading; else, both engines refuse the
    statement with InvalidRootIdError naming the id and what the history says of it — when it
    stopped being current and its latest roots then, or that it was made later — and with
    ``allow_invalid_root_ids`` run it, with that sentence as a notice, to the reading's (empty) rows."""
    case = data.draw(cases(truth))
    root = data.draw(st.sampled_from(case.edit.old_roots + case.edit.new_roots))
    h = truth.history
    syn = truth.table(SYN, case.ts)
    want = syn[syn.post_pt_root_id == root]
    cql = f"SELECT {', '.join(SYN_COLS)} FROM {SYN} WHERE post_pt_root_id = {root} {case.at}"
    if h.is_latest([root], case.ts)[0]:
        event("current at the instant")
        agree(engines, cql, want, SYN_COLS)
        return
    assert want.empty  # a root that is not current holds no supervoxel then
    made, gone = h.valid_range(root)
    later = case.ts is not None and case.ts < made
    event("made later" if later else "superseded")
    for engine in engines:
        with pytest.raises(InvalidRootIdError) as err:
            engine.execute(cql)
        assert err.value.code == "CQL017" and err.value.root_ids == (root,)
        text = str(err.value)
        assert f"root id {root} is not current" in text
        if later:  # (when it was made)
            assert "made" in text and str(made) in text
        else:  # when it stopped being current, and every root it became by then
            latest = h.latest_roots(root, case.ts).tolist()
            assert "stopped being current" in text and str(gone) in text
            assert latest and _ids(latest) in text
    for engine in engines:  # (over HTTP a live call then asks with allow_invalid_root_ids=True)
        engine.execute("SET allow_invalid_root_ids = true")
        try:
            res = engine.execute(cql)
        finally:
            engine.execute("SET allow_invalid_root_ids = false")
        assert res.frame.empty and any(f"root id {root} is not current" in n for n in res.notices)


@pytest.mark.parametrize("at", ["AT VERSION 343", "AT VERSION 661", "AT TIMESTAMP '2023-01-01T00:00:00Z'",
                                "AT LIVE"])
def test_an_id_that_was_never_a_root_is_refused(engines, at):
    never = 864691100000000001  # root-id shaped, but no edit and no table names it
    for engine in engines:
        with pytest.raises(InvalidRootIdError, match=f"root id {never} is not a root id of this datastack"):
            engine.execute(f"SELECT COUNT(*) AS n FROM {SYN} WHERE pre_pt_root_id = {never} {at}")


def test_a_cell_merged_then_split_at_the_edges(truth, engines, client):
    """A merge later undone by a split, at the edits' very instants: 1 µs before the merge its
    old roots hold the synapses; at the merge the new root holds them all (current at once, yet
    too recent for caveclient, which wants a root made strictly before) and the old ones are
    refused; at the split the merged root is refused and its pieces hold them again."""
    h = truth.history
    syn = truth.table(SYN, None)
    wired = set(syn.post_pt_root_id)
    edit = next(e for e in truth.undone if wired & set(h.latest_roots(e.new_roots[0]).tolist()))
    merged = edit.new_roots[0]
    made, gone = h.valid_range(merged)
    assert made == edit.timestamp and gone is not None
    before, us = made - timedelta(microseconds=1), timedelta(microseconds=1)

    def ids_at(roots, ts) -> set[int]:
        frame = truth.table(SYN, ts)
        return set(frame[frame.post_pt_root_id.isin(roots)].id)

    def at(ts) -> str:
        return f"AT TIMESTAMP '{ts.isoformat()}'"

    parts = h.latest_roots(merged, gone).tolist()
    inputs = ids_at(edit.old_roots, before)
    assert inputs == ids_at([merged], made) == ids_at(parts, gone) != set()  # nothing is lost or gained
    for engine in engines:
        def got(roots, ts):
            return set(engine.execute(f"SELECT id FROM {SYN} WHERE post_pt_root_id IN ({_ids(roots)}) "
                                      f"{at(ts)}").frame.id)
        assert got(edit.old_roots, before) == inputs
        assert got([merged], made) == inputs
        assert got(parts, gone) == inputs
        with pytest.raises(InvalidRootIdError, match=f"root id {edit.old_roots[0]} is not current"):
            got(edit.old_roots, made)
        with pytest.raises(InvalidRootIdError, match=f"root id {merged} is not current at .*made.*"
                                                      f"{re.escape(str(made))}"):
            got([merged], before)
        with pytest.raises(InvalidRootIdError, match=f"stopped being current at {re.escape(str(gone))}.*"
                                                      f"{_ids(parts)}"):
            got([merged], gone)
    with pytest.raises(ValueError, match="too recent"):
        client.materialize.live_query(SYN, made, filter_in_dict={"post_pt_root_id": [merged]})
    got = client.materialize.live_query(SYN, made + us, filter_in_dict={"post_pt_root_id": [merged]})
    assert set(got.id) == inputs


@settings(max_examples=6, deadline=None)
@given(data=st.data())
def test_identity_functions_at_the_instant(truth, engines, data):
    """NUCLEUS_ROOT, ROOT_AT, IS_LATEST and LATEST_ROOTS at the instant (none: now), through
    both engines, equal the plain reading: the nucleus's root then, its supervoxel's root then,
    and the edit's roots' state then."""
    case = data.draw(cases(truth))
    h = truth.history
    at = "" if case.ts is None else f", '{case.ts.isoformat()}'"
    nuc = truth.table(NUC, case.ts).set_index("id")
    roots = case.edit.old_roots + case.edit.new_roots
    for engine in engines:
        got = engine.execute(f"SELECT id, NUCLEUS_ROOT(id{at}) AS nucleus_root, "
                             f"ROOT_AT(pt_supervoxel_id{at}) AS root_at "
                             f"FROM {NUC} WHERE id IN ({_ids(case.nuclei)})").frame
        for row in got.itertuples():
            assert row.nucleus_root == row.root_at == nuc.pt_root_id[row.id]
        asks = [f"IS_LATEST({r}{at}) AS l{i}, LATEST_ROOTS({r}{at}) AS r{i}" for i, r in enumerate(roots)]
        got = engine.execute("SELECT " + ", ".join(asks)).frame
        for i, r in enumerate(roots):
            assert bool(got[f"l{i}"][0]) == bool(h.is_latest([r], case.ts)[0])
            assert sorted(int(x) for x in got[f"r{i}"][0]) == h.latest_roots(r, case.ts).tolist()
