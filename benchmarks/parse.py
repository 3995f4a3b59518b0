"""Parser benchmark: time per seed query, IN lists of 1k/10k/100k ids, cold start.

    .venv/bin/python benchmarks/parse.py [--repeat N]

Times are CPU time of this process (``time.process_time``), so they hold on a shared, loaded
machine; the cold start is the CPU time of child processes. Baselines, measured in the same process: CPython's own parser (``ast.parse``) on the same id
list written as a Python list, and DuckDB's SQL parser (``duckdb.extract_statements``) on the
same SQL text. Figures go into docs/performance.md, section "Parsing".
"""

from __future__ import annotations

import argparse
import ast
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

SEED = [
    "SHOW DATASTACK",
    "SHOW TABLES",
    "DESCRIBE nucleus_detection_v0",
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
    "SELECT pre.cell_type AS pre_type, post.cell_type AS post_type, COUNT(*) AS n_syn "
    "FROM synapses_pni_2 s "
    "JOIN aibs_soma_nuc_metamodel_preds_v117 pre ON s.pre_pt_root_id = pre.pt_root_id "
    "JOIN aibs_soma_nuc_metamodel_preds_v117 post ON s.post_pt_root_id = post.pt_root_id "
    "WHERE pre.pt_root_id IN :proofread_ids GROUP BY pre_type, post_type ORDER BY n_syn DESC",
]


def best(fn: Callable[[], object], repeat: int) -> float:
    """Median of ``repeat`` CPU timings (seconds) after one warm-up call."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return statistics.median(times)


def cold_start() -> tuple[float, float]:
    """CPU seconds of `python -c 'import caveql; caveql.parse(q)'` vs `python -c pass` (median of 5)."""
    code = f"import caveql; caveql.parse({SEED[-1]!r})"

    def run(c: str) -> float:
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([sys.executable, "-c", c], check=True)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        return (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)

    run(code)  # the LALR table cache is written on the very first run on a machine
    return statistics.median(run(code) for _ in range(5)), statistics.median(run("pass") for _ in range(5))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=200)
    args = ap.parse_args()

    import duckdb

    from caveql.syntax import parse

    print("## seed queries (median of", args.repeat, "runs)")
    print(f"{'query':<60} {'caveql ms':>10} {'duckdb ms':>10} {'ratio':>6}")
    worst = 0.0
    for q in SEED:
        t = best(lambda q=q: parse(q), args.repeat)
        sql = q.replace(":proofread_ids", "(1, 2)").replace(" AT RESOLUTION 1,1,1 SPLIT POSITIONS", "")
        d = best(lambda sql=sql: duckdb.extract_statements(sql), args.repeat) if q.startswith("SELECT") else None
        worst = max(worst, t)
        ds = f"{d * 1e3:10.3f} {t / d:6.1f}" if d else f"{'':>10} {'':>6}"
        print(f"{q[:58]:<60} {t * 1e3:10.3f} {ds}")
    print(f"slowest seed query: {worst * 1e3:.3f} ms (target <= 1 ms)")

    print("\n## IN lists of root ids")
    print(f"{'ids':>8} {'chars':>10} {'caveql ms':>10} {'us/id':>7} {'ast.parse ms':>13} {'ratio':>6} "
          f"{'duckdb ms':>10} {'ratio':>6}")
    for n in (1_000, 10_000, 100_000):
        ids = ", ".join(str(864691135000000000 + i) for i in range(n))
        q = f"SELECT * FROM synapses_pni_2 WHERE pre_pt_root_id IN ({ids})"
        rep = max(3, args.repeat // (n // 100))
        t = best(lambda q=q: parse(q), rep)
        b = best(lambda ids=ids: ast.parse(f"[{ids}]"), rep)
        d = best(lambda q=q: duckdb.extract_statements(q), rep)
        print(f"{n:>8} {len(q):>10} {t * 1e3:10.2f} {t / n * 1e6:7.2f} {b * 1e3:13.2f} {t / b:6.1f} "
              f"{d * 1e3:10.2f} {t / d:6.1f}")

    cold, base = cold_start()
    print(f"\n## cold start: import caveql + first parse {cold * 1e3:.0f} ms; "
          f"python -c pass {base * 1e3:.0f} ms; difference {(cold - base) * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
