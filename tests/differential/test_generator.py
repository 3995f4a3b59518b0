"""The generator itself: every case it draws is valid oracle SQL (checked on the tiny datastack)."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caveql.syntax import parse
from caveql.syntax.ast import Column, Select
from tests.differential.generator import Case
from tests.differential.statements import FAMILIES, cases
from tests.differential.oracle import Domain, Oracle
from tests.differential.tiny import build_tiny


@pytest.fixture(scope="module")
def tiny_domain(tmp_path_factory: pytest.TempPathFactory) -> Domain:
    return Domain(Oracle(build_tiny(tmp_path_factory.mktemp("tiny"))))


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_generated_sql_runs(tiny_domain: Domain, family: str) -> None:
    seen: list[Case] = []

    @settings(max_examples=60, database=None)
    @given(st.data())
    def run(data: st.DataObject) -> None:
        case = data.draw(cases(tiny_domain, families=(family,)))
        columns, _types, _rows = tiny_domain.oracle.run(case.sql)
        assert tuple(columns) == case.columns, case.describe()
        if case.unlimited_sql:
            tiny_domain.oracle.run(case.unlimited_sql)
        parse(case.cql, start="statement")  # every generated query is valid CQL
        seen.append(case)

    run()
    assert seen



def _group_outputs_ordered(select: Select) -> bool:
    """True when every GROUP BY column's output name is an ORDER BY key."""
    order = {o.expr.name for o in select.order_by if isinstance(o.expr, Column)}
    outs = []
    for g in select.group_by:
        assert isinstance(g, Column)
        item = next((i for i in select.items if i.expr == g), None)
        outs.append(item.alias or g.name if item is not None else g.name)  # else: grouped by alias
    return set(outs) <= order


@pytest.mark.parametrize("which", ["tiny", "demo"])
def test_grouped_order_is_total_only_when_every_group_column_is_a_key(
        which: str, request: pytest.FixtureRequest) -> None:
    """Regression (CI, 2026-11-25): a nullable group column of a view left out of ORDER BY
    was counted as covered by an aggregate, so tied groups were compared in order."""
    dom: Domain = request.getfixturevalue("tiny_domain" if which == "tiny" else "domain")
    checked: list[Case] = []

    @settings(max_examples=300, database=None)
    @given(st.data())
    def run(data: st.DataObject) -> None:
        case = data.draw(cases(dom, families=("aggregate",)))
        select = parse(case.cql, start="statement")
        assert isinstance(select, Select)
        if case.mode == "ordered" and select.order_by and select.group_by:
            assert _group_outputs_ordered(select), case.describe()
            checked.append(case)

    run()
    assert checked


def _order_keys(case: Case) -> list[int]:
    """Output positions of a case's ORDER BY keys (the generator orders by output names)."""
    select = parse(case.cql, start="statement")
    assert isinstance(select, Select)
    keys = []
    for item in select.order_by:
        assert isinstance(item.expr, Column) and item.expr.table is None, case.describe()
        keys.append(case.columns.index(item.expr.name))
    return keys


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("which", ["tiny", "demo"])
def test_cases_compared_in_order_have_no_ties(which: str, family: str, request: pytest.FixtureRequest) -> None:
    """Every case the differential tests compare row by row ("ordered") is totally ordered:
    in the oracle's answer without LIMIT/OFFSET no two rows share their ORDER BY keys, and
    a LIMIT without ORDER BY follows the (unique) id. This checks every family's ``total_if``
    rule by its meaning, not by its text. It finds a slip only where the drawn data has ties
    (the grouped slip of 2026-11-25 it found in one of two draws tried), hence also the
    structural test above."""
    dom: Domain = request.getfixturevalue("tiny_domain" if which == "tiny" else "domain")
    checked: list[Case] = []

    @settings(max_examples=200, database=None)
    @given(st.data())
    def run(data: st.DataObject) -> None:
        case = data.draw(cases(dom, families=(family,)))
        if case.mode != "ordered":
            return
        keys = _order_keys(case)
        if not keys:  # LIMIT/OFFSET alone: the oracle orders by the source's id, unique there
            assert case.unlimited_sql and ' ORDER BY t0."id"' in case.sql, case.describe()
            rest = case.unlimited_sql.split(" FROM ", 1)[1]  # select items hold no FROM
            dupes = dom.oracle.run(f'SELECT count(*) - count(DISTINCT t0."id") FROM {rest}')[2]
            assert dupes == [(0,)], f"LIMIT by id, id not unique\n{case.describe()}"
            checked.append(case)
            return
        _columns, _types, rows = dom.oracle.run(case.unlimited_sql or case.sql)
        seen = Counter(tuple(r[k] for k in keys) for r in rows)
        tied = [k for k, n in seen.items() if n > 1]
        assert not tied, f"tied ORDER BY keys {tied[:3]} in a case compared in order\n{case.describe()}"
        checked.append(case)

    run()
    assert checked
