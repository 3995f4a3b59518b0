"""CLI and REPL start-up, and completion speed (docs/performance.md, "CLI and REPL").

    .venv/bin/python benchmarks/cli.py [--runs 7]

Start-up is measured as wall time of fresh processes launched from this one, against two
baselines launched the same way: ``python -c pass`` (the interpreter) and a minimal script that
imports the engine and runs the same query (the query itself). The figures that matter:

- ``caveql --help`` minus the interpreter;
- ``caveql -c QUERY`` minus the minimal script (what the CLI adds beyond the query);
- the REPL's time to prompt (a pseudo-terminal; the clock stops when the prompt is drawn)
  minus the interpreter, and against a bare prompt_toolkit ``PromptSession().prompt()``.

Completion is timed in this process: :func:`caveql.repl.completion.suggest` on a catalog of
1,000 tables x 30 columns, for typical cursor positions, against parsing the same statement text
with the CQL parser (the baseline: one parse of the statement).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

PY = sys.executable
QUERY = "SELECT id, cell_type FROM cells WHERE cell_type = 'BC'"


def _cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run(cmd: list[str], runs: int, env: dict[str, str] | None = None) -> tuple[float, float]:
    """Median (CPU seconds, wall seconds) of ``cmd`` over ``runs`` fresh processes (after a warm-up).

    CPU time (user + system of the child) is the figure to read on a busy machine: wall time
    there measures the other processes too.
    """
    first = subprocess.run(cmd, capture_output=True, env=env, text=True)
    if first.returncode:
        raise SystemExit(f"{cmd} failed:\n{first.stderr}")
    cpus, walls = [], []
    for _ in range(runs):
        c0, t0 = _cpu_children(), time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, env=env, text=True)
        if done.returncode:
            raise SystemExit(f"{cmd} failed:\n{done.stderr}")
        walls.append(time.perf_counter() - t0)
        cpus.append(_cpu_children() - c0)
    return statistics.median(cpus), statistics.median(walls)


def time_to_prompt(args: list[str], runs: int, env: dict[str, str]) -> tuple[float, float]:
    """Median (CPU, wall) seconds from spawning ``python ARGS`` in a pty to its prompt being drawn.

    CPU is the child's user + system time read (psutil) the moment the prompt appears.
    """
    import pexpect
    import psutil

    cpus, walls = [], []
    for i in range(runs + 1):
        t0 = time.perf_counter()
        child = pexpect.spawn(PY, args, env=env, encoding="utf-8", dimensions=(40, 120), timeout=60)
        child.expect("caveql>")
        elapsed = time.perf_counter() - t0
        ct = psutil.Process(child.pid).cpu_times()
        child.sendcontrol("d")
        child.expect(pexpect.EOF)
        child.close()
        if i:  # the first run warms the file cache
            walls.append(elapsed)
            cpus.append(ct.user + ct.system)
    return statistics.median(cpus), statistics.median(walls)


def completion(runs: int) -> list[tuple[str, float, float]]:
    from caveql.repl.completion import CompletionCatalog, suggest
    from caveql.syntax import parse

    tables = [f"table_{i:04d}_synapses_v{i % 7}" for i in range(1000)]
    columns = {t: [(f"col_{j:02d}_{t[-2:]}", "int") for j in range(28)] + [("pt_position", "position"),
                                                                          ("cell_type", "string")]
               for t in tables}
    cat = CompletionCatalog(tables=tables, columns=columns,
                            values={(tables[5], "cell_type"): [f"type_{k}" for k in range(40)]})
    full = (f"SELECT s.col_01_v5, c.cell_type FROM {tables[5]} s JOIN {tables[12]} c "
            f"ON s.col_02_v5 = c.col_02_v5 WHERE c.cell_type = 'type_1' AND s.col_03_v5 > 10")
    cases = [
        ("table after FROM (fuzzy over 1,000)", f"SELECT * FROM tab_05", None),
        ("columns, 2 aliased tables", full, full.index("c.cell_type") + 2),
        ("keyword after WHERE expr", full + " ", None),
        ("cell-type value in quotes", full[: full.index("'type_1'") + 3], None),
        ("empty statement", "", None),
    ]
    suggest("SELECT * FROM t", 15, cat)  # load the grammar once, as the REPL does in the background
    out = []
    for label, text, cursor in cases:
        cur = len(text) if cursor is None else cursor
        times = []
        for _ in range(runs):
            t0 = time.process_time()
            suggest(text, cur, cat)
            times.append(time.process_time() - t0)
        base = []
        for _ in range(runs):
            t0 = time.process_time()
            parse(full)
            base.append(time.process_time() - t0)
        out.append((label, statistics.median(times) * 1000, statistics.median(times) / statistics.median(base)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    from caveql.datastack.tiny import build_tiny

    path = str(build_tiny(tempfile.mkdtemp()))
    env = dict(os.environ, CAVEQL_CONFIG=os.path.join(path, "no-config.toml"),
               CAVEQL_HISTORY_DIR=tempfile.mkdtemp(), TERM="xterm")
    interp = run([PY, "-c", "pass"], args.runs, env)
    minimal = run([PY, "-c", "import sys\nfrom caveql.engine import Engine\n"
                   "from caveql.backends.local import LocalBackend\n"
                   f"print(Engine(LocalBackend(sys.argv[1])).execute({QUERY!r}).frame)", path],
                  args.runs, env)
    helpt = run([PY, "-m", "caveql.repl.cli", "--help"], args.runs, env)
    cli = run([PY, "-m", "caveql.repl.cli", "--path", path, "-c", QUERY], args.runs, env)
    prompt = time_to_prompt(["-m", "caveql.repl.cli", "--path", path], args.runs, env)
    bare = time_to_prompt(["-c", "from prompt_toolkit import PromptSession\n"
                           "PromptSession().prompt('caveql> ')"], args.runs, env)
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; medians of {args.runs} runs")
    print(f"{'':40s} {'CPU ms':>8s} {'wall ms':>8s}")
    rows = [("interpreter (python -c pass)", interp), ("minimal engine script, same query", minimal),
            ("caveql --help", helpt), ("caveql -c QUERY", cli), ("bare prompt_toolkit prompt", bare),
            ("REPL time to prompt", prompt)]
    for label, (c, w) in rows:
        print(f"{label:40s} {c * 1000:8.0f} {w * 1000:8.0f}")
    print(f"caveql --help beyond the interpreter:  {(helpt[0] - interp[0]) * 1000:.0f} ms CPU")
    print(f"caveql -c beyond the query itself:     {(cli[0] - minimal[0]) * 1000:.0f} ms CPU "
          f"(x{cli[0] / minimal[0]:.2f} the minimal script)")
    print(f"REPL prompt beyond the interpreter:    {(prompt[0] - interp[0]) * 1000:.0f} ms CPU "
          f"({(prompt[0] - bare[0]) * 1000:.0f} ms beyond a bare prompt_toolkit prompt)")
    print("completion on 1,000 tables x 30 columns (median CPU; ratio to one parse of the statement):")
    for label, ms, ratio in completion(max(args.runs, 50)):
        print(f"  {label:38s} {ms:6.2f} ms  x{ratio:.1f}")


if __name__ == "__main__":
    main()
