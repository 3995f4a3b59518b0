"""Snapshot benchmark: ``caveql snapshot`` vs caveclient's capped ``query_table``, both against
``caveql serve`` (the service's 200,000-row cap) on loopback.

    .venv/bin/python benchmarks/snapshot.py                      # the default 2M-synapse demo
    .venv/bin/python benchmarks/snapshot.py --path DIR --tables synapses_pni_2 nucleus_detection_v0

For each table: the snapshot (every row, past the cap, counted against the service's count,
written as Parquet with the synapse table's four sorted copies) in rows per second, and
caveclient 8's ``materialize.query_table(table, split_positions=True)`` over the same server in
rows per second (it returns the first 200,000 rows only); the ratio is snapshot / caveclient.
Medians of ``--repeat`` runs (default 3), a fresh destination folder each run, no disk cache.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from remote import DATASTACK, TOKEN, Server, caveclient_for  # noqa: E402  (a sibling benchmark)


def run(path: Path, tables: list[str], repeat: int, version: int) -> list[dict[str, Any]]:
    from caveql.backends.http import HttpBackend
    from caveql.datastack.snapshot import snapshot

    server = Server(path)
    out = []
    try:
        client = caveclient_for(server.url)
        for table in tables:
            snap_s, cc_s = [], []
            rows = cc_rows = 0
            for _ in range(repeat):
                http = HttpBackend(DATASTACK, server=server.url, token=TOKEN, cache=False, progress=False)
                with tempfile.TemporaryDirectory() as tmp, http:
                    t0 = time.perf_counter()
                    report = snapshot(http, version, Path(tmp) / "copy", tables=[table], progress=None)
                    snap_s.append(time.perf_counter() - t0)
                    rows = report.rows
                t0 = time.perf_counter()
                frame = client.materialize.query_table(table, split_positions=True,
                                                       materialization_version=version)
                cc_s.append(time.perf_counter() - t0)
                cc_rows = len(frame)
            s, c = statistics.median(snap_s), statistics.median(cc_s)
            out.append({"table": table, "rows": rows, "snapshot_s": s, "snapshot_rows_per_s": rows / s,
                        "caveclient_rows": cc_rows, "caveclient_s": c, "caveclient_rows_per_s": cc_rows / c,
                        "ratio": (rows / s) / (cc_rows / c)})
    finally:
        server.stop()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--path", type=Path, default=None,
                   help="a demo folder (default: build/find the default demo)")
    p.add_argument("--tables", nargs="+", default=["synapses_pni_2", "nucleus_detection_v0"])
    p.add_argument("--version", type=int, default=661)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = p.parse_args()
    logging.getLogger("caveclient").setLevel(logging.ERROR)
    path = args.path
    if path is None:
        from caveql.datastack.demo import build_demo

        path = build_demo()
    results = run(path, args.tables, args.repeat, args.version)
    for r in results:
        print(f"{r['table']}: snapshot {r['rows']:,} rows in {r['snapshot_s']:.2f} s "
              f"({r['snapshot_rows_per_s']:,.0f} rows/s, complete, written); caveclient query_table "
              f"{r['caveclient_rows']:,} rows in {r['caveclient_s']:.2f} s "
              f"({r['caveclient_rows_per_s']:,.0f} rows/s, capped) -> snapshot/caveclient rows/s = "
              f"{r['ratio']:.2f}x")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
