"""The engine keeps the plans of statements it ran (caveql.plancache) — and only where nothing a
plan is made from can have changed: same answers, new plans where the settings, parameters,
registered tables, backend or "now" differ."""

from __future__ import annotations

import pandas as pd
import pytest

import caveql
from caveql.backends.local import LocalBackend
from caveql.engine import Engine
from caveql.errors import CqlSyntaxError
from caveql.plancache import PlanCache, params_key, storable
from caveql.syntax import parse


def test_a_statement_run_again_reuses_its_plan(engine: Engine) -> None:
    first = engine.execute("SELECT id, pt_root_id FROM nuclei WHERE id > 10 ORDER BY id")
    again = engine.execute("SELECT id, pt_root_id FROM nuclei WHERE id > 10 ORDER BY id")
    assert again.plan is first.plan
    pd.testing.assert_frame_equal(again.frame, first.frame)
    # other text, other plan (the same text with other spacing parses to an equal tree)
    other = engine.execute("SELECT id, pt_root_id FROM nuclei WHERE id > 11 ORDER BY id")
    assert other.plan is not first.plan
    assert len(other.frame) == len(first.frame) - 1
    spaced = engine.execute("SELECT  id,  pt_root_id FROM nuclei WHERE id > 10 ORDER BY id")
    assert spaced.plan is first.plan


def test_settings_and_parameters_are_part_of_the_key(engine: Engine) -> None:
    at2 = engine.execute("SELECT COUNT(*) AS n FROM synapses")
    engine.execute("SET version = 1")
    at1 = engine.execute("SELECT COUNT(*) AS n FROM synapses")
    assert at1.plan is not at2.plan
    assert at1.plan.calls[0].request.version == 1
    assert at2.plan.calls[0].request.version == 2
    engine.execute("SET version = 2")
    assert engine.execute("SELECT COUNT(*) AS n FROM synapses").plan.calls[0].request.version == 2
    engine.execute("SET version = 1")
    assert engine.execute("SELECT COUNT(*) AS n FROM synapses").plan is at1.plan
    a = engine.execute("SELECT id FROM nuclei WHERE id = :x", params={"x": 10})
    b = engine.execute("SELECT id FROM nuclei WHERE id = :x", params={"x": 11})
    assert a.frame["id"].tolist() == [10] and b.frame["id"].tolist() == [11]
    assert engine.execute("SELECT id FROM nuclei WHERE id = :x", params={"x": 10}).plan is a.plan
    # a list parameter cannot be a key: planned each time, still right
    c1 = engine.execute("SELECT id FROM nuclei WHERE id IN :xs", params={"xs": [10, 11]})
    c2 = engine.execute("SELECT id FROM nuclei WHERE id IN :xs", params={"xs": [10, 11]})
    assert c1.plan is not c2.plan and sorted(c2.frame["id"]) == [10, 11]


def test_live_statements_are_planned_each_time(engine: Engine) -> None:
    a = engine.execute("SELECT id FROM cells AT LIVE")
    b = engine.execute("SELECT id FROM cells AT LIVE")
    assert a.plan is not b.plan
    assert a.plan.calls[0].request.timestamp < b.plan.calls[0].request.timestamp
    assert not storable(a.plan)


def test_a_subquery_at_live_keeps_the_plan_out(engine: Engine) -> None:
    text = "SELECT id FROM nuclei WHERE pt_root_id IN (SELECT pt_root_id FROM cells AT LIVE)"
    a, b = engine.execute(text), engine.execute(text)
    assert a.plan is not b.plan
    pd.testing.assert_frame_equal(a.frame, b.frame)


def test_registered_tables_are_read_each_time(tiny_datastack) -> None:
    db = caveql.connect(path=tiny_datastack)
    try:
        text = "SELECT n.id FROM nuclei n JOIN picked p ON p.id = n.id ORDER BY n.id"
        with pytest.raises(caveql.CaveqlError, match="picked"):
            db.query(text)
        db.register("picked", pd.DataFrame({"id": [10, 11]}))
        assert db.query(text)["id"].tolist() == [10, 11]
        db.register("picked", pd.DataFrame({"id": [12]}))  # a plan reading it is never kept
        assert db.query(text)["id"].tolist() == [12]
        db.unregister("picked")
        with pytest.raises(caveql.CaveqlError, match="picked"):
            db.query(text)
    finally:
        db.close()


def test_use_forgets_the_plans(tiny_datastack) -> None:
    opened: list[LocalBackend] = []

    def opener(name: str) -> LocalBackend:
        b = LocalBackend(tiny_datastack)
        opened.append(b)
        return b

    eng = Engine(LocalBackend(tiny_datastack), opener=opener)
    first = eng.execute("SELECT id FROM nuclei")
    assert len(eng._plans) == 1
    eng.execute("USE tiny")
    assert len(eng._plans) == 0
    again = eng.execute("SELECT id FROM nuclei")
    assert again.plan is not first.plan
    assert again.plan.datastack == first.plan.datastack
    for b in opened:
        b.close()


def test_folded_identity_calls_are_not_kept(engine: Engine) -> None:
    text = "SELECT id FROM nuclei WHERE pt_root_id IN LATEST_ROOTS(905)"
    a, b = engine.execute(text), engine.execute(text)
    assert a.plan is not b.plan
    assert any("LATEST_ROOTS(905)" in n for n in b.plan.notes)


def test_the_cache_is_bounded() -> None:
    cache = PlanCache(size=3)
    for i in range(10):
        cache.put(("k", i), i)
    assert len(cache) == 3
    assert [cache.get(("k", i)) for i in range(10)] == [None] * 7 + [7, 8, 9]
    cache.clear()
    assert len(cache) == 0


def test_parameter_types_are_distinguished() -> None:
    assert params_key({"x": 1}) != params_key({"x": True}) != params_key({"x": 1.0})


def test_the_parser_hands_one_tree_per_text_and_fails_every_time() -> None:
    text = "SELECT id FROM nuclei WHERE id = 12"
    assert parse(text) is parse(text)
    assert parse(text, start="statement") is not parse(text)
    for _ in range(2):  # a failure is never kept: the second parse fails the same way
        with pytest.raises(CqlSyntaxError) as err:
            parse("SELECT id FORM nuclei")
        assert "FORM" in str(err.value)
    long = "SELECT id FROM nuclei WHERE id IN (" + ", ".join(map(str, range(5000))) + ")"  # a long text (a script) is parsed, not kept
    assert parse(long) is not parse(long)


def test_long_statements_are_not_kept(engine: Engine) -> None:
    """A statement longer than the parser keeps (thousands of ids written out) is planned each
    time: its plan would hold its lists until pushed out of the cache."""
    text = "SELECT id FROM nuclei WHERE id IN (" + ", ".join(map(str, range(5000))) + ") ORDER BY id"
    a, b = engine.execute(text), engine.execute(text)
    assert a.plan is not b.plan and len(engine._plans) == 0
    pd.testing.assert_frame_equal(a.frame, b.frame)
    engine.execute("SELECT id FROM nuclei WHERE id IN (10, 11)")
    assert len(engine._plans) == 1
