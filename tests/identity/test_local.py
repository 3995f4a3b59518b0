"""The identity functions over local datastacks against the oracle (conftest.Oracle): constant
arguments (folded before planning) and column arguments (the local step's UDFs), at random
instants — between versions, after the last one, exactly at an edit and a microsecond either
side — and at versions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.identity.conftest import instants, iso, roots, stamps_of

pytestmark = pytest.mark.timeout(900)


def one(engine, text, **params):
    return engine.execute(text, params or None).frame


def as_list(v):
    return None if v is None else [int(x) for x in v]


def as_oracle_says(o, r, t, latest, is_latest, past):
    """LATEST_ROOTS, IS_LATEST and PAST_IDS of root ``r`` at ``t`` as the oracle reads the edits."""
    assert as_list(latest) == o.latest_roots(r, t)
    assert bool(is_latest) is o.valid(r, t)
    assert as_list(past) == o.past_ids(r, t)


@given(data=st.data())
@settings(max_examples=60, deadline=None)
def test_tiny_constants_match_the_oracle(tiny, tiny_oracle, data):
    o, stamps = tiny_oracle, stamps_of(tiny)
    r = data.draw(roots(o))
    t = data.draw(instants(o, stamps))
    f = one(tiny, f"SELECT LATEST_ROOTS({r}, '{iso(t)}') AS l, IS_LATEST({r}, '{iso(t)}') AS k, "
                  f"PAST_IDS({r}, '{iso(t)}') AS p, ROOT_CREATED({r}) AS c, ROOT_SUPERSEDED({r}) AS s")
    row = f.iloc[0]
    as_oracle_says(o, r, t, row["l"], row["k"], row["p"])
    assert row["c"].to_pydatetime() == o.made.get(r, o.base)
    gone = o.gone.get(r)
    assert (row["s"] is None or str(row["s"]) == "NaT") if gone is None else row["s"].to_pydatetime() == gone.timestamp


@given(data=st.data())
@settings(max_examples=25, deadline=None)
def test_tiny_columns_match_the_oracle(tiny, tiny_oracle, data):
    o, stamps = tiny_oracle, stamps_of(tiny)
    v = data.draw(st.sampled_from(sorted(stamps)))
    t = data.draw(instants(o, stamps))
    f = one(tiny, f"SELECT id, pt_root_id, pt_supervoxel_id, LATEST_ROOTS(pt_root_id, '{iso(t)}') AS l, "
                  f"IS_LATEST(pt_root_id, '{iso(t)}') AS k, ROOT_AT(pt_supervoxel_id, '{iso(t)}') AS a, "
                  f"PAST_IDS(pt_root_id, '{iso(t)}') AS p, NUCLEUS_ROOT(id, '{iso(t)}') AS n "
                  f"FROM nuclei AT VERSION {v}")
    assert len(f) > 0
    for row in f.itertuples():
        r, sv = int(row.pt_root_id), int(row.pt_supervoxel_id)
        if r == 0:  # no segment: NULL, not an invalid root
            assert row.l is None and row.p is None and bool(row.k) is False
            continue
        as_oracle_says(o, r, t, row.l, row.k, row.p)
        want = o.root_at(sv, t)
        assert (None if row.a is None or str(row.a) == "<NA>" else int(row.a)) == want
        # a live lookup of the nucleus at t: the root its supervoxel has then
        assert (None if str(row.n) == "<NA>" else int(row.n)) == want


def test_tiny_version_instants(tiny, tiny_oracle):
    """An integer ``at`` is the version's time stamp; NUCLEUS_ROOT at a version reads that version."""
    o, stamps = tiny_oracle, stamps_of(tiny)
    for v, t in stamps.items():
        f = one(tiny, f"SELECT id, pt_root_id, IS_LATEST(pt_root_id, {v}) AS k, NUCLEUS_ROOT(id, {v}) AS n, "
                      f"LATEST_ROOTS(pt_root_id, {v}) AS l FROM nuclei AT VERSION {v}")
        for row in f.itertuples():
            r = int(row.pt_root_id)
            assert (None if str(row.n) == "<NA>" else int(row.n)) == (r or None)  # the frozen table's root
            if r:
                assert bool(row.k) is o.valid(r, t)
                assert as_list(row.l) == o.latest_roots(r, t)


def test_now_is_pinned_and_means_latest(tiny, tiny_oracle):
    o = tiny_oracle
    now = datetime.now(UTC)
    f = one(tiny, "SELECT pt_root_id, LATEST_ROOTS(pt_root_id) AS l, IS_LATEST(pt_root_id) AS k, "
                  "NUCLEUS_ROOT(id) AS n, ROOT_AT(pt_supervoxel_id) AS a FROM nuclei AT VERSION 1")
    for row in f.itertuples():
        r = int(row.pt_root_id)
        if r:
            assert as_list(row.l) == o.latest_roots(r, now)
            assert bool(row.k) is o.valid(r, now)
            assert int(row.n) == int(row.a)
    # "now" is one instant per statement: the plan carries it as an explicit argument
    p = tiny.physical_plan("SELECT IS_LATEST(pt_root_id) AS k, ROOT_AT(pt_supervoxel_id) AS a FROM nuclei")
    stamps = {v for v in p.params if isinstance(v, str)}
    assert len(stamps) == 1 and p.sql.count("epoch_us") == 2


@given(data=st.data())
@settings(max_examples=8, deadline=None)
def test_demo_columns_match_the_oracle(demo, demo_oracle, data):
    o, stamps = demo_oracle, stamps_of(demo)
    t = data.draw(instants(o, stamps))
    v = data.draw(st.sampled_from(sorted(stamps)))
    start = data.draw(st.integers(0, 5000))
    f = one(demo, f"SELECT id, pt_root_id, pt_supervoxel_id, LATEST_ROOTS(pt_root_id, '{iso(t)}') AS l, "
                  f"IS_LATEST(pt_root_id, '{iso(t)}') AS k, ROOT_AT(pt_supervoxel_id, '{iso(t)}') AS a, "
                  f"PAST_IDS(pt_root_id, '{iso(t)}') AS p, ROOT_CREATED(pt_root_id) AS c, "
                  f"ROOT_SUPERSEDED(pt_root_id) AS s, NUCLEUS_ROOT(id, {v}) AS n "
                  f"FROM nucleus_detection_v0 WHERE id >= {start} LIMIT 150 AT VERSION {v}")  # (LIMIT pushed)
    assert len(f) > 0
    for row in f.itertuples():
        r, sv = int(row.pt_root_id), int(row.pt_supervoxel_id)
        assert (None if str(row.n) == "<NA>" else int(row.n)) == (r or None)
        if r == 0:
            continue
        as_oracle_says(o, r, t, row.l, row.k, row.p)
        assert row.c.to_pydatetime() == o.made.get(r, o.base)
        gone = o.gone.get(r)
        assert (str(row.s) == "NaT") if gone is None else row.s.to_pydatetime() == gone.timestamp
        assert (None if str(row.a) == "<NA>" else int(row.a)) == o.root_at(sv, t)


@given(data=st.data())
@settings(max_examples=12, deadline=None)
def test_demo_constants_match_the_oracle(demo, demo_oracle, data):
    o, stamps = demo_oracle, stamps_of(demo)
    r = data.draw(roots(o))
    t = data.draw(instants(o, stamps))
    row = one(demo, f"SELECT LATEST_ROOTS({r}, '{iso(t)}') AS l, IS_LATEST({r}, '{iso(t)}') AS k, "
                    f"PAST_IDS({r}, '{iso(t)}') AS p").iloc[0]
    as_oracle_says(o, r, t, row["l"], row["k"], row["p"])


def test_nulls(tiny):
    f = one(tiny, "SELECT LATEST_ROOTS(NULL) AS a, LATEST_ROOTS(905, NULL) AS b, IS_LATEST(NULL) AS c, "
                  "ROOT_AT(NULL, 1) AS d, ROOT_AT(123456789) AS e, NUCLEUS_ROOT(999999) AS f, "
                  "NUCLEUS_ROOT(14, NULL) AS g, ROOT_CREATED(NULL) AS h, PAST_IDS(905, NULL) AS i")
    assert f.columns.tolist() == list("abcdefghi")
    assert all(v is None or str(v) in ("<NA>", "NaT") for v in f.iloc[0].tolist())
    # over columns: a NULL instant gives NULL rows, a nucleus without a cell (root 0) NULL lists
    f = one(tiny, "SELECT id, IS_LATEST(pt_root_id, CASE WHEN id = 10 THEN NULL ELSE 2 END) AS k, "
                  "LATEST_ROOTS(pt_root_id) AS l FROM nuclei")
    k = dict(zip(f["id"], f["k"], strict=True))
    assert str(k[10]) == "<NA>" and all(str(v) != "<NA>" for i, v in k.items() if i != 10)
    zero = one(tiny, "SELECT id FROM nuclei WHERE pt_root_id = 0")["id"].tolist()
    assert zero and all(v is None for i, v in zip(f["id"], f["l"], strict=True) if i in zero)


def test_default_column_names(tiny):
    f = one(tiny, "SELECT IS_LATEST(905), NUCLEUS_ROOT(14, 1), LATEST_ROOTS(905)")
    assert f.columns.tolist() == ["is_latest", "nucleus_root", "latest_roots"]
    assert f.iloc[0].tolist()[:2] == [False, 905]


def test_in_over_columns_and_not_in(tiny, tiny_oracle):
    now = datetime.now(UTC)
    f = one(tiny, "SELECT id, pt_root_id FROM nuclei WHERE 1005 IN LATEST_ROOTS(pt_root_id) AT VERSION 1")
    assert [int(r) for r in f["pt_root_id"]] == [r for r in [905] if 1005 in tiny_oracle.latest_roots(r, now)]
    every = one(tiny, "SELECT id FROM nuclei")["id"].tolist()
    kept = one(tiny, "SELECT id FROM nuclei WHERE pt_root_id NOT IN LATEST_ROOTS(905)")["id"].tolist()
    inside = one(tiny, "SELECT id FROM nuclei WHERE pt_root_id IN LATEST_ROOTS(905)")["id"].tolist()
    assert sorted(kept + inside) == sorted(every) and inside


def test_column_forms_skip_the_direct_executor_and_explain_analyze(tiny):
    res = tiny.execute("SELECT id, IS_LATEST(pt_root_id) AS k FROM nuclei")
    assert res.stats["local"]["engine"] == "duckdb"
    text = tiny.explain("SELECT id, IS_LATEST(pt_root_id) AS k FROM nuclei", analyze=True)
    assert "caveql_is_latest" in text and "actual:" in text
