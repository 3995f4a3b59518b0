"""EXPLAIN ANALYZE's per-step figures: the local part run step by step, each step measured.

:func:`run_steps` runs the plan's local part as one statement per step, each over the
previous step's Arrow result (:func:`caveql.plan.steps.local_steps`, built from the
fragments the planner kept in ``PhysicalPlan.local_parts``) and records, per step, the
rows and bytes of its result and the milliseconds DuckDB took to produce it. Only
EXPLAIN ANALYZE calls it, before the ordinary one-statement run over the same call
results, so ordinary execution does not change. The figures are measured, not
estimated; the chained statements materialize every intermediate result, so their
times add up to more than the fused statement's.

>>> run_steps.__name__
'run_steps'
"""

from __future__ import annotations

import time
from typing import Any

import pyarrow as pa

from caveql.execute.local import local_connection, run_sql
from caveql.plan.physical import PhysicalPlan
from caveql.plan.steps import _renumber, local_steps

__all__ = ["run_steps"]


def run_steps(p: PhysicalPlan, relations: dict[str, pa.Table], last: list[pa.Table] | None = None
              ) -> list[dict[str, Any]]:
    """``[{"step": line index, "rows", "bytes", "ms"}]`` of each local step, in run order
    (``relations`` is read, not consumed; ``last``, if given, receives the final result)."""
    out: list[dict[str, Any]] = []
    if p.local_parts is None:
        return out
    steps = local_steps(p.local_parts, p.params)
    con = local_connection(p, relations)
    try:
        for name, sql, line in p.prelude:
            # a block read by another (a derived table, a CTE, a set operation): one statement,
            # its result registered under the name the outer steps read it by
            text, params = _renumber(sql, p.params)
            t0 = time.perf_counter()
            result = run_sql(con, text, params, f"the step of {name}")
            out.append({"step": line, "rows": result.num_rows, "bytes": result.nbytes,
                        "ms": (time.perf_counter() - t0) * 1000})
            con.register(name, result)
            del result
        for i, step in enumerate(steps):
            t0 = time.perf_counter()
            result = run_sql(con, step.sql, step.params, f"local step {i + 1}")
            ms = (time.perf_counter() - t0) * 1000
            out.append({"step": step.step, "rows": result.num_rows, "bytes": result.nbytes, "ms": ms})
            if i:
                con.unregister(f"__step{i - 1}")  # keep one intermediate result alive at a time
            con.register(f"__step{i}", result)
            if last is not None and i == len(steps) - 1:
                last.append(result)
            del result
    finally:
        con.close()
    return out
