"""The ChunkedGraph routes over a hand-made history: PyChunkedGraph 2.21's request and answer
shapes (JSON and binary, query parameters, failures) and the history's answers."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pytest

from tests.chunkedgraph.conftest import ANCHOR, EDITS, R, S, t

V1 = "/segmentation/api/v1/table/hand"


def epoch(ts: datetime) -> float:
    return ts.timestamp()


def ids(values) -> bytes:
    return np.array(values, np.uint64).tobytes()


def test_versions(cg):
    assert cg.get("/segmentation/api/versions").json() == [0, 1]
    assert cg.get("/segmentation/api/version").json() == "2.21.1"
    info = cg.get("/segmentation/table/hand/info").json()
    assert info["graph"]["n_layers"] == 12 and info["app"]["supported_api_versions"] == [0, 1]


@pytest.mark.parametrize("when", [t(1), t(2), t(3), t(4), t(6), t(7), t(8), t(9)])
def test_roots_binary_is_the_history(cg, history, when):
    svs = [S(1), S(2), S(3), S(4), S(5), 0, S(77)]
    r = cg.post(V1 + "/roots_binary", content=ids(svs), params={"timestamp": epoch(when)})
    assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
    got = np.frombuffer(r.content, np.uint64)
    assert got.tolist() == history.roots_at(np.array(svs, np.uint64), when).tolist()
    assert got[-2:].tolist() == [0, 0]  # 0 and an unknown supervoxel: 0 (fail_to_zero)


def test_an_edit_is_visible_at_its_timestamp(cg):
    before = cg.post(V1 + "/roots_binary", content=ids([S(1)]), params={"timestamp": epoch(t(2)) - 1e-6})
    at = cg.post(V1 + "/roots_binary", content=ids([S(1)]), params={"timestamp": epoch(t(2))})
    assert np.frombuffer(before.content, np.uint64).tolist() == [R(10)]
    assert np.frombuffer(at.content, np.uint64).tolist() == [R(30)]


def test_roots_json_and_its_binary_variant(cg, history):
    body = {"node_ids": [S(1), S(3), R(90)]}
    r = cg.post(V1 + "/roots", json=body, params={"timestamp": epoch(t(7))})
    assert r.text.endswith("\n") and " " not in r.text  # jsonify_with_kwargs: compact, a newline
    assert r.json() == {"root_ids": [R(70), R(70), R(90)]}  # a root-layer id is its own root
    binary = cg.post(V1 + "/roots", json=body, params={"timestamp": epoch(t(7)), "as_binary": "root_ids"})
    assert np.frombuffer(binary.content, np.uint64).tolist() == [R(70), R(70), R(90)]
    strings = cg.post(V1 + "/roots", json=body, params={"timestamp": epoch(t(7)), "int64_as_str": "true"})
    assert strings.json() == {"root_ids": [str(R(70)), str(R(70)), str(R(90))]}


def test_node_root(cg):
    r = cg.get(f"{V1}/node/{S(2)}/root", params={"timestamp": epoch(t(3))})
    assert r.json() == {"root_id": R(30)}
    assert cg.get(f"{V1}/node/{S(2)}/root").json() == {"root_id": R(80)}  # no timestamp: now
    unknown = cg.get(f"{V1}/node/{S(77)}/root")
    assert unknown.status_code == 500
    body = unknown.json()
    assert body["code"] == 500 and f"Cannot find root id {S(77)}" in body["message"]
    assert {"timestamp", "duration", "traceback"} <= set(body)


def test_is_latest_roots(cg, history):
    roots = [R(10), R(30), R(40), R(50), R(70), R(80), R(90), R(12345)]
    for when in (t(1), t(3), t(5), t(7), t(9)):
        r = cg.post(V1 + "/is_latest_roots", json={"node_ids": roots}, params={"timestamp": epoch(when)})
        assert r.json() == {"is_latest": history.is_latest(np.array(roots, np.uint64), when).tolist()}
    now = cg.post(V1 + "/is_latest_roots", json={"node_ids": roots}).json()["is_latest"]
    assert now == [False, False, False, False, False, True, True, False]  # unknown ids: false
    assert cg.post(V1 + "/is_latest_roots", json={"node_ids": []}).json() == {"is_latest": []}


def test_root_timestamps(cg):
    r = cg.post(V1 + "/root_timestamps", json={"node_ids": [R(10), R(30), R(80), R(90)]})
    assert r.json() == {"timestamp": [epoch(t(1)), epoch(t(2)), epoch(t(8)), epoch(t(1))]}
    # latest: the query time for a root current then, else when it was replaced
    at = epoch(t(7, 12))
    latest = cg.post(V1 + "/root_timestamps", json={"node_ids": [R(10), R(70), R(50)]},
                     params={"latest": "true", "timestamp": at})
    assert latest.json() == {"timestamp": [epoch(t(2)), at, at]}
    unknown = cg.post(V1 + "/root_timestamps", json={"node_ids": [R(10), R(12345)]})
    assert unknown.status_code == 500 and unknown.json()["code"] == 500
    unknown_latest = cg.post(V1 + "/root_timestamps", json={"node_ids": [R(12345)]}, params={"latest": "true"})
    assert unknown_latest.status_code == 500 and "is not a root id" in unknown_latest.json()["message"]
    not_yet = cg.post(V1 + "/root_timestamps", json={"node_ids": [R(80)]},
                      params={"latest": "true", "timestamp": epoch(t(3))})
    assert not_yet.status_code == 500 and str(R(80)) in not_yet.json()["message"]


def test_past_id_mapping(cg, history):
    r = cg.request("GET", V1 + "/past_id_mapping", content=json.dumps({"root_ids": [R(80), R(90)]}),
                   params={"timestamp_past": epoch(t(5)), "timestamp_future": epoch(t(9))})
    body = r.json()
    want = history.past_ids(np.array([R(80), R(90)], np.uint64), t(5))
    assert body["past_id_map"] == {str(k): v for k, v in want.items()}
    assert sorted(body["past_id_map"][str(R(80))]) == [R(40), R(50), R(60)]
    # every step from 40, 50 and 60 to 80 is a merge: the genuine future map names 80 (and an
    # unedited root itself)
    assert body["future_id_map"] == {str(R(40)): R(80), str(R(50)): R(80), str(R(60)): R(80), str(R(90)): R(90)}
    # a split on the way (30 → 40 + 50): no future id for 30's past ids
    split = cg.request("GET", V1 + "/past_id_mapping", content=json.dumps({"root_ids": [R(40)]}),
                       params={"timestamp_past": epoch(t(1))}).json()
    assert sorted(split["past_id_map"][str(R(40))]) == [R(10), R(20)]
    assert split["future_id_map"] == {}
    unknown = cg.request("GET", V1 + "/past_id_mapping", content=json.dumps({"root_ids": [R(12345)]}))
    assert unknown.status_code == 500


def test_lineage_graph(cg):
    r = cg.post(V1 + "/lineage_graph_multiple", json={"root_ids": [R(40)]},
                params={"timestamp_past": epoch(t(1)), "timestamp_future": epoch(t(7, 12))})
    g = r.json()
    assert (g["directed"], g["multigraph"], g["graph"]) == (True, False, {})
    nodes = {n["id"]: n for n in g["nodes"]}
    links = {(e["source"], e["target"]) for e in g["links"]}
    # back to the base (10, 20), forward to 70 (made day 7 ≤ future), and one edit past the
    # future (80, day 8) as the genuine walk does (caveclient's exclude_links_to_future drops it)
    assert links == {(R(30), R(40)), (R(10), R(30)), (R(20), R(30)), (R(40), R(70)), (R(70), R(80))}
    assert set(nodes) == {R(10), R(20), R(30), R(40), R(70), R(80)}
    assert nodes[R(40)]["timestamp"] == epoch(t(4))
    # operation_id: the operation that replaced the root (none for a root still current)
    assert nodes[R(40)]["operation_id"] == 3 and nodes[R(10)]["operation_id"] == 1
    assert "operation_id" not in nodes[R(80)]
    assert list(g["nodes"][0]) == ["timestamp", "operation_id", "id"]
    # a root current at timestamp_past ends the walk back
    cut = cg.post(V1 + "/lineage_graph_multiple", json={"root_ids": [R(80)]},
                  params={"timestamp_past": epoch(t(5))}).json()
    assert {n["id"] for n in cut["nodes"]} == {R(80), R(70), R(50), R(40), R(60)}
    single = cg.get(f"{V1}/root/{R(40)}/lineage_graph", params={"timestamp_past": epoch(t(1))}).json()
    assert {n["id"] for n in single["nodes"]} == set(nodes)


def test_leaves(cg):
    assert sorted(cg.get(f"{V1}/node/{R(60)}/leaves", params={"stop_layer": 8}).json()["leaf_ids"]) == [S(3), S(4)]
    assert cg.get(f"{V1}/node/{R(80)}/leaves").json()["leaf_ids"] == [S(1), S(2), S(3), S(4)]
    assert cg.get(f"{V1}/node/{R(12345)}/leaves").json() == {"leaf_ids": []}


def test_delta_roots(cg, history):
    r = cg.get(V1 + "/delta_roots", params={"timestamp_past": epoch(t(3)), "timestamp_future": epoch(t(7))})
    # the genuine answer: what operations 2 and 3 made, and what each made root replaced (a split's
    # root once per piece; 40, made and replaced inside the window, in both)
    assert r.json() == {"old_roots": [R(30), R(30), R(40), R(60)], "new_roots": [R(40), R(50), R(70)]}
    # net of those, the history's delta
    old, new = history.delta_roots(t(3), t(7))
    body = r.json()
    assert set(old.tolist()) == set(body["old_roots"]) - set(body["new_roots"])
    assert set(new.tolist()) == set(body["new_roots"]) - set(body["old_roots"])
    none = cg.get(V1 + "/delta_roots", params={"timestamp_past": epoch(t(9))})
    assert none.json() == {"old_roots": [], "new_roots": []}
    missing = cg.get(V1 + "/delta_roots")
    assert missing.status_code == 400
    assert missing.json()["message"] == "Timestamp parameter timestamp_past is mandatory"
    assert "traceback" not in missing.json()


def test_operation_details(cg):
    r = cg.get(V1 + "/operation_details", params={"operation_ids": json.dumps([2, 99])})
    body = r.json()
    assert list(body) == ["2"]  # unknown operations are left out
    assert body["2"]["new_roots"] == [R(40), R(50)] and body["2"]["user"] == "7"
    assert body["2"]["removed_edges"] == [[S(1), S(2)]]
    assert body["2"]["timestamp"] == str(EDITS[1].timestamp)
    assert cg.get(V1 + "/oldest_timestamp").json() == {"iso": "2023-01-01 23:59:59.500000+00:00"}


def test_bad_arguments(cg):
    bad_ts = cg.post(V1 + "/roots_binary", content=ids([S(1)]), params={"timestamp": "yesterday"})
    assert bad_ts.status_code == 400
    assert bad_ts.json()["message"] == "Timestamp parameter timestamp is not a valid unix timestamp"
    assert cg.post(V1 + "/roots_binary", content=b"1234567").status_code == 500  # not whole uint64s
    not_json = cg.post(V1 + "/is_latest_roots", content=b"{nope")
    assert not_json.status_code == 500 and not_json.json()["code"] == 500
    no_key = cg.post(V1 + "/is_latest_roots", json={"root_ids": [1]})
    assert no_key.status_code == 500 and no_key.json()["message"] == "'node_ids'"
    negative = cg.post(V1 + "/is_latest_roots", json={"node_ids": [-1]})
    assert negative.status_code == 500
    layer = cg.post(V1 + "/roots_binary", content=ids([S(1)]), params={"stop_layer": 2})
    assert layer.status_code == 400 and "stop_layer" in layer.json()["message"]
    other = cg.post("/segmentation/api/v1/table/other/roots_binary", content=ids([S(1)]))
    assert other.status_code == 404 and "other" in other.json()["message"]


def test_the_anchor_is_the_hand_made_index(history):
    svs, roots = ANCHOR
    assert history.roots_at(np.array(svs, np.uint64), t(5)).tolist() == roots
    assert history.roots_at(np.array(svs, np.uint64), datetime(2030, 1, 1, tzinfo=UTC)).tolist() == \
        [R(80)] * 4 + [R(90)]
