"""Golden requests: what HttpBackend sends equals what caveclient 8.2.1 sent for the same call.

The goldens are ../shared/reference/caveclient-requests.json (captured from caveclient 8.2.1,
copied to tests/fixtures/caveclient-requests.json). Each captured call is mapped to the
equivalent backend call; the request it makes (path, query string and its order, JSON body
and its key order, Accept-Encoding, Content-Type, bearer header and cookie) must match.
More goldens, recorded live from caveclient against ``caveql serve``, are in tests/server/.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from caveql.backends.base import QueryRequest
from caveql.backends.http import HttpBackend

GOLDENS = json.loads((Path(__file__).parents[1] / "fixtures" / "caveclient-requests.json").read_text())
SYN, NUC, AIBS, VIEW = "synapses_pni_2", "nucleus_detection_v0", "aibs_soma_nuc_metamodel_preds_v117", \
    "connections_with_nuclei"
R1 = 864691135808473885
ROOTS = [864691135771677771, 864691135560505569, 864691136723556861]
BOX = [[150000, 100000, 18000], [200000, 150000, 20000]]
MERGE = {"join": ((AIBS, "target_id"), (NUC, "id")), "suffix_map": {AIBS: "", NUC: "_ref"}}
MANAGER = {"join": ((AIBS, "target_id"), (NUC, "id")), "suffix_map": {AIBS: "_ref", NUC: ""}}


def q(**kw):
    kw.setdefault("version", 661)
    return lambda b: b.query(QueryRequest(**kw))


# caveclient call -> the equivalent backend call
EQUIVALENT = {
    "client.materialize.get_tables()": lambda b: b.tables(661),
    "client.materialize.get_table_metadata('nucleus_detection_v0')": lambda b: b.table_metadata(661, NUC),
    "client.materialize.get_versions()": lambda b: b.versions(),
    "client.materialize.get_version_metadata(661)": lambda b: b.version_metadata(661),
    "client.materialize.query_table('nucleus_detection_v0')": q(kind="table", table=NUC),
    "client.materialize.query_table('nucleus_detection_v0', split_positions=True, desired_resolution=[1,1,1], "
    "select_columns=['pt_position','pt_root_id'], limit=10)":
        q(kind="table", table=NUC, select_columns={NUC: ("pt_position", "pt_root_id")}, limit=10,
          desired_resolution=(1.0, 1.0, 1.0)),
    "client.materialize.query_table('aibs_soma_nuc_metamodel_preds_v117')": q(kind="join", **MERGE),
    "client.materialize.query_table('aibs_soma_nuc_metamodel_preds_v117', filter_equal_dict={'cell_type': 'BC'})":
        q(kind="join", filter_equal={AIBS: {"cell_type": "BC"}}, **MERGE),
    "client.materialize.query_table('aibs_soma_nuc_metamodel_preds_v117', filter_in_dict={'pt_root_id': "
    "[864691135771677771, 864691135560505569, 864691136723556861]})":
        q(kind="join", filter_in={AIBS: {"pt_root_id": ROOTS}}, **MERGE),
    "client.materialize.query_table('nucleus_detection_v0', filter_greater_dict={'volume': 300}, "
    "filter_less_equal_dict={'volume': 400})":
        q(kind="table", table=NUC, filter_greater={NUC: {"volume": 300}}, filter_less_equal={NUC: {"volume": 400}}),
    "client.materialize.query_table('nucleus_detection_v0', filter_greater_equal_dict={'volume': 300}, "
    "filter_less_dict={'volume': 400}, offset=5, limit=100)":
        q(kind="table", table=NUC, filter_greater_equal={NUC: {"volume": 300}}, filter_less={NUC: {"volume": 400}},
          offset=5, limit=100),
    "client.materialize.query_table('nucleus_detection_v0', filter_spatial_dict={'pt_position': "
    "[[150000, 100000, 18000], [200000, 150000, 20000]]})":
        q(kind="table", table=NUC, filter_spatial={NUC: {"pt_position": BOX}}),
    "client.materialize.query_table('aibs_soma_nuc_metamodel_preds_v117', filter_regex_dict={'cell_type': '^5P'})":
        q(kind="join", filter_regex={AIBS: {"cell_type": "^5P"}}, **MERGE),
    "client.materialize.query_table('nucleus_detection_v0', filter_out_dict={'pt_root_id': [0]})":
        q(kind="table", table=NUC, filter_notin={NUC: {"pt_root_id": [0]}}),
    "client.materialize.query_table('nucleus_detection_v0', materialization_version=343, "
    "filter_greater_dict={'volume': 500})":
        q(kind="table", table=NUC, version=343, filter_greater={NUC: {"volume": 500}}),
    "client.materialize.query_table('nucleus_detection_v0', desired_resolution=[1,1,1], "
    "select_columns=['id','pt_position'])":
        q(kind="table", table=NUC, select_columns={NUC: ("id", "pt_position")}, desired_resolution=(1, 1, 1)),
    "client.materialize.query_table('aibs_soma_nuc_metamodel_preds_v117', merge_reference=False)":
        q(kind="table", table=AIBS),
    "client.materialize.synapse_query(pre_ids=864691135808473885)":
        q(kind="table", table=SYN, filter_in={SYN: {}}, filter_equal={SYN: {"pre_pt_root_id": R1}}),
    "client.materialize.synapse_query(post_ids=[864691135771677771, 864691135560505569, 864691136723556861], "
    "remove_autapses=False)":
        q(kind="table", table=SYN, filter_in={SYN: {"post_pt_root_id": ROOTS}}, filter_equal={SYN: {}}),
    "client.materialize.synapse_query(pre_ids=[864691135808473885], post_ids=[864691135771677771, "
    "864691135560505569, 864691136723556861])":
        q(kind="table", table=SYN, filter_in={SYN: {"pre_pt_root_id": [R1], "post_pt_root_id": ROOTS}},
          filter_equal={SYN: {}}),
    "client.materialize.synapse_query(pre_ids=864691135808473885, bounding_box=[[150000, 100000, 18000], "
    "[200000, 150000, 20000]], bounding_box_column='post_pt_position')":
        q(kind="table", table=SYN, filter_in={SYN: {}}, filter_equal={SYN: {"pre_pt_root_id": R1}},
          filter_spatial={SYN: {"post_pt_position": BOX}}),
    "client.materialize.synapse_query(pre_ids=864691135808473885, include_zeros=False)":
        q(kind="table", table=SYN, filter_in={SYN: {}}, filter_equal={SYN: {"pre_pt_root_id": R1}},
          filter_notin={SYN: {"pre_pt_root_id": [0], "post_pt_root_id": [0]}}),
    "client.materialize.join_query([['synapses_pni_2','post_pt_root_id'],['nucleus_detection_v0','pt_root_id']], "
    "filter_in_dict={'synapses_pni_2': {'pre_pt_root_id': [864691135808473885]}}, select_columns="
    "{'synapses_pni_2': ['id','size'], 'nucleus_detection_v0': ['id','volume']}, suffixes={'synapses_pni_2': '', "
    "'nucleus_detection_v0': '_nuc'})":
        q(kind="join", join=((SYN, "post_pt_root_id"), (NUC, "pt_root_id")), filter_in={SYN: {"pre_pt_root_id": [R1]}},
          select_columns={SYN: ("id", "size"), NUC: ("id", "volume")}, suffix_map={SYN: "", NUC: "_nuc"}),
    "client.materialize.tables.aibs_soma_nuc_metamodel_preds_v117(cell_type='BC').query()":
        q(kind="join", filter_equal={AIBS: {"cell_type": "BC"}}, **MANAGER),
    "client.materialize.tables.aibs_soma_nuc_metamodel_preds_v117(pt_root_id=[864691135771677771, "
    "864691135560505569, 864691136723556861]).query()":
        q(kind="join", filter_in={NUC: {"pt_root_id": ROOTS}}, **MANAGER),
    "client.materialize.tables.nucleus_detection_v0(volume={'>': 100, '<=': 500}, pt_position_bbox=[[150000, "
    "100000, 18000], [200000, 150000, 20000]]).query(select_columns=['id','pt_root_id'], limit=10, "
    "desired_resolution=[1,1,1])":
        q(kind="table", table=NUC, filter_greater={NUC: {"volume": 100}}, filter_less_equal={NUC: {"volume": 500}},
          filter_spatial={NUC: {"pt_position": BOX}}, select_columns={NUC: ("id", "pt_root_id")}, limit=10,
          desired_resolution=(1.0, 1.0, 1.0)),
    "client.materialize.tables.synapses_pni_2(pre_pt_root_id=864691135808473885).query(split_positions=True)":
        q(kind="table", table=SYN, filter_equal={SYN: {"pre_pt_root_id": R1}}),
    "client.materialize.get_views()": lambda b: b.views(661),
    "client.materialize.get_view_schema('connections_with_nuclei')": lambda b: b.view_schema(661, VIEW),
    "client.materialize.query_view('connections_with_nuclei', filter_equal_dict={'pre_pt_root_id': "
    "864691135808473885}, limit=20)":
        q(kind="view", table=VIEW, filter_equal={VIEW: {"pre_pt_root_id": R1}}, limit=20),
    "client.materialize.live_live_query('nucleus_detection_v0', datetime.datetime(2024, 1, 1, "
    "tzinfo=datetime.timezone.utc), filter_equal_dict={'nucleus_detection_v0': {'id': 5}})":
        q(kind="live", table=NUC, version=None, timestamp=datetime(2024, 1, 1, tzinfo=UTC),
          filter_equal={NUC: {"id": 5}}),
    "client.materialize.get_unique_string_values('aibs_soma_nuc_metamodel_preds_v117')":
        lambda b: b.unique_string_values(AIBS),
}

DISCOVERY = ("/info/", "/materialize/api/versions", "/materialize/version")


def _expected(call: dict) -> dict:
    """The captured request of the call that the backend call corresponds to."""
    reqs = call["requests"]
    posts = [r for r in reqs if r["method"] == "POST"]
    if posts:
        return posts[0]
    return reqs[-1]  # get_tables: versions?expired then the tables GET


def test_every_captured_call_has_an_equivalent():
    calls = [c["call"] for c in GOLDENS["calls"]]
    assert GOLDENS["caveclient"] == "8.2.1"
    assert sorted(calls) == sorted(EQUIVALENT)
    assert len(calls) == 32


@pytest.mark.parametrize("call", GOLDENS["calls"], ids=lambda c: c["call"][18:70])
def test_request_matches_caveclient(call, ms):
    svc = ms.MockService()
    backend = HttpBackend(ms.DS, server=ms.GLOBAL, token=ms.TOKEN, transport=svc.transport(), cache=False)
    backend._discover()
    svc.requests.clear()
    EQUIVALENT[call["call"]](backend)
    sent = [r for r in svc.requests if not r.url.path.startswith(DISCOVERY)]
    want = _expected(call)
    match = [r for r in sent if r.method == want["method"] and r.url.path == want["path"]]
    assert match, f"no {want['method']} {want['path']} among {[r.url.path for r in sent]}"
    got = match[0]
    assert list(got.url.params.multi_items()) == list(want["query"].items())  # values and order
    if want["body"] is None:
        assert got.content == b""
    else:
        body = ms.body_of(got)
        assert body == want["body"]
        assert list(body) == list(want["body"])  # caveclient's key order
        assert got.content == json.dumps(want["body"]).encode()  # the exact bytes requests sends
    for name, value in want["headers"].items():
        assert got.headers.get(name) == value, name
    assert (want["auth"] == "bearer") == (got.headers.get("Authorization") == f"Bearer {ms.TOKEN}")
    assert want["cookie_middle_auth"] == (f"middle_auth_token={ms.TOKEN}" in got.headers.get("Cookie", ""))
    backend.close()


def test_query_target_for_explain_matches_sent_url(ms):
    from caveql.backends.endpoints import query_target

    svc = ms.MockService()
    backend = HttpBackend(ms.DS, server=ms.GLOBAL, token=ms.TOKEN, transport=svc.transport(), cache=False)
    req = QueryRequest(kind="table", table=SYN, version=661, filter_equal={SYN: {"pre_pt_root_id": R1}}, count=True)
    backend.query(req)
    sent = svc.posts()[-1]
    assert query_target(req, ms.DS) == sent.url.raw_path.decode()
