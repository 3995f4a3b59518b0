"""Unmodified caveclient 8.2.1 against ``caveql serve`` over the demo (small: 20,000 synapses)
and its proofreading history: at random instants (between the versions, after the last one,
exactly at edits) and for random cells, every ChunkedGraph answer and every client-side live
query agrees with a plain reading of the history (:class:`~caveql.datastack.history.History`).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caveql.datastack.history import History

pytestmark = pytest.mark.timeout(600)

SYN = "synapses_pni_2"
NUC = "nucleus_detection_v0"


@pytest.fixture(scope="module")
def history(small_demo) -> History:
    h = History.load(small_demo)
    assert h is not None and len(h.edits) > 1000
    return h


@pytest.fixture(scope="module")
def client(demo_served):
    logging.getLogger("caveclient").setLevel(logging.ERROR)
    return demo_served.caveclient()


@pytest.fixture(scope="module")
def versions(client) -> dict[int, datetime]:
    return {m["version"]: m["time_stamp"] for m in client.materialize.get_versions_metadata()}


@pytest.fixture(scope="module")
def frozen(client, versions):
    """Each version's synapses and nuclei (caveclient's frames), read once."""
    return {(v, t): client.materialize.query_table(t, materialization_version=v, split_positions=True)
            for v in versions for t in (SYN, NUC)}


def instants(history: History, versions: dict[int, datetime]) -> st.SearchStrategy[datetime]:
    """From the oldest version to a day after the last edit: random instants, the edits' own
    instants (and a microsecond either side), the versions' instants."""
    first, last = min(versions.values()), history.edits[-1].timestamp + timedelta(days=1)
    span = int((last - first).total_seconds())
    edit = st.tuples(st.sampled_from(history.edits), st.sampled_from([-1, 0, 1])).map(
        lambda e: e[0].timestamp + timedelta(microseconds=e[1]))
    return st.one_of(st.integers(0, span).map(lambda s: first + timedelta(seconds=s)), edit,
                     st.sampled_from(sorted(versions.values())))


def version_at(versions: dict[int, datetime], ts: datetime) -> int:
    return max((v for v, t in versions.items() if t <= ts), key=lambda v: versions[v])


def reading(frozen, versions, history: History, table: str, ts: datetime) -> pd.DataFrame:
    """The plain reading: the version in force at ``ts``, each root the root its supervoxel has then."""
    out = frozen[(version_at(versions, ts), table)].copy()
    for p in ("pre_pt", "post_pt") if table == SYN else ("pt",):
        out[f"{p}_root_id"] = history.roots_at(out[f"{p}_supervoxel_id"].to_numpy(), ts).astype(np.int64)
    return out


def rows(frame: pd.DataFrame) -> pd.DataFrame:
    cols = ["id"] + [c for c in frame.columns if c.endswith(("_root_id", "_supervoxel_id"))]
    return frame[cols].astype("int64").sort_values("id").reset_index(drop=True)


@given(data=st.data())
@settings(max_examples=20)
def test_roots_of_supervoxels(client, history, versions, frozen, data):
    ts = data.draw(instants(history, versions))
    svs = np.concatenate([frozen[(661, SYN)].pre_pt_supervoxel_id.to_numpy(), frozen[(661, NUC)].pt_supervoxel_id])
    pick = svs[data.draw(st.lists(st.integers(0, svs.size - 1), min_size=1, max_size=200))].tolist()
    pick += [0, 1 << 56 | 987_654_321]  # 0 and a supervoxel nothing holds: 0
    got = client.chunkedgraph.get_roots(pick, timestamp=ts)
    assert got.tolist() == history.roots_at(np.array(pick, np.uint64), ts).tolist()


@given(data=st.data())
@settings(max_examples=20)
def test_latest_roots_past_ids_and_timestamps(client, history, versions, frozen, data):
    cg = client.chunkedgraph
    t1, t2 = sorted([data.draw(instants(history, versions)), data.draw(instants(history, versions))])
    svs = frozen[(661, NUC)].pt_supervoxel_id.to_numpy()
    svs = svs[svs != 0]
    some = svs[data.draw(st.lists(st.integers(0, svs.size - 1), min_size=1, max_size=8))]
    roots = sorted({int(r) for r in history.roots_at(some, t1)} - {0})
    if not roots:
        return
    assert cg.is_latest_roots(roots, timestamp=t2).tolist() == history.is_latest(roots, t2).tolist()
    made = cg.get_root_timestamps(roots)
    assert made.tolist() == [history.valid_range(r)[0] for r in roots]
    for r in roots:
        if history.valid_range(r)[0] < t2:  # caveclient looks forward from a root's creation
            assert sorted(cg.get_latest_roots(r, timestamp=t2).tolist()) == history.latest_roots(r, t2).tolist()
    past = cg.get_past_ids(roots, timestamp_past=t1 - timedelta(days=90), timestamp_future=t2)["past_id_map"]
    assert {k: sorted(v) for k, v in past.items()} == history.past_ids(roots, t1 - timedelta(days=90))


@given(data=st.data())
@settings(max_examples=12)
def test_live_queries_follow_the_history(client, history, versions, frozen, data):
    """``live_query`` / ``query_table(timestamp=...)`` / ``synapse_query(timestamp=...)``: the
    version in force's rows, roots as of the instant; a root filter keeps the rows whose
    supervoxel has that root then."""
    ts = data.draw(instants(history, versions))
    syn = reading(frozen, versions, history, SYN, ts)
    nuc = reading(frozen, versions, history, NUC, ts)
    got = client.materialize.query_table(NUC, timestamp=ts, split_positions=True, limit=3000)
    assert len(got) == 3000
    pd.testing.assert_frame_equal(rows(got), rows(nuc[nuc.id.isin(got.id)]))
    candidates = [r for r in np.unique(syn.pre_pt_root_id).tolist()
                  if r and history.valid_range(r)[0] < ts]  # caveclient: made strictly before
    if not candidates:
        return
    pick = data.draw(st.lists(st.sampled_from(candidates), min_size=1, max_size=20, unique=True))
    got = client.materialize.live_query(SYN, ts, filter_in_dict={"pre_pt_root_id": pick}, split_positions=True)
    pd.testing.assert_frame_equal(rows(got), rows(syn[syn.pre_pt_root_id.isin(pick)]))
    one = pick[0]
    got = client.materialize.synapse_query(post_ids=one, timestamp=ts, split_positions=True)
    want = syn[(syn.post_pt_root_id == one) & (syn.pre_pt_root_id != syn.post_pt_root_id)]
    pd.testing.assert_frame_equal(rows(got), rows(want))


def test_the_live_state_is_no_version(client, history, versions, frozen):
    now = datetime.now(UTC)
    live = client.materialize.live_query(NUC, now, split_positions=True)
    for v in versions:
        assert (rows(live).pt_root_id != rows(frozen[(v, NUC)]).pt_root_id).sum() > 100
    assert rows(live).pt_root_id.tolist() == \
        history.roots_at(rows(live).pt_supervoxel_id.to_numpy(), None).astype(np.int64).tolist()


@given(data=st.data())
@settings(max_examples=10)
def test_lineage_and_suggestions(client, history, versions, data):
    """The lineage graph (links past ``timestamp_future`` excluded, as caveclient offers) is the
    history's; suggest_latest_roots ranks the roots an old root's supervoxels have now."""
    cg = client.chunkedgraph
    edit = data.draw(st.sampled_from(history.edits))
    root = data.draw(st.sampled_from(list(edit.old_roots) + list(edit.new_roots)))
    past = data.draw(instants(history, versions)) - timedelta(days=200)
    future = data.draw(instants(history, versions))
    got = cg.get_lineage_graph(root, timestamp_past=past, timestamp_future=future,
                               exclude_links_to_future=True, as_nx_graph=True)
    nodes, edges = history.lineage([root], past, future)
    kept = {n["id"] for n in nodes if n["timestamp"] <= future}
    assert set(got.edges) == {(a, b) for a, b in edges if a in kept and b in kept}
    # the supervoxels of the root while it was one, and their roots now
    svs = np.asarray(history._anchor()[0]).astype(np.uint64)
    made = history.valid_range(root)[0]
    mine = svs[history.roots_at(svs, made) == np.uint64(root)]
    if mine.size == 0:
        return
    ids, counts = np.unique(history.roots_at(mine, None), return_counts=True)
    got_ids, fractions = cg.suggest_latest_roots(root, return_all=True, return_fraction_overlap=True)
    assert dict(zip(got_ids.tolist(), fractions.tolist(), strict=True)) == \
        dict(zip(ids.tolist(), (counts / mine.size).tolist(), strict=True))
