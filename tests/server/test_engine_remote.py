"""CQL through the HTTP backend against ``caveql serve`` gives exactly what it gives through the
local backend: same frames (values, dtypes, order), with the service's 200,000 cap or a tiny one
that forces the engine to split every call; EXPLAIN shows the very requests that were sent."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from caveql.engine import Engine

pytestmark = pytest.mark.timeout(120)
TOKEN = "fedcba9876543210fedcba9876543210"

STATEMENTS = [
    "SELECT * FROM cells",
    "SELECT * FROM cells WHERE cell_type = 'BC'",
    "SELECT id, pt_position FROM cells AT RESOLUTION 1,1,1",
    "SELECT id, pt_position FROM cells AT RESOLUTION 1,1,1 SPLIT POSITIONS",
    "SELECT * FROM cells AT VERSION 1",
    "SELECT id, cell_type, pt_root_id FROM cells AT TIMESTAMP '2024-01-01T00:00:00'",
    "SELECT * FROM cell_types",
    "SELECT * FROM cell_types WHERE cell_type = 'BC'",
    "SELECT id, cell_type, pt_root_id FROM cell_types WHERE pt_root_id IN (1001, 1002, 1003)",
    "SELECT * FROM nuclei WHERE volume > 100 AND volume <= 512",
    "SELECT * FROM nuclei WHERE pt_position WITHIN BOX((400, 800, 400), (800, 1200, 480)) AT RESOLUTION 1,1,1",
    "SELECT * FROM synapses WHERE pre_pt_root_id = 1001",
    "SELECT * FROM synapses WHERE pre_pt_root_id NOT IN (1001) AND size > 50",
    "SELECT * FROM synapses WHERE pre_pt_root_id != post_pt_root_id ORDER BY size DESC LIMIT 3",
    "SELECT pre_pt_root_id, post_pt_root_id, COUNT(*) AS n FROM synapses GROUP BY pre_pt_root_id, post_pt_root_id "
    "ORDER BY n DESC, pre_pt_root_id, post_pt_root_id",
    "SELECT s.id, s.size, c.cell_type FROM synapses s JOIN cells c ON s.post_pt_root_id = c.pt_root_id "
    "WHERE c.cell_type = 'BC'",
    "SELECT * FROM synapses WHERE post_pt_root_id IN (SELECT pt_root_id FROM cells WHERE cell_type = 'BC')",
    "SELECT cell_type, COUNT(*) AS n FROM cells GROUP BY cell_type ORDER BY n DESC, cell_type",
    "SELECT * FROM synapses WHERE size BETWEEN 80 AND 200 AT VERSION 1",
    "SELECT id, pre_pt_position_x FROM synapses WHERE pre_pt_position_x BETWEEN 10 AND 30",
    "SELECT * FROM cells WHERE cell_type ~ '^(BC|4P)$' OFFSET 1",
]
# a view's floats are Float64 through every backend (the genuine service's reflected DOUBLE PRECISION)
VIEWS = ["SELECT * FROM syn_counts", "SELECT * FROM syn_counts WHERE n_syn > 1",
         "SELECT pre_pt_root_id, n_syn FROM syn_counts WHERE n_syn > 1"]
# live statements: the live answer's columns (no valid/superceded_id) through every backend
LIVE = ["SELECT * FROM cells AT TIMESTAMP '2024-01-01T00:00:00'",
        "SELECT * FROM cell_types WHERE cell_type = 'BC' AT TIMESTAMP '2024-01-01T00:00:00'",
        "SELECT * FROM synapses WHERE size > 100 AT TIMESTAMP '2022-06-01T00:00:00'",
        "SELECT id, created FROM cells WHERE created > '2020-09-28T22:40:02' AT LIVE"]


@pytest.fixture(scope="module")
def engines(tiny_datastack, tiny_served, tiny_capped):
    from caveql.backends.local import LocalBackend

    from caveql.backends.http import HttpBackend

    local = LocalBackend(tiny_datastack)
    remote = HttpBackend("tiny", server=tiny_served.url, token=TOKEN, cache=False)
    capped = HttpBackend("tiny", server=tiny_capped.url, token=TOKEN, cache=False, row_cap=3)
    yield Engine(local), Engine(remote), Engine(capped)
    for b in (local, remote, capped):
        b.close()


def same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """The same frame: columns, dtypes (a table's timestamps UTC-aware through every backend, as
    the genuine service sends them) and values."""
    assert list(a.columns) == list(b.columns)
    assert list(a.dtypes.astype(str)) == list(b.dtypes.astype(str))
    assert a.astype(str).equals(b.astype(str)), (a, b)


@pytest.mark.parametrize("cql", ["SELECT id, created FROM cells", "SELECT MIN(created) AS m FROM cells",
                                 "SELECT id, created FROM cells AT LIVE"])
def test_timestamps_keep_one_representation(engines, cql):
    local, remote, _ = engines
    want = local.execute(cql).frame
    assert str(want.iloc[:, -1].dtype) == "datetime64[ns, UTC]"
    same(remote.execute(cql).frame, want)


# Through a server capped at 3 rows per call the engine must split every call (by id ranges or
# key batches) and still return the whole answer. (Kept to a few statements: the engine makes
# many small calls at such a cap.)
CAPPED = [STATEMENTS[1], STATEMENTS[15], "SELECT * FROM synapses AT VERSION 1",
          "SELECT * FROM synapses WHERE pre_pt_root_id IN (1001, 1002, 1005)"]


@pytest.mark.parametrize("cql", STATEMENTS + VIEWS + LIVE)
def test_same_answer_through_http(engines, cql):
    local, remote, _ = engines
    same(remote.execute(cql).frame, local.execute(cql).frame)


@pytest.mark.parametrize("cql", CAPPED)
def test_same_answer_when_every_call_is_capped(engines, cql):
    local, _, capped = engines
    same(capped.execute(cql).frame, local.execute(cql).frame)


@pytest.mark.parametrize("cql", VIEWS)
def test_a_view_past_the_cap_is_cut_by_a_column(engines, cql):
    """A view has no unique id to page by: the engine cuts it into ranges of an integer column
    without NULLs that cuts it under the cap (syn_counts: 8 rows at a 3-row cap)."""
    local, _, capped = engines
    same(capped.execute(cql).frame, local.execute(cql).frame)


def test_a_view_no_column_cuts_fails_clearly(tiny_datastack):
    """At a 2-row cap every integer column of syn_counts has a value holding more rows: an error
    naming the view and what each column lacked, never a short answer."""
    from caveql.backends.local import LocalBackend
    from caveql.errors import TruncatedResultError

    with LocalBackend(tiny_datastack, row_cap=2) as b, pytest.raises(TruncatedResultError) as err:
        Engine(b).execute("SELECT * FROM syn_counts")
    msg = err.value.message
    assert "query_view on syn_counts at 2 rows" in msg and "no integer column without NULLs" in msg
    assert "by pre_pt_root_id: cannot split" in msg and "by n_syn: cannot split" in msg


def test_explain_shows_the_requests_sent(engines, tiny_served):
    _, remote, _ = engines
    cql = "SELECT s.id, c.cell_type FROM synapses s JOIN cells c ON s.post_pt_root_id = c.pt_root_id " \
          "WHERE c.cell_type = 'BC' AT VERSION 2"
    text = remote.explain(cql)
    before = len(tiny_served.recorder.log)
    remote.execute(cql)
    posts = [e for e in tiny_served.recorder.log[before:] if e["method"] == "POST"]
    assert posts
    first = posts[0]
    assert f"POST {first['path']}?{first['query']}" in text
    assert first["body"].decode() in text
    json.loads(first["body"])
    assert "fedcba9876543210" not in text  # never the token


def test_disk_cache_serves_a_repeated_versioned_statement(tiny_served, tmp_path):
    """A fresh engine repeating a versioned statement sends no query at all: every answer (and the
    limit-1 schema probes) comes from the disk cache; a live statement is always sent."""
    from caveql.backends.http import HttpBackend
    from caveql.cache import ResultCache

    cache = ResultCache(tmp_path)
    cql = "SELECT s.id, c.cell_type FROM synapses s JOIN cells c ON s.post_pt_root_id = c.pt_root_id AT VERSION 2"
    frames, posts = [], []
    for _ in range(2):
        with HttpBackend("tiny", server=tiny_served.url, token=TOKEN, cache=cache) as b:
            before = len(tiny_served.recorder.log)
            frames.append(Engine(b).execute(cql).frame)
            posts.append(sum(e["method"] == "POST" for e in tiny_served.recorder.log[before:]))
    assert posts[0] > 0 and posts[1] == 0
    same(frames[1], frames[0])
    live = "SELECT id FROM cells AT TIMESTAMP '2024-01-01T00:00:00'"
    with HttpBackend("tiny", server=tiny_served.url, token=TOKEN, cache=cache) as b:
        before = len(tiny_served.recorder.log)
        Engine(b).execute(live)
        Engine(b).execute(live)
        assert sum(e["method"] == "POST" and e["path"].endswith("/tiny/query")
                   for e in tiny_served.recorder.log[before:]) == 2


@pytest.mark.parametrize("cql", [
    "SELECT * FROM synapses AT VERSION 1",
    "SELECT * FROM cell_types SPLIT POSITIONS",
    "SELECT id, pre_pt_position, size FROM synapses AT VERSION 1",
    "SELECT id, pt_position, cell_type FROM cells",
    "SELECT size, id FROM synapses WHERE size > 50",
])
def test_direct_local_step_same_frame_as_duckdb(engines, cql):
    """Answers decoded from Arrow IPC (one chunk per id-range call at a 3-row cap): the local step
    without DuckDB (caveql.execute.direct) gives the DuckDB step's frame exactly."""
    from unittest import mock

    from caveql.execute.direct import direct_step

    for eng in engines[1:]:
        assert direct_step(eng.physical_plan(cql)) is not None
        direct = eng.execute(cql).frame
        with mock.patch("caveql.execute.local.direct_step", return_value=None):
            duck = eng.execute(cql).frame
        pd.testing.assert_frame_equal(direct, duck, check_exact=True)
