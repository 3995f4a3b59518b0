"""The identity functions over HTTP: an HttpBackend against ``caveql serve`` (its ChunkedGraph
routes answer from the same history, through caveql.backends.graph_http) gives the answers the
local datastack gives, folded or over columns."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caveql.engine import Engine
from caveql.errors import InvalidRootIdError
from tests.identity.conftest import instants, iso, roots, stamps_of

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def tiny_http(tiny_datastack):
    from tests.server.conftest import serve

    s = serve(tiny_datastack)
    yield Engine(s.http())
    s.stop()


@pytest.fixture(scope="module")
def demo_http(demo_path):
    from tests.server.conftest import serve

    s = serve(demo_path)
    yield Engine(s.http())
    s.stop()


def same(a, b, text):
    fa, fb = a.execute(text).frame, b.execute(text).frame
    assert fa.columns.tolist() == fb.columns.tolist()
    assert fa.astype(str).values.tolist() == fb.astype(str).values.tolist(), text


def test_tiny_over_http_equals_local(tiny, tiny_http, tiny_oracle):
    assert tiny_http.backend.capabilities.graph
    for v in (1, 2):
        same(tiny, tiny_http, f"SELECT id, pt_root_id, LATEST_ROOTS(pt_root_id, {v}) AS l, "
                              f"IS_LATEST(pt_root_id) AS k, ROOT_AT(pt_supervoxel_id, {v}) AS a, "
                              f"PAST_IDS(pt_root_id, 1) AS p, NUCLEUS_ROOT(id, {v}) AS n, "
                              f"ROOT_CREATED(pt_root_id) AS c, ROOT_SUPERSEDED(pt_root_id) AS s "
                              f"FROM nuclei AT VERSION {v}")
    same(tiny, tiny_http, "SELECT id FROM nuclei WHERE pt_root_id IN LATEST_ROOTS(905)")
    p = tiny_http.physical_plan("SELECT id FROM nuclei WHERE pt_root_id IN LATEST_ROOTS(905)")
    assert p.calls[0].request.filter_in == {"nuclei": {"pt_root_id": [1005, 2001]}}
    with pytest.raises(InvalidRootIdError):
        tiny_http.execute("SELECT LATEST_ROOTS(7)")


@given(data=st.data())
@settings(max_examples=6, deadline=None)
def test_demo_over_http_equals_local(demo, demo_http, demo_oracle, data):
    o, stamps = demo_oracle, stamps_of(demo)
    t = data.draw(instants(o, stamps))
    r = data.draw(roots(o))
    start = data.draw(st.integers(0, 5000))
    same(demo, demo_http, f"SELECT id, LATEST_ROOTS(pt_root_id, '{iso(t)}') AS l, "
                          f"IS_LATEST(pt_root_id, '{iso(t)}') AS k, ROOT_AT(pt_supervoxel_id, '{iso(t)}') AS a "
                          f"FROM nucleus_detection_v0 WHERE id >= {start} LIMIT 40 AT VERSION 661")
    same(demo, demo_http, f"SELECT LATEST_ROOTS({r}, '{iso(t)}') AS l, IS_LATEST({r}, '{iso(t)}') AS k")
