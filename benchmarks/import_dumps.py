"""Flat-file import throughput against DuckDB's own CSV→Parquet (docs/performance.md,
"Importing flat-file dumps").

    .venv/bin/python benchmarks/import_dumps.py [--demo DIR] [--runs 3] [--memory-limit 1GB]

Dumps the demo's synapse table (version 661) in the published shape (gzip CSV without header,
PostGIS ``POINT Z`` text, tests/importer/dumps.py), then times, interleaved:

A. DuckDB alone: ``COPY (SELECT * FROM read_csv(dump, columns=all VARCHAR positions)) TO
   parquet`` — one unsorted Parquet file, no position parsing: the floor;
B. ``import_dumps`` of the same dump: typed read, positions parsed and split, four sorted copies
   (by pre root, post root, centre x, size), every count verified.

and reports rows/s of each, the ratio B/A, and the import's peak RSS (VmHWM, in a subprocess).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

_CHILD = """
import json, re, sys, time
from caveql.datastack.importer import import_dumps
t = time.perf_counter()
import_dumps(sys.argv[1], 661, sys.argv[2], progress=lambda _m: None, memory_limit=sys.argv[3])
wall = time.perf_counter() - t
hwm = int(re.search(r"VmHWM:\\s*(\\d+) kB", open("/proc/self/status").read()).group(1))
print(json.dumps({"seconds": wall, "hwm_kb": hwm}))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--demo", default=None, help="demo datastack folder (default: build/find it)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--memory-limit", default="1GB")
    args = ap.parse_args()

    import duckdb

    from caveql.datastack.demo import build_demo
    from caveql.datastack.importer import _header, _lit
    from tests.importer.dumps import write_dumps

    demo = Path(args.demo) if args.demo else build_demo()
    work = Path(tempfile.mkdtemp(prefix="caveql-import-bench-"))
    try:
        dump = write_dumps(demo, 661, work / "dump", tables=("synapses_pni_2",),
                           files={"synapses_pni_2": "synapses_pni_2_v1_filtered_view"})
        data = dump / "synapses_pni_2_v1_filtered_view.csv.gz"
        cols = _header(dump / "synapses_pni_2_v1_filtered_view_header.csv")
        rows = json.loads((dump / "caveql_import.json").read_text())["tables"]["synapses_pni_2"]["rows"]
        plain = "{" + ", ".join(f"{_lit(c)}: {_lit('VARCHAR' if t == 'POSITION' else t)}"
                                for c, t in cols) + "}"
        duck, ours, hwm = [], [], []
        for _ in range(args.runs):
            con = duckdb.connect(config={"memory_limit": args.memory_limit})
            t = time.perf_counter()
            con.execute(f"COPY (SELECT * FROM read_csv({_lit(data)}, header=false, columns={plain}, "
                        f"auto_detect=false)) TO {_lit(work / 'plain.parquet')} (FORMAT parquet, "
                        "COMPRESSION zstd)")
            duck.append(time.perf_counter() - t)
            con.close()
            dest = work / "imported"
            shutil.rmtree(dest, ignore_errors=True)
            out = subprocess.run([sys.executable, "-c", _CHILD, str(dump), str(dest), args.memory_limit],
                                 capture_output=True, text=True, check=True,
                                 env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
            res = json.loads(out.stdout)
            ours.append(res["seconds"])
            hwm.append(res["hwm_kb"] * 1024)
        a, b = statistics.median(duck), statistics.median(ours)
        print(f"synapse dump: {rows:,} rows, {data.stat().st_size / 1e6:,.0f} MB gzip; "
              f"{os.cpu_count()} CPUs; memory limit {args.memory_limit}; median of {args.runs}")
        for tag, what, sec in (("A", "DuckDB CSV→Parquet (unsorted, positions as text)", a),
                               ("B", "caveql import (typed, 4 sorted copies, verified) ", b)):
            print(f"{tag}  {what}: {sec:6.2f} s  {rows / sec / 1e6:5.2f} M rows/s")
        print(f"ratio B/A: {b / a:.2f}x; import peak RSS {max(hwm) / 1e6:,.0f} MB")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
