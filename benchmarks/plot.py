"""Plot benchmark: a 100 × 100 cell-type connectivity matrix, drawn and written to PNG.

    .venv/bin/python benchmarks/plot.py [--types 100] [--repeat 7]

The input is what ``GROUP BY pre_type, post_type`` returns for 100 types: 10,000 rows of
(pre_type, post_type, n_syn). ``caveql.plot.matrix`` (pair sums, type order, labels, colour bar)
plus :func:`caveql.plot.save` is timed against plain matplotlib on the same matrix: a Figure of
the same size, ``imshow`` of the 100 × 100 array (already pivoted) and ``savefig`` to PNG. Times
are the median CPU time of this process (``time.process_time``) after one warm-up; the first plot
of a fresh process (importing matplotlib included) is timed in a child. The budget is 1 s per
plot. Figures go into docs/performance.md, section "Plots".
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

BUDGET_S = 1.0


def frame(n_types: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    types = [f"type{i:03d}" for i in range(n_types)]
    pre, post = np.meshgrid(types, types, indexing="ij")
    return pd.DataFrame({"pre_type": pre.ravel(), "post_type": post.ravel(),
                         "n_syn": rng.integers(0, 5000, n_types * n_types)})


def median_cpu(fn: Callable[[], object], repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return statistics.median(times)


def caveql_plot(df: pd.DataFrame) -> bytes:
    from caveql import plot

    return plot.to_bytes(plot.matrix(df))


def plain_matplotlib(grid: np.ndarray) -> bytes:
    from matplotlib.figure import Figure

    from caveql.plot import DPI, FIGSIZE

    fig = Figure(figsize=FIGSIZE, dpi=DPI)
    fig.add_subplot().imshow(grid)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def first_plot_cpu(n_types: int) -> float:
    """CPU seconds of the first plot in a fresh process (imports of matplotlib and caveql.plot
    included; the process's own start, `import caveql` and the frame, not), median of 3."""
    code = ("import sys, time; sys.path.insert(0, 'benchmarks'); import caveql; from plot import frame; "
            f"df = frame({n_types}); t = time.process_time(); "
            "from caveql import plot; plot.to_bytes(plot.matrix(df)); print(time.process_time() - t)")
    runs = [float(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                                 text=True).stdout) for _ in range(3)]
    return statistics.median(runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--types", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    df = frame(args.types)
    grid = df.pivot(index="pre_type", columns="post_type", values="n_syn").to_numpy(dtype=float)
    ours = median_cpu(lambda: caveql_plot(df), args.repeat)
    plain = median_cpu(lambda: plain_matplotlib(grid), args.repeat)
    first = first_plot_cpu(args.types)
    import matplotlib

    print(f"{args.types} x {args.types} type matrix ({len(df):,} rows) to PNG, "
          f"matplotlib {matplotlib.__version__}, median CPU of {args.repeat}:")
    print(f"  caveql.plot.matrix + PNG     {ours * 1000:8.1f} ms")
    print(f"  plain imshow + PNG           {plain * 1000:8.1f} ms   (ratio {ours / plain:.2f})")
    print(f"  first plot of a process      {first * 1000:8.1f} ms   (imports matplotlib)")
    ok = max(ours, first) < BUDGET_S
    print(f"  budget {BUDGET_S:.0f} s: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
