"""``aggregate(...) FILTER (WHERE c)``: only the group's rows where ``c`` holds, evaluated in the
local step (the rows it leaves out are fetched); answers checked against pandas over the same
rows. The random comparison against DuckDB is tests/differential (the GROUP BY ALL family)."""

from __future__ import annotations

import pandas as pd
import pytest

from caveql.engine import Engine
from caveql.errors import AggregateError, CqlSemanticError, CqlTypeError


@pytest.fixture()
def synapses(engine: Engine) -> pd.DataFrame:
    return engine.execute("SELECT id, pre_pt_root_id, post_pt_root_id, size FROM synapses").frame


def test_grouped_filters_against_pandas(engine: Engine, synapses: pd.DataFrame) -> None:
    got = engine.execute(
        "SELECT pre_pt_root_id, COUNT(*) AS n, COUNT(*) FILTER (WHERE size > 100) AS big, "
        "SUM(size) FILTER (WHERE post_pt_root_id != pre_pt_root_id) AS s, "
        "MAX(id) FILTER (WHERE size <= 100) AS small_top "
        "FROM synapses GROUP BY pre_pt_root_id ORDER BY pre_pt_root_id").frame
    for _, row in got.iterrows():
        grp = synapses[synapses.pre_pt_root_id == row.pre_pt_root_id]
        assert row.n == len(grp)
        assert row.big == int((grp["size"] > 100).sum())
        other = grp[grp.post_pt_root_id != grp.pre_pt_root_id]["size"]
        assert (pd.isna(row.s) and other.empty) or row.s == pytest.approx(float(other.sum()))
        small = grp[grp["size"] <= 100]["id"]
        assert (pd.isna(row.small_top) and small.empty) or row.small_top == small.max()
    assert got["big"].sum() < got["n"].sum()  # the filters left rows out


def test_a_filtered_count_is_not_the_services_count(engine: Engine, synapses: pd.DataFrame) -> None:
    """COUNT(*) alone is asked of the service (count=True); with FILTER the rows are fetched."""
    p = engine.physical_plan("SELECT COUNT(*) FILTER (WHERE size > 100) AS big FROM synapses")
    assert not p.calls[0].request.count and "FILTER (WHERE" in p.sql
    assert engine.physical_plan("SELECT COUNT(*) AS n FROM synapses").calls[0].request.count
    got = engine.execute("SELECT COUNT(*) FILTER (WHERE size > 100) AS big, COUNT(*) AS n FROM synapses").frame
    assert got.to_dict("records") == [{"big": int((synapses["size"] > 100).sum()), "n": len(synapses)}]
    ordered = engine.physical_plan("SELECT COUNT(*) AS n FROM synapses ORDER BY COUNT(*) FILTER (WHERE size > 1)")
    assert not ordered.calls[0].request.count


def test_having_pivot_and_explain(engine: Engine, synapses: pd.DataFrame) -> None:
    having = engine.execute("SELECT pre_pt_root_id FROM synapses GROUP BY pre_pt_root_id "
                            "HAVING COUNT(*) FILTER (WHERE size > 100) >= 2 ORDER BY 1").frame
    counts = synapses[synapses["size"] > 100].groupby("pre_pt_root_id").size()
    assert having.pre_pt_root_id.tolist() == sorted(int(r) for r, n in counts.items() if n >= 2)
    text = engine.explain("SELECT COUNT(*) FILTER (WHERE size > 100) AS big FROM synapses")
    assert "COUNT(*) FILTER (WHERE synapses.size > 100" in text
    pivot = engine.execute("SELECT * FROM (SELECT pre_pt_root_id, post_pt_root_id, size FROM synapses) AS s "
                           "PIVOT (COUNT(*) FILTER (WHERE size > 100) FOR post_pt_root_id IN (1002, 1005)) "
                           "ORDER BY pre_pt_root_id").frame
    for _, row in pivot.iterrows():
        grp = synapses[(synapses.pre_pt_root_id == row.pre_pt_root_id) & (synapses["size"] > 100)]
        assert row["1002"] == int((grp.post_pt_root_id == 1002).sum())
        assert row["1005"] == int((grp.post_pt_root_id == 1005).sum())


@pytest.mark.parametrize(("cql", "error", "words"), [
    ("SELECT ABS(size) FILTER (WHERE size > 1) FROM synapses", CqlSemanticError,
     "FILTER (WHERE ...) applies to aggregates; ABS() is not one"),
    ("SELECT LATEST_ROOTS(pre_pt_root_id) FILTER (WHERE size > 1) FROM synapses", CqlSemanticError,
     "LATEST_ROOTS() is not one"),
    ("SELECT COUNT(*) FILTER (WHERE size) FROM synapses", CqlTypeError, "FILTER (WHERE ...) needs bool"),
    ("SELECT COUNT(*) FILTER (WHERE COUNT(*) > 1) FROM synapses", AggregateError, "cannot be nested"),
    ("SELECT id FROM synapses WHERE COUNT(*) FILTER (WHERE size > 1) > 0", AggregateError,
     "not allowed in WHERE"),
])
def test_errors_name_what_is_wrong(engine: Engine, cql: str, error: type, words: str) -> None:
    with pytest.raises(error) as info:
        engine.execute(cql)
    assert words in info.value.message and info.value.span is not None
