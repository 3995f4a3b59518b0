"""Live benchmark: 1,000 cells' synapses at a timestamp between versions 343 and 661, caveql vs
caveclient 8.2.1's ``live_query``, both against ``caveql serve`` on loopback.

    .venv/bin/python benchmarks/live.py                    # the default 2M-synapse demo
    .venv/bin/python benchmarks/live.py --path DIR --cells 1000 --repeat 3 --json out.json

The server runs in its own process (``caveql serve --path <demo>``). The instant is midway
between the two versions, so the cells' roots there are those neither version holds for every
cell the proofreading history edited by then. The 1,000 cells are nuclei whose root at that
instant was made strictly before it (caveclient refuses others), drawn with a fixed seed.

- **caveql**: ``SELECT * FROM synapses_pni_2 WHERE pre_pt_root_id IN (<1,000 roots>) AT
  TIMESTAMP '<t>'`` over HTTP (``HttpBackend``): the service's live endpoint, which maps the
  filter's roots to version 343's ids and the answer's roots to the instant on the server.
- **caveclient**: ``materialize.live_query("synapses_pni_2", t, filter_in_dict=...)``: the same
  work client-side — ``is_latest_roots`` and ``root_timestamps`` of the filter's roots,
  ``past_id_mapping`` to version 343, a query of version 343, ``is_latest_roots`` of the answer's
  roots and ``roots_binary`` for the supervoxels of those that are not, then the post-filter.

Both answers must hold the same rows (id, pre/post supervoxel and root ids, size) and agree with
the plain reading of the history (``History.roots_at`` of each row's supervoxels at the
instant, over version 343's rows). Timings are medians of ``--repeat`` runs, warm server.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from remote import DATASTACK, TOKEN, Server, caveclient_for, timed  # noqa: E402  (a sibling benchmark)

SYN = "synapses_pni_2"
KEYS = ["id", "pre_pt_supervoxel_id", "pre_pt_root_id", "post_pt_supervoxel_id", "post_pt_root_id"]


def instant(path: Path) -> datetime:
    """Midway between versions 343 and 661."""
    from caveql.backends.local import LocalBackend

    with LocalBackend(path) as b:
        stamps = [datetime.fromisoformat(str(b.version_metadata(v)["time_stamp"])) for v in (343, 661)]
    a, z = (s if s.tzinfo else s.replace(tzinfo=UTC) for s in stamps)
    return a + (z - a) / 2


def pick_cells(path: Path, ts: datetime, n: int, seed: int = 0) -> list[int]:
    """``n`` roots of nuclei at ``ts``, each made strictly before ``ts``."""
    import pyarrow.compute as pc

    from caveql.backends.base import QueryRequest
    from caveql.backends.local import LocalBackend
    from caveql.datastack.history import History

    history = History.load(path)
    if history is None:
        raise SystemExit(f"{path} has no proofreading history (build it with a caveql that writes one)")
    with LocalBackend(path) as b:
        nuclei = b.query(QueryRequest(kind="table", table="nucleus_detection_v0", version=661,
                                      select_columns={"nucleus_detection_v0": ("id", "pt_supervoxel_id")})).table
    svs = pc.fill_null(nuclei.column("pt_supervoxel_id"), 0).to_numpy()
    roots = np.unique(history.roots_at(svs[svs != 0], ts))
    roots = roots[roots != 0]
    made = np.array([history.valid_range(int(r))[0] < ts for r in roots.tolist()])
    edited = np.isin(roots, history.roots_at(svs[svs != 0], None), invert=True)
    ok = roots[made]
    rng = np.random.default_rng(seed)
    # half of them cells whose root then is not their root now (so the mapping matters)
    moved, still = ok[edited[made]], ok[~edited[made]]
    k = min(n // 2, moved.size)
    chosen = np.concatenate([rng.choice(moved, k, replace=False), rng.choice(still, n - k, replace=False)])
    return sorted(int(r) for r in chosen)


def truth(path: Path, ts: datetime, roots: list[int]) -> pd.DataFrame:
    """The plain reading: version 343's synapses, roots mapped to ``ts`` through the history."""
    from caveql.backends.base import QueryRequest
    from caveql.backends.local import LocalBackend
    from caveql.datastack.history import History

    history = History.load(path)
    assert history is not None
    with LocalBackend(path) as b:
        rows = b.query(QueryRequest(kind="table", table=SYN, version=343,
                                    select_columns={SYN: (*KEYS, "size")})).table.to_pandas()
    for p in ("pre_pt", "post_pt"):
        rows[f"{p}_root_id"] = history.roots_at(rows[f"{p}_supervoxel_id"].to_numpy(), ts).astype(np.int64)
    return rows[rows.pre_pt_root_id.isin(roots)]


def canonical(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[KEYS + ["size"]].astype({k: "int64" for k in KEYS}).astype({"size": "float64"}) \
        .sort_values("id").reset_index(drop=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--path", type=Path, default=None, help="demo folder (default: build/reuse the default)")
    parser.add_argument("--cells", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    logging.getLogger("caveclient").setLevel(logging.ERROR)
    logging.getLogger().setLevel(logging.ERROR)
    if args.path is None:
        from caveql.datastack.demo import build_demo

        args.path = build_demo()
    ts = instant(args.path)
    roots = pick_cells(args.path, ts, args.cells)
    want = canonical(truth(args.path, ts, roots))
    stamp = ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    cql = f"SELECT * FROM {SYN} WHERE pre_pt_root_id IN ({', '.join(map(str, roots))}) AT TIMESTAMP '{stamp}'"
    server = Server(args.path)
    try:
        import caveql

        with caveql.connect(DATASTACK, server=server.url, token=TOKEN, cache=False) as db:
            t_cql, got_cql = timed(lambda: db.query(cql), args.repeat)
        client = caveclient_for(server.url)
        t_cc, got_cc = timed(lambda: client.materialize.live_query(SYN, ts, filter_in_dict={"pre_pt_root_id": roots},
                                                                   split_positions=True), args.repeat)
    finally:
        server.stop()
    a, b = canonical(got_cql), canonical(got_cc)
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(a, want)
    out: dict[str, Any] = {
        "timestamp": stamp, "cells": len(roots), "rows": len(a),
        "rows_whose_root_differs_from_343": int((want.pre_pt_root_id.to_numpy()
                                                 != truth_343(args.path, want.id.to_numpy())).sum()),
        "caveql_s": round(t_cql, 3), "caveclient_live_query_s": round(t_cc, 3),
        "ratio_caveclient_over_caveql": round(t_cc / t_cql, 2),
    }
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


def truth_343(path: Path, ids: np.ndarray) -> np.ndarray:
    """The pre roots version 343 stores for these synapse ids (in the same order)."""
    from caveql.backends.base import QueryRequest
    from caveql.backends.local import LocalBackend

    with LocalBackend(path) as b:
        rows = b.query(QueryRequest(kind="table", table=SYN, version=343,
                                    select_columns={SYN: ("id", "pre_pt_root_id")})).table.to_pandas()
    return rows.set_index("id").loc[ids, "pre_pt_root_id"].to_numpy()


if __name__ == "__main__":
    sys.exit(main())
