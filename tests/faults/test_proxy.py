"""Answers through a fault-injecting proxy (tests/faults/proxy.py) between caveql and
``caveql serve`` at a 1,000-row cap: every statement returns exactly the fault-free answer or
raises a CaveqlError naming the request; nothing damaged is cached."""

from __future__ import annotations

import time

import pytest

from caveql.backends.base import QueryRequest
from caveql.backends.http import HttpBackend
from caveql.cache import ResultCache
from caveql.engine import Engine
from caveql.errors import CaveqlError, TransportError
from tests.faults.proxy import FAULTS, FaultProxy, random_policy

pytestmark = pytest.mark.timeout(300)

DS = "minnie65_demo"
# each pages past the 1,000-row cap (counts, samples, id ranges, IN batches) or is a small answer
STATEMENTS = [
    "SELECT id, volume FROM nucleus_detection_v0 WHERE volume > 500 ORDER BY id",
    "SELECT cell_type, COUNT(*) AS n FROM aibs_soma_nuc_metamodel_preds_v117 "
    "WHERE cell_type IN ('NGC', 'pericyte', 'BPC') GROUP BY cell_type ORDER BY cell_type",
    "SELECT id, pt_root_id, cell_type FROM aibs_soma_nuc_metamodel_preds_v117 WHERE cell_type = 'MC' ORDER BY id",
    "SELECT n.id, n.volume, c.cell_type FROM nucleus_detection_v0 n JOIN aibs_soma_nuc_metamodel_preds_v117 c "
    "ON n.id = c.target_id WHERE c.cell_type = 'NGC' ORDER BY n.id",
    "SELECT COUNT(*) AS n FROM nucleus_detection_v0 WHERE volume > 300",
]


def backend(url: str, **kw) -> HttpBackend:
    kw.setdefault("cache", False)
    kw.setdefault("backoff", 0.001)
    kw.setdefault("max_backoff", 0.002)
    kw.setdefault("progress", False)
    return HttpBackend(DS, server=url, local_server=url, **kw)


@pytest.fixture(scope="module")
def expected(demo_local):
    engine = Engine(demo_local)
    return {s: engine.execute(s).frame for s in STATEMENTS}


def same(got, want) -> None:
    assert list(got.columns) == list(want.columns)
    assert got.reset_index(drop=True).astype(str).equals(want.reset_index(drop=True).astype(str))


@pytest.mark.parametrize("fault", [f for f in FAULTS if f != "flip_nodigest"])
def test_each_fault_once_is_retried_to_the_exact_answer(demo_served, fault):
    """A damaged answer is a transport failure, retried; the retry's answer is whole."""
    req = QueryRequest(kind="table", table="nucleus_detection_v0", version=661, limit=500)
    with FaultProxy(demo_served.url) as clean, backend(clean.url) as b:
        want = b.query(req).table
    first_post = []

    def policy(n, method, path):
        if method == "POST" and not first_post:
            first_post.append(n)
            return fault
        return "ok"

    with FaultProxy(demo_served.url, policy) as proxy, backend(proxy.url) as b:
        got = b.query(req).table
        assert proxy.faults() == [fault]
    assert got.equals(want)


@pytest.mark.parametrize("fault", ["cut_after_schema", "drop_eos", "flip", "gzip_flip", "cut_close"])
def test_a_fault_on_every_attempt_is_a_clear_error(demo_served, fault):
    """Never an empty or damaged frame: after its retries, a CaveqlError naming the request."""
    req = QueryRequest(kind="table", table="nucleus_detection_v0", version=661, limit=500)
    with FaultProxy(demo_served.url, lambda n, m, p: fault if m == "POST" else "ok") as proxy, \
            backend(proxy.url, retries=2) as b:
        start = time.monotonic()
        with pytest.raises(TransportError) as err:
            b.query(req)
        assert time.monotonic() - start < 30
        assert proxy.faults() == [fault] * 3
    assert "nucleus_detection_v0" in str(err.value) and "attempt" in str(err.value)


def test_soak_at_a_quarter_of_answers_damaged(demo_served, expected, tmp_path):
    """Every statement gives the fault-free answer or a CaveqlError, at a 25 % fault rate; then,
    with the faults gone, the same cache answers every statement exactly (nothing damaged was kept)."""
    cache = ResultCache(tmp_path)
    outcomes = {"exact": 0, "error": 0}
    faults: list[str] = []
    for round_ in range(4):
        policy = random_policy(0.25, seed=round_, faults=tuple(f for f in FAULTS if f != "flip_nodigest"))
        with FaultProxy(demo_served.url, policy, seed=round_) as proxy, \
                backend(proxy.url, cache=cache, retries=3, parallel=4) as b:
            engine = Engine(b)
            for s in STATEMENTS:
                try:
                    frame = engine.execute(s).frame
                except CaveqlError as exc:
                    assert "attempt" in str(exc) or "counts" in str(exc), exc
                    outcomes["error"] += 1
                    continue
                same(frame, expected[s])
                outcomes["exact"] += 1
            faults += proxy.faults()
    assert set(faults) == set(FAULTS) - {"flip_nodigest"}  # every kind happened
    assert len(faults) >= 30
    assert outcomes["exact"] >= 0.75 * (outcomes["exact"] + outcomes["error"]), outcomes
    # the same cache, no faults: exact answers, many of them straight from the cache
    with FaultProxy(demo_served.url) as proxy, backend(proxy.url, cache=cache) as b:
        engine = Engine(b)
        for s in STATEMENTS:
            same(engine.execute(s).frame, expected[s])


def test_undetectable_flips_never_crash_or_escape(demo_served, expected):
    """Without Content-Digest (as the genuine service answers), a flip inside uncompressed numbers
    cannot be seen; still every outcome is a frame or a CaveqlError and the process lives on."""
    policy = random_policy(0.5, seed=7, faults=("flip_nodigest",))
    outcomes = {"exact": 0, "other": 0, "error": 0}
    with FaultProxy(demo_served.url, policy, seed=7) as proxy, backend(proxy.url, retries=1) as b:
        engine = Engine(b)
        for s in STATEMENTS * 2:
            try:
                frame = engine.execute(s).frame
            except CaveqlError:
                outcomes["error"] += 1
                continue
            want = expected[s]
            exact = list(frame.columns) == list(want.columns) and frame.reset_index(drop=True).astype(str).equals(
                want.reset_index(drop=True).astype(str))
            outcomes["exact" if exact else "other"] += 1
        assert len(proxy.faults()) >= 5
    assert sum(outcomes.values()) == 2 * len(STATEMENTS)
