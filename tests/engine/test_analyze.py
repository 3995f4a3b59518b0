"""EXPLAIN ANALYZE: rows, bytes and milliseconds per local step, checked against DuckDB run directly."""

from __future__ import annotations

import re

import duckdb
import pytest

from caveql import execute
from caveql.backends.base import QueryRequest
from caveql.engine import Engine
from caveql.plan.explain import explain_text

from .test_golden_plans import CASES, golden_engine

FIGURES = re.compile(r"^\s*- (.*?)  -> ([\d,]+) rows, ([\d,]+) bytes, ([\d.]+) ms$")


def step_figures(text: str) -> list[tuple[str, int, int, float]]:
    """``(step, rows, bytes, ms)`` of the outer query's local steps, in order."""
    block = text.split("\nLocal steps")[-1]
    out = []
    for line in block.splitlines()[1:]:
        if not line.startswith("  - "):
            break
        m = FIGURES.match(line)
        assert m, f"a local step without figures: {line!r}"
        out.append((m.group(1), int(m.group(2).replace(",", "")), int(m.group(3).replace(",", "")),
                    float(m.group(4))))
    return out


def one(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    """The single value a counting query gives."""
    return con.execute(sql).fetchall()[0][0]


def out_rows(text: str) -> int:
    return int(re.findall(r"actual: ([\d,]+) rows out", text)[-1].replace(",", ""))


QUERY = """EXPLAIN ANALYZE SELECT n.id AS nuc, COUNT(*) AS k, SUM(s.size) AS total
FROM synapses_pni_2 s JOIN nucleus_detection_v0 n ON s.post_pt_root_id = n.pt_root_id
WHERE s.pre_pt_root_id IN :roots AND s.size * 2 > 3000
GROUP BY n.id HAVING COUNT(*) > 2 ORDER BY k DESC LIMIT 5"""


def test_each_step_counts_the_real_intermediate_rows(demo_backend):
    """join -> filter -> aggregate -> having -> sort -> limit -> project, each with its rows,
    against the same counts computed by hand-written DuckDB SQL over the backend's tables."""
    eng = Engine(demo_backend)
    v = max(demo_backend.versions())
    roots = eng.execute("SELECT pt_root_id FROM nucleus_detection_v0 WHERE id < 300 AND pt_root_id != 0"
                        ).frame.pt_root_id.tolist()
    assert len(roots) > 10
    text = eng.execute(QUERY, params={"roots": roots}).message
    steps = step_figures(text)
    assert [s[0].split()[0] for s in steps] == ["inner", "filter", "aggregate", "having", "sort", "limit",
                                                "project"]
    # the oracle: the backend's own rows (no engine), counted by DuckDB
    s = demo_backend.query(QueryRequest(kind="table", table="synapses_pni_2", version=v,
                                        filter_in={"synapses_pni_2": {"pre_pt_root_id": roots}})).table
    n = demo_backend.query(QueryRequest(kind="table", table="nucleus_detection_v0", version=v)).table
    con = duckdb.connect()
    con.register("s", s)
    con.register("n", n)
    join = "FROM s JOIN n ON s.post_pt_root_id = n.pt_root_id"
    where = f"{join} WHERE s.size * 2 > 3000"
    want = [
        one(con, f"SELECT count(*) {join}"),
        one(con, f"SELECT count(*) {where}"),
        one(con, f"SELECT count(DISTINCT n.id) {where}"),
        one(con, f"SELECT count(*) FROM (SELECT n.id {where} GROUP BY n.id HAVING count(*) > 2)"),
    ]
    want += [want[3], min(5, want[3]), min(5, want[3])]
    assert [r for _s, r, _b, _m in steps] == want
    assert len(set(want)) >= 5  # the steps really change the row count
    assert all(b > 0 and ms >= 0 for _s, _r, b, ms in steps)
    assert out_rows(text) == want[-1]


def test_plain_explain_has_no_figures(engine):
    text = engine.explain("SELECT id FROM synapses WHERE size * 2 > 100 ORDER BY size LIMIT 3")
    assert " -> " not in text.split("Local steps")[1] and "actual" not in text


@pytest.mark.parametrize("distinct", [False, True])
def test_distinct_and_non_aggregate_chains(engine, tiny_backend, distinct):
    """Without an aggregate: filter -> (distinct) -> sort -> limit -> project, rows checked by DuckDB."""
    d = "DISTINCT " if distinct else ""
    text = engine.explain(f"SELECT {d}pre_pt_root_id FROM synapses WHERE size * 2 > 200 "
                          "ORDER BY pre_pt_root_id DESC LIMIT 2", analyze=True)
    steps = step_figures(text)
    syn = tiny_backend.query(QueryRequest(kind="table", table="synapses", version=2)).table
    con = duckdb.connect()
    con.register("syn", syn)
    filtered = one(con, "SELECT count(*) FROM syn WHERE size * 2 > 200")
    kinds = [s[0].split()[0] for s in steps]
    if distinct:
        uniq = one(con, "SELECT count(DISTINCT pre_pt_root_id) FROM syn WHERE size * 2 > 200")
        assert kinds == ["filter", "distinct", "sort", "limit", "project"]
        assert [s[1] for s in steps] == [filtered, uniq, uniq, min(2, uniq), min(2, uniq)]
    else:
        assert kinds == ["filter", "sort", "limit", "project"]
        assert [s[1] for s in steps] == [filtered, filtered, 2, 2]


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_every_golden_plan_analyzes(path, request, tiny_backend, capped_backend, monkeypatch):
    """Each plan shape of the corpus: every local step gets figures, and the chain's final rows
    are the statement's rows."""
    text = path.read_text()
    eng, params = golden_engine(text, request, tiny_backend, capped_backend)
    # one run: the ANALYZE figures, the chain's final rows and the fused statement's answer
    chained: list = []
    real = execute.run_steps
    monkeypatch.setattr(execute, "run_steps", lambda p, rel: real(p, rel, chained))
    plan = eng.physical_plan(text, params=params)
    _frame, arrow, stats = execute.execute_arrow(plan, eng.backend, keep_arrow=True, analyze=True)
    got = explain_text(plan, stats)
    steps = step_figures(got)
    assert steps and steps[-1][0].startswith("project")
    assert steps[-1][1] == out_rows(got) == arrow.num_rows
    # the chain's final rows are the fused statement's, value for value, in order
    assert chained[-1].column_names == arrow.column_names  # (subqueries run first)
    assert chained[-1].equals(arrow)
