"""The ChunkedGraph over HTTP (:class:`~caveql.backends.graph_http.HttpGraph`) against ``caveql
serve``'s routes, and the invalid-root check through it: requests byte for byte as caveclient
8.2.1 sends them, answers equal to the local graph's, answers of the wrong shape refused, and the
same errors as over the local datastack."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caveql.backends.graph_http import HttpGraph
from caveql.backends.http import HttpBackend
from caveql.backends.local_live import version_time
from caveql.backends.routing import RoutingBackend
from caveql.engine import Engine
from caveql.errors import InvalidRootIdError, ServiceError
from tests.roots.test_local import instants, root_ids

pytestmark = pytest.mark.timeout(900)

T = datetime(2023, 6, 1, tzinfo=UTC)  # the tiny history's edit 102 (1003 + 1006 -> 2002)


def graph_requests(served, since: int) -> list[dict]:
    return [e for e in served.recorder.log[since:] if e["path"].startswith("/segmentation/")]


def test_capabilities_and_graph(tiny_served):
    b = tiny_served.http()
    assert b.capabilities.graph
    g = b.graph()
    assert isinstance(g, HttpGraph) and g is b.graph() and g.table == "tiny_pcg"
    assert g.server == b.local_server
    routed = RoutingBackend(b, [])
    assert routed.capabilities.graph and routed.graph() is g


def test_requests_are_caveclients(tiny_served):
    """Each call's path, query string and body equal caveclient's for the same question."""
    logging.getLogger("caveclient").setLevel(logging.ERROR)
    cg = tiny_served.caveclient().chunkedgraph
    g = tiny_served.http().graph()
    ids = [905, 1003, 2002]

    def last_two(ours, theirs) -> None:
        n = len(tiny_served.recorder.log)
        ours()
        mine = graph_requests(tiny_served, n)
        n = len(tiny_served.recorder.log)
        theirs()
        them = graph_requests(tiny_served, n)
        assert [(e["method"], e["path"], e["query"], e["body"]) for e in mine] == \
               [(e["method"], e["path"], e["query"], e["body"]) for e in them]

    last_two(lambda: g.is_latest(ids, T), lambda: cg.is_latest_roots(ids, timestamp=T))
    last_two(lambda: g.roots([11, 13, 16], T), lambda: cg.get_roots([11, 13, 16], timestamp=T))
    last_two(lambda: g.root_timestamps(ids, timestamp=T), lambda: cg.get_root_timestamps(ids, timestamp=T))
    last_two(lambda: g.root_timestamps(ids, latest=True, timestamp=T),
             lambda: cg.get_root_timestamps(ids, latest=True, timestamp=T))
    last_two(lambda: g.lineage(905, T - timedelta(days=700), T),
             lambda: cg.get_lineage_graph(905, timestamp_past=T - timedelta(days=700), timestamp_future=T))
    past = T - timedelta(days=30)
    last_two(lambda: g.past_ids([2002, 2003], past, T),
             lambda: cg.get_past_ids([2002, 2003], timestamp_past=past, timestamp_future=T))


def test_answers_equal_caveclients(tiny_served):
    cg = tiny_served.caveclient().chunkedgraph
    g = tiny_served.http().graph()
    assert g.latest_roots(905) == sorted(cg.get_latest_roots(905).tolist()) == [1005, 2001]
    assert g.latest_roots(1003, T) == [2002]
    assert g.past_ids([2003], T) == {2003: sorted(cg.get_past_ids([2003], timestamp_past=T)["past_id_map"][2003])}
    assert g.latest_roots(77) == [] and g.latest_roots(2003, T) == []


def test_states_equal_the_local_graphs_tiny(tiny, tiny_served):
    g, local = tiny_served.http().graph(), tiny.backend.graph()
    ids = [905, 1005, 2001, 1003, 1006, 2002, 2005, 2006, 2003, 2004, 77, 1001, 1002]
    for t in (None, datetime(2020, 1, 1, tzinfo=UTC), datetime(2022, 8, 1, tzinfo=UTC), T,
              T - timedelta(microseconds=1), datetime(2023, 9, 1, tzinfo=UTC)):
        assert g.states(ids, t) == local.states(ids, t)


def test_the_check_over_http_says_what_the_local_one_says(tiny, tiny_http, tiny_served):
    for q in ("SELECT id FROM cells WHERE pt_root_id = 905",
              "SELECT id FROM cells WHERE pt_root_id = 1005 AT VERSION 1",
              "SELECT * FROM synapses WHERE pre_pt_root_id IN (1001, 77, 2003)",
              "SELECT id FROM cells WHERE pt_root_id = 1003 AT TIMESTAMP '2023-06-01T00:00:00Z'",
              "SELECT id FROM cells WHERE pt_root_id = 2002 AT TIMESTAMP '2023-05-31T23:59:59.999999Z'"):
        with pytest.raises(InvalidRootIdError) as local:
            tiny.execute(q)
        with pytest.raises(InvalidRootIdError) as remote:
            tiny_http.execute(q)
        assert (remote.value.message, remote.value.root_ids, remote.value.hint) == \
               (local.value.message, local.value.root_ids, local.value.hint)
    n = len(tiny_served.recorder.log)
    assert tiny_http.execute("SELECT id FROM cells WHERE pt_root_id IN (1001, 1002)").frame.id.tolist() == [1, 2]
    asked = graph_requests(tiny_served, n)
    assert [e["path"].rsplit("/", 1)[1] for e in asked] == ["is_latest_roots"]  # one question, nothing more
    assert json.loads(asked[0]["body"]) == {"node_ids": [1001, 1002]}
    ts = version_time(tiny_http.backend.version_metadata(2))
    assert asked[0]["query"] == f"timestamp={ts.timestamp()}"


def test_allow_invalid_over_http(tiny_served):
    eng = Engine(tiny_served.http())
    eng.execute("SET allow_invalid_root_ids = true")
    res = eng.execute("SELECT id FROM cells WHERE pt_root_id IN (905, 1001)")
    assert res.frame.id.tolist() == [1] and len(res.notices) == 1 and "root id 905" in res.notices[0]
    # a live call: the service refuses ids not current then unless asked with allow_invalid_root_ids
    q = "SELECT id FROM cells WHERE pt_root_id IN (905, 1001) AT TIMESTAMP '2023-06-01T00:00:00Z'"
    n = len(tiny_served.recorder.log)
    res = eng.execute(q)
    assert res.frame.id.tolist() == [1] and any("root id 905" in x for x in res.notices)
    sent = [e for e in tiny_served.recorder.log[n:] if "/query" in e["path"]]
    assert sent and all("allow_invalid_root_ids=True" in e["query"] for e in sent)


@given(data=st.data())
@settings(max_examples=30)
def test_states_equal_the_local_graphs_demo(demo, demo_history, demo_served, data):
    """Random ids (roots the edits name, and never-roots) at random instants: the same states."""
    stamps = {v: version_time(demo.backend.version_metadata(v)) for v in demo.backend.versions()}
    g = demo_served.http().graph() if not hasattr(demo_served, "_graph") else demo_served._graph
    demo_served._graph = g
    ids = data.draw(st.lists(root_ids(demo_history), min_size=1, max_size=8))
    t = data.draw(st.one_of(st.none(), instants(demo_history, stamps)))
    assert g.states(ids, t) == demo.backend.graph().states(ids, t)


@given(data=st.data())
@settings(max_examples=20)
def test_demo_errors_over_http_as_locally(demo, demo_http, demo_history, data):
    stamps = {v: version_time(demo.backend.version_metadata(v)) for v in demo.backend.versions()}
    r = data.draw(root_ids(demo_history))
    t = data.draw(instants(demo_history, stamps))
    q = f"SELECT id FROM nucleus_detection_v0 WHERE pt_root_id = {r} AT TIMESTAMP '{t.isoformat()}'"
    outcomes = []
    for eng in (demo, demo_http):
        try:
            eng.execute(q)
            outcomes.append(None)
        except InvalidRootIdError as err:
            outcomes.append((err.message, err.root_ids))
    assert outcomes[0] == outcomes[1]
    assert (outcomes[0] is None) == bool(demo_history.is_latest([r], t)[0])


# --------------------------------------------------------------------------- answers refused


def scripted(answer) -> HttpGraph:
    """An HttpGraph whose every request gets ``answer(request)``."""
    b = HttpBackend("ds", server="http://global.test", token="0123456789abcdef0123456789abcdef",
                    transport=httpx.MockTransport(answer), cache=False, retries=0)
    return HttpGraph(b, "http://cg.test", "t")


@pytest.mark.parametrize(("call", "body", "words"), [
    (lambda g: g.is_latest([1, 2]), {"is_latest": [True]}, "is_latest_roots: the answer has 1 'is_latest' values for 2"),
    (lambda g: g.is_latest([1]), {"is_latest": [1]}, "is_latest_roots: the answer has values that are not true/false"),
    (lambda g: g.is_latest([1]), {"latest": [True]}, "is_latest_roots: the answer has no 'is_latest' list"),
    (lambda g: g.root_timestamps([1]), {"timestamp": ["x"]}, "root_timestamps: the answer has values that are not"),
    (lambda g: g.lineage(1, None, T), {"nodes": [{"id": 1}], "links": []}, "lineage_graph_multiple: the answer has a node"),
    (lambda g: g.lineage(1, None, T), {"nodes": [{"id": 1, "timestamp": 5}], "links": [{"source": 1, "target": 2}]},
     "lineage_graph_multiple: the answer has a link between unknown nodes"),
    (lambda g: g.past_ids([1], T), {"past_id_map": {}}, "past_id_mapping: the answer has no list of ids for root 1"),
])
def test_answers_of_the_wrong_shape_are_refused(call, body, words):
    with pytest.raises(ServiceError, match=words):
        call(scripted(lambda r: httpx.Response(200, json=body)))


def test_a_short_binary_answer_is_refused():
    g = scripted(lambda r: httpx.Response(200, content=np.array([5], np.uint64).tobytes()))
    with pytest.raises(ServiceError, match="roots_binary: the answer has 8 bytes for 2 ids"):
        g.roots([1, 2])


def test_a_server_failure_names_the_route():
    g = scripted(lambda r: httpx.Response(500, json={"code": 500, "message": "boom"}))
    with pytest.raises(ServiceError, match="ChunkedGraph is_latest_roots: the service failed"):
        g.is_latest([1])
    assert g.latest_roots(1) == []  # an id the server fails on: unknown


def test_no_graphene_source_no_graph():
    def answer(r: httpx.Request) -> httpx.Response:
        if r.url.path.startswith("/info/"):
            return httpx.Response(200, json={"local_server": "http://local.test",
                                             "segmentation_source": "precomputed://gs://bucket/seg"})
        if r.url.path == "/materialize/api/versions":
            return httpx.Response(200, json=[2, 3])
        return httpx.Response(404)

    with HttpBackend("ds", server="http://global.test", token="0123456789abcdef0123456789abcdef",
                     transport=httpx.MockTransport(answer), cache=False) as b:
        assert not b.capabilities.graph and b.graph() is None


def test_a_naive_timestamp_is_utc(tiny_served):
    g = tiny_served.http().graph()
    naive = T.replace(tzinfo=None)
    assert g.states([1003, 2002], naive) == g.states([1003, 2002], T)
    assert g.latest_roots(1003, naive) == [2002]


def test_states_of_many_ids_are_described_whole(demo, demo_history, demo_served):
    """Hundreds of ids, most not current (more than one lineage request holds): every state over
    HTTP equals the local graph's, times and latest roots included."""
    edits = demo_history.edits
    t = edits[len(edits) // 2].timestamp
    ids = sorted({int(r) for e in edits[:400] for r in (*e.old_roots, *e.new_roots)})[:450] + [7, 8]
    remote = demo_served.http().graph().states(ids, t)
    local = demo.backend.graph().states(ids, t)
    assert sum(not s.valid for s in local) > 200
    assert remote == local
