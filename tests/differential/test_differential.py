"""caveql's answers vs the oracle's, on hypothesis-generated queries.

Every case runs three times: through the oracle (plain DuckDB SQL on the Parquet
files, oracle.py), through caveql over the local backend, and through caveql over
the local backend with a small row cap (the engine must split its calls so that
the answer is still complete: paging). Targets: the shared demo datastack, and two
hand-made tiny ones (cheap, odd corners: 8×8×40 voxels, views, hostile strings,
root-id maps). ``make fuzz`` (CAVEQL_FUZZ=1) runs thousands of cases per family.

Engine bugs found here are reproduced in .notes/differential-*.md, pinned by an
exact ``xfail(strict=True)`` in test_regressions.py, and stepped around by the
generator's ``KNOWN_BUGS`` flags; nothing is skipped.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from caveql.backends.local import LocalBackend
from caveql.engine import Engine, Settings
from caveql.errors import CaveqlError, TruncatedResultError
from tests.differential.compare import _multiset_equal, _rows_equal, canonical, canonical_frame, compare
from tests.differential.generator import KNOWN_BUGS, Case
from tests.differential.oracle import Domain, Oracle
from tests.differential.statements import FAMILIES, cases
from tests.differential.tiny import build_tiny

FUZZ = bool(os.environ.get("CAVEQL_FUZZ"))

#: examples per family and target in CI (500 engine-compared, plus the generator's 240
#: oracle-only cases in test_generator.py); `make fuzz` runs FUZZ_EXAMPLES per family and target
EXAMPLES = {
    "demo": {"single": 90, "aggregate": 70, "join": 70, "subquery": 70},
    "tiny": {"single": 40, "aggregate": 30, "join": 30, "subquery": 30},
    "mini": {"single": 25, "aggregate": 15, "join": 15, "subquery": 15},
}
FUZZ_EXAMPLES = 1000
#: the demo's capped (paging) run covers every PAGED_EVERY-th case in CI (a capped demo call
#: costs up to seconds), every case under `make fuzz`; the tiny datastacks page every case
PAGED_EVERY = {"demo": 1 if FUZZ else 4, "tiny": 1, "mini": 1}
#: the paging row cap on the demo (the brief's 1,000) and on the hand-made datastacks
DEMO_CAP = 1000
TINY_CAP = 3


@dataclass
class Target:
    """A datastack with its oracle, generator domain and two engines (uncapped, capped)."""

    name: str
    oracle: Oracle
    domain: Domain
    engine: Engine
    paged: Engine
    cap: int


def make_engine(path: Path, row_cap: int | None = None) -> Engine:
    """A caveql engine over the local datastack at ``path`` (optionally capped)."""
    return Engine(LocalBackend(path, row_cap=row_cap),
                  settings=Settings(version=None, resolution=None, timestamp=None, live=False))


def make_target(name: str, path: Path, cap: int) -> Target:
    oracle = Oracle(path)
    return Target(name, oracle, Domain(oracle), make_engine(path), make_engine(path, cap), cap)


@pytest.fixture(scope="session")
def demo_target(demo_path: Path, oracle: Oracle, domain: Domain) -> Target:
    """The shared demo (2M synapses), paged at 1,000 rows per call."""
    return Target("demo", oracle, domain, make_engine(demo_path), make_engine(demo_path, DEMO_CAP), DEMO_CAP)


@pytest.fixture(scope="session")
def tiny_target(tiny_datastack: Path) -> Target:
    """H2's tiny datastack (caveql.datastack.tiny), paged at 3 rows per call."""
    return make_target("tiny", tiny_datastack, cap=TINY_CAP)


@pytest.fixture(scope="session")
def mini_target(tmp_path_factory: pytest.TempPathFactory) -> Target:
    """The oracle's own hand-made datastack (tests/differential/tiny.py), paged at 3 rows."""
    return make_target("mini", build_tiny(tmp_path_factory.mktemp("mini")), cap=TINY_CAP)


def check(case: Case, engine: Engine, oracle: Oracle, label: str) -> Any:
    """Run ``case`` through ``engine``, assert it equals the oracle's answer; returns the frame."""
    try:
        result = engine.execute(case.cql, params=case.params)
    except CaveqlError as exc:
        pytest.fail(f"[{label}] caveql raised {type(exc).__name__}: {exc}\n{case.describe()}")
    assert result.kind == "rows", f"[{label}] expected rows, got {result.kind}\n{case.describe()}"
    columns, types, rows = oracle.run(case.sql)
    diff = compare(result.frame, columns, types, rows, mode=case.mode, key_columns=case.key_columns)
    if diff is None and case.mode == "keys":
        diff = _contained(result.frame, oracle, case)
    assert diff is None, f"[{label}] {diff}\n{case.describe()}"
    return result.frame


def _contained(frame: Any, oracle: Oracle, case: Case) -> str | None:
    """Rows of an ORDER BY with ties: the multiset of the full answer (or, under LIMIT, a
    sub-multiset of it). Floats match within the comparator's tolerance (a view's floats
    arrive as Float32, the oracle keeps doubles), never by their exact text."""
    _cols, _types, rows = oracle.run(case.unlimited_sql or case.sql)
    want = [tuple(canonical(v) for v in r) for r in rows]
    got = canonical_frame(frame)
    if case.unlimited_sql is None:
        return None if _multiset_equal(got, want) else "rows differ (as multisets)"
    exact = Counter(map(repr, want))
    pool = list(want)
    extra = []
    for row in got:
        if exact[repr(row)] > 0:
            exact[repr(row)] -= 1
            pool.remove(next(c for c in pool if repr(c) == repr(row)))
            continue
        for i, cand in enumerate(pool):
            if _rows_equal(row, cand):
                exact[repr(cand)] -= 1
                del pool[i]
                break
        else:
            extra.append(repr(row))
    return None if not extra else f"rows not in the unlimited answer: {extra[:3]}"


def run_case(case: Case, target: Target, paged: bool = True) -> None:
    """The case through the oracle, the engine, and (``paged``) the capped engine."""
    full = check(case, target.engine, target.oracle, target.name)
    if not paged or (KNOWN_BUGS["limit_at_cap"] and case.unlimited_sql is not None):
        return
    label = f"{target.name}, row_cap={target.cap}"
    try:
        paged = check(case, target.paged, target.oracle, label)
    except pytest.fail.Exception as exc:
        # a source without an id column cannot be split: the engine must say so, and only then
        if case.views and "TruncatedResultError" in str(exc):
            return
        raise
    if case.mode != "set":  # the documented deterministic order holds under paging too
        assert canonical_frame(paged) == canonical_frame(full), f"[{label}] order differs\n{case.describe()}"


def _property(target: Target, family: str, examples: int) -> None:
    # on the demo a failing case is reported as drawn: shrinking 2M-synapse queries takes many
    # minutes, and the case is already small (.notes/ holds the hand-minimised reproduction)
    phases = [Phase.explicit, Phase.reuse, Phase.generate] + ([] if target.name == "demo" else [Phase.shrink])
    seen = [0]

    @settings(max_examples=FUZZ_EXAMPLES if FUZZ else examples, deadline=None, database=None, phases=phases,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.filter_too_much])
    @given(st.data())
    def prop(data: st.DataObject) -> None:
        seen[0] += 1
        case = data.draw(cases(target.domain, families=(family,)), label="case")
        run_case(case, target, paged=seen[0] % PAGED_EVERY[target.name] == 0)

    prop()
    assert seen[0] >= min(examples, 10)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_demo(demo_target: Target, family: str) -> None:
    _property(demo_target, family, EXAMPLES["demo"][family])


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_tiny(tiny_target: Target, family: str) -> None:
    _property(tiny_target, family, EXAMPLES["tiny"][family])


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_mini(mini_target: Target, family: str) -> None:
    _property(mini_target, family, EXAMPLES["mini"][family])


def test_capped_view_is_complete_or_refused(tiny_target: Target) -> None:
    """A view without an id cannot be split by id ranges: under a cap it smaller than its
    answer, the engine returns every row or raises TruncatedResultError — never fewer rows."""
    oracle = tiny_target.oracle
    view = oracle.views(2)[0]
    _cols, _types, rows = oracle.run(f"SELECT * FROM ({oracle.relation_sql(2, view, None)})")
    assert len(rows) > 1
    engine = make_engine(Path(oracle.root), row_cap=1)
    with pytest.raises(TruncatedResultError) as info:
        engine.execute(f"SELECT * FROM {view}")
    assert info.value.code == "CQL031"
