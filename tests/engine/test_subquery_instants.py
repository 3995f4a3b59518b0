"""A subquery with its own AT clause runs at its own version or instant, whatever the enclosing
block's (IN, EXISTS and scalar subqueries alike); one without inherits the enclosing block's."""

from __future__ import annotations

import re

import pytest

from caveql.engine import Engine


def _instants(text: str) -> list[str]:
    return [m.group(1) for m in re.finditer(r"at: (version \d+|timestamp \S+)", text)]


@pytest.fixture()
def demo(demo_backend):
    return Engine(demo_backend)


@pytest.mark.parametrize("sub, outer, want", [
    ("SELECT id FROM nucleus_detection_v0 AT VERSION 343", "AT VERSION 661", ["version 661", "version 343"]),
    ("SELECT id FROM nucleus_detection_v0 AT VERSION 343", "AT LIVE", ["timestamp", "version 343"]),
    ("SELECT id FROM nucleus_detection_v0", "AT VERSION 343", ["version 343", "version 343"]),
    ("SELECT id FROM nucleus_detection_v0 AT TIMESTAMP '2023-01-01'", "AT VERSION 661",
     ["version 661", "timestamp 2023-01-01T00:00:00"]),
])
def test_in_subquery_runs_at_its_own_instant(demo, sub, outer, want) -> None:
    text = demo.explain(f"SELECT id FROM nucleus_detection_v0 WHERE id IN ({sub}) {outer}")
    got = _instants(text)
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.startswith(w)


def test_in_subquery_without_clauses_inherits_a_live_instant(demo) -> None:
    text = demo.explain("SELECT id FROM nucleus_detection_v0 WHERE id IN (SELECT id FROM nucleus_detection_v0) "
                        "AT TIMESTAMP '2023-01-01'")
    assert _instants(text) == ["timestamp 2023-01-01T00:00:00"] * 2


@pytest.mark.parametrize("clause, want", [("AT LIVE", "timestamp"), ("AT VERSION 343", "version 343"),
                                          ("AT TIMESTAMP '2023-01-01'", "timestamp 2023-01-01")])
def test_scalar_subquery_runs_at_its_own_instant(demo, clause, want) -> None:
    text = demo.explain(f"SELECT (SELECT COUNT(*) FROM nucleus_detection_v0 {clause}) AS n")
    assert _instants(text)[1].startswith(want)
    assert ("live_live_query" in text) == want.startswith("timestamp")


def test_in_subquery_at_another_version_answers_that_versions_rows(demo) -> None:
    # nuclei whose 343 root differs from their 661 root: the subquery must read 343's roots
    both = demo.execute("SELECT id FROM nucleus_detection_v0 WHERE pt_root_id NOT IN "
                        "(SELECT pt_root_id FROM nucleus_detection_v0 AT VERSION 343) AND pt_root_id != 0 "
                        "ORDER BY id").frame
    at661 = demo.execute("SELECT id, pt_root_id FROM nucleus_detection_v0 WHERE pt_root_id != 0").frame
    at343 = demo.execute("SELECT pt_root_id FROM nucleus_detection_v0 AT VERSION 343").frame
    old = set(at343.pt_root_id.tolist())
    expected = sorted(int(i) for i, r in zip(at661.id, at661.pt_root_id, strict=True) if int(r) not in old)
    assert expected, "the demo has nuclei edited between 343 and 661"
    assert [int(i) for i in both.id] == expected
