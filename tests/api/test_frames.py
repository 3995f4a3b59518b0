"""Frames shaped as caveclient shapes them (issue #15 items 6, 7): position columns, ``attrs``.

caveclient is the reference: it runs against ``caveql serve`` over the tiny datastack, and
caveql's frame (through the HTTP backend, against the same server) must equal its frame."""

from __future__ import annotations

import copy
import json
import logging
import warnings
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd
import pytest

import caveql
from caveql.backends.local import LocalBackend
from caveql.server import ServerThread, create_app

TOKEN = "0123456789abcdef0123456789abcdef"
LIVE_AT = datetime(2024, 5, 1, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def served(tiny_datastack):
    backend = LocalBackend(tiny_datastack, server_compat=True)
    server = ServerThread(create_app(backend)).start()
    yield backend.name, server.url
    server.stop()
    backend.close()


@pytest.fixture
def client(served, caplog):
    import caveclient

    caplog.set_level(logging.ERROR)  # caveclient logs the service's warnings and deprecations
    name, url = served
    c = caveclient.CAVEclient(name, server_address=url, auth_token=TOKEN, write_server_cache=False)
    yield c.materialize
    for sub in ("_materialize", "_info", "_schema", "_auth", "_chunkedgraph", "_annotation"):
        session = getattr(getattr(c, sub, None), "session", None)
        if session is not None:
            session.close()


@pytest.fixture
def db(served):
    name, url = served
    with caveql.connect(name, server=url, token=TOKEN, cache=False) as conn:
        yield conn


def _same_cells(got: pd.Series, want: pd.Series) -> None:
    """Position columns equal cell by cell: values, and each array's dtype."""
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        assert type(a) is type(b)
        assert a.dtype == b.dtype, (a, b)
        assert str(a.tolist()) == str(b.tolist())


# ----------------------------------------------------------------------------- item 6
POSITIONS = ("pt_position", "bb_start_position", "bb_end_position")


def test_null_positions_as_caveclient_gives_them(client, db):
    """nuclei's bounding boxes are all null: caveclient (the service's nullable Int32 components)
    packs each into an object array of NA, and the others into int64 arrays; caveql the same."""
    want = client.query_table("nuclei")
    got = db.query("SELECT * FROM nuclei")
    assert list(got.columns) == list(want.columns)
    for col in POSITIONS:
        assert got[col].dtype == want[col].dtype
        _same_cells(got[col], want[col])
    assert any(v.dtype == object for v in want.bb_start_position)  # the case is exercised


def test_empty_answer_positions_as_caveclient_gives_them(client, db):
    """No rows: caveclient's position columns are float64 (it assigns an empty list)."""
    want = client.query_table("nuclei", filter_equal_dict={"pt_root_id": 999})
    db.allow_invalid_root_ids = True  # 999 was never a root: run it anyway, to the empty answer
    got = db.query("SELECT * FROM nuclei WHERE pt_root_id = 999")
    assert len(want) == len(got) == 0
    assert got.dtypes.astype(str).to_dict() == want.dtypes.astype(str).to_dict()


def test_empty_positions_through_a_local_datastack(tiny_datastack):
    """The same frame from a local datastack as caveclient's packing of an empty answer."""
    from caveclient.materializationengine import concatenate_position_columns

    with caveql.connect(path=tiny_datastack) as conn:
        split = conn.query("SELECT id, pt_position FROM cells WHERE id < 0 SPLIT POSITIONS")
        got = conn.query("SELECT id, pt_position FROM cells WHERE id < 0")
    want = concatenate_position_columns(split, inplace=False)
    assert got.dtypes.astype(str).to_dict() == want.dtypes.astype(str).to_dict()


# ----------------------------------------------------------------------------- item 7
CASES: dict[str, tuple[str, Any]] = {
    "query_table": ("SELECT * FROM nuclei WHERE pt_root_id IN (1001, 1003) LIMIT 5",
                    lambda m: m.query_table("nuclei", filter_in_dict={"pt_root_id": [1001, 1003]}, limit=5)),
    "select_resolution": ("SELECT id, pt_position FROM cells AT RESOLUTION 1,1,1",
                          lambda m: m.query_table("cells", select_columns=["id", "pt_position"],
                                                  desired_resolution=[1, 1, 1])),
    "equal_filter": ("SELECT * FROM cells WHERE cell_type = 'BC'",
                     lambda m: m.query_table("cells", filter_equal_dict={"cell_type": "BC"})),
    "view": ("SELECT * FROM syn_counts LIMIT 2", lambda m: m.query_view("syn_counts", limit=2)),
    "reference": ("SELECT * FROM cell_types WHERE cell_type = 'BC'",
                  lambda m: m.query_table("cell_types", filter_equal_dict={"cell_type": "BC"})),
    "synapse_query": ("SELECT * FROM synapses WHERE pre_pt_root_id = 1001",
                      lambda m: m.synapse_query(pre_ids=1001, remove_autapses=False, include_zeros=True)),
    "live": ("SELECT * FROM cells AT TIMESTAMP '2024-05-01T00:00:00'",
             lambda m: m.live_live_query("cells", LIVE_AT)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_attrs_as_caveclient_sets_them(client, db, name):
    cql, call = CASES[name]
    want = call(client).attrs
    got = db.query(cql).attrs
    assert want, "caveclient set no attrs"
    # column_names is a response header caveclient stores verbatim; caveql does not set it
    want = {k: v for k, v in want.items() if k != "column_names"}
    mine = {k: v for k, v in got.items() if k != "caveql"}
    assert mine == want
    assert {k: type(v) for k, v in mine.items()} == {k: type(v) for k, v in want.items()}


def test_caveql_provenance(db, served):
    name, url = served
    df = db.query("SET version = 1; SELECT id FROM synapses WHERE post_pt_root_id IN "
                  "(SELECT pt_root_id FROM cells WHERE cell_type = :t)", t="BC")
    mine = df.attrs["caveql"]
    assert mine["cql"].startswith("SELECT id FROM synapses")  # the statement, not the script
    assert (mine["datastack"], mine["version"], mine["server"]) == (name, 1, url)
    calls = [(r["table"], r["call"].split()[0]) for r in mine["requests"]]
    assert calls == [("cells", "query_table"), ("synapses", "synapse_query")]
    assert mine["requests"][0]["filters"] == {"equal": {"cells": {"cell_type": "BC"}}}
    assert mine["requests"][1]["fed_by"] == ["sub0.pt_root_id -> synapses.post_pt_root_id"]
    assert all(r["requests"] >= 1 and r["version"] == 1 for r in mine["requests"])
    assert mine["requests"][1]["rows"] >= len(df)
    # two calls: caveclient has no one call for it, so none of its keys
    assert set(df.attrs) == {"caveql"}


def test_message_frames_carry_provenance(db):
    df = db.query("SET version = 1")
    assert df.attrs["caveql"]["cql"] == "SET version = 1" and df.attrs["caveql"]["requests"] == []


def test_attrs_stay_small_and_json_like(db):
    ids = list(range(10_000, 20_000))
    db.allow_invalid_root_ids = True  # made-up ids (a long list is the point)
    df = db.query("SELECT id FROM synapses WHERE pre_pt_root_id IN :ids", ids=ids)
    text = json.dumps(df.attrs)  # JSON types only
    assert len(text) < 5_000
    summary = df.attrs["filters"]["inclusive"]["pre_pt_root_id"]
    assert summary["count"] == len(ids) and summary["head"] == ids[:5]
    long_text = "SELECT id FROM cells WHERE id IN (" + ", ".join(map(str, range(3000))) + ")"
    mine = db.query(long_text).attrs["caveql"]
    assert mine["cql_chars"] == len(long_text) and len(mine["cql"]) < 2100


def test_attrs_survive_pandas_operations_without_warnings(db):
    df = db.query("SELECT id, pt_root_id, cell_type, pt_position FROM cells")
    attrs = copy.deepcopy(df.attrs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        results = [df.copy(), df[df.cell_type == "BC"], df.head(2), df.sort_values("id"),
                   df[["id", "pt_root_id"]], df.reset_index(drop=True), pd.concat([df, df]),
                   df.merge(df[["id"]], on="id"), df.assign(n=1)]
        np.stack(df.pt_position)
    for out in results:
        assert out.attrs == attrs


@pytest.mark.parametrize("cql,call", [
    ("SELECT * FROM cells WHERE cell_type = 'BC'",
     lambda m: m.query_table("cells", filter_equal_dict={"cell_type": "BC"})),
    ("SELECT * FROM cell_types", lambda m: m.query_table("cell_types")),
], ids=["table", "reference"])
def test_attrs_against_an_api_v2_deployment(tiny_datastack, caplog, cql, call):
    """No dataframe_resolution header on API v2: caveclient takes the tables' voxel resolution
    as their metadata gives it (``mixed_resolutions`` for a merge of two); caveql the same."""
    import caveclient

    caplog.set_level(logging.ERROR)
    with LocalBackend(tiny_datastack, server_compat=True) as backend, \
            ServerThread(create_app(backend, api_versions=(2,))) as s:
        c = caveclient.CAVEclient(backend.name, server_address=s.url, auth_token=TOKEN,
                                  write_server_cache=False)
        try:
            want = {k: v for k, v in call(c.materialize).attrs.items() if k != "column_names"}
        finally:
            c.materialize.session.close()
        with caveql.connect(backend.name, server=s.url, token=TOKEN, cache=False) as conn:
            got = {k: v for k, v in conn.query(cql).attrs.items() if k != "caveql"}
    assert got == want
    assert {k: type(v) for k, v in got.items()} == {k: type(v) for k, v in want.items()}
