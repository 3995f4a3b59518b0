"""Engine benchmark: plan time per spec example, and two workloads vs the caveclient way.

    .venv/bin/python benchmarks/engine.py --synapses 20000000 --path /tmp/caveql-bench-demo

1. Plan time (parse + analyze + optimize + lower, warm catalog) of every example
   of the spec, median of many runs (target <= 2 ms).
2. On the demo datastack, over the same LocalBackend:
   - "synapses onto BC cells": CQL's IN-subquery vs the caveclient way (query the
     cell-type table, then synapse queries with post-id batches of 10,000, then concat);
   - "cell-type to cell-type connectivity of 50 cells": CQL's three-way join vs the
     caveclient way (cell types, then synapse_query(pre_ids=...), then pandas merge/groupby).
   Both sides must give the same answer; the figure is the time ratio engine / by-hand.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from caveql.backends.base import QueryRequest
from caveql.backends.local import LocalBackend
from caveql.bind import only_used
from caveql.engine import Engine
from caveql.execute.local import to_frame

CELLS = "aibs_soma_nuc_metamodel_preds_v117"
SYN = "synapses_pni_2"
NUC = "nucleus_detection_v0"

SPEC = [
    "SELECT * FROM nucleus_detection_v0",
    "SELECT pt_position, pt_root_id FROM nucleus_detection_v0 AT RESOLUTION 1,1,1 SPLIT POSITIONS LIMIT 10",
    "SELECT * FROM aibs_soma_nuc_metamodel_preds_v117",
    "SELECT pt_position, pt_root_id, cell_type FROM aibs_soma_nuc_metamodel_preds_v117 "
    "AT RESOLUTION 1,1,1 SPLIT POSITIONS LIMIT 10",
    "SELECT * FROM aibs_soma_nuc_metamodel_preds_v117 WHERE cell_type = 'BC'",
    "SELECT * FROM aibs_soma_nuc_metamodel_preds_v117 "
    "WHERE pt_root_id IN (864691135771677771, 864691135560505569, 864691136723556861)",
    "SELECT * FROM synapses_pni_2 WHERE pre_pt_root_id = 864691135808473885",
    "SELECT pre_pt_root_id, post_pt_root_id, COUNT(*) AS syn_count FROM synapses_pni_2 "
    "WHERE pre_pt_root_id = 864691135808473885 GROUP BY pre_pt_root_id, post_pt_root_id "
    "ORDER BY syn_count DESC",
    "SELECT s.pre_pt_root_id, s.post_pt_root_id, s.size FROM synapses_pni_2 s "
    "JOIN aibs_soma_nuc_metamodel_preds_v117 c ON s.post_pt_root_id = c.pt_root_id "
    "WHERE c.cell_type = 'BC' AND s.pre_pt_root_id = :root_id",
    "SELECT * FROM synapses_pni_2 WHERE post_pt_root_id IN (SELECT pt_root_id FROM "
    "aibs_soma_nuc_metamodel_preds_v117 WHERE cell_type = 'BC') AND size > 1000 LIMIT 500000",
    "SELECT pre.cell_type AS pre_type, post.cell_type AS post_type, COUNT(*) AS n_syn "
    "FROM synapses_pni_2 s JOIN aibs_soma_nuc_metamodel_preds_v117 pre ON s.pre_pt_root_id = pre.pt_root_id "
    "JOIN aibs_soma_nuc_metamodel_preds_v117 post ON s.post_pt_root_id = post.pt_root_id "
    "WHERE pre.pt_root_id IN :proofread_ids GROUP BY pre_type, post_type ORDER BY n_syn DESC",
    "SELECT id, pt_root_id, pt_position FROM nucleus_detection_v0 WHERE pt_position WITHIN "
    "BOX((700000, 400000, 800000), (800000, 500000, 850000)) AT RESOLUTION 1,1,1",
    "SELECT cell_type, COUNT(*) AS n FROM aibs_soma_nuc_metamodel_preds_v117 GROUP BY cell_type ORDER BY n DESC",
    "SELECT * FROM nucleus_detection_v0 WHERE pt_position_z BETWEEN 20000 AND 21000 AND volume > 100 AT VERSION 343",
]


def _timeit(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def plan_times(eng: Engine, all_params: dict, n: int = 200) -> list[tuple[str, float]]:
    rows = []
    for cql in SPEC:
        params = only_used(cql, all_params)  # (the engine refuses a name a query does not use)
        eng.physical_plan(cql, params=params)  # warm the catalog
        ts = []
        for _ in range(n):
            t0 = time.perf_counter()
            eng.physical_plan(cql, params=params)
            ts.append(time.perf_counter() - t0)
        rows.append((cql, statistics.median(ts) * 1000))
    return rows


def _frame(table) -> pd.DataFrame:
    return to_frame(table)


def by_hand_bc(b: LocalBackend, version: int) -> pd.DataFrame:
    """The caveclient way: cell types (merged reference query), then batched synapse queries."""
    cells = b.query(QueryRequest(
        kind="join", version=version, join=((CELLS, "target_id"), (NUC, "id")),
        filter_equal={CELLS: {"cell_type": "BC"}}, suffix_map={CELLS: "_ref", NUC: ""})).table
    roots = pd.unique(cells.column("pt_root_id").to_numpy(zero_copy_only=False))
    parts = []
    for i in range(0, len(roots), 10_000):
        batch = [int(x) for x in roots[i:i + 10_000]]
        parts.append(_frame(b.query(QueryRequest(kind="table", table=SYN, version=version,
                                                  filter_in={SYN: {"post_pt_root_id": batch}})).table))
    df = pd.concat(parts, ignore_index=True)
    from caveclient.materializationengine import concatenate_position_columns
    return concatenate_position_columns(df)


def by_hand_connectivity(b: LocalBackend, version: int, ids: list[int]) -> pd.DataFrame:
    """cell types, synapse_query(pre_ids=ids), merge pre and post types, groupby, sort."""
    ct = _frame(b.query(QueryRequest(
        kind="join", version=version, join=((CELLS, "target_id"), (NUC, "id")),
        select_columns={CELLS: ("cell_type",), NUC: ("pt_root_id",)},
        suffix_map={CELLS: "_ref", NUC: ""})).table)[["pt_root_id", "cell_type"]]
    syn = _frame(b.query(QueryRequest(kind="table", table=SYN, version=version,
                                      filter_in={SYN: {"pre_pt_root_id": ids}})).table)
    m = syn.merge(ct.rename(columns={"pt_root_id": "pre_pt_root_id", "cell_type": "pre_type"}),
                  on="pre_pt_root_id")
    m = m.merge(ct.rename(columns={"pt_root_id": "post_pt_root_id", "cell_type": "post_type"}),
                on="post_pt_root_id")
    out = m.groupby(["pre_type", "post_type"]).size().reset_index(name="n_syn")
    return out.sort_values(["n_syn", "pre_type", "post_type"], ascending=[False, True, True],
                           ignore_index=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--synapses", type=int, default=20_000_000)
    ap.add_argument("--path", default="/tmp/caveql-bench-demo")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--plan-only", action="store_true",
                    help="only the plan times, one line (to compare code versions: run it with "
                         "PYTHONPATH pointing at an exported older tree, interleaved)")
    args = ap.parse_args()
    path = Path(args.path)
    from caveql.datastack.demo import build_demo
    t0 = time.perf_counter()
    build_demo(path, synapses=args.synapses, seed=0)  # a no-op when it is already there
    print(f"demo ready ({args.synapses:,} synapses) in {time.perf_counter() - t0:.0f} s")
    b = LocalBackend(path)
    eng = Engine(b)
    version = eng.catalog().version
    ct = eng.execute(f"SELECT pt_root_id FROM {CELLS} WHERE pt_root_id != 0 ORDER BY pt_root_id").frame
    rng = np.random.default_rng(0)
    ids = sorted(int(x) for x in rng.choice(ct.pt_root_id.to_numpy(dtype="int64"), 50, replace=False))
    params = {"root_id": ids[0], "proofread_ids": ids}
    if args.plan_only:
        import caveql
        times = [ms for _c, ms in plan_times(eng, params)]
        print(f"{Path(caveql.__file__).parent}: plan ms per spec example "
              + " ".join(f"{ms:.3f}" for ms in times) + f"; sum {sum(times):.3f}")
        return 0

    print("\nPlan time per spec example (median of 200, warm catalog):")
    for cql, ms in plan_times(eng, params):
        print(f"  {ms:6.3f} ms  {cql[:90]}")

    print(f"\nWorkloads on {path} (version {version}), median of {args.repeat}:")
    q1 = (f"SELECT * FROM {SYN} WHERE post_pt_root_id IN "
          f"(SELECT pt_root_id FROM {CELLS} WHERE cell_type = 'BC')")
    te, a = _timeit(lambda: eng.execute(q1).frame, args.repeat)
    th, h = _timeit(lambda: by_hand_bc(b, version), args.repeat)
    h = h.sort_values("id", ignore_index=True)[list(a.columns)]
    same = a.drop(columns=[c for c in a.columns if c.endswith("position")]).equals(
        h.drop(columns=[c for c in h.columns if c.endswith("position")]))
    print(f"  synapses onto BC cells: {len(a):,} rows; engine {te:.3f} s, by hand {th:.3f} s, "
          f"ratio {te / th:.2f}; same answer: {same}")
    q2 = SPEC[10]
    te, a = _timeit(lambda: eng.execute(q2, params=only_used(q2, params)).frame, args.repeat)
    th, h = _timeit(lambda: by_hand_connectivity(b, version, ids), args.repeat)
    same = (a.pre_type.astype(str).tolist() == h.pre_type.astype(str).tolist()
            and a.n_syn.tolist() == h.n_syn.tolist())
    print(f"  connectivity of 50 cells: {len(a):,} type pairs; engine {te:.3f} s, by hand {th:.3f} s, "
          f"ratio {te / th:.2f}; same answer: {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
