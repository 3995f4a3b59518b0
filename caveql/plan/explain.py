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
    if q.derived or q.locals or q.ctes or q.sources:
        out += block_lines(q, indent)
    for j in q.joins:
        pairs = [f"{show(a)} = {show(b)}" for a, b in j.pairs] + [show(x) for x in j.extra]
        out.append(f"{indent}  {j.kind.lower()} join {j.alias}" + (f" ON {' AND '.join(pairs)}" if pairs else ""))
    for w in q.where:
        out.append(f"{indent}  local filter: {show(w)}")
    if q.group_by:
        out.append(f"{indent}  group by: {', '.join(show(g) for g in q.group_by)}")
    if q.having is not None:
        out.append(f"{indent}  having: {show(q.having)}")
    if getattr(q, "qualify", None) is not None:
        out.append(f"{indent}  qualify (local, after the windows): {show(q.qualify)}")
    if q.order_by:
        out.append(f"{indent}  order by: " + ", ".join(
            show(o.expr) + (" DESC" if o.descending else "") for o in q.order_by))
    if q.limit is not None or q.offset:
        out.append(f"{indent}  limit {q.limit} offset {q.offset or 0}")
    if q.order:
        out.append(f"{indent}  fetch order: {' -> '.join(q.order)}")
    if q.subqueries:
        out += correlated_lines(q, indent)
    return out


def block_lines(q: Query, indent: str) -> list[str]:
    """The sources of a block that are not scans (local tables, derived blocks, CTEs), nested."""
    from caveql.logical import SetOp
    out: list[str] = []
    for key, body in q.ctes:
        out.append(f"{indent}  with CTE {key} (read more than once: planned and fetched once):")
        out += _body_lines(body, indent + "    ")
    for t in q.locals:
        rows = f", {t.table.rows:,} rows" if t.table.rows is not None else ""
        out.append(f"{indent}  local table {t.name} AS {t.alias} ({t.table.kind}{rows})"
                   + (" [null-extended]" if t.nullable else ""))
        if t.columns is not None:
            out.append(f"{indent}    columns: {', '.join(t.columns)}")
    for d in q.derived:
        what = f"CTE {d.cte}" if d.cte else "derived table"
        if d.body is None:
            out.append(f"{indent}  {what} AS {d.alias} (the shared CTE above)")
            continue
        kind = "set operation" if isinstance(d.body, SetOp) else "block"
        out.append(f"{indent}  {what} AS {d.alias} ({kind}; columns {', '.join(n for n, _t in d.columns)})"
                   + (" [null-extended]" if d.nullable else "") + ":")
        out += _body_lines(d.body, indent + "    ")
    if q.sources:
        out.append(f"{indent}  from: {', '.join(q.from_order())}")
    return out


def _body_lines(b: Any, indent: str) -> list[str]:
    from caveql.logical import SetOp
    if isinstance(b, SetOp):
        out = [f"{indent}{b.op}{' ALL' if b.all else ''} of:"]
        return out + _body_lines(b.left, indent + "  ") + _body_lines(b.right, indent + "  ")
    return logical_text(b, indent)


def correlated_lines(q: Query, indent: str) -> list[str]:
    """The correlated subqueries of a block (run in DuckDB, their calls fed the outer keys)."""
    lines: list[str] = []
    for i, s in enumerate(q.subqueries):
        if any(getattr(n, "index", None) == i and getattr(n, "outer", ()) for n in _exprs(q)):
            lines.append(f"{indent}  correlated subquery {i} (in DuckDB; equalities with the outer "
                         "query's columns become key feeds):")
            lines += logical_text(s, indent + "    ")
    return lines


def _exprs(q: Query) -> list[Any]:
    exprs: list[Any] = [o.expr for o in q.outputs] + list(q.where) + [q.having, q.qualify]
    return [n for e in exprs if e is not None for n in walk(e)]


def _feed_source(p: PhysicalPlan, source: str) -> tuple[str, str]:
    """What a feed's keys come from, and of which block."""
    for loc in p.locals:
        if loc.key == source:
            return f"local table {loc.table.name}", f" of {loc.block}" if loc.block else ""
    for _a, c in p.fetches():
        if c.alias == source and c.block:
            return f"scan {source.split('.', 1)[1]}", f" of {c.block}"
    if source.startswith("sub") and source not in {c.alias for c in p.calls}:
        return f"subquery {source[3:]}", ""
    return f"scan {source}", ""


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
    scan = f"{c.alias.split('.', 1)[1]} of {c.block}" if c.block else c.alias
    out = [f"  [{n}] {c.label} -> {c.relation} (scan {scan})"]
    out.append(f"      POST {query_target(c.request, p.datastack)}")
    out.append(f"      body {encode_body(c.request).decode()}")
    if (source := getattr(caps, "source", None)) is not None:  # routed capabilities: where it goes
        out.append(f"      source: {source(c.request)}")
    if c.refiltered:
        out.append(f"      select_columns + {', '.join(c.refiltered)}: the live endpoint filters its answer again "
                   f"by column, and fails on one not selected (dropped from the answer)")
    if c.padded is not None:
        out.append(f"      select_columns + {c.padded}: the service fails on a request selecting one column "
                   f"(dropped from the answer)")
    if c.positions:
        out.append(f"      positions: {c.positions}")
    for f in c.feeds:
        src, where = _feed_source(p, f.source)
        out.append(f"      keys: {f.table}.{f.target} IN <{src}.{f.column}{where}>, in batches of "
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
    if c.in_place:  # (Capabilities.relations: caveql.execute.relations)
        out.append("      relation: read in place by the local step, the backend's SQL over its files "
                   "(no rows fetched; fetched instead where the backend cannot)")
    if c.fetch is not None and not c.in_place:
        f = c.fetch
        out.append(f"      rows to fetch: {f.describe()}")
        if f.requests is not None and f.requests > 1:
            out.append(f"      requests: about {f.requests:,}")
    if stats is not None and stats.get("in_place"):
        out.append(f"      actual: read in place, {stats['files']} file(s), {stats['ms']:.1f} ms")
    elif stats is not None:
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
    if p.locals:
        lines.append("Local tables (read before any remote call; their keys may feed the calls):")
        for loc in p.locals:
            t = loc.table
            rows = f", {t.rows:,} rows" if t.rows is not None else ""
            cols = ", ".join(loc.columns) if loc.columns is not None else "all columns"
            where = f" of {loc.block}" if loc.block else ""
            lines.append(f"  {t.name} AS {loc.key.split('.', 1)[-1]}{where} -> {loc.relation} "
                         f"({t.kind}{rows}; columns: {cols})")
    learned = stats.get("replanned") if stats is not None else None
    lines.append("Remote calls:" if not learned else
                 f"Remote calls (planned again: the service caps answers at {learned[-1]:,} rows):")
    for n, c in enumerate(p.calls, 1):
        cs = stats["calls"].get(c.alias) if stats else None
        lines += _call_lines(c, p, n, cs)
    if whole and (len(p.calls) > 1 or p.subplans):
        lines.append(f"  all calls: {p.fetch_total().describe()}")
    for note in p.notes:
        lines.append(f"  note: {note}")
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
