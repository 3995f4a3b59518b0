"""Rules are pure and idempotent: running the optimizer twice changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from caveql.analyze import Settings, analyze
from caveql.engine import Engine
from caveql.plan.optimizer import RULES, optimize
from caveql.syntax import parse

from .test_golden_plans import _header

CASES = [p for p in sorted((Path(__file__).parent / "plans").glob("*.cql"))
         if "backend: demo" not in p.read_text()]


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_optimizer_is_idempotent(path, tiny_backend):
    params, _backend = _header(path.read_text())
    eng = Engine(tiny_backend)
    stmt = parse(path.read_text()).statements[0]
    version = 1 if "AT VERSION 1" in path.read_text() else 2
    cat = eng.catalog(version)
    logical = analyze(stmt, cat, Settings(), params)
    once = optimize(logical, catalog=cat, capabilities=tiny_backend.capabilities)
    twice = optimize(once, catalog=cat, capabilities=tiny_backend.capabilities)
    assert once == twice
    # and each rule leaves its input untouched (frozen nodes: a new plan or the same one)
    again = optimize(logical, catalog=cat, capabilities=tiny_backend.capabilities)
    assert again == once


def test_rules_tuple_names_one_module_each():
    mods = {r.__module__ for r in RULES}
    assert len(mods) == len(RULES) and all(m.startswith("caveql.plan.rules.") for m in mods)
