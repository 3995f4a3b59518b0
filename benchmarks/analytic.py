"""Analytic SQL benchmark (issue 10): parse time vs sqlglot, plan time, a local-file join vs caveclient.

    .venv/bin/python benchmarks/analytic.py parse [--repeat N]
    .venv/bin/python benchmarks/analytic.py plan --path DEMO [--repeat N]
    .venv/bin/python benchmarks/analytic.py join --path /tmp/caveql-bench-demo --synapses 20000000 [--repeat N]

``parse``: CPU time (``time.process_time``, median of N after a warm-up) of ``caveql.parse`` and
of sqlglot's ``parse_one(..., read="duckdb")`` on each query of benchmarks/corpus/analytic.sql
(>= 30 analytic queries using the new constructs) and on the seed queries of benchmarks/parse.py
(CQL-only clauses removed for sqlglot), same process; the figure is the ratio caveql / sqlglot
(target <= 1.5).

``plan``: plan time per statement, parse excluded: the median CPU time of ``Engine.physical_plan`` (parse,
analysis, rules, lowering; warm catalog) minus the median of ``caveql.parse`` of the same text, on
the demo catalog, run in a folder holding the corpus's ``cells.csv``/``cells.parquet`` (target
<= 2 ms). Statements the engine cannot plan yet are listed with their error.

``join``: 5,000 cells kept in a CSV file (root ids of the demo's cell-type table, with a label)
joined with the synapse table — ``SELECT ... FROM 'cells.csv' AS f JOIN synapses_pni_2 s ON
s.post_pt_root_id = f.root_id`` — against the hand-written caveclient idiom: caveclient 8.2.1's
``synapse_query(post_ids=batch)`` over batches of root ids, ``pd.concat``, then a pandas merge
with the cell list. Both talk to ``caveql serve`` over the demo on loopback (its own process, the
service's 200,000-row cap); cells with more than ``--max-inputs`` synapses are left out of the
list so that no caveclient batch is silently capped. Same answer checked (ids, labels, sizes).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus" / "analytic.sql"


def corpus() -> list[str]:
    """The statements of benchmarks/corpus/analytic.sql (comment lines dropped, split on ``;``)."""
    text = "\n".join(line for line in CORPUS.read_text().splitlines() if not line.startswith("--"))
    return [q.strip() for q in text.split(";") if q.strip()]


def best(fn: Callable[[], object], repeat: int, clock: Callable[[], float] = time.process_time) -> float:
    """Median of ``repeat`` timings (seconds) after one warm-up call."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = clock()
        fn()
        times.append(clock() - t0)
    return statistics.median(times)


def bench_parse(repeat: int) -> None:
    import sqlglot

    sys.path.insert(0, str(HERE))
    from parse import SEED  # benchmarks/parse.py

    from caveql.syntax import parse

    def table(title: str, queries: list[tuple[str, str]]) -> None:
        print(f"## {title} (median CPU of {repeat} runs)")
        print(f"{'query':<62} {'caveql ms':>9} {'sqlglot ms':>10} {'ratio':>6}")
        ratios, tc_all, ts_all = [], 0.0, 0.0
        for cql, sql in queries:
            tc = best(lambda: parse(cql, start="statement"), repeat)
            ts = best(lambda: sqlglot.parse_one(sql, read="duckdb"), repeat)
            ratios.append(tc / ts)
            tc_all, ts_all = tc_all + tc, ts_all + ts
            print(f"{' '.join(cql.split())[:60]:<62} {tc * 1e3:9.3f} {ts * 1e3:10.3f} {tc / ts:6.2f}")
        print(f"{len(queries)} queries: total caveql {tc_all * 1e3:.2f} ms, sqlglot {ts_all * 1e3:.2f} ms, "
              f"ratio of totals {tc_all / ts_all:.2f}; per query median {statistics.median(ratios):.2f}, "
              f"max {max(ratios):.2f} (target <= 1.5)\n")

    table("analytic corpus", [(q, q) for q in corpus()])
    seed = [(q, q.replace(":proofread_ids", "(1, 2)").replace(" AT RESOLUTION 1,1,1 SPLIT POSITIONS", ""))
            for q in SEED if q.startswith("SELECT")]
    table("seed queries (SELECT)", seed)


def _write_cells(folder: Path, roots: list[int]) -> Path:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    labels = ["exc" if i % 3 else "inh" for i in range(len(roots))]
    t = pa.table({"root_id": pa.array(roots, pa.int64()), "label": pa.array(labels, pa.string())})
    pacsv.write_csv(t, folder / "cells.csv")
    pq.write_table(t, folder / "cells.parquet")
    return folder / "cells.csv"


def bench_plan(path: Path, repeat: int) -> None:
    from caveql.backends.local import LocalBackend
    from caveql.engine import Engine
    from caveql.syntax import parse

    eng = Engine(LocalBackend(path))
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as d:
        _write_cells(Path(d), [864691135808473885, 864691135771677771])
        os.chdir(d)  # the corpus names 'cells.csv' relative to the working directory
        try:
            print(f"## plan time per statement, parse excluded (median CPU of {repeat}, warm catalog)")
            planned, failed = [], []
            for q in corpus():
                try:
                    eng.physical_plan(q)
                except Exception as exc:  # noqa: BLE001 - a benchmark lists what does not plan
                    failed.append((q, f"{type(exc).__name__}: {str(exc).splitlines()[0]}"))
                    continue
                tp = best(lambda q=q: eng.physical_plan(q), repeat)
                tq = best(lambda q=q: parse(q, start="statement"), repeat)
                planned.append(tp - tq)
                print(f"  {(tp - tq) * 1e3:7.3f} ms  {' '.join(q.split())[:90]}")
        finally:
            os.chdir(cwd)
    if planned:
        print(f"{len(planned)} planned: median {statistics.median(planned) * 1e3:.3f} ms, "
              f"max {max(planned) * 1e3:.3f} ms (target <= 2 ms)")
    for q, err in failed:
        print(f"  not planned: {' '.join(q.split())[:70]} -- {err[:120]}")


def bench_join(path: Path, synapses: int, repeat: int, n_cells: int, max_inputs: int, batch: int) -> None:
    import duckdb
    import pandas as pd

    sys.path.insert(0, str(HERE))
    from remote import Server, caveclient_for, engine_for  # benchmarks/remote.py

    from caveql.datastack.demo import build_demo

    t0 = time.perf_counter()
    build_demo(path, synapses=synapses, seed=0)  # a no-op when it is already there
    print(f"demo ready ({synapses:,} synapses) in {time.perf_counter() - t0:.0f} s")
    # the cell list: n_cells cells of the cell-type table, none with more than max_inputs synapses
    con = duckdb.connect()
    by_post = path / "shared" / "synapses_pni_2.by_post.parquet"
    cells = path / "versions" / "661" / "tables" / "aibs_soma_nuc_metamodel_preds_v117.parquet"
    nuclei = path / "versions" / "661" / "tables" / "nucleus_detection_v0.parquet"
    roots = [r[0] for r in con.sql(
        f"WITH c AS (SELECT DISTINCT n.pt_root_id AS root FROM '{cells}' t JOIN '{nuclei}' n ON t.target_id = n.id "
        f"WHERE n.pt_root_id != 0), d AS (SELECT post_pt_root_id AS root, count(*) AS k FROM '{by_post}' "
        f"WHERE post_pt_root_id IN (SELECT root FROM c) GROUP BY 1) "
        f"SELECT c.root FROM c LEFT JOIN d USING (root) WHERE coalesce(d.k, 0) <= {max_inputs} "
        f"ORDER BY hash(c.root) LIMIT {n_cells}").fetchall()]
    with tempfile.TemporaryDirectory() as d:
        csv = _write_cells(Path(d), roots)
        cell_df = pd.read_csv(csv)
        cql = (f"SELECT s.id, s.pre_pt_root_id, s.post_pt_root_id, s.size, f.label FROM '{csv}' AS f "
               f"JOIN synapses_pni_2 s ON s.post_pt_root_id = f.root_id")
        server = Server(path)
        try:
            eng = engine_for(server.url)
            client = caveclient_for(server.url)

            def engine() -> pd.DataFrame:
                return eng.execute(cql).frame

            def idiom() -> pd.DataFrame:
                ids = [int(r) for r in cell_df["root_id"].unique()]
                parts = [client.materialize.synapse_query(post_ids=ids[i:i + batch], remove_autapses=False)
                         for i in range(0, len(ids), batch)]
                syn = pd.concat(parts, ignore_index=True)
                m = syn.merge(cell_df, left_on="post_pt_root_id", right_on="root_id")
                return m[["id", "pre_pt_root_id", "post_pt_root_id", "size", "label"]]

            engine(), idiom()  # warm-up (page cache, connections)
            te, th = [], []
            a = h = None
            for i in range(repeat):
                for which in ((0, 1) if i % 2 == 0 else (1, 0)):
                    t = time.perf_counter()
                    if which == 0:
                        a = engine()
                        te.append(time.perf_counter() - t)
                    else:
                        h = idiom()
                        th.append(time.perf_counter() - t)
            assert a is not None and h is not None
            a = a.sort_values("id", ignore_index=True)
            h = h.sort_values("id", ignore_index=True)
            same = (len(a) == len(h) and a["id"].tolist() == h["id"].tolist()
                    and a["label"].astype(str).tolist() == h["label"].astype(str).tolist()
                    and a["size"].astype("float64").tolist() == h["size"].astype("float64").tolist())
            e, m = statistics.median(te), statistics.median(th)
            print(f"{len(roots):,} cells (<= {max_inputs:,} inputs each), {len(a):,} synapses; "
                  f"caveql {e:.2f} s, caveclient idiom (batches of {batch}) {m:.2f} s; "
                  f"ratio caveql / idiom {e / m:.2f}; same answer: {same}")
        finally:
            server.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["parse", "plan", "join"])
    ap.add_argument("--repeat", type=int, default=None)
    ap.add_argument("--path", default="/tmp/caveql-bench-demo")
    ap.add_argument("--synapses", type=int, default=20_000_000)
    ap.add_argument("--cells", type=int, default=5000)
    ap.add_argument("--max-inputs", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=100, help="root ids per synapse_query of the idiom")
    args = ap.parse_args()
    if args.what == "parse":
        bench_parse(args.repeat or 200)
    elif args.what == "plan":
        bench_plan(Path(args.path), args.repeat or 100)
    else:
        bench_join(Path(args.path), args.synapses, args.repeat or 3, args.cells, args.max_inputs, args.batch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
