"""A backend whose real row cap is below the one it reports: the engine learns the cap from the
answers' cap notice, plans the statement again and returns the whole answer — never a short one.

Also: no plan ever asks the service for a single column (it fails on those, HTTP 500).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from caveql.backends.base import QueryRequest, QueryResult
from caveql.backends.endpoints import lone_column, unselected_filters
from caveql.backends.local import LocalBackend
from caveql.engine import Engine
from caveql.errors import TruncatedResultError
from caveql.plan.physical import PhysicalPlan


class Understated:
    """A LocalBackend capped at ``real`` rows that reports ``reported`` (None: no cap)."""

    def __init__(self, backend: LocalBackend, reported: int | None) -> None:
        self.inner = backend
        self.name = backend.name
        self.capabilities = replace(backend.capabilities, row_cap=reported)
        self.requests: list[QueryRequest] = []

    def query(self, request: QueryRequest) -> QueryResult:
        self.requests.append(request)
        return self.inner.query(request)

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


STATEMENTS = [
    "SELECT * FROM synapses",
    "SELECT id FROM synapses",
    "SELECT * FROM synapses LIMIT 5",  # a pushed limit above the real cap: cut at 3, not the whole answer
    "SELECT id, size FROM synapses LIMIT 4 OFFSET 2",
    "SELECT * FROM cells WHERE cell_type ~ '^(BC|4P)$' OFFSET 1",
    "SELECT COUNT(*) AS n FROM synapses WHERE size * 2 > 100",
    "SELECT * FROM synapses WHERE post_pt_root_id IN (SELECT pt_root_id FROM cells WHERE id > 1)",
    "SELECT s.id, s.size, c.cell_type FROM synapses s JOIN cells c ON s.post_pt_root_id = c.pt_root_id",
    "SELECT * FROM cell_types",
    "SELECT id, pt_position FROM cells AT RESOLUTION 3,3,3",
    "SELECT * FROM cells AT TIMESTAMP '2024-01-01T00:00:00'",
]


@pytest.fixture(scope="module")
def capped_inner(tiny_datastack: Path):
    b = LocalBackend(tiny_datastack, row_cap=3)
    yield b
    b.close()


@pytest.mark.parametrize("reported", [200_000, None])
@pytest.mark.parametrize("cql", STATEMENTS)
def test_a_smaller_real_cap_is_learned(tiny_backend, capped_inner, reported, cql):
    want = Engine(tiny_backend).execute(cql).frame
    backend = Understated(capped_inner, reported)
    got = Engine(backend).execute(cql).frame
    assert got.astype(str).equals(want.astype(str)), (got, want)
    assert list(got.dtypes.astype(str)) == list(want.dtypes.astype(str))


def test_explain_analyze_shows_the_plan_that_ran(tiny_backend, capped_inner):
    backend = Understated(capped_inner, 200_000)
    eng = Engine(backend)
    assert '"limit": 5' in eng.explain("SELECT * FROM synapses LIMIT 5")  # 5 fits the reported cap
    text = eng.explain("EXPLAIN ANALYZE SELECT * FROM synapses LIMIT 5")
    assert "planned again: the service caps answers at 3 rows" in text
    assert '"limit": 5' not in text  # the limit no longer fits one call: applied locally
    assert "limit 5" in text


def test_a_plan_that_cannot_plan_again_fails_instead_of_answering_short(capped_inner):
    backend = Understated(capped_inner, 200_000)
    eng = Engine(backend)
    p = eng.physical_plan("SELECT * FROM synapses LIMIT 5")
    from caveql.execute import execute

    with pytest.raises(TruncatedResultError, match="cut an answer at 3 rows"):
        execute(replace(p, replan=None), backend)


def _calls(p: PhysicalPlan):
    for sp in p.subplans:
        yield from _calls(sp)
    yield from p.calls


PLANS = sorted((Path(__file__).parent / "plans").glob("*.cql"))


@pytest.mark.parametrize("path", PLANS, ids=[p.stem for p in PLANS])
def test_no_plan_sends_what_the_service_fails_on(path, request, tiny_backend, capped_backend):
    from tests.engine.test_golden_plans import golden_engine

    eng, params = golden_engine(path.read_text(), request, tiny_backend, capped_backend)
    for call in _calls(eng.physical_plan(path.read_text(), params=params)):
        assert lone_column(call.request) is None, call.request
        assert unselected_filters(call.request) == [], call.request  # a live call selects what it filters
        if call.padded is not None:
            assert call.padded not in call.columns  # dropped locally


def test_id_samples_select_two_columns(tiny_backend, capped_inner):
    """The id sample of a split (limit k) selects the id and one cheap column, never the id alone."""
    backend = Understated(capped_inner, 3)
    Engine(backend).execute("SELECT * FROM synapses WHERE size > 0")
    samples = [r for r in backend.requests if r.limit is not None and r.select_columns]
    assert samples
    assert all(lone_column(r) is None for r in backend.requests)


@pytest.mark.parametrize("cql", [
    "SELECT * FROM syn_counts ORDER BY 1, 2",
    "SELECT * FROM syn_counts WHERE n_syn >= 1 ORDER BY 1, 2",  # a bound of its own on a column
    "SELECT * FROM syn_counts WHERE pre_pt_root_id >= 1001 ORDER BY 1, 2",
    "SELECT n_syn FROM syn_counts ORDER BY 1",  # the column cut by is not selected
    "SELECT post_pt_root_id, SUM(n_syn) AS n FROM syn_counts GROUP BY 1 ORDER BY 1",
])
def test_a_view_past_the_cap_is_cut_by_a_column(tiny_backend, capped_backend, cql):
    """A view (ids may repeat, or none) past a 3-row cap: cut into ranges of an integer column
    without NULLs (caveql.execute.remote, split_view), the same rows as uncapped."""
    want = Engine(tiny_backend).execute(cql).frame
    got = Engine(capped_backend).execute(cql)
    pd.testing.assert_frame_equal(got.frame, want)
    assert got.stats["calls"]["syn_counts"]["requests"] > 1
