"""Local backend benchmark: LocalBackend vs hand-written DuckDB SQL vs pandas, on demos of growing size.

    .venv/bin/python benchmarks/local.py --demo 2e6 --demo 2e7 --demo 1e8 --root /work/bench

Each ``--demo N`` uses (or builds) ``<root>/demo-N``. For every demo, four queries at version 661:

- ``pre root``: the outputs of the seed's cell (``pre_pt_root_id = 864691135808473885``);
- ``post root``: the inputs of its strongest partner (``post_pt_root_id = ...``, the by-post copy);
- ``size range``: ``40,000 <= size <= 40,400`` (the copy in size order);
- ``spatial box``: a 20 µm cube of ``ctr_pt_position`` around the seed cell (the copy in x order).

each run three ways, all returning the same rows in the same (id) order:

1. ``LocalBackend.query`` (request → SQL with bound parameters → Arrow → the service's types);
2. the same query hand-written in DuckDB SQL over the same Parquet file (literals, no checks);
3. pandas: ``read_parquet`` of the whole file, a boolean mask, ``sort_values("id")``
   (skipped above 20M synapses: the frame alone needs more than 10 GB).

Reported: median wall time (warm), the ratios local/DuckDB (target <= 1.2) and pandas/local
(target >= 10), the 1-minute load average when the query's runs ended (the machine is shared:
read the times with it), and bytes read (``rchar`` of /proc/self/io: every byte read() returned, page
cache or disk). ``--optimizers`` instead runs the hand-written DuckDB query under three sets of
disabled DuckDB optimizers (DuckDB's defaults; LocalBackend's; LocalBackend's plus
``statistics_propagation`` and ``join_order``), interleaved, to show what each costs. ``--rss`` also runs the pre-root lookup in a fresh process per demo and reports its
peak RSS (target < 1 GB at 100M).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from caveql.backends.base import QueryRequest
from caveql.backends.local import LocalBackend
from caveql.datastack.demo import build_demo
from caveql.datastack.demo_meta import SYNAPSE_CELL, TOP_PARTNERS

SYN = "synapses_pni_2"
PARTNER = TOP_PARTNERS[0][0]
SOMA = (176_000, 128_000, 20_512)  # the seed cell's soma (demo_cells)
BOX = [[SOMA[0] - 2_500, SOMA[1] - 2_500, SOMA[2] - 250], [SOMA[0] + 2_500, SOMA[1] + 2_500, SOMA[2] + 250]]
PANDAS_MAX = 20_000_000


def rchar() -> int:
    with open("/proc/self/io") as f:
        for line in f:
            if line.startswith("rchar:"):
                return int(line.split()[1])
    return 0


def measure(fns: list[Callable[[], object]], repeat: int) -> list[tuple[float, int, object]]:
    """For each function: median seconds over ``repeat`` warm runs, bytes read by one run, and
    its answer. The runs are interleaved so that load on the machine hits all sides alike."""
    answers, nbytes = [], []
    for fn in fns:
        fn()  # warm-up (file metadata, page cache)
        b0 = rchar()
        answers.append(fn())
        nbytes.append(rchar() - b0)
    times: list[list[float]] = [[] for _ in fns]
    order = list(range(len(fns)))
    for _ in range(repeat):
        for i in order:
            t0 = time.perf_counter()
            fns[i]()
            times[i].append(time.perf_counter() - t0)
        order.reverse()  # neither side always runs first (caches, CPU frequency)
    return [(statistics.median(t), b, a) for t, b, a in zip(times, nbytes, answers, strict=True)]


def queries(shared: Path) -> list[tuple[str, QueryRequest, str, Path, Callable[[pd.DataFrame], pd.Series]]]:
    pre = shared / f"{SYN}.by_pre.parquet"
    post = shared / f"{SYN}.by_post.parquet"
    by_x = shared / f"{SYN}.by_x.parquet"
    by_size = shared / f"{SYN}.by_size.parquet"
    lo, hi = BOX
    box_sql = " AND ".join(f"ctr_pt_position_{a} BETWEEN {lo[i]} AND {hi[i]}" for i, a in enumerate("xyz"))
    return [
        ("pre root", QueryRequest(kind="table", table=SYN, version=661,
                                  filter_equal={SYN: {"pre_pt_root_id": SYNAPSE_CELL}}),
         f"pre_pt_root_id = {SYNAPSE_CELL}", pre, lambda d: d.pre_pt_root_id == SYNAPSE_CELL),
        ("post root", QueryRequest(kind="table", table=SYN, version=661,
                                   filter_equal={SYN: {"post_pt_root_id": PARTNER}}),
         f"post_pt_root_id = {PARTNER}", post, lambda d: d.post_pt_root_id == PARTNER),
        ("size range", QueryRequest(kind="table", table=SYN, version=661,
                                    filter_greater_equal={SYN: {"size": 40_000}},
                                    filter_less_equal={SYN: {"size": 40_400}}),
         "size >= 40000 AND size <= 40400", by_size, lambda d: (d["size"] >= 40_000) & (d["size"] <= 40_400)),
        ("spatial box", QueryRequest(kind="table", table=SYN, version=661,
                                     filter_spatial={SYN: {"ctr_pt_position": BOX}}),
         box_sql, by_x, lambda d: (
             d.ctr_pt_position_x.between(lo[0], hi[0]) & d.ctr_pt_position_y.between(lo[1], hi[1])
             & d.ctr_pt_position_z.between(lo[2], hi[2]))),
    ]


def bench_demo(path: Path, repeat: int, pandas_max: float = PANDAS_MAX) -> list[dict]:
    backend = LocalBackend(path)
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    # the same settings as LocalBackend (docs/performance.md: DuckDB's defaults on the 100M box)
    con.execute("SET GLOBAL parquet_metadata_cache = true")
    con.execute("SET GLOBAL disabled_optimizers = 'partitioned_execution'")
    n = backend.table_count(661, SYN)
    cols = backend.table_columns(661, SYN)
    rows, answers = [], []
    # every local/DuckDB pair first: pandas's multi-GB frames evict the page cache and would
    # disturb the pairs measured after them
    for name, request, where, file, _mask in queries(path / "shared"):
        sql = f"SELECT {', '.join(cols.names)} FROM read_parquet('{file}') WHERE {where} AND valid ORDER BY id"
        (t_local, b_local, r_local), (t_duck, b_duck, r_duck) = measure(
            [lambda request=request: backend.query(request).table,
             lambda sql=sql: con.sql(sql).to_arrow_table()], repeat)
        assert isinstance(r_local, pa.Table) and isinstance(r_duck, pa.Table)
        ids = r_local.column("id").to_pylist()
        assert ids == r_duck.column("id").to_pylist(), name
        answers.append(ids)
        rows.append({"synapses": n, "query": name, "rows": len(ids), "local_ms": t_local * 1e3,
                     "duckdb_ms": t_duck * 1e3, "local_over_duckdb": t_local / t_duck,
                     "local_bytes": b_local, "duckdb_bytes": b_duck, "load": os.getloadavg()[0]})
    backend.close()
    for row, ids, (name, _request, _where, file, mask) in zip(rows, answers, queries(path / "shared"), strict=True):
        if n <= pandas_max:
            def by_pandas(file=file, mask=mask):
                d = pd.read_parquet(file)
                return d[mask(d)].sort_values("id")
            # pandas is 10-1000x slower: a median of a few runs is exact enough for the ratio
            ((t_pd, b_pd, r_pd),) = measure([by_pandas], max(1, repeat // 5))
            assert r_pd["id"].tolist() == ids, name
            row.update(pandas_ms=t_pd * 1e3, pandas_over_local=t_pd / (row["local_ms"] / 1e3),
                       pandas_bytes=b_pd)
        print(json.dumps(row), flush=True)
    return rows


OPTIMIZER_SETS = {
    "duckdb default": "",
    "LocalBackend": "partitioned_execution",
    "+ no stats/join order": "partitioned_execution,statistics_propagation,join_order",
}


def bench_optimizers(path: Path, repeat: int) -> None:
    """The hand-written query of each benchmark query under each of :data:`OPTIMIZER_SETS`."""
    cons = {}
    for label, disabled in OPTIMIZER_SETS.items():
        con = duckdb.connect()  # one database each: disabled_optimizers is database-wide
        con.execute("SET enable_progress_bar = false")
        con.execute("SET GLOBAL parquet_metadata_cache = true")
        con.execute(f"SET GLOBAL disabled_optimizers = '{disabled}'")
        cons[label] = con
    with LocalBackend(path) as backend:
        n = backend.table_count(661, SYN)
        cols = backend.table_columns(661, SYN)
    for name, _request, where, file, _mask in queries(path / "shared"):
        sql = f"SELECT {', '.join(cols.names)} FROM read_parquet('{file}') WHERE {where} AND valid ORDER BY id"
        results = measure([lambda con=con: con.sql(sql).to_arrow_table() for con in cons.values()], repeat)
        first = results[0][2]
        assert all(r[2].equals(first) for r in results), name  # optimizers never change the answer
        print(json.dumps({"synapses": n, "query": name, "load": os.getloadavg()[0], **{
            label: {"ms": round(t * 1e3, 1), "MB read": round(b / 1e6, 1)}
            for label, (t, b, _a) in zip(cons, results, strict=True)}}), flush=True)


def rss_probe(path: Path) -> None:
    """Run in a fresh process: open the demo, look the seed cell's outputs up, print peak RSS."""
    with LocalBackend(path) as backend:
        t = backend.query(QueryRequest(kind="table", table=SYN, version=661,
                                       filter_equal={SYN: {"pre_pt_root_id": SYNAPSE_CELL}})).table
    # VmHWM, not ru_maxrss: the latter keeps the parent's peak across fork + exec
    with open("/proc/self/status") as f:
        hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    print(json.dumps({"rows": t.num_rows, "peak_rss_mb": round(hwm / 1024)}))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--demo", action="append", default=[], metavar="N", help="synapses (repeatable)")
    ap.add_argument("--root", default="/tmp/caveql-bench", help="folder holding demo-N folders")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--pandas-max", type=float, default=PANDAS_MAX,
                    help="largest demo to run the (slow) pandas baseline on")
    ap.add_argument("--rss", action="store_true", help="also measure a lookup's peak RSS per demo")
    ap.add_argument("--optimizers", action="store_true",
                    help="compare DuckDB optimizer settings on the hand-written queries instead")
    ap.add_argument("--rss-probe", metavar="PATH", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rss_probe:
        rss_probe(Path(args.rss_probe))
        return 0
    sizes = [int(float(s)) for s in (args.demo or ["2e6"])]
    table = []
    for n in sizes:
        path = build_demo(Path(args.root) / f"demo-{n}", synapses=n)
        if args.optimizers:
            bench_optimizers(path, args.repeat)
            continue
        table += bench_demo(path, args.repeat, args.pandas_max)
        if args.rss:
            out = subprocess.run([sys.executable, __file__, "--rss-probe", str(path)], check=True,
                                 capture_output=True, text=True).stdout
            print(f"rss {n}: {out.strip()}", flush=True)
    if args.optimizers:
        return 0
    print("\n| synapses | query | rows | local ms | DuckDB ms | local/DuckDB | pandas ms | pandas/local "
          "| local MB read | pandas MB read | load |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in table:
        pd_ms = f"{r['pandas_ms']:.0f}" if "pandas_ms" in r else "—"
        pd_x = f"{r['pandas_over_local']:.0f}×" if "pandas_ms" in r else "—"
        pd_b = f"{r['pandas_bytes'] / 1e6:.0f}" if "pandas_ms" in r else "—"
        print(f"| {r['synapses']:,} | {r['query']} | {r['rows']:,} | {r['local_ms']:.1f} | {r['duckdb_ms']:.1f} "
              f"| {r['local_over_duckdb']:.2f} | {pd_ms} | {pd_x} | {r['local_bytes'] / 1e6:.1f} | {pd_b} "
              f"| {r['load']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
