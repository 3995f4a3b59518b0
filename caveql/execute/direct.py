"""The local step without DuckDB, for a plan whose SQL only sorts one call's rows by id and projects.

``SELECT * FROM synapses_pni_2 WHERE size > 2236`` fetches ~1M rows as a few id-range
answers; its local SQL is "project these columns, ORDER BY id". DuckDB would hold the
answers, its own sorted copy and its Arrow result at once (~4x the frame at peak). Here
each answer (chunk) is sorted on its own — most already are — and chunks of disjoint
id ranges are put in range order without copying; only overlapping chunks are sorted
together. The frame is then built a few columns at a time (:func:`caveql.execute.local.to_frame`
with ``consume``), each group of Arrow columns freed once converted.

The shortcut is taken only when the plan's SQL is exactly the text this module would
run in DuckDB (:func:`direct_step` rebuilds it and compares), so a planner change
falls back to DuckDB, never to a different answer. The sort is stable, ascending,
nulls last: DuckDB's ``ORDER BY`` on the same keys (ties cannot differ in kind, as
the keys are the rows' ids).

>>> import pyarrow as pa
>>> parts = [pa.record_batch({"id": [5, 4]}), pa.record_batch({"id": [2, 1, 3]})]
>>> sort_batches(parts, ("id",), pa.schema([("id", pa.int64())])).column("id").to_pylist()
[1, 2, 3, 4, 5]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from caveql.logical import Col
from caveql.plan.physical import PhysicalPlan
from caveql.plan.sql import quote

__all__ = ["DirectStep", "direct_step", "sort_batches", "sorted_relation"]

_KEYS = ("id", "id_ref")  # the planner's tie keys of a source, in its order


@dataclass(frozen=True)
class DirectStep:
    """A local step that is only: sort ``relation`` by ``keys``, then keep ``columns``
    (``(relation column, result name)`` pairs, in result order)."""

    relation: str
    keys: tuple[str, ...]
    columns: tuple[tuple[str, str], ...]


def direct_step(p: PhysicalPlan) -> DirectStep | None:
    """The plan's local step as a :class:`DirectStep`, or ``None`` when it needs DuckDB.

    >>> from caveql.backends.base import QueryRequest
    >>> from caveql.logical import Output, Query, Scan
    >>> from caveql.plan.physical import OutputSpec, RemoteCall
    >>> q = Query(scans=(Scan("s", "syn", "table", (1.0, 1.0, 1.0)),), joins=(),
    ...           outputs=(Output("size", Col("s", "size", "int")),))
    >>> call = RemoteCall("s", "r0", QueryRequest(kind="table"), columns=("id", "size"))
    >>> sql = 'SELECT "s"."size" AS "c0" FROM r0 AS "s" ORDER BY "s"."id"'
    >>> p = PhysicalPlan(q, (call,), (), sql, (), (), (), (OutputSpec("size", False, ("c0",)),),
    ...                  True, "ds")
    >>> direct_step(p)
    DirectStep(relation='r0', keys=('id',), columns=(('size', 'c0'),))
    """
    q = p.logical
    if (len(q.scans) != 1 or len(p.calls) != 1 or q.joins or q.where or q.group_by or q.aggregate
            or q.having is not None or q.distinct or q.order_by or p.params or p.lists):
        return None
    scan, call = q.scans[0], p.calls[0]
    if scan.count or call.alias != scan.alias:
        return None
    sources: list[str] = []
    for o in q.outputs:
        e = o.expr
        if not isinstance(e, Col) or e.source != scan.alias:
            return None
        sources += [f"{e.name}_{a}" for a in "xyz"] if e.type == "position" else [e.name]
    keys = tuple(k for k in _KEYS if k in call.columns)
    if not keys or any(s not in call.columns for s in sources):
        return None
    names = [f"c{i}" for i in range(len(sources))]
    alias = quote(scan.alias)
    sql = ("SELECT " + ", ".join(f"{alias}.{quote(s)} AS {quote(n)}" for s, n in zip(sources, names, strict=True))
           + f" FROM {call.relation} AS {alias} ORDER BY " + ", ".join(f"{alias}.{quote(k)}" for k in keys))
    if sql != p.sql:
        return None
    return DirectStep(call.relation, keys, tuple(zip(sources, names, strict=True)))


def sorted_relation(step: DirectStep, relations: dict[str, pa.Table]) -> pa.Table:
    """The step's result: ``relations[step.relation]`` sorted and projected.

    ``relations`` is emptied first, so that each answer is freed as soon as its sorted
    copy exists (pass the only reference to the results).

    >>> t = pa.table({"id": [3, 1, 2], "x": [30, 10, 20]})
    >>> step = DirectStep("r0", ("id",), (("x", "c0"),))
    >>> sorted_relation(step, {"r0": t}).to_pydict()
    {'c0': [10, 20, 30]}
    """
    table = relations.pop(step.relation)
    relations.clear()
    src = table.schema
    names = [n for _s, n in step.columns]
    index = {s: i for i, (s, _n) in enumerate(step.columns)}
    # the sort keys travel with the projected columns (under their result name when
    # projected, else under a private one dropped at the end)
    key_names = []
    extra: list[tuple[str, str]] = []
    for k in step.keys:
        if k in index:
            key_names.append(names[index[k]])
        else:
            extra.append((k, f"__key{len(extra)}"))
            key_names.append(extra[-1][1])
    picks = list(step.columns) + extra
    schema = pa.schema([pa.field(n, src.field(s).type) for s, n in picks])
    batches = table.to_batches()
    del table
    for i, b in enumerate(batches):
        batches[i] = pa.RecordBatch.from_arrays([b.column(s) for s, _n in picks], schema=schema)
    out = sort_batches(batches, tuple(key_names), schema)
    return out.drop_columns([n for _k, n in extra]) if extra else out


def sort_batches(batches: list[pa.RecordBatch], keys: tuple[str, ...], schema: pa.Schema) -> pa.Table:
    """The rows of ``batches`` stably sorted by ``keys`` (ascending, nulls last), as a table.

    Sorts each batch on its own (freeing the unsorted one: the list is consumed); when
    the sorted batches cover disjoint ranges of the first key they are only reordered,
    else the whole is sorted once more.
    """
    order = [(k, "ascending") for k in keys]  # nulls last: sort_indices' default, as DuckDB's
    bounds: list[tuple[object, object]] | None = []
    for i, b in enumerate(batches):
        n = b.num_rows
        if n > 1 and not _is_sorted(b, keys):
            batches[i] = b = b.take(pc.sort_indices(b, sort_keys=order))
        first = b.column(keys[0])
        if bounds is not None and n:
            if first.null_count:
                bounds = None  # nulls go last overall: leave that to the whole sort
            else:
                bounds.append((first[0].as_py(), first[n - 1].as_py()))
    full = [b for b in batches if b.num_rows]
    batches.clear()
    if bounds is not None:
        ranked = sorted(range(len(full)), key=lambda i: bounds[i][0])  # type: ignore[index]
        # strictly disjoint: then chunk order is the stable sort's order, ties included
        if all(bounds[a][1] < bounds[b][0] for a, b in zip(ranked, ranked[1:])):  # type: ignore[index]
            return pa.Table.from_batches([full[i] for i in ranked], schema=schema)
    table = pa.Table.from_batches(full, schema=schema)
    del full
    return table.take(pc.sort_indices(table, sort_keys=order))


def _is_sorted(b: pa.RecordBatch, keys: tuple[str, ...]) -> bool:
    """Whether the batch is already in key order (a single key without nulls is checked
    directly; otherwise its sort permutation is compared with the identity)."""
    col = b.column(keys[0])
    if len(keys) == 1 and col.null_count == 0 and not pa.types.is_floating(col.type):
        return bool(pc.all(pc.less_equal(col.slice(0, len(col) - 1), col.slice(1))).as_py())
    idx = pc.sort_indices(b, sort_keys=[(k, "ascending") for k in keys])
    return bool(np.array_equal(idx.to_numpy(), np.arange(b.num_rows)))
