"""EXPLAIN: the logical plan, every remote call as the exact request it sends, the local steps.

Each call shows the caveclient method it corresponds to, the URL path and query
string (:func:`caveql.backends.endpoints.query_target`), the JSON body bytes
(:func:`caveql.backends.endpoints.encode_body`), its key feeds and how it is
split. ``EXPLAIN ANALYZE`` appends rows, bytes and milliseconds per step.

>>> explain_text.__name__
'explain_text'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from caveql.backends.endpoints import encode_body, query_target
from caveql.logical import Lit, Query, show, walk
from caveql.plan.physical import PhysicalPlan, RemoteCall

__all__ = ["explain_text", "logical_text"]


def logical_text(q: Query, indent: str = "") -> list[str]:
    """The logical plan as indented lines."""
    out = []
    head = "Select" + (" DISTINCT" if q.distinct else "")
    out.append(f"{indent}{head} {', '.join(o.name for o in q.outputs)}")
    at = []
    if q.timestamp is not None:
        at.append(f"timestamp {q.timestamp.isoformat()}")
    elif q.version is not None:
        at.append(f"version {q.version}")
    if q.resolution is not None:
        at.append("resolution " + ", ".join(f"{r:g}" for r in q.resolution))
    if q.split_positions:
        at.append("split positions")
    if at:
        out.append(f"{indent}  at: {'; '.join(at)}")
    for s in q.scans:
        kind = {"reference": "reference table merged with " + str(s.target), "view": "view",
                "table": "table"}[s.kind]
        line = f"{indent}  scan {s.table} AS {s.alias} ({kind})"
        if s.nullable:
            line += " [null-extended by LEFT JOIN]"
        out.append(line)
        for f in s.filters:
            out.append(f"{indent}    pushed {f.kind}: {f.table}.{f.column} {_short(f.value)}"
                       + _float32_note(f.origin))
        if s.columns is not None:
            out.append(f"{indent}    columns: {', '.join(s.columns)}")
        if s.limit is not None or s.offset is not None:
            out.append(f"{indent}    pushed limit {s.limit} offset {s.offset or 0}")
    for j in q.joins:
        pairs = [f"{show(a)} = {show(b)}" for a, b in j.pairs] + [show(x) for x in j.extra]
        out.append(f"{indent}  {j.kind.lower()} join {j.alias} ON {' AND '.join(pairs)}")
    for w in q.where:
        out.append(f"{indent}  local filter: {show(w)}")
    if q.group_by:
        out.append(f"{indent}  group by: {', '.join(show(g) for g in q.group_by)}")
    if q.having is not None:
        out.append(f"{indent}  having: {show(q.having)}")
    if q.order_by:
        out.append(f"{indent}  order by: " + ", ".join(
            show(o.expr) + (" DESC" if o.descending else "") for o in q.order_by))
    if q.limit is not None or q.offset:
        out.append(f"{indent}  limit {q.limit} offset {q.offset or 0}")
    if q.order:
        out.append(f"{indent}  fetch order: {' -> '.join(q.order)}")
    return out


def _float32_note(origin: Any) -> str:
    """Where a pushed bound is the float32 edge of a comparison, the comparison it comes from."""
    if origin is None or not any(isinstance(x, Lit) and x.type == "float32" for x in walk(origin)):
        return ""
    return f"  [{show(origin)} in float32]"


def _short(v: Any) -> str:
    if isinstance(v, tuple) and len(v) > 6 and not isinstance(v[0], tuple):
        return "[" + ", ".join(repr(x) for x in v[:5]) + f", ... ({len(v)} values)]"
    return repr(list(v) if isinstance(v, tuple) and v and not isinstance(v[0], tuple) else v)


def _call_lines(c: RemoteCall, p: PhysicalPlan, n: int, stats: Mapping[str, Any] | None) -> list[str]:
    caps = p.capabilities
    out = [f"  [{n}] {c.label} -> {c.relation} (scan {c.alias})"]
    out.append(f"      POST {query_target(c.request, p.datastack)}")
    out.append(f"      body {encode_body(c.request).decode()}")
    if c.refiltered:
        out.append(f"      select_columns + {', '.join(c.refiltered)}: the live endpoint filters its answer again "
                   f"by column, and fails on one not selected (dropped from the answer)")
    if c.padded is not None:
        out.append(f"      select_columns + {c.padded}: the service fails on a request selecting one column "
                   f"(dropped from the answer)")
    if c.positions:
        out.append(f"      positions: {c.positions}")
    for f in c.feeds:
        src = f"subquery {f.source[3:]}" if f.source.startswith("sub") else f"scan {f.source}"
        out.append(f"      keys: {f.table}.{f.target} IN <{src}.{f.column}>, in batches of "
                   f"<= {caps.max_in_batch}" + (f", {caps.parallel} at a time" if caps.parallel > 1 else ""))
    big = [(t, col, len(v)) for t, cols in c.request.filter_in.items() for col, v in cols.items()
           if len(v) > caps.max_in_batch]
    for t, col, size in big:
        out.append(f"      split: {t}.{col} IN list of {size} values in batches of <= {caps.max_in_batch}")
    if c.may_exceed_cap and c.id_column is not None:
        rows = f"{c.table_rows:,}" if c.table_rows is not None else "unknown"
        out.append(f"      split: by {c.id_column[0]}.{c.id_column[1]} ranges (count first) when a "
                   f"request may pass the row cap of {caps.row_cap:,} (table rows: {rows})")
    elif c.may_exceed_cap:
        out.append(f"      row cap {caps.row_cap:,}: no id column to split on; a capped answer is an error")
    if c.fetch is not None:
        f = c.fetch
        out.append(f"      rows to fetch: {f.describe()}")
        if f.requests is not None and f.requests > 1:
            out.append(f"      requests: about {f.requests:,}")
    if stats is not None:
        out.append(f"      actual: {stats['rows']:,} rows, {stats['bytes']:,} bytes, "
                   f"{stats['requests']} request(s), {stats['ms']:.1f} ms")
    return out


def explain_text(p: PhysicalPlan, stats: Mapping[str, Any] | None = None, indent: str = "", *,
                 whole: bool = True) -> str:
    """The EXPLAIN text of a physical plan (with ``stats`` from an executed run: ANALYZE).

    A run that had to plan the statement again (the service caps answers below the plan's row
    cap) reports the plan it ran (``stats["plan"]``) and the caps it learned. ``whole``: the
    statement's plan (a subquery's is not): the rows all its calls fetch are summed up."""
    if stats is not None and stats.get("plan") is not None:
        p = stats["plan"]
    lines = ["Logical plan:"] + logical_text(p.logical)
    for i, sp in enumerate(p.subplans):
        sub_stats = stats.get("subplans", [None] * len(p.subplans))[i] if stats else None
        lines.append(f"Subquery {i} (runs first; its values feed the outer query):")
        lines += ["  " + x for x in explain_text(sp, sub_stats, whole=False).splitlines()]
    learned = stats.get("replanned") if stats is not None else None
    lines.append("Remote calls:" if not learned else
                 f"Remote calls (planned again: the service caps answers at {learned[-1]:,} rows):")
    for n, c in enumerate(p.calls, 1):
        cs = stats["calls"].get(c.alias) if stats else None
        lines += _call_lines(c, p, n, cs)
    if whole and (len(p.calls) > 1 or p.subplans):
        lines.append(f"  all calls: {p.fetch_total().describe()}")
    lines.append("Local steps (DuckDB over the calls' Arrow results):")
    measured = {m["step"]: m for m in stats.get("steps", ())} if stats else {}
    for i, s in enumerate(p.steps):
        m = measured.get(i)
        lines.append(f"  - {s}" + (f"  -> {m['rows']:,} rows, {m['bytes']:,} bytes, {m['ms']:.1f} ms"
                                    if m else ""))
    lines.append(f"  sql: {p.sql}")
    if p.params:
        lines.append(f"  params: {list(p.params)!r}")
    for name, vals in p.lists:
        lines.append(f"  relation {name}: {len(vals)} values bound as a table")
    if stats is not None:
        ls = stats["local"]
        if measured:
            lines.append("  (per step: each step run on its own over the previous step's result)")
        how = "sql" if ls.get("engine", "duckdb") == "duckdb" else "sort without DuckDB"
        lines.append(f"  actual: {ls['rows']:,} rows out, {ls['bytes']:,} bytes, {how} {ls['ms']:.1f} ms "
                     f"(as one statement), frame {ls['frame_ms']:.1f} ms")
        lines.append(f"Total: {stats['ms']:.1f} ms")
    return "\n".join(indent + x for x in lines)
