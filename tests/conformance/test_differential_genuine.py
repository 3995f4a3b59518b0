"""Generated CQL through HttpBackend against the genuine engine vs the differential oracle.

The differential suite's generator (tests/differential) draws statements over the small
demo; each runs through caveql over HttpBackend against the genuine engine at the
service's cap and against the same database served with ``QUERY_LIMIT_SIZE`` 1,000 (so
every big answer is paged; HttpBackend is not told the cap), and must equal the oracle's
answer (plain DuckDB SQL over the same Parquet files — the semantics LocalBackend is held
to). 4 families x 50 cases, derandomized in CI like the rest.
"""

from __future__ import annotations

import pytest

from caveql.backends.http import HttpBackend
from caveql.engine import Engine, Settings
from tests.differential.oracle import Domain, Oracle
from tests.differential.statements import FAMILIES
from tests.differential.test_differential import Target, _property

pytestmark = pytest.mark.timeout(1800)

CAP = 1000
EXAMPLES = 50


def _engine(genuine) -> Engine:
    backend = HttpBackend(genuine.datastack, server=genuine.global_url, cache=False)
    # (made-up root ids run, to the service's answer: the CQL017 check is tests/roots')
    return Engine(backend, settings=Settings(version=None, resolution=None, timestamp=None, live=False,
                                             allow_invalid_root_ids=True))


@pytest.fixture(scope="module")
def target(small_demo, genuine_demo, genuine_demo_capped):
    oracle = Oracle(small_demo)
    target = Target("genuine", oracle, Domain(oracle), _engine(genuine_demo), _engine(genuine_demo_capped), CAP)
    yield target
    for engine in (target.engine, target.paged):
        engine.backend.close()


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_genuine_differential(target: Target, family: str) -> None:
    tally = _property(target, family, EXAMPLES)
    assert tally.paged + tally.refused == tally.checked >= EXAMPLES
