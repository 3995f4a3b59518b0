"""The first root-id check of a process against the later ones (docs/performance.md, "The first root
check of a process").

    .venv/bin/python benchmarks/root_check.py [--demo DIR] [--repeat 5]

A statement naming a root id is checked against the datastack's history before it runs (error
CQL017): the first check of a process reads which roots the history's anchor version holds. Each
run is a new Python process (nothing loaded yet) that looks up one presynaptic root of the demo's
synapse table twice; the first lookup's time is against the second's (the same statement, the
roots then known), medians of ``--repeat`` processes: each with a new cache folder (the first
process on a machine), then sharing one that a first process filled (the anchor's roots kept).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

_CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[2])
from caveql.backends.local import LocalBackend
from caveql.engine import Engine
eng = Engine(LocalBackend(sys.argv[1]), max_fetch_rows=None)
root = int(eng.execute("SELECT pre_pt_root_id FROM synapses_pni_2 WHERE pre_pt_root_id != 0 LIMIT 1")
           .frame.iloc[0, 0])
text = f"SELECT id FROM synapses_pni_2 WHERE pre_pt_root_id = {root}"
times = []
for _ in range(2):
    t0 = time.perf_counter()
    rows = len(eng.execute(text).frame)
    times.append(time.perf_counter() - t0)
print(json.dumps({"first_s": times[0], "again_s": times[1], "rows": rows}))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--demo", default=None, help="demo datastack folder (default: build/find the 2M demo)")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root))
    from caveql.datastack.demo import build_demo

    demo = Path(args.demo) if args.demo else build_demo()

    def child(cache: str) -> dict[str, float]:
        # (the roots of the anchor version are kept in the user's cache folder: XDG_CACHE_HOME)
        env = {**os.environ, "XDG_CACHE_HOME": cache}
        out = subprocess.run([sys.executable, "-c", _CHILD, str(demo), str(root)], check=True,
                             capture_output=True, text=True, env=env).stdout
        return json.loads(out.strip().splitlines()[-1])

    with tempfile.TemporaryDirectory() as tmp:
        cold = [child(tempfile.mkdtemp(dir=tmp)) for _ in range(args.repeat)]  # a new cache each
        warm_dir = tempfile.mkdtemp(dir=tmp)
        child(warm_dir)  # (fills it)
        warm = [child(warm_dir) for _ in range(args.repeat)]
    for name, runs in (("a new cache folder", cold), ("the cache filled", warm)):
        first = statistics.median(r["first_s"] for r in runs)
        again = statistics.median(r["again_s"] for r in runs)
        print(f"root-id lookup ({runs[0]['rows']:,} rows), {name}: first in a process {first * 1e3:.0f} ms, "
              f"again {again * 1e3:.1f} ms; medians of {len(runs)} processes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
