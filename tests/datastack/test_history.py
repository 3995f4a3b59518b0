"""The proofreading-history model (caveql.datastack.history): the tiny datastack's history read by
hand, and random histories checked against a simulation that keeps every supervoxel's root."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caveql.datastack.history import Edit, History, write_history
from caveql.errors import DatastackError


def at(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)


V1, V2 = at(2022, 2, 24, 8, 10, 0, 184668), at(2023, 4, 6, 20, 17, 9, 199182)
US = timedelta(microseconds=1)


@pytest.fixture(scope="module")
def tiny_history(tiny_datastack: Path) -> History:
    h = History.load(tiny_datastack)
    assert h is not None
    return h


def test_a_folder_without_history_has_none(tmp_path):
    assert History.load(tmp_path) is None


def test_roots_of_supervoxels_through_time(tiny_history):
    h = tiny_history
    svs = [11, 12, 13, 15, 16, 71003, 99001, 99002, 0, 4242]
    assert h.roots_at(svs, V1).tolist() == [1001, 1002, 1003, 905, 1006, 1003, 905, 2005, 0, 0]
    assert h.roots_at(svs, V2).tolist() == [1001, 1002, 1003, 1005, 1006, 1003, 2001, 2005, 0, 0]
    assert h.roots_at(svs, at(2023, 6, 15)).tolist() == [1001, 1002, 2002, 1005, 2002, 2002, 2001, 2005, 0, 0]
    assert h.roots_at(svs, at(2023, 8, 1)).tolist() == [1001, 1002, 2006, 1005, 2006, 2006, 2001, 2006, 0, 0]
    assert h.roots_at(svs, None).tolist() == [1001, 1002, 2003, 1005, 2004, 2003, 2001, 2004, 0, 0]
    assert h.roots_at(np.array(svs, dtype=np.uint64), None).dtype == np.uint64


def test_an_edit_is_visible_at_its_timestamp(tiny_history):
    h = tiny_history
    split = at(2022, 8, 1)
    assert h.roots_at([15], split - US).tolist() == [905]
    assert h.roots_at([15], split).tolist() == [1005]
    assert h.is_latest([905, 1005], split).tolist() == [False, True]
    assert h.is_latest([905, 1005], split - US).tolist() == [True, False]
    assert h.valid_range(1005) == (split, None)
    assert h.valid_range(905) == (at(2020, 1, 1), split)
    assert h.epoch(split - US) + 1 == h.epoch(split)


def test_latest_past_and_future_ids(tiny_history):
    h = tiny_history
    assert h.latest_roots(1003).tolist() == [2003, 2004]
    assert h.latest_roots(1003, at(2023, 8, 1)).tolist() == [2006]
    assert h.latest_roots(2003, at(2023, 8, 1)).tolist() == []  # not made yet
    assert h.latest_roots(77).tolist() == []  # never a root
    assert h.past_ids([2003, 2004, 1005], V2) == {2003: [1003, 1006, 2005], 2004: [1003, 1006, 2005],
                                                  1005: [1005]}
    assert h.future_ids([1003, 905], V2) == {1003: [1003], 905: [1005, 2001]}
    assert h.future_ids([1003], None) == {1003: [2003, 2004]}
    assert h.is_latest([1001, 2006, 2004, 1006, 0, 77]).tolist() == [True, False, True, False, False, False]


def test_lineage_graph(tiny_history):
    nodes, edges = tiny_history.lineage([2002])
    assert edges == [(1003, 2002), (1006, 2002), (2002, 2006), (2006, 2003), (2006, 2004)]
    by_id = {n["id"]: n for n in nodes}
    assert by_id[2002] == {"id": 2002, "timestamp": at(2023, 6, 1), "operation_id": 102}
    assert by_id[1003]["operation_id"] is None and by_id[2004]["operation_id"] == 104
    # bounded in time: nothing before the past bound's edit, nothing after the future bound
    _nodes, edges = tiny_history.lineage([2002], timestamp_past=at(2023, 6, 2), timestamp_future=at(2023, 8, 1))
    assert edges == [(2002, 2006)]


def test_timestamps_delta_and_details(tiny_history):
    h = tiny_history
    assert h.root_timestamps([1005, 905]) == [at(2022, 8, 1), at(2020, 1, 1)]
    latest = h.root_timestamps([905, 1005], latest=True)
    assert latest[0] == at(2022, 8, 1) and latest[1] > at(2025, 1, 1)
    with pytest.raises(KeyError):
        h.root_timestamps([31337])
    old, new = h.delta_roots(V2, at(2023, 8, 1))
    assert old.tolist() == [1003, 1006, 2005] and new.tolist() == [2006]
    details = h.operation_details([104, 999])
    assert list(details) == [104]
    assert details[104]["removed_edges"] == [[13, 16]] and details[104]["new_roots"] == [2003, 2004]
    assert h.operation_details([102])[102]["added_edges"] == [[13, 16]]


def test_the_frozen_tables_follow_the_history(tiny, tiny_history):
    from caveql.backends.base import QueryRequest

    for v, stamp in ((1, V1), (2, V2)):
        for table, pairs in (("cells", [("pt_supervoxel_id", "pt_root_id")]),
                             ("nuclei", [("pt_supervoxel_id", "pt_root_id")]),
                             ("synapses", [("pre_pt_supervoxel_id", "pre_pt_root_id"),
                                           ("post_pt_supervoxel_id", "post_pt_root_id")])):
            t = tiny.query(QueryRequest(kind="table", table=table, version=v)).table
            for sv, root in pairs:
                assert tiny_history.roots_at(t[sv].to_numpy(), stamp).tolist() == t[root].to_pylist()


@pytest.mark.parametrize("edits, message", [
    ([Edit(1, at(2023, 1, 1), "split", (1,), (2, 3)), Edit(1, at(2023, 1, 2), "split", (2,), (4, 5))],
     "operation ids repeat"),
    ([Edit(1, at(2023, 1, 1), "split", (1,), (2, 3)), Edit(2, at(2023, 1, 2), "split", (1,), (4, 5))],
     "replaced twice"),
    ([Edit(1, at(2023, 1, 2), "split", (1,), (2, 3)), Edit(2, at(2023, 1, 1), "merge", (2, 9), (4,))],
     "exists already"),  # (replaced before the edit that makes it)
    ([Edit(1, at(2023, 1, 1), "split", (1,), (2, 3)), Edit(2, at(2023, 1, 2), "merge", (4, 9), (2,))],
     "exists already"),
])
def test_inconsistent_histories_are_refused(edits, message, tmp_path):
    with pytest.raises(DatastackError, match=message):
        write_history(tmp_path, edits, anchor_version=1, anchor_timestamp=at(2023, 1, 1),
                      base_timestamp=at(2020, 1, 1))


def test_edit_shapes_are_checked():
    with pytest.raises(DatastackError, match="2 old and 1 new"):
        Edit(1, at(2023, 1, 1), "merge", (1,), (2,))
    with pytest.raises(DatastackError, match="'merge' or 'split'"):
        Edit(1, at(2023, 1, 1), "undo", (1,), (2,))


# -- random histories against a simulation ----------------------------------------------------

@st.composite
def histories(draw):
    """A random segmentation of supervoxels 1..n and random merges/splits; returns (edits,
    snapshots [(time, {sv: root})] after each edit, the initial state)."""
    n = draw(st.integers(2, 12))
    labels = draw(st.lists(st.integers(0, 4), min_size=n, max_size=n))
    state = {sv: 100 + labels[sv - 1] for sv in range(1, n + 1)}
    start = dict(state)
    next_root, t = 1000, at(2021, 1, 1)
    edits, snaps = [], []
    for op in range(draw(st.integers(0, 12))):
        roots = sorted(set(state.values()))
        t = t + timedelta(seconds=draw(st.integers(1, 3)))
        splittable = [r for r in roots if list(state.values()).count(r) >= 2]
        if len(roots) >= 2 and (not splittable or draw(st.booleans())):
            a, b = draw(st.lists(st.sampled_from(roots), min_size=2, max_size=2, unique=True))
            moved = tuple(sv for sv, r in state.items() if r == b)
            edits.append(Edit(op + 1, t, "merge", (a, b), (next_root,), moved_supervoxels=moved))
            for sv in state:
                if state[sv] in (a, b):
                    state[sv] = next_root
            next_root += 1
        elif splittable:  # both sides keep a supervoxel, as a real split's do
            m = draw(st.sampled_from(splittable))
            members = [sv for sv, r in state.items() if r == m]
            moved = tuple(draw(st.lists(st.sampled_from(members), min_size=1, max_size=len(members) - 1,
                                        unique=True)))
            edits.append(Edit(op + 1, t, "split", (m,), (next_root, next_root + 1), moved_supervoxels=moved))
            for sv in members:
                state[sv] = next_root + 1 if sv in moved else next_root
            next_root += 2
        else:
            continue
        snaps.append((t, dict(state)))
    return edits, snaps, start


def _state_at(snaps, start, t):
    """The simulation's supervoxel → root at ``t`` (an edit at t is visible at t)."""
    state = start
    for ts, s in snaps:
        if ts <= t:
            state = s
    return state


@settings(max_examples=150)
@given(histories(), st.data())
def test_random_histories_agree_with_the_simulation(h_data, data):
    edits, snaps, start = h_data
    times = [at(2020, 12, 31)] + [ts for ts, _ in snaps] + [ts + US for ts, _ in snaps] + [ts - US for ts, _ in snaps]
    anchor = data.draw(st.sampled_from(times))
    anchor_state = _state_at(snaps, start, anchor)
    h = History(edits, anchor_version=1, anchor_timestamp=anchor, base_timestamp=at(2020, 1, 1),
                anchor_index=(list(anchor_state), list(anchor_state.values())))
    svs = sorted(start)
    for t in [data.draw(st.sampled_from(times)) for _ in range(3)] + [None]:
        want = _state_at(snaps, start, t or at(2100, 1, 1))
        assert h.roots_at(svs + [0, 999], t).tolist() == [want[sv] for sv in svs] + [0, 0]
        current = set(want.values())
        everything = sorted(set(start.values()) | {r for e in edits for r in e.old_roots + e.new_roots})
        got = h.is_latest(everything, t).tolist()
        assert got == [r in current and (t is None or h.valid_range(r)[0] <= t) for r in everything]
    # remap: rows read at one instant, rewritten to another, give the roots then
    t_from, t_to = data.draw(st.sampled_from(times)), data.draw(st.sampled_from(times + [None]))
    before, after = _state_at(snaps, start, t_from), _state_at(snaps, start, t_to or at(2100, 1, 1))
    roots, new, xr, xs, xn = h.remap(t_from, t_to)
    plain = dict(zip(roots.tolist(), new.tolist(), strict=True))
    moved = {(r, s): n for r, s, n in zip(xr.tolist(), xs.tolist(), xn.tolist(), strict=True)}
    for sv in svs:
        r = before[sv]
        assert moved.get((r, sv), plain.get(r, r)) == after[sv]
        # the live filter's related ids hold the row's root at t_from
        assert r in h.related(after[sv], t_from, t_to)


def test_why_an_id_is_not_valid(tiny_history):
    h = tiny_history
    assert h.why_not_valid(1005) is None and h.why_not_valid(905, V1) is None
    msg = h.why_not_valid(905)
    assert "905" in msg and "2022-08-01" in msg and "1005, 2001" in msg
    assert "made at 2023-09-01" in h.why_not_valid(2003, V2)
    assert "not a root id" in h.why_not_valid(31337)


def test_the_anchor_roots_are_kept_between_processes(tiny_datastack, tmp_path, monkeypatch):
    """The roots the anchor version's tables hold are read once per machine (caveql.datastack.history,
    _anchor_roots): kept in the private cache folder, keyed by the files' size and mtime; a table
    changed since is read again, a damaged cache entry is read around."""
    import os
    import shutil

    import caveql.datastack.history as H
    from caveql.datastack.layout import read_versions

    monkeypatch.setattr("platformdirs.user_cache_dir", lambda *_a, **_k: str(tmp_path / "cache"))
    root = Path(shutil.copytree(tiny_datastack, tmp_path / "tiny"))
    h = History.load(root)
    first = H._anchor_roots(root, h.anchor_version)
    assert first.dtype == np.int64 and (np.diff(first) > 0).all() and 0 not in first
    kept = list((tmp_path / "cache" / "roots").glob("*.npy"))
    assert len(kept) == 1 and not list((tmp_path / "cache" / "roots").glob("*.part"))

    def no_read(*_a, **_k):
        raise AssertionError("the tables were read again")

    with monkeypatch.context() as m:
        m.setattr(H, "_read_anchor", no_read)
        assert np.array_equal(H._anchor_roots(root, h.anchor_version), first)
    kept[0].write_bytes(b"not an array")  # damaged: read around (and written again)
    assert np.array_equal(H._anchor_roots(root, h.anchor_version), first)
    # a table of the anchor version rewritten: its size/mtime change the key, so it is read anew
    table = next(iter(read_versions(root)[h.anchor_version].tables.values()))
    path = table.files[0].path
    os.utime(path, ns=(1, 1))
    real, read = H._read_anchor, []
    with monkeypatch.context() as m:
        m.setattr(H, "_read_anchor", lambda *a, **k: read.append(a) or real(*a, **k))
        assert np.array_equal(H._anchor_roots(root, h.anchor_version), first)
    assert len(read) == 1 and len(list((tmp_path / "cache" / "roots").glob("*.npy"))) == 2
    # and History.known answers from it: every root of the tables, and the edits' roots
    assert h.known(first[:3].tolist()).all() and not h.known([123456789123]).any()
