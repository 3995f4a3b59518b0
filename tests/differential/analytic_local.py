"""The ``local`` analytic family: the user's own tables — CSV and Parquet files, DataFrames
bound as ``:name`` parameters — alone and joined with CAVE tables (issue 10, USERDATA).

Each case draws a small cell list (root ids of the demo, labels, weights), writes it under the
work folder as CSV and as Parquet (named by content, so a replayed draw finds its files), and
refers to it as ``FROM 'x.csv'``, ``read_csv('x.csv')``, ``'x.parquet'`` or ``:cells`` (a
pandas DataFrame). The oracle always reads the Parquet twin: the rows as written, typed.

The lists hold the synapse anchors' root ids (a few cells of at most ~1,500 synapses), so a
join that feeds the list's roots into the synapse calls — what the engine must do — stays a
handful of capped calls. ``EXPLICIT_ANCHOR`` also repeats the roots as a filter on the CAVE
side (for an engine that does not feed: then it would read 2M synapses at 1,000 rows a call).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from hypothesis import strategies as st

from tests.differential.analytic_base import Out, cell_tables, q, typed_roots
from tests.differential.generator import Case, _Ctx, _in_list

__all__ = ["EXPLICIT_ANCHOR", "local_family"]

#: also filter the CAVE side by the list's roots (see the module docstring)
EXPLICIT_ANCHOR = False

LABELS = ["exc", "inh", "it's", "a,b", "L2/3"]


def _cell_list(ctx: _Ctx, roots: list[int]) -> pa.Table:
    n = len(roots)
    labels = ctx.draw(st.lists(st.sampled_from(LABELS), min_size=n, max_size=n))
    weights = ctx.draw(st.lists(st.sampled_from([0.5, 1.0, 2.25, -3.0, 1e-3]), min_size=n, max_size=n))
    return pa.table({"root_id": pa.array(roots, pa.int64()), "label": pa.array(labels, pa.string()),
                     "weight": pa.array(weights, pa.float64()), "rank": pa.array(range(n), pa.int64())})


def _write(workdir: Path, table: pa.Table) -> tuple[Path, Path]:
    """The table as CSV and Parquet under ``workdir``, named by its content."""
    sink = pa.BufferOutputStream()
    pacsv.write_csv(table, sink)
    data = sink.getvalue().to_pybytes()
    stem = "cells_" + hashlib.sha256(data).hexdigest()[:16]
    csv, parquet = workdir / f"{stem}.csv", workdir / f"{stem}.parquet"
    if not csv.exists():
        tmp = csv.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(csv)
    if not parquet.exists():
        tmp = parquet.with_suffix(".ptmp")
        pq.write_table(table, tmp)
        tmp.replace(parquet)
    return csv, parquet


def _ref(ctx: _Ctx, table: pa.Table, csv: Path, parquet: Path, params: dict[str, Any]) -> str:
    """How the case names the list in CQL: a file, a read_* call, or a DataFrame parameter."""
    how = ctx.draw(st.sampled_from(["csv", "parquet", "read_csv", "read_parquet", "frame"]))
    if how == "csv":
        return f"'{csv}'"
    if how == "parquet":
        return f"'{parquet}'"
    if how == "read_csv":
        return f"read_csv('{csv}', header = true)"
    if how == "read_parquet":
        return f"read_parquet('{parquet}')"
    name = f"cells{len(params)}"
    params[name] = table.to_pandas()
    return f":{name}"


def local_family(ctx: _Ctx, workdir: Path) -> Case:
    """A cell list alone (grouped), joined with the synapse table or a cell-type table, or
    used in ``IN (SELECT root_id FROM ...)``."""
    dom = ctx.domain
    syn = dom.synapse_table(ctx.version)
    side = ctx.draw(st.sampled_from(["pre", "post"]))
    cells = cell_tables(ctx)
    shape = ctx.draw(st.sampled_from(["alone", "syn", "syn", "syn_agg", "cells", "in"]))
    table_name = ctx.draw(st.sampled_from(cells)) if cells else ""
    anchors = typed_roots(ctx, table_name, side) if cells and ctx.draw(st.booleans()) else \
        dom.anchor_roots(ctx.version, side)
    roots = ctx.draw(st.lists(st.sampled_from(anchors), min_size=1, max_size=4, unique=True))
    if shape == "cells" and cells:
        others = [v for v in dom.samples(ctx.version, table_name, "pt_root_id") if v]
        roots = roots + ctx.draw(st.lists(st.sampled_from(others or roots), max_size=20))
    if ctx.draw(st.integers(0, 3)) == 0:
        roots = roots + roots[:1]  # a root listed twice: its rows twice in a join
    data = _cell_list(ctx, roots)
    csv, parquet = _write(workdir, data)
    params: dict[str, Any] = {}
    ref = _ref(ctx, data, csv, parquet, params)
    f_sql = f"read_parquet('{parquet}')"
    col = f"{side}_pt_root_id"
    rel_s = dom.relation_sql(ctx.version, syn, None)
    ctx.params.update(params)
    if shape == "alone":
        cql = f"SELECT label, COUNT(*) AS n, SUM(weight) AS w, MAX(root_id) AS r FROM {ref} AS f GROUP BY label"
        sql = f"SELECT label AS label, count(*) AS n, sum(weight) AS w, max(root_id) AS r FROM {f_sql} AS f " \
              f"GROUP BY label"
        names: tuple[str, ...] = ("label", "n", "w", "r")
    elif shape in ("syn", "syn_agg"):
        extra_cql = extra_sql = ""
        if EXPLICIT_ANCHOR:
            a_cql, a_sql, _ = _in_list(ctx, sorted(set(roots)))
            extra_cql, extra_sql = f" AND s.{col} IN {a_cql}", f" AND s.{q(col)} IN {a_sql}"
        if ctx.draw(st.booleans()):
            k = ctx.draw(st.sampled_from([100, 2000]))
            extra_cql += f" AND s.size > {k}"
            extra_sql += f" AND s.size > CAST({k} AS FLOAT)"
        if ctx.draw(st.booleans()):
            extra_cql += " AND f.label <> 'inh'"
            extra_sql += " AND f.label != 'inh'"
        on_cql = f"s.{col} = f.root_id" if ctx.draw(st.booleans()) else f"f.root_id = s.{col}"
        join = ctx.draw(st.sampled_from(["JOIN", "INNER JOIN"]))
        if shape == "syn":
            out = Out().add("s.id", "s.id", "id", bare=True).add("f.label", "f.label", "label", bare=True)
            out.add("f.weight", "f.weight", "weight", bare=True).add("s.size", "s.size", "size", bare=True)
            tail_cql = tail_sql = ""
        else:
            out = Out().add("f.label", "f.label", "label", bare=True).add("COUNT(*)", "count(*)", "n")
            out.add("SUM(f.weight)", "sum(f.weight)", "w").add("AVG(s.size)", "avg(CAST(s.size AS DOUBLE))", "mean")
            tail_cql, tail_sql = " GROUP BY f.label", " GROUP BY f.label"
        first_local = ctx.draw(st.booleans())
        if first_local:
            from_cql = f"{ref} AS f {join} {syn} s ON {on_cql}"
        else:
            from_cql = f"{syn} s {join} {ref} AS f ON {on_cql}"
        cql = f"SELECT {', '.join(out.cql)} FROM {from_cql} WHERE TRUE{extra_cql}{tail_cql}"
        sql = f"SELECT {', '.join(out.sql)} FROM {f_sql} AS f JOIN ({rel_s}) AS s ON s.{q(col)} = f.root_id " \
              f"WHERE TRUE{extra_sql}{tail_sql}"
        names = tuple(out.names)
    elif shape == "cells" and cells:
        rel_c = dom.relation_sql(ctx.version, table_name, None)
        how = ctx.draw(st.sampled_from(["JOIN", "LEFT JOIN"]))
        anchor_cql = ""
        if EXPLICIT_ANCHOR and how == "JOIN":
            cql_in, _sql_in, _ = _in_list(ctx, sorted(set(roots)))
            anchor_cql = f" WHERE c.pt_root_id IN {cql_in}"
        cql = f"SELECT f.root_id, f.label, f.rank, c.cell_type, c.id FROM {ref} AS f {how} {table_name} c " \
              f"ON c.pt_root_id = f.root_id{anchor_cql}"
        sql = f"SELECT f.root_id AS root_id, f.label AS label, f.rank AS rank, c.cell_type AS cell_type, " \
              f"c.id AS id FROM {f_sql} AS f {how} ({rel_c}) AS c ON c.pt_root_id = f.root_id"
        names = ("root_id", "label", "rank", "cell_type", "id")
    else:  # IN (SELECT root_id FROM the list)
        label = ctx.draw(st.sampled_from(LABELS))
        anchor_cql = f" AND {col} IN {_in_list(ctx, sorted(set(roots)))[0]}" if EXPLICIT_ANCHOR else ""
        cql = f"SELECT id, {col}, size FROM {syn} WHERE {col} IN (SELECT root_id FROM {ref} AS f " \
              f"WHERE label <> '{label.replace(chr(39), chr(39) * 2)}'){anchor_cql}"
        sql = f"SELECT s.id AS id, s.{q(col)} AS {q(col)}, s.size AS size FROM ({rel_s}) AS s WHERE s.{q(col)} " \
              f"IN (SELECT root_id FROM {f_sql} WHERE label != '{label.replace(chr(39), chr(39) * 2)}')"
        names = ("id", col, "size")
    return Case(cql, dict(ctx.params), sql, names, "set", family="local", version=ctx.version)
