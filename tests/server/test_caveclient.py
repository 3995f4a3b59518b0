"""Unmodified caveclient 8.2.1 against ``caveql serve`` (over the tiny datastack).

For every call: caveclient's frame is what the genuine MaterializationEngine 5.26.4 would give
for the local backend's rows (``expect``: the backend request that yields the genuine columns —
with the supervoxel ids the service adds before a selected root id, a reference merge target
first, the live path's split layout — then the service's dtypes: a table's timestamps are
UTC-aware, a view's numbers Int64/Float64, a count int64); HttpBackend's request for that answer
is the same request caveclient sent (path, query string, body bytes: live goldens, beyond the
captured file); and HttpBackend's answer holds the same values.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pandas as pd
import pytest

from caveql.backends.base import QueryRequest

pytestmark = pytest.mark.timeout(120)

V = 2
BC_BOX = [[100, 200, 10], [200, 300, 12]]
NOW = datetime(2024, 5, 1, tzinfo=UTC)


def R(**kw):
    kw.setdefault("version", V)
    return QueryRequest(**kw)


def no_autapses(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.query("pre_pt_root_id!=post_pt_root_id").reset_index(drop=True)


MERGE = {"join": (("cell_types", "target_id"), ("nuclei", "id")), "suffix_map": {"cell_types": "", "nuclei": "_ref"}}
MANAGER = {"join": (("cell_types", "target_id"), ("nuclei", "id")), "suffix_map": {"cell_types": "_ref", "nuclei": ""}}
# what the service answers for those: every column of both tables, the target's block first
# (materialization-server.md §2.7), positions at the last table's resolution (nuclei: 8, 8, 40)
MERGE_X = {"join": (("nuclei", "id"), ("cell_types", "target_id")), "suffix_map": MERGE["suffix_map"],
           "desired_resolution": (8, 8, 40)}
MANAGER_X = {"join": (("nuclei", "id"), ("cell_types", "target_id")), "suffix_map": MANAGER["suffix_map"],
             "desired_resolution": (8, 8, 40)}
# the live path on a split version: every column but valid and superceded_id (a phantom, null
# `deleted` follows `created`: the live table has it, the local files do not)
LIVE_CELLS = ("id", "created", "classification_system", "cell_type", "pt_position", "pt_supervoxel_id", "pt_root_id")
LIVE_NUCLEI = ("id", "created", "volume", "pt_position", "bb_start_position", "bb_end_position", "pt_supervoxel_id",
               "pt_root_id")

# (id, caveclient call, the request caveclient sends, caveclient's split_positions, caveclient's local post-step,
#  the backend request giving the genuine answer (None: the same), the answer's shape: table/view/live/count)
CASES = [
    ("query_table", lambda c: c.materialize.query_table("cells"), R(kind="table", table="cells"), False, None,
     None, "table"),
    ("split_positions", lambda c: c.materialize.query_table("cells", split_positions=True),
     R(kind="table", table="cells"), True, None, None, "table"),
    ("filter_equal", lambda c: c.materialize.query_table("cells", filter_equal_dict={"cell_type": "BC"}),
     R(kind="table", table="cells", filter_equal={"cells": {"cell_type": "BC"}}), False, None, None, "table"),
    ("filter_in", lambda c: c.materialize.query_table("cells", filter_in_dict={"id": [1, 3, 5]}, split_positions=True),
     R(kind="table", table="cells", filter_in={"cells": {"id": [1, 3, 5]}}), True, None, None, "table"),
    ("filter_out", lambda c: c.materialize.query_table("cells", filter_out_dict={"pt_root_id": [0]},
                                                      split_positions=True),
     R(kind="table", table="cells", filter_notin={"cells": {"pt_root_id": [0]}}), True, None, None, "table"),
    ("greater_less", lambda c: c.materialize.query_table(
        "cells", filter_greater_dict={"id": 1}, filter_less_dict={"id": 5}, split_positions=True),
     R(kind="table", table="cells", filter_greater={"cells": {"id": 1}}, filter_less={"cells": {"id": 5}}), True, None,
     None, "table"),
    ("ge_le", lambda c: c.materialize.query_table(
        "nuclei", filter_greater_equal_dict={"volume": 120}, filter_less_equal_dict={"volume": 301.25},
        split_positions=True),
     R(kind="table", table="nuclei", filter_greater_equal={"nuclei": {"volume": 120}},
       filter_less_equal={"nuclei": {"volume": 301.25}}), True, None, None, "table"),
    ("spatial", lambda c: c.materialize.query_table("cells", filter_spatial_dict={"pt_position": BC_BOX},
                                                   split_positions=True),
     R(kind="table", table="cells", filter_spatial={"cells": {"pt_position": BC_BOX}}), True, None, None, "table"),
    ("regex", lambda c: c.materialize.query_table("cells", filter_regex_dict={"cell_type": "^(BC|4P)$"},
                                                 split_positions=True),
     R(kind="table", table="cells", filter_regex={"cells": {"cell_type": "^(BC|4P)$"}}), True, None, None, "table"),
    # the service selects pt_supervoxel_id right before a selected pt_root_id (query_manager.py:354-363)
    ("select_columns", lambda c: c.materialize.query_table("cells", select_columns=["pt_root_id", "id"]),
     R(kind="table", table="cells", select_columns={"cells": ("pt_root_id", "id")}), False, None,
     R(kind="table", table="cells", select_columns={"cells": ("pt_supervoxel_id", "pt_root_id", "id")}), "table"),
    ("select_position", lambda c: c.materialize.query_table("cells", select_columns=["id", "pt_position"],
                                                           desired_resolution=[1, 1, 1]),
     R(kind="table", table="cells", select_columns={"cells": ("id", "pt_position")},
       desired_resolution=(1, 1, 1)), False, None, None, "table"),
    ("offset_limit", lambda c: c.materialize.query_table("cells", offset=1, limit=3, split_positions=True),
     R(kind="table", table="cells", offset=1, limit=3), True, None, None, "table"),
    ("resolution_nm", lambda c: c.materialize.query_table("cells", desired_resolution=[1, 1, 1], split_positions=True),
     R(kind="table", table="cells", desired_resolution=(1, 1, 1)), True, None, None, "table"),
    ("resolution_coarse", lambda c: c.materialize.query_table("cells", desired_resolution=[8, 8, 80],
                                                             split_positions=True),
     R(kind="table", table="cells", desired_resolution=(8, 8, 80)), True, None, None, "table"),
    ("old_version", lambda c: c.materialize.query_table("synapses", materialization_version=1, split_positions=True),
     R(kind="table", table="synapses", version=1), True, None, None, "table"),
    ("counts", lambda c: c.materialize.query_table("cells", get_counts=True, filter_equal_dict={"cell_type": "BC"}),
     R(kind="table", table="cells", filter_equal={"cells": {"cell_type": "BC"}}, count=True), True, None, None,
     "count"),
    ("no_merge", lambda c: c.materialize.query_table("cell_types", merge_reference=False),
     R(kind="table", table="cell_types"), False, None, None, "table"),
    ("merge_reference", lambda c: c.materialize.query_table("cell_types", split_positions=True),
     R(kind="join", **MERGE), True, None, R(kind="join", **MERGE_X), "table"),
    ("merge_filtered", lambda c: c.materialize.query_table("cell_types", filter_equal_dict={"cell_type": "BC"}),
     R(kind="join", filter_equal={"cell_types": {"cell_type": "BC"}}, **MERGE), False, None,
     R(kind="join", filter_equal={"cell_types": {"cell_type": "BC"}}, **MERGE_X), "table"),
    ("manager_scalar", lambda c: c.materialize.tables.cells(cell_type="BC").query(),
     R(kind="table", table="cells", filter_equal={"cells": {"cell_type": "BC"}}), False, None, None, "table"),
    ("manager_list", lambda c: c.materialize.tables.cells(id=[1, 2, 6]).query(
        select_columns=["id", "pt_root_id"], limit=2),
     R(kind="table", table="cells", filter_in={"cells": {"id": [1, 2, 6]}},
       select_columns={"cells": ("id", "pt_root_id")}, limit=2), False, None,
     R(kind="table", table="cells", filter_in={"cells": {"id": [1, 2, 6]}},
       select_columns={"cells": ("id", "pt_supervoxel_id", "pt_root_id")}, limit=2), "table"),
    ("manager_range", lambda c: c.materialize.tables.nuclei(volume={">": 100, "<=": 512}).query(split_positions=True),
     R(kind="table", table="nuclei", filter_greater={"nuclei": {"volume": 100}},
       filter_less_equal={"nuclei": {"volume": 512}}), True, None, None, "table"),
    ("manager_bbox", lambda c: c.materialize.tables.nuclei(
        pt_position_bbox=[[50, 100, 10], [100, 150, 12]]).query(desired_resolution=[4, 4, 40]),
     R(kind="table", table="nuclei", filter_spatial={"nuclei": {"pt_position": [[50, 100, 10], [100, 150, 12]]}},
       desired_resolution=(4, 4, 40)), False, None, None, "table"),
    ("manager_reference", lambda c: c.materialize.tables.cell_types(cell_type="BC").query(split_positions=True),
     R(kind="join", filter_equal={"cell_types": {"cell_type": "BC"}}, **MANAGER), True, None,
     R(kind="join", filter_equal={"cell_types": {"cell_type": "BC"}}, **MANAGER_X), "table"),
    ("manager_reference_target", lambda c: c.materialize.tables.cell_types(pt_root_id=[1001, 1002, 1003]).query(
        split_positions=True),
     R(kind="join", filter_in={"nuclei": {"pt_root_id": [1001, 1002, 1003]}}, **MANAGER), True, None,
     R(kind="join", filter_in={"nuclei": {"pt_root_id": [1001, 1002, 1003]}}, **MANAGER_X), "table"),
    ("manager_reference_both", lambda c: c.materialize.tables.cell_types(
        classification_system="inh", volume={">=": 300}).query(split_positions=True),
     R(kind="join", filter_equal={"cell_types": {"classification_system": "inh"}},
       filter_greater_equal={"nuclei": {"volume": 300}}, **MANAGER), True, None,
     R(kind="join", filter_equal={"cell_types": {"classification_system": "inh"}},
       filter_greater_equal={"nuclei": {"volume": 300}}, **MANAGER_X), "table"),
    ("synapse_pre", lambda c: c.materialize.synapse_query(pre_ids=1001),
     R(kind="table", table="synapses", filter_in={"synapses": {}}, filter_equal={"synapses": {"pre_pt_root_id": 1001}}),
     False, no_autapses, None, "table"),
    ("synapse_post", lambda c: c.materialize.synapse_query(post_ids=[1002, 1003], remove_autapses=False,
                                                          split_positions=True),
     R(kind="table", table="synapses", filter_in={"synapses": {"post_pt_root_id": [1002, 1003]}},
       filter_equal={"synapses": {}}), True, None, None, "table"),
    ("synapse_pre_post", lambda c: c.materialize.synapse_query(pre_ids=[1001, 1002], post_ids=[1002, 1005],
                                                              split_positions=True),
     R(kind="table", table="synapses", filter_in={"synapses": {"pre_pt_root_id": [1001, 1002],
                                                               "post_pt_root_id": [1002, 1005]}},
       filter_equal={"synapses": {}}), True, no_autapses, None, "table"),
    ("synapse_bbox", lambda c: c.materialize.synapse_query(
        bounding_box=[[0, 0, 0], [25, 45, 2]], bounding_box_column="pre_pt_position", split_positions=True),
     R(kind="table", table="synapses", filter_in={"synapses": {}}, filter_equal={"synapses": {}},
       filter_spatial={"synapses": {"pre_pt_position": [[0, 0, 0], [25, 45, 2]]}}), True, no_autapses, None, "table"),
    ("synapse_zeros", lambda c: c.materialize.synapse_query(pre_ids=1001, include_zeros=False, split_positions=True),
     R(kind="table", table="synapses", filter_in={"synapses": {}},
       filter_notin={"synapses": {"pre_pt_root_id": [0], "post_pt_root_id": [0]}},
       filter_equal={"synapses": {"pre_pt_root_id": 1001}}), True, no_autapses, None, "table"),
    ("synapse_limit", lambda c: c.materialize.synapse_query(pre_ids=1001, limit=2, offset=1, split_positions=True,
                                                           remove_autapses=False),
     R(kind="table", table="synapses", filter_in={"synapses": {}}, filter_equal={"synapses": {"pre_pt_root_id": 1001}},
       offset=1, limit=2), True, None, None, "table"),
    ("synapse_resolution", lambda c: c.materialize.synapse_query(post_ids=1002, desired_resolution=[1, 1, 1],
                                                                split_positions=True),
     R(kind="table", table="synapses", filter_in={"synapses": {}}, filter_equal={"synapses": {"post_pt_root_id": 1002}},
       desired_resolution=(1, 1, 1)), True, no_autapses, None, "table"),
    ("join", lambda c: c.materialize.join_query(
        [["synapses", "post_pt_root_id"], ["cells", "pt_root_id"]],
        select_columns={"synapses": ["id", "size"], "cells": ["id", "cell_type"]},
        suffixes={"synapses": "", "cells": "_cell"}, split_positions=True),
     R(kind="join", join=(("synapses", "post_pt_root_id"), ("cells", "pt_root_id")),
       select_columns={"synapses": ("id", "size"), "cells": ("id", "cell_type")},
       suffix_map={"synapses": "", "cells": "_cell"}), True, None, None, "table"),
    ("join_filtered", lambda c: c.materialize.join_query(
        [["synapses", "pre_pt_root_id"], ["cells", "pt_root_id"]],
        filter_equal_dict={"cells": {"cell_type": "BC"}}, filter_greater_dict={"synapses": {"size": 100}},
        suffixes={"synapses": "_syn", "cells": ""}, split_positions=True),
     R(kind="join", join=(("synapses", "pre_pt_root_id"), ("cells", "pt_root_id")),
       filter_equal={"cells": {"cell_type": "BC"}}, filter_greater={"synapses": {"size": 100}},
       suffix_map={"synapses": "_syn", "cells": ""}), True, None,
     R(kind="join", join=(("synapses", "pre_pt_root_id"), ("cells", "pt_root_id")),
       filter_equal={"cells": {"cell_type": "BC"}}, filter_greater={"synapses": {"size": 100}},
       suffix_map={"synapses": "_syn", "cells": ""}, desired_resolution=(4, 4, 40)), "table"),
    ("view", lambda c: c.materialize.query_view("syn_counts"), R(kind="view", table="syn_counts"), False, None, None,
     "view"),
    ("view_filtered", lambda c: c.materialize.query_view(
        "syn_counts", filter_equal_dict={"pre_pt_root_id": 1001}, select_columns=["post_pt_root_id", "n_syn"],
        limit=5),
     R(kind="view", table="syn_counts", filter_equal={"syn_counts": {"pre_pt_root_id": 1001}},
       select_columns={"syn_counts": ("post_pt_root_id", "n_syn")}, limit=5), False, None, None, "view"),
    ("view_count", lambda c: c.materialize.query_view("syn_counts", get_counts=True),
     R(kind="view", table="syn_counts", count=True), False, None, None, "count"),
    ("live", lambda c: c.materialize.live_live_query("cells", NOW, split_positions=True),
     R(kind="live", table="cells", version=None, timestamp=NOW), True, None,
     R(kind="live", table="cells", version=None, timestamp=NOW, select_columns={"cells": LIVE_CELLS}), "live"),
    ("live_filtered", lambda c: c.materialize.live_live_query(
        "synapses", NOW, filter_in_dict={"synapses": {"pre_pt_root_id": [1001, 1002]}},
        select_columns={"synapses": ["id", "pre_pt_root_id", "post_pt_root_id", "size"]}, limit=3),
     R(kind="live", table="synapses", version=None, timestamp=NOW,
       filter_in={"synapses": {"pre_pt_root_id": [1001, 1002]}},
       select_columns={"synapses": ("id", "pre_pt_root_id", "post_pt_root_id", "size")}, limit=3), False, None, None,
     "live"),
    ("live_join", lambda c: c.materialize.live_live_query(
        "cell_types", NOW, joins=[["cell_types", "target_id", "nuclei", "id"]],
        suffixes={"cell_types": "", "nuclei": "_nuc"}, split_positions=True),
     R(kind="live", table="cell_types", version=None, timestamp=NOW,
       live_joins=(("cell_types", "target_id", "nuclei", "id"),), suffix_map={"cell_types": "", "nuclei": "_nuc"}),
     True, None,
     R(kind="live", table="cell_types", version=None, timestamp=NOW,
       live_joins=(("cell_types", "target_id", "nuclei", "id"),), suffix_map={"cell_types": "", "nuclei": "_nuc"},
       select_columns={"cell_types": ("id", "created", "target_id", "classification_system", "cell_type"),
                       "nuclei": LIVE_NUCLEI}), "live"),
]


def expected_frame(helpers, backend, expect, shape) -> pd.DataFrame:
    """The genuine service's frame for the local backend's answer to ``expect``."""
    res = backend.query(expect)
    if shape == "count":
        return pd.DataFrame({"count": [res.table.column("count")[0].as_py()]})
    frame = helpers.to_frame(res.table)
    if shape == "view":
        return frame
    frame = helpers.utc(frame)
    if shape == "live" and expect.select_columns and "created" in next(iter(expect.select_columns.values())):
        for col in [c for c in frame.columns if c.startswith("created")]:
            frame.insert(list(frame.columns).index(col) + 1, col.replace("created", "deleted"),
                         pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns, UTC]"))
    return frame


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_caveclient_call(tiny_served, helpers, case, caplog):
    name, call, request, split, post, expect, shape = case
    caplog.set_level(logging.ERROR)  # caveclient logs Warning headers and notices at WARNING
    client = tiny_served.caveclient()
    rec = tiny_served.recorder
    before = len(rec.log)
    frame = call(client)
    cc_posts = [e for e in rec.log[before:] if e["method"] == "POST"]
    assert len(cc_posts) == 1, [e["path"] for e in rec.log[before:]]

    want = expected_frame(helpers, tiny_served.backend, expect or request, shape)
    got = frame.reset_index(drop=True)
    if post is not None:
        want = post(want)
    if not split:
        want = helpers.packed(want)
    assert list(got.columns) == list(want.columns)
    assert list(got.dtypes.astype(str)) == list(want.dtypes.astype(str))
    helpers.assert_frames(got, want)

    hb = tiny_served.http()
    before = len(rec.log)
    answer = hb.query(request)
    ours = [e for e in rec.log[before:] if e["method"] == "POST"]
    assert len(ours) == 1
    assert ours[0]["path"] == cc_posts[0]["path"]
    assert ours[0]["query"] == cc_posts[0]["query"]
    assert ours[0]["body"] == cc_posts[0]["body"], (ours[0]["body"], cc_posts[0]["body"])
    assert ours[0]["headers"]["accept-encoding"] == cc_posts[0]["headers"]["accept-encoding"] == "zstd"
    # HttpBackend's answer: the same values (its representation of timestamps is the client's choice)
    mine = helpers.naive(helpers.to_frame(answer.table))
    full = expected_frame(helpers, tiny_served.backend, expect or request, shape)
    assert list(mine.columns) == list(full.columns)
    helpers.assert_frames(mine, helpers.naive(full))
    notices = [w for w in answer.warnings if w.startswith("Table Owner Notice")]
    names = request.tables() if request.kind != "live" else ()
    assert notices == [f"Table Owner Notice on {t}: Synthetic: for tests only." for t in names if t == "cell_types"]


def test_enough_conformance_calls():
    assert len(CASES) >= 30


def test_metadata_calls(tiny_served):
    c = tiny_served.caveclient()
    b = tiny_served.backend
    hb = tiny_served.http()
    assert c.materialize.get_versions() == b.versions() == hb.versions()
    assert c.materialize.version == 2
    meta = c.materialize.get_version_metadata(2)
    assert meta["version"] == 2 and meta["time_stamp"].year == 2023
    served = hb.version_metadata(2)
    assert served["time_stamp"] == b.version_metadata(2)["time_stamp"]
    assert {k: v for k, v in served.items() if k != "expires_on"} == {
        k: v for k, v in b.version_metadata(2).items() if k != "expires_on"}
    assert len(c.materialize.get_versions_metadata()) == 2
    assert c.materialize.get_timestamp(1) == c.materialize.get_version_metadata(1)["time_stamp"]
    assert sorted(c.materialize.get_tables()) == sorted(b.tables(2)) == sorted(hb.tables(2))
    tm = c.materialize.get_table_metadata("cells")
    assert tm["voxel_resolution"] == [4.0, 4.0, 40.0] and tm["schema_type"] == "cell_type_local"
    assert hb.table_metadata(2, "cells")["description"] == b.table_metadata(2, "cells")["description"]
    assert {m["table_name"] for m in c.materialize.get_tables_metadata()} == set(b.tables(2))
    assert c.materialize.get_annotation_count("synapses") == b.table_count(2, "synapses") == hb.table_count(2, "synapses")
    assert c.materialize.get_annotation_count("cells") == 6  # materializedmetadata.row_count: valid rows
    assert c.materialize.get_views() == b.views(2) == hb.views(2)
    assert c.materialize.get_view_metadata("syn_counts")["description"] == b.views(2)["syn_counts"]["description"]
    schema = c.materialize.get_view_schema("syn_counts")
    assert schema == hb.view_schema(2, "syn_counts")
    assert set(schema) == set(b.table_columns(2, "syn_counts").names)
    assert c.materialize.get_view_schemas() == {"syn_counts": schema}
    assert c.materialize.get_unique_string_values("cells") == b.unique_string_values("cells") \
        == hb.unique_string_values("cells")
    # (the service's `created` is UTC-aware: how a client represents it is the client's choice)
    assert hb.table_columns(2, "cells").names == b.table_columns(2, "cells").names
    assert hb.table_columns(2, "syn_counts") == b.table_columns(2, "syn_counts")
    info = c.info.get_datastack_info()
    assert info["local_server"] == tiny_served.url and info["synapse_table"] == "synapses"
    assert hb.info()["synapse_table"] == "synapses"


def test_table_manager_fields(tiny_served):
    c = tiny_served.caveclient()
    tables = c.materialize.tables
    assert set(tables.table_names) == set(tiny_served.backend.tables(2))
    assert "pt_position_bbox" in tables.cells.spatial_fields
    assert "volume" in tables.nuclei.numeric_fields
    assert "cell_type" in tables.cell_types.fields and "pt_root_id" in tables.cell_types.fields


def test_json_answers(tiny_served):
    c = tiny_served.caveclient()
    rows = c.materialize.query_table("cells", return_df=False, filter_equal_dict={"cell_type": "BC"})
    assert [r["id"] for r in rows] == [2, 5] and "pt_position_x" in rows[0]


def test_row_cap_and_warning(tiny_capped, caplog):
    caplog.set_level(logging.WARNING, logger="caveclient.base")
    c = tiny_capped.caveclient()
    frame = c.materialize.query_table("cells", split_positions=True)
    assert len(frame) == 3
    assert any("Limited query to 3 rows" in r.getMessage() for r in caplog.records)
    hb = tiny_capped.http()
    res = hb.query(QueryRequest(kind="table", table="cells", version=2))
    assert res.capped and res.table.num_rows == 3 and res.warnings == ('201 - "Limited query to 3 rows',)
    res = hb.query(QueryRequest(kind="table", table="cells", version=2, limit=2))
    assert res.capped and res.table.num_rows == 2  # the service also warns when the user's limit is hit
    res = hb.query(QueryRequest(kind="table", table="cells", version=2, count=True))
    assert not res.capped and res.table.column("count").to_pylist() == [6]
    res = hb.query(QueryRequest(kind="live", table="cells", timestamp=datetime(2024, 1, 1)))
    assert res.table.num_rows == 3
    # the live text keeps the indentation of its f-string's continuation line (api2.py:491-492)
    assert "result has 3 entries, which is equal or more         than limit of 3 there may be more " \
           "results which are not shown" in res.warnings


def test_error_shapes(tiny_served):
    import httpx

    url = tiny_served.url + "/materialize/api/v3/datastack/tiny/version/2"
    r = httpx.post(url + "/table/cels/query", json={})
    assert r.status_code == 500
    assert r.json()["message"] == "404 Not Found: Analysis table 'cels' not found for version 2 in datastack tiny"
    assert r.json()["code"] == 500 and isinstance(r.json()["traceback"], list)
    r = httpx.post(url + "/table/cells/query", json={"filter_out_dict": {"cells": {"id": [1]}}})
    assert r.status_code == 500 and r.json() == {"schema_errors": {"filter_out_dict": ["Unknown field."]}}
    r = httpx.post(url + "/table/cells/query", json={"limit": "many"})
    assert r.json() == {"schema_errors": {"limit": ["Not a valid integer."]}}
    r = httpx.post(url + "/table/cells/query", json={"select_columns": ["nope"]})
    assert r.status_code == 500 and r.json()["message"] == "nope not in model or models for cells"
    r = httpx.post(url + "/table/cells/query?count=maybe", json={})
    assert r.status_code == 500 and r.json() == {"errors": {"count": "whether to only return the count of a query "
                                                                     "Invalid literal for boolean(): maybe"},
                                                 "message": "Input payload validation failed"}
    r = httpx.post(url + "/query", json={"filter_in_dict": {}})
    assert r.json() == {"schema_errors": {"tables": ["Missing data for required field."]}}
    r = httpx.post(tiny_served.url + "/materialize/api/v3/datastack/tiny/query", json={"table": "cells"})
    assert r.json() == {"schema_errors": {"timestamp": ["Missing data for required field."]}}
    r = httpx.get(tiny_served.url + "/materialize/api/v3/datastack/tiny/version/77")
    assert r.status_code == 404 and r.json() == "No version found"
    r = httpx.post(url + "/table/cells/query", content=b"{not json")
    assert r.status_code == 500 and r.json()["message"].startswith(
        "400 Bad Request: Failed to decode JSON object: Expecting property name enclosed in double quotes")
    r = httpx.get(tiny_served.url + "/info/api/v2/datastack/full/nope")
    assert r.status_code == 404


def test_errors_through_httpbackend_and_caveclient(tiny_served):
    import requests

    from caveql.errors import ServiceError

    hb = tiny_served.http()
    with pytest.raises(ServiceError, match="Analysis table 'cels' not found for version 2 in datastack tiny") as err:
        hb.query(QueryRequest(kind="table", table="cels", version=2))
    assert err.value.status == 500
    c = tiny_served.caveclient()
    with pytest.raises(requests.HTTPError,
                       match="500 Server Error: 404 Not Found: Analysis table 'cels' not found for version 2"):
        c.materialize.query_table("cels", merge_reference=False)


def test_token_check(tiny_datastack):
    from caveql.backends.http import HttpBackend
    from caveql.errors import AuthError
    from caveql.server import ServerThread, create_app
    from caveql.backends.local import LocalBackend

    with LocalBackend(tiny_datastack) as backend, ServerThread(create_app(backend, token="s3cret-token-value")) as s:
        ok = HttpBackend("tiny", server=s.url, token="s3cret-token-value", cache=False)
        assert ok.versions() == [1, 2]
        bad = HttpBackend("tiny", server=s.url, token="wrong-token-value", cache=False)
        with pytest.raises(AuthError) as err:
            bad.versions()
        assert err.value.status == 403 and "wrong-token-value" not in str(err.value)
        none = HttpBackend("tiny", server=s.url, cache=False, env={}, secrets_dir="/nonexistent")
        with pytest.raises(AuthError, match="none was found"):
            none.versions()
        for b in (ok, bad, none):
            b.close()


def test_caveclient_body_bytes_match_the_captured_goldens_format(tiny_served):
    """caveclient's POST bodies on the wire are json.dumps defaults: what encode_body produces."""
    from caveql.backends.endpoints import encode_body

    c = tiny_served.caveclient()
    before = len(tiny_served.recorder.log)
    c.materialize.query_table("cells", filter_in_dict={"id": [1, 2]}, limit=5, desired_resolution=[1, 1, 1])
    post = [e for e in tiny_served.recorder.log[before:] if e["method"] == "POST"][0]
    req = R(kind="table", table="cells", filter_in={"cells": {"id": [1, 2]}}, limit=5, desired_resolution=(1, 1, 1))
    assert post["body"] == encode_body(req)
    assert json.loads(post["body"])["desired_resolution"] == [1, 1, 1]


# The same calls as CQL: caveclient's frame equals the engine's answer through the local backend
# and through the HTTP backend against the same server (columns, dtypes, values, order).
CQL = {
    "query_table": "SELECT * FROM cells",
    "split_positions": "SELECT * FROM cells SPLIT POSITIONS",
    "filter_equal": "SELECT * FROM cells WHERE cell_type = 'BC'",
    "filter_in": "SELECT * FROM cells WHERE id IN (1, 3, 5) SPLIT POSITIONS",
    "greater_less": "SELECT * FROM cells WHERE id > 1 AND id < 5 SPLIT POSITIONS",
    "ge_le": "SELECT * FROM nuclei WHERE volume >= 120 AND volume <= 301.25 SPLIT POSITIONS",
    "spatial": "SELECT * FROM cells WHERE pt_position WITHIN BOX((100, 200, 10), (200, 300, 12)) SPLIT POSITIONS",
    "regex": "SELECT * FROM cells WHERE cell_type ~ '^(BC|4P)$' SPLIT POSITIONS",
    "offset_limit": "SELECT * FROM cells LIMIT 3 OFFSET 1 SPLIT POSITIONS",
    "resolution_nm": "SELECT * FROM cells AT RESOLUTION 1,1,1 SPLIT POSITIONS",
    # (not "resolution_coarse": at a non-integral ratio CQL scales positions itself, exactly, into
    # Float64, where the service truncates into Int32 — a documented CQL choice)
    "old_version": "SELECT * FROM synapses AT VERSION 1 SPLIT POSITIONS",
    "manager_scalar": "SELECT * FROM cells WHERE cell_type = 'BC'",
    "manager_range": "SELECT * FROM nuclei WHERE volume > 100 AND volume <= 512 SPLIT POSITIONS",
    # nuclei are stored in 8x8x40 nm voxels; the box corners are in the statement's 4x4x40
    "manager_bbox": "SELECT * FROM nuclei WHERE pt_position WITHIN BOX((100, 200, 10), (200, 300, 12)) "
                    "AT RESOLUTION 4,4,40",
    "manager_reference": "SELECT * FROM cell_types WHERE cell_type = 'BC' SPLIT POSITIONS",
    "manager_reference_target": "SELECT * FROM cell_types WHERE pt_root_id IN (1001, 1002, 1003) SPLIT POSITIONS",
    "manager_reference_both": "SELECT * FROM cell_types WHERE classification_system = 'inh' AND volume >= 300 "
                              "SPLIT POSITIONS",
    "synapse_pre": "SELECT * FROM synapses WHERE pre_pt_root_id = 1001 AND pre_pt_root_id != post_pt_root_id",
    "synapse_post": "SELECT * FROM synapses WHERE post_pt_root_id IN (1002, 1003) SPLIT POSITIONS",
    "synapse_pre_post": "SELECT * FROM synapses WHERE pre_pt_root_id IN (1001, 1002) AND post_pt_root_id IN "
                        "(1002, 1005) AND pre_pt_root_id != post_pt_root_id SPLIT POSITIONS",
    "synapse_limit": "SELECT * FROM synapses WHERE pre_pt_root_id = 1001 LIMIT 2 OFFSET 1 SPLIT POSITIONS",
    "synapse_resolution": "SELECT * FROM synapses WHERE post_pt_root_id = 1002 AND "
                          "pre_pt_root_id != post_pt_root_id AT RESOLUTION 1,1,1 SPLIT POSITIONS",
    "view": "SELECT * FROM syn_counts",
    "live": "SELECT * FROM cells AT TIMESTAMP '2024-05-01T00:00:00' SPLIT POSITIONS",
}


def _cells(series: pd.Series) -> list:
    return [tuple(str(x) for x in v) if hasattr(v, "__len__") and not isinstance(v, str) else str(v)
            for v in series]


def comparable(cc: pd.DataFrame, cql: pd.DataFrame, helpers) -> tuple[pd.DataFrame, pd.DataFrame]:
    """caveclient's and CQL's frames on their common columns: CQL's live table has the live
    answer's columns without the phantom ``deleted`` the service's live path adds (and a frozen
    answer's columns are the same). Timestamps (UTC-aware) and view floats (Float64) are
    compared as they are."""
    common = [c for c in cql.columns if c in cc.columns]
    return cc[common], cql[common]


@pytest.mark.parametrize("name", sorted(CQL))
def test_caveclient_equals_cql(tiny_served, tiny_datastack, name, caplog, helpers):
    from caveql.backends.http import HttpBackend
    from caveql.backends.local import LocalBackend
    from caveql.engine import Engine

    caplog.set_level(logging.ERROR)
    call = {c[0]: c[1] for c in CASES}[name]
    want = call(tiny_served.caveclient()).reset_index(drop=True)
    with LocalBackend(tiny_datastack) as local, \
            HttpBackend("tiny", server=tiny_served.url, token="t" * 32, cache=False) as remote:
        for backend in (local, remote):
            got = Engine(backend).execute(CQL[name]).frame.reset_index(drop=True)
            if name == "live":
                # the live answer's columns: caveclient's but the phantom `deleted` (null here; the
                # service drops it whenever it merges rows of the live database)
                assert set(want.columns) - set(got.columns) == {"deleted"}
                assert set(got.columns) <= set(want.columns)
            else:
                assert set(got.columns) == set(want.columns)
            a, b = comparable(want, got, helpers)
            assert list(a.dtypes.astype(str)) == list(b.dtypes.astype(str))
            helpers.assert_frames(b, a)


def test_cql_star_on_the_genuine_live_layout(tiny_served, tiny_datastack):
    """The genuine live path on a split version answers without valid/superceded_id (and with a
    phantom deleted): CQL's live `*` asks for neither and gives the same frame through both
    backends."""
    from caveql.backends.http import HttpBackend
    from caveql.backends.local import LocalBackend
    from caveql.engine import Engine

    with HttpBackend("tiny", server=tiny_served.url, token="t" * 32, cache=False) as remote, \
            LocalBackend(tiny_datastack) as local:
        got = Engine(remote).execute(CQL["live"]).frame
        want = Engine(local).execute(CQL["live"]).frame
        assert not {"valid", "superceded_id", "deleted"} & set(got.columns)
        pd.testing.assert_frame_equal(got, want, check_exact=True)


def test_answer_encodings(tiny_served):
    """IPC buffers follow Accept-Encoding (lz4 before zstd, else none); JSON answers are gzipped."""
    import httpx
    import pyarrow as pa

    url = tiny_served.url + "/materialize/api/v3/datastack/tiny/version/2/table/cells/query"
    seen = {}
    for enc in ("lz4", "zstd", "identity"):
        r = httpx.post(url + "?return_pyarrow=True", json={}, headers={"Accept-Encoding": enc})
        assert r.headers["content-type"] == "data.arrow"
        table = pa.ipc.open_stream(r.content).read_all()
        assert table.num_rows == 6
        seen[enc] = r.content
    assert len({seen["lz4"], seen["zstd"], seen["identity"]}) == 3  # three codecs, three encodings
    r = httpx.post(url + "?return_pyarrow=False", json={}, headers={"Accept-Encoding": "gzip"})
    assert r.headers["content-type"].startswith("application/json") and r.headers.get("content-encoding") == "gzip"
    assert [row["id"] for row in r.json()] == [1, 2, 3, 4, 5, 6]
    assert r.headers.get_list("dataframe_resolution") == ["4.0", "4.0", "40.0"]
    assert "cells" in r.headers["column_names"]


def test_random_sample_and_metadata_options(tiny_served, caplog):
    caplog.set_level(logging.ERROR)
    c = tiny_served.caveclient()
    full = c.materialize.query_table("synapses", split_positions=True)
    # at or above the row count the service does not sample (materialization-server.md §2.1)
    same = c.materialize.query_table("synapses", random_sample=len(full), split_positions=True)
    pd.testing.assert_frame_equal(same, full)
    before = len(tiny_served.recorder.log)
    some = c.materialize.query_table("synapses", random_sample=3, split_positions=True, metadata=False)
    post = [e for e in tiny_served.recorder.log[before:] if e["method"] == "POST"][0]
    assert "random_sample=3" in post["query"]
    # TABLESAMPLE SYSTEM samples whole blocks (here: the Parquet row groups' vectors), before the
    # filters; so few rows give no guarantee on the count
    assert set(some["id"]) <= set(full["id"]) and len(some) <= len(full)
    assert some.attrs == {}  # metadata=False: caveclient adds no attrs
    assert full.attrs["dataframe_resolution"] == [4.0, 4.0, 40.0]  # parsed from our header


def test_api_v2_deployment(tiny_datastack, caplog):
    """Against a server offering only API v2, caveclient and HttpBackend both fall back to the v2
    routes; positions come back in voxels and are converted client-side, identically."""
    from caveql.backends.http import HttpBackend
    from caveql.backends.local import LocalBackend
    from caveql.server import ServerThread, create_app

    import caveclient

    caplog.set_level(logging.ERROR)
    with LocalBackend(tiny_datastack, server_compat=True) as backend, \
            ServerThread(create_app(backend, api_versions=(2,))) as s:
        c = caveclient.CAVEclient("tiny", server_address=s.url, auth_token="t" * 32, write_server_cache=False)
        assert c.materialize.api_version == 2
        want = c.materialize.query_table("cells", desired_resolution=[1, 1, 1], split_positions=True)
        with HttpBackend("tiny", server=s.url, token="t" * 32, cache=False) as hb:
            assert hb.api_version == 2
            got = hb.query(R(kind="table", table="cells", desired_resolution=(1, 1, 1)))
            assert got.resolution == (1.0, 1.0, 1.0)
            frame = got.table.to_pandas()
            for axis, scale in zip("xyz", (4, 4, 40), strict=True):
                col = f"pt_position_{axis}"
                assert [int(v) for v in frame[col]] == [int(v) for v in want[col]]
                assert [int(v) for v in frame[col]] == [int(v) * scale for v in
                                                         backend.query(R(kind="table", table="cells")).table
                                                         .column(col).to_pylist()]
        c.materialize.session.close()
