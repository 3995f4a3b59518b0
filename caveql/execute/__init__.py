"""Execution: remote calls (batched, split, parallel), then the local DuckDB step.

One entry, :func:`execute` ``(physical, backend) -> Result``. Subqueries run
first; then the calls in the plan's fetch order, each fed the keys of the
results before it; then the local SQL; then the frame.

Cancellation (:mod:`caveql.cancel`): the statement's token is checked before every
call, request and local step, and a running DuckDB query is interrupted. Each run
has its own child token, made current in the pool threads too: when one call fails
(or the caller's thread is interrupted) the others stop at their next request
instead of running to their end.

A service that caps answers below the plan's row cap (it says so in its cap notice)
makes the run start again from a plan for that cap (``PhysicalPlan.replan``); the
statistics then carry the plan that ran (``stats["plan"]``) and the caps learned.
Positions the service would truncate are scaled here (:mod:`caveql.execute.scale`).

>>> execute.__name__
'execute'
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from caveql import cancel
from caveql.backends.base import Backend
from caveql.errors import ExecutionError, TruncatedResultError
from caveql.execute.analyze import run_steps
from caveql.execute.local import run_local
from caveql.execute.relations import in_place, in_place_calls
from caveql.execute.remote import RowCapLearned, run_call
from caveql.execute.result import Result
from caveql.execute.scale import rescale
from caveql.identity.resolve import bound as identity_bound
from caveql.identity.resolve import uses_identity
from caveql.plan.physical import PhysicalPlan, RemoteCall

# plans tried for one statement at most: each try learns a strictly smaller cap, and a cap is
# only learned from an answer the service cut, so more than a few means a service that lies
_MAX_PLANS = 8

__all__ = ["Result", "execute", "execute_arrow"]


def _empty(call: RemoteCall) -> pa.Table:
    """The answer of a call that was not made (its key feed was empty): no rows, the catalog's types."""
    return _typed(pa.table({c: pa.array([], pa.null()) for c in call.columns}), call)


def _typed(table: pa.Table, call: RemoteCall) -> pa.Table:
    """``table`` (the call's columns, in order) with every column of Arrow type null — an answer
    without rows (or without a value) for which the service could not tell the type — given the
    catalog's type, so that an empty answer has the dtypes a full one has, whichever backend
    answered."""
    if len(call.types) != table.num_columns or not any(pa.types.is_null(t) for t in table.schema.types):
        return table
    for i, (f, want) in enumerate(zip(table.schema, call.types, strict=True)):
        if pa.types.is_null(f.type) and not pa.types.is_null(want):
            table = table.set_column(i, pa.field(f.name, want), table.column(i).cast(want))
    return table


def _apply_rename(table: pa.Table, call: RemoteCall) -> pa.Table:
    """The call's columns, in its order and under its local names, picked from the answer by
    the backend's names for them (other columns the service added are left out), typed as the
    catalog types them where the answer could not say (:func:`_typed`)."""
    if not call.rename:
        missing = [c for c in call.columns if c not in table.column_names]
        if not missing:
            return _typed(table.select(list(call.columns)), call)
    else:
        names = call.answer_names(table.column_names)
        wanted = [names[c] for c in call.columns]
        present = set(table.column_names)
        missing = [c for c, b in zip(call.columns, wanted, strict=True) if b not in present]
        if not missing:
            return _typed(table.select(wanted).rename_columns(list(call.columns)), call)
    raise ExecutionError(f"the backend's answer for {call.alias} lacks column(s) "
                         f"{', '.join(missing)}")


def execute_arrow(p: PhysicalPlan, backend: Backend, keep_arrow: bool = True, analyze: bool = False
                  ) -> tuple[Any, pa.Table | None, dict[str, Any]]:
    """Run a plan; ``(frame, arrow result (if ``keep_arrow``), stats)``. ``analyze`` (EXPLAIN
    ANALYZE) also runs the local part step by step for per-step figures (``stats["steps"]``).

    When the service caps answers below the plan's row cap, the statement is planned again for
    the cap it named and run again (``stats["plan"]``, ``stats["replanned"]``: the caps)."""
    learned: list[int] = []
    for _ in range(_MAX_PLANS):
        try:
            frame, arrow, stats = _run(p, backend, keep_arrow, analyze)
        except RowCapLearned as signal:
            if p.replan is None or signal.cap < 1:
                assumed = p.capabilities.row_cap
                raise TruncatedResultError(
                    f"the service cut an answer at {signal.cap:,} rows, below the row cap this plan was "
                    f"made for ({f'{assumed:,}' if assumed is not None else 'none'})",
                    hint="plan the statement again (the backend now reports the smaller cap)") from None
            learned.append(signal.cap)
            p = p.replan(signal.cap)
            continue
        if learned:
            stats.update(plan=p, replanned=learned)
        return frame, arrow, stats
    raise TruncatedResultError(f"the service kept cutting answers below the row cap it named "
                               f"({', '.join(f'{c:,}' for c in learned)} rows)")


def _run(p: PhysicalPlan, backend: Backend, keep_arrow: bool, analyze: bool
         ) -> tuple[Any, pa.Table | None, dict[str, Any]]:
    """One run of a plan (and its subplans) under a child cancel token."""
    outer = cancel.current()
    token = cancel.CancelToken()  # this run's: stops its pool workers when the run fails
    with outer.on_cancel(token.cancel) if outer is not None else nullcontext(), cancel.activate(token):
        try:
            return _execute_arrow(p, backend, keep_arrow, analyze, token)
        except BaseException:
            token.cancel()
            raise


def _execute_arrow(p: PhysicalPlan, backend: Backend, keep_arrow: bool, analyze: bool,
                   token: cancel.CancelToken) -> tuple[Any, pa.Table | None, dict[str, Any]]:
    t0 = time.perf_counter()
    stats: dict[str, Any] = {"calls": {}, "subplans": []}
    relations: dict[str, Any] = {}  # Arrow answers, or InPlace relations (caveql.execute.relations)
    for i, sp in enumerate(p.subplans):
        # a subplan's RowCapLearned reaches the top-level plan, which plans everything again
        _f, arrow, sstats = _run(sp, backend, keep_arrow=True, analyze=analyze)
        assert arrow is not None
        stats["subplans"].append(sstats)
        relations[f"sub{i}"] = pa.table({"v": arrow.column(0)})
    by_alias: dict[str, pa.Table] = {}
    for loc in p.locals:
        # local tables first: their keys may feed the remote calls
        cancel.check()
        table = loc.table.read(loc.columns)
        by_alias[loc.key] = relations[loc.relation] = table
    if p.locals:
        stats["locals"] = {loc.key: relations[loc.relation].num_rows for loc in p.locals}

    def keys(source: str, column: str) -> list[Any]:
        sub = source not in by_alias and source.startswith("sub")
        table = relations[source] if sub else by_alias[source]
        col = table.column("v" if sub else column)
        uniq = pc.unique(col.drop_null())
        vals = [v for v in uniq.to_pylist() if v is not None]
        try:
            return sorted(vals)
        except TypeError:
            return vals

    caps = p.capabilities
    readable = in_place_calls(p) if caps.relations else frozenset()
    pool = ThreadPoolExecutor(max_workers=caps.parallel) if caps.parallel > 1 else None
    try:
        for call in p.calls:
            cancel.check()
            if call.alias in readable:
                t1 = time.perf_counter()
                rel = in_place(backend, call, caps)
                if rel is not None:  # the local step reads the backend's relation: nothing fetched
                    relations[call.relation] = rel
                    stats["calls"][call.alias] = rel.stats((time.perf_counter() - t1) * 1000)
                    continue
            table, cstats = run_call(backend, call, caps, keys, pool)
            table = _apply_rename(table, call) if table is not None else _empty(call)
            if call.rescale is not None:
                table = rescale(table, call.rescale)
            by_alias[call.alias] = table
            relations[call.relation] = table
            stats["calls"][call.alias] = cstats.as_dict()
        table = None  # the loop variable too: run_local must hold the only references, to free them
    except BaseException:
        token.cancel()  # before the pool's shutdown waits for its workers: they stop at their next request
        raise
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)  # after a failure: queued pieces never start
    by_alias.clear()  # only `relations` holds the results now; run_local lets them go
    cancel.check()
    # identity functions over columns (LATEST_ROOTS(pt_root_id) ...): a resolver for the local step
    scope = identity_bound(backend) if uses_identity(p.sql) else nullcontext()
    with scope:
        if analyze:
            stats["steps"] = run_steps(p, relations)
            cancel.check()
        frame, arrow, local = run_local(p, relations, keep_arrow=keep_arrow)
    stats["local"] = local
    stats["ms"] = (time.perf_counter() - t0) * 1000
    return frame, arrow, stats


def execute(p: PhysicalPlan, backend: Backend) -> Result:
    """Run a physical plan against ``backend``; a ``rows`` :class:`Result`."""
    t0 = time.perf_counter()
    frame, _arrow, stats = execute_arrow(p, backend, keep_arrow=False)
    # the plan that ran (a replanned one when the service capped answers): the frame's provenance
    return Result(kind="rows", frame=frame, elapsed=time.perf_counter() - t0, stats=stats,
                  plan=stats.get("plan", p))
