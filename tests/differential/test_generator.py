"""The generator itself: every case it draws is valid oracle SQL (checked on the tiny datastack)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caveql.syntax import parse
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
