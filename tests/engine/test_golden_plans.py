"""Golden plans: every tests/engine/plans/*.cql's EXPLAIN equals its reviewed *.plan.txt.

Header lines: ``-- params: {json}`` (a value ``"range:N"`` binds ``list(range(N))``),
``-- backend: capped`` (the tiny datastack with a 3-row cap), ``-- backend: demo`` (the shared
demo datastack: the spec's examples), a value ``"query:<cql>"`` binds the first column of that
query's answer, ``"frame:<cql>"`` its whole frame (a local table, ``FROM :name``);
``-- allow_invalid_root_ids`` runs root ids that are not current (made-up ids). Regenerate after a
deliberate planner change with ``CAVEQL_UPDATE_GOLDENS=1 pytest tests/engine`` and
review the diff line by line.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from caveql.engine import Engine

PLANS = Path(__file__).parent / "plans"
CASES = sorted(PLANS.glob("*.cql"))
UPDATE = bool(os.environ.get("CAVEQL_UPDATE_GOLDENS"))


def _header(text: str) -> tuple[dict, str]:
    params: dict = {}
    backend = "tiny"
    for line in text.splitlines():
        if line.startswith("-- params:"):
            params = json.loads(line.split(":", 1)[1])
        elif line.startswith("-- backend:"):
            backend = line.split(":", 1)[1].strip()
    for k, v in list(params.items()):
        if isinstance(v, str) and v.startswith("range:"):
            params[k] = list(range(int(v[6:])))
    return params, backend


def golden_engine(text: str, request, tiny_backend, capped_backend) -> tuple[Engine, dict]:
    """The engine a golden case's header asks for, and its parameters with ``query:`` values run."""
    params, backend = _header(text)
    if backend == "demo":
        eng = Engine(request.getfixturevalue("demo_backend"))
    else:
        eng = Engine(capped_backend if backend == "capped" else tiny_backend)
    if "-- allow_invalid_root_ids" in text:  # made-up ids (batching cases): run them anyway
        eng.execute("SET allow_invalid_root_ids = true")
    for k, v in list(params.items()):
        if isinstance(v, str) and v.startswith("query:"):
            params[k] = eng.execute(v[6:]).frame.iloc[:, 0].tolist()
        elif isinstance(v, str) and v.startswith("frame:"):  # a local table (FROM :name)
            params[k] = eng.execute(v[6:]).frame
    return eng, params


def test_corpus_is_large_enough():
    assert len(CASES) >= 60


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_golden_plan(path, request, tiny_backend, capped_backend):
    text = path.read_text()
    eng, params = golden_engine(text, request, tiny_backend, capped_backend)
    got = eng.explain(text, params=params) + "\n"
    golden = path.with_suffix(".plan.txt")
    if UPDATE or not golden.exists():
        golden.write_text(got)
    assert got == golden.read_text()
    # the plan runs, too
    eng.execute(text, params=params)
