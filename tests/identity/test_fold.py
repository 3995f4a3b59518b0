"""Constant folding: identity calls of constants are evaluated before planning and pushed to the
service as literals (EXPLAIN's filter dicts carry the ids, and a note says where they came from);
the printer and formatter keep ``x IN f(...)``."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caveql.syntax import format_cql, parse, print_ast
from tests.identity.conftest import roots, stamps_of

pytestmark = pytest.mark.timeout(900)


def body(engine, text, **params):
    p = engine.physical_plan(text, params or None)
    assert len(p.calls) == 1
    return p, p.calls[0].request.body()


def test_in_latest_roots_is_pushed(tiny, tiny_oracle):
    want = tiny_oracle.latest_roots(905, datetime.now(UTC))
    p, b = body(tiny, "SELECT id FROM nuclei WHERE pt_root_id IN LATEST_ROOTS(905)")
    assert b["filter_in_dict"] == {"nuclei": {"pt_root_id": want}}
    assert f"LATEST_ROOTS(905) → {want}" in p.notes
    text = tiny.explain("SELECT id FROM nuclei WHERE pt_root_id IN LATEST_ROOTS(905)")
    assert f"note: LATEST_ROOTS(905) → {want}" in text and '"pt_root_id": [' in text


def test_nucleus_root_at_a_version_is_an_equality(tiny):
    frozen = tiny.execute("SELECT pt_root_id FROM nuclei WHERE id = 14 AT VERSION 1").frame
    root = int(frozen["pt_root_id"].iloc[0])
    p, b = body(tiny, "SELECT id FROM nuclei WHERE pt_root_id = NUCLEUS_ROOT(14, 1) AT VERSION 1")
    assert b["filter_equal_dict"] == {"nuclei": {"pt_root_id": root}}
    assert f"NUCLEUS_ROOT(14, 1) → {root}" in p.notes


def test_params_fold_too(tiny, tiny_oracle):
    want = tiny_oracle.latest_roots(905, datetime.now(UTC))
    _p, b = body(tiny, "SELECT id FROM nuclei WHERE pt_root_id IN LATEST_ROOTS(:r)", r=905)
    assert b["filter_in_dict"] == {"nuclei": {"pt_root_id": want}}
    _p, b = body(tiny, "SELECT id FROM nuclei WHERE pt_root_id = ROOT_AT(:sv, :t)", sv=15,
                 t="2023-01-01T00:00:00Z")
    assert b["filter_equal_dict"] == {"nuclei": {"pt_root_id": tiny_oracle.root_at(15, datetime(2023, 1, 1, tzinfo=UTC))}}


def test_column_calls_are_not_folded(tiny):
    p = tiny.physical_plan("SELECT id FROM nuclei WHERE IS_LATEST(pt_root_id)")
    assert "caveql_is_latest" in p.sql and not p.notes
    assert "filter_equal_dict" not in p.calls[0].request.body()


@given(data=st.data())
@settings(max_examples=10, deadline=None)
def test_demo_synapses_of_a_cells_latest_roots(demo, demo_oracle, data):
    """WHERE post_pt_root_id IN LATEST_ROOTS(r, v): the ids in the call's IN filter, and the answer
    the same as with the ids written out."""
    o, stamps = demo_oracle, stamps_of(demo)
    r = data.draw(roots(o))
    v = data.draw(st.sampled_from(sorted(stamps)))
    want = o.latest_roots(r, stamps[v])
    text = f"SELECT id FROM synapses_pni_2 WHERE post_pt_root_id IN LATEST_ROOTS({r}, {v}) AT VERSION {v}"
    if not want:
        return
    p, b = body(demo, text)
    assert b["filter_in_dict"]["synapses_pni_2"]["post_pt_root_id"] == want
    assert p.notes == (f"LATEST_ROOTS({r}, {v}) → {want}",)
    ids = ", ".join(map(str, want))
    assert demo.execute(text).frame.equals(
        demo.execute(f"SELECT id FROM synapses_pni_2 WHERE post_pt_root_id IN ({ids}) AT VERSION {v}").frame)


@pytest.mark.parametrize("text", [
    "SELECT * FROM t WHERE x IN LATEST_ROOTS(905)",
    "SELECT * FROM t WHERE x NOT IN PAST_IDS(y, 343)",
    "SELECT * FROM t WHERE x IN (LATEST_ROOTS(905))",
])
def test_in_a_call_round_trips(text):
    tree = parse(text).statements[0]
    assert print_ast(tree) == text
    assert parse(print_ast(tree)).statements[0] == tree
    assert format_cql(text.lower()) == format_cql(format_cql(text.lower()))
    assert parse(format_cql(text.lower())).statements[0] == parse(text.lower()).statements[0]
