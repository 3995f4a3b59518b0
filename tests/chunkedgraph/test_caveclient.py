"""Unmodified caveclient 8.2.1 against ``caveql serve`` over a datastack with a proofreading
history (the tiny datastack given ``tiny_edits``): its ChunkedGraph calls and its client-side
timestamp queries agree with the history (:class:`~caveql.datastack.history.History`).

The truth of a query at a timestamp is a plain reading of the history: the rows of the newest
version at or before the timestamp, each root id the root its supervoxel has then.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from caveql.datastack.history import History
from tests.chunkedgraph.conftest import TINY_V2, tiny_edits

pytestmark = pytest.mark.timeout(300)

V1 = datetime(2022, 2, 24, 8, 10, 0, 184668, tzinfo=UTC)
EDIT_TIMES = [e.timestamp for e in tiny_edits()]
LATE = datetime(2025, 1, 1, tzinfo=UTC)
ROOT_COLUMNS = {"cells": ["pt"], "nuclei": ["pt"], "synapses": ["pre_pt", "post_pt"]}


@pytest.fixture(scope="module")
def client(tiny_history_served):
    return tiny_history_served.caveclient()


@pytest.fixture(scope="module")
def truth(tiny_history_path) -> History:
    h = History.load(tiny_history_path)
    assert h is not None
    return h


def instants() -> st.SearchStrategy[datetime]:
    """Any instant from version 1 to after the last edit, the edits' own instants (and a
    microsecond either side) and the versions' often."""
    exact = [t + timedelta(microseconds=d) for t in EDIT_TIMES for d in (-1, 0, 1)] + [TINY_V2, LATE]
    span = int((LATE - V1).total_seconds())
    return st.one_of(st.sampled_from(exact),
                     st.integers(0, span).map(lambda s: V1 + timedelta(seconds=s)))


def at(client, table: str, ts: datetime) -> pd.DataFrame:
    """The plain reading: the rows of the version in force at ``ts``, roots as of ``ts``."""
    version = 2 if ts >= TINY_V2 else 1
    return client.materialize.query_table(table, materialization_version=version, split_positions=True)


def mapped(frame: pd.DataFrame, table: str, truth: History, ts: datetime) -> pd.DataFrame:
    out = frame.copy()
    for p in ROOT_COLUMNS[table]:
        out[f"{p}_root_id"] = truth.roots_at(out[f"{p}_supervoxel_id"].to_numpy(), ts).astype(np.int64)
    return out


def same_rows(got: pd.DataFrame, want: pd.DataFrame) -> None:
    cols = ["id"] + [c for c in want.columns if c.endswith(("_root_id", "_supervoxel_id"))]
    a = got[cols].sort_values("id").reset_index(drop=True).astype("int64")
    b = want[cols].sort_values("id").reset_index(drop=True).astype("int64")
    pd.testing.assert_frame_equal(a, b)


@settings(max_examples=25)
@given(ts=instants())
def test_get_roots_at_any_instant(client, truth, ts):
    svs = np.array([11, 12, 13, 15, 16, 71001, 71002, 71003, 71005, 0, 99, 123456], np.uint64)
    assert client.chunkedgraph.get_roots(svs, timestamp=ts).tolist() == truth.roots_at(svs, ts).tolist()


@settings(max_examples=25)
@given(ts=instants())
def test_is_latest_roots_at_any_instant(client, truth, ts):
    roots = [905, 1001, 1002, 1003, 1005, 1006, 1905, 2001, 3001, 3002, 4001, 777]
    got = client.chunkedgraph.is_latest_roots(roots, timestamp=ts)
    assert got.tolist() == truth.is_latest(roots, ts).tolist()


@settings(max_examples=15)
@given(ts=instants().filter(lambda t: t >= V1 + timedelta(microseconds=1)))
def test_live_query_at_any_instant(client, truth, ts):
    """``live_query`` and ``query_table(timestamp=...)`` = the version's rows, roots at ``ts``."""
    for table in ("cells", "synapses"):
        want = mapped(at(client, table, ts), table, truth, ts)
        same_rows(client.materialize.live_query(table, ts, split_positions=True), want)
    got = client.materialize.query_table("nuclei", timestamp=ts, split_positions=True)
    same_rows(got, mapped(at(client, "nuclei", ts), "nuclei", truth, ts))


@settings(max_examples=15)
@given(ts=instants().filter(lambda t: t > V1), data=st.data())
def test_root_filters_follow_the_cell(client, truth, ts, data):
    """A filter on a root id valid at ``ts`` (made before it): caveclient maps it to the version's
    ids (past_id_mapping) and back (roots_binary); the rows are those whose supervoxel has that
    root at ``ts``. synapse_query(timestamp=...) likewise (autapses removed)."""
    svs = np.array([11, 12, 13, 15, 16, 71001, 71002, 71003, 71005], np.uint64)
    roots = sorted({int(r) for r in truth.roots_at(svs, ts)} - {0})
    roots = [r for r in roots if truth.valid_range(r)[0] < ts]  # caveclient: made strictly before
    if not roots:
        return
    root = data.draw(st.sampled_from(roots))
    syn = mapped(at(client, "synapses", ts), "synapses", truth, ts)
    got = client.materialize.live_query("synapses", ts, filter_equal_dict={"pre_pt_root_id": root},
                                        split_positions=True)
    same_rows(got, syn[syn.pre_pt_root_id == root])
    got = client.materialize.synapse_query(post_ids=[root], timestamp=ts, split_positions=True)
    same_rows(got, syn[(syn.post_pt_root_id == root) & (syn.pre_pt_root_id != syn.post_pt_root_id)])
    cells = mapped(at(client, "cells", ts), "cells", truth, ts)
    got = client.materialize.query_table("cells", filter_in_dict={"pt_root_id": [root]}, timestamp=ts,
                                         split_positions=True)
    same_rows(got, cells[cells.pt_root_id == root])


def test_the_live_state_differs_from_every_version(client, truth, caplog):
    caplog.set_level(logging.ERROR)
    now = datetime.now(UTC)
    live = client.materialize.live_query("cells", now, split_positions=True)
    for v in (1, 2):
        frozen = client.materialize.query_table("cells", materialization_version=v, split_positions=True)
        assert sorted(live.pt_root_id) != sorted(frozen.pt_root_id)
    assert sorted(set(live.pt_root_id)) == [0, 1006, 3001, 3002, 4001]


def test_edge_rules(client, truth, caplog):
    """The live path's edges: an id that was never a root, an expired id, an id made exactly at
    the query's instant, a cell merged then split."""
    caplog.set_level(logging.ERROR)
    merge, split = EDIT_TIMES[1], EDIT_TIMES[2]
    # never a root: not latest, and (as the genuine service) no timestamp to give: a 500
    with pytest.raises(requests.HTTPError, match="777 is not a root id this ChunkedGraph knows"):
        client.materialize.live_query("cells", LATE, filter_equal_dict={"pt_root_id": 777})
    with pytest.raises(ValueError, match=r"\[1001\] are expired"):
        client.materialize.live_query("cells", LATE, filter_equal_dict={"pt_root_id": 1001})
    # made by the edit at that very instant: current then (the edit is visible at its time), but
    # caveclient asks for a root made strictly before the query's timestamp
    assert client.chunkedgraph.is_latest_roots([2001], timestamp=merge).tolist() == [True]
    with pytest.raises(ValueError, match=r"\[2001\] are too recent"):
        client.materialize.live_query("cells", merge, filter_equal_dict={"pt_root_id": 2001})
    # merged (1001 + 1002 → 2001) then split another way (→ 3001 + 3002): the cells follow
    mid = merge + (split - merge) / 2
    both = client.materialize.live_query("cells", mid, filter_equal_dict={"pt_root_id": 2001})
    assert sorted(both.id) == [1, 2]
    apart = client.materialize.live_query("cells", LATE, filter_in_dict={"pt_root_id": [3001, 3002]})
    assert dict(zip(apart.id, apart.pt_root_id, strict=True)) == {1: 3001, 2: 3002}
    assert sorted(client.chunkedgraph.get_latest_roots(1001).tolist()) == [3001, 3002]
    assert client.chunkedgraph.get_latest_roots(1001, timestamp=mid).tolist() == [2001]


@pytest.mark.parametrize("root", [905, 1001, 1002, 1003, 1005, 2001, 3001, 4001, 1006])
def test_latest_roots_and_timestamps(client, truth, root):
    cg = client.chunkedgraph
    for ts in (None, TINY_V2, EDIT_TIMES[1] + timedelta(days=1), LATE):
        made = truth.valid_range(root)[0]
        if ts is not None and ts < made:
            continue
        got = cg.get_latest_roots(root, timestamp=ts)
        assert sorted(got.tolist()) == truth.latest_roots(root, ts).tolist(), ts
    assert cg.get_root_timestamps([root])[0] == truth.valid_range(root)[0]
    made, gone = truth.valid_range(root)
    latest = cg.get_root_timestamps([root], latest=True, timestamp=LATE)[0]
    # caveclient takes a millisecond off a latest timestamp
    assert latest + timedelta(milliseconds=1) == (gone or LATE)
    assert cg.get_past_ids([root], timestamp_past=TINY_V2)["past_id_map"][root] == \
        truth.past_ids([root], TINY_V2)[root]


def test_lineage_graph(client, truth):
    g = client.chunkedgraph.get_lineage_graph(1002, timestamp_past=V1, as_nx_graph=True)
    # forward from 1002 only (1001, merged into the same root, is not its past)
    assert set(g.edges) == {(1002, 2001), (2001, 3001), (2001, 3002)}
    nodes, edges = truth.lineage([1002], V1, None)
    assert set(g.edges) == set(edges) and set(g.nodes) == {n["id"] for n in nodes}
    # cut at an instant between the merge and the split: caveclient drops the links past it
    mid = EDIT_TIMES[1] + timedelta(days=1)
    cut = client.chunkedgraph.get_lineage_graph(1002, timestamp_past=V1, timestamp_future=mid,
                                                exclude_links_to_future=True, as_nx_graph=True)
    assert set(cut.edges) == set(truth.lineage([1002], V1, mid)[1]) == {(1002, 2001)}
    several = client.chunkedgraph.get_lineage_graph([1005, 1003], timestamp_past=V1)
    assert {(e["source"], e["target"]) for e in several["links"]} == {(905, 1005), (1005, 4001), (1003, 4001)}
    assert {n["id"]: n.get("operation_id") for n in several["nodes"]} == \
        {905: 101, 1005: 104, 1003: 104, 4001: None}


def test_suggest_latest_roots(client):
    cg = client.chunkedgraph
    # 2001's supervoxels: 11, 12, 71001, 71002; 12 went to 3002, the others stayed with 3001
    assert cg.suggest_latest_roots(2001) == 3001
    ids, fractions = cg.suggest_latest_roots(2001, return_all=True, return_fraction_overlap=True)
    assert ids.tolist() == [3001, 3002] and fractions.tolist() == [0.75, 0.25]
    assert cg.suggest_latest_roots(1005) == 4001


def test_delta_roots_and_operations(client):
    cg = client.chunkedgraph
    old, new = cg.get_delta_roots(TINY_V2, LATE)
    assert new.tolist() == [2001, 3001, 3002, 4001]
    assert old.tolist() == [1001, 1002, 2001, 2001, 1003, 1005]
    details = cg.get_operation_details([103, 5])
    assert list(details) == ["103"] and details["103"]["new_roots"] == [3001, 3002]
    assert cg.get_oldest_timestamp() == EDIT_TIMES[0] - timedelta(milliseconds=500)


def test_token_and_host(tiny_history_path):
    """The ChunkedGraph routes are behind serve's token check and Host check like the rest."""
    import httpx

    from tests.server.conftest import TOKEN, serve

    s = serve(tiny_history_path, token=TOKEN)
    try:
        url = s.url + "/segmentation/api/v1/table/tiny_pcg/is_latest_roots"
        with httpx.Client() as http:
            assert http.post(url, json={"node_ids": [1006]}).status_code == 401
            bad = http.post(url, json={"node_ids": [1006]}, headers={"Authorization": "Bearer nope"})
            assert bad.status_code == 403
            ok = http.post(url, json={"node_ids": [1006]}, headers={"Authorization": f"Bearer {TOKEN}"})
            assert ok.json() == {"is_latest": [True]}
            evil = http.post(url, json={"node_ids": [1006]},
                             headers={"Authorization": f"Bearer {TOKEN}", "Host": "evil.example.com"})
            assert evil.status_code == 400
    finally:
        s.stop()


def test_a_datastack_without_history(tiny_datastack, tmp_path):
    """A folder without ``history.parquet``: the static history — nothing edited, the newest
    version's roots at every instant from the oldest version on."""
    import shutil

    from tests.server.conftest import serve

    folder = tmp_path / "tiny"
    shutil.copytree(tiny_datastack, folder)
    (folder / "history.parquet").unlink(missing_ok=True)
    s = serve(folder)
    try:
        cg = s.caveclient().chunkedgraph
        assert cg.get_roots([11, 15, 71005, 0], timestamp=V1).tolist() == [1001, 1005, 1005, 0]
        assert cg.is_latest_roots([905, 1005], timestamp=V1).tolist() == [False, True]
        assert cg.get_root_timestamps([1005])[0] == V1
        assert cg.get_latest_roots(1005).tolist() == [1005]
        with pytest.raises(requests.HTTPError, match="905 is not a root id"):
            cg.get_root_timestamps([905])
    finally:
        s.stop()


def test_the_live_endpoint_refuses_stale_root_ids(client, caplog):
    """``live_live_query`` (the server-side live path) checks a filter's root ids against the
    history as the genuine engine asks the ChunkedGraph: one not current then is a 400 (in a 500,
    the engine's abort) — not an empty answer."""
    caplog.set_level(logging.ERROR)
    with pytest.raises(requests.HTTPError, match=r"not valid at the query timestamp: \[1001\]"):
        client.materialize.live_live_query("synapses", LATE, filter_in_dict={"synapses": {"pre_pt_root_id": [1001]}})
    got = client.materialize.live_live_query("synapses", LATE, filter_in_dict={"synapses": {"pre_pt_root_id": [3001]}},
                                             split_positions=True)
    assert sorted(got.id) == [100, 101, 102, 103, 104, 109]  # 1001's and 1002's 71002 (kept by 3001)
    allowed = client.materialize.live_live_query("synapses", LATE, allow_invalid_root_ids=True,
                                                 filter_in_dict={"synapses": {"pre_pt_root_id": [1001]}})
    assert len(allowed) == 0
