"""CLI and REPL start-up, and completion speed (docs/performance.md, "CLI and REPL").

    .venv/bin/python benchmarks/cli.py [--runs 7]

Start-up is measured as wall time of fresh processes launched from this one, against two
baselines launched the same way: ``python -c pass`` (the interpreter) and a minimal script that
imports the engine and runs the same query (the query itself). The figures that matter:

- ``caveql --help`` minus the interpreter;
- ``caveql -c QUERY`` minus the minimal script (what the CLI adds beyond the query);
- the REPL's time to prompt (a pseudo-terminal; the clock stops when the prompt is drawn)
  minus the interpreter.

Completion is timed in this process: :func:`caveql.repl.completion.suggest` on a catalog of
1,000 tables x 30 columns, for typical cursor positions, against parsing the same statement text
with the CQL parser (the baseline: one parse of the statement).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

PY = sys.executable
QUERY = "SELECT id, cell_type FROM cells WHERE cell_type = 'BC'"


def wall(cmd: list[str], runs: int, env: dict[str, str] | None = None) -> float:
    """Median wall seconds of ``cmd`` over ``runs`` fresh processes (one warm-up first)."""
    first = subprocess.run(cmd, capture_output=True, env=env, text=True)
    if first.returncode:
        raise SystemExit(f"{cmd} failed:\n{first.stderr}")
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, capture_output=True, env=env, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def time_to_prompt(path: str, runs: int, env: dict[str, str]) -> float:
    """Median seconds from spawning ``caveql --path`` in a pty to its prompt being drawn."""
    import pexpect

    times = []
    for i in range(runs + 1):
        t0 = time.perf_counter()
        child = pexpect.spawn(PY, ["-m", "caveql.repl.cli", "--path", path], env=env, encoding="utf-8",
                              dimensions=(40, 120), timeout=60)
        child.expect("caveql>")
        elapsed = time.perf_counter() - t0
        child.sendcontrol("d")
        child.expect(pexpect.EOF)
        child.close()
        if i:  # the first run warms the file cache
            times.append(elapsed)
    return statistics.median(times)


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
            t0 = time.perf_counter()
            suggest(text, cur, cat)
            times.append(time.perf_counter() - t0)
        base = []
        for _ in range(runs):
            t0 = time.perf_counter()
            parse(full)
            base.append(time.perf_counter() - t0)
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
    interp = wall([PY, "-c", "pass"], args.runs, env)
    minimal = wall([PY, "-c", "import sys\nfrom caveql.engine import Engine\n"
                    "from caveql.backends.local import LocalBackend\n"
                    f"print(Engine(LocalBackend(sys.argv[1])).execute({QUERY!r}).frame)", path],
                   args.runs, env)
    helpt = wall([PY, "-m", "caveql.repl.cli", "--help"], args.runs, env)
    cli = wall([PY, "-m", "caveql.repl.cli", "--path", path, "-c", QUERY], args.runs, env)
    prompt = time_to_prompt(path, args.runs, env)
    print(f"interpreter (python -c pass)          {interp * 1000:7.0f} ms")
    print(f"minimal engine script, same query      {minimal * 1000:7.0f} ms")
    print(f"caveql --help                          {helpt * 1000:7.0f} ms  (+{(helpt - interp) * 1000:.0f} ms over the interpreter)")
    print(f"caveql -c QUERY                        {cli * 1000:7.0f} ms  (+{(cli - minimal) * 1000:.0f} ms over the minimal script, x{cli / minimal:.2f})")
    print(f"REPL time to prompt                    {prompt * 1000:7.0f} ms  (+{(prompt - interp) * 1000:.0f} ms over the interpreter)")
    print("completion on 1,000 tables x 30 columns (median; ratio to one parse of the statement):")
    for label, ms, ratio in completion(max(args.runs, 50)):
        print(f"  {label:38s} {ms:6.2f} ms  x{ratio:.1f}")


if __name__ == "__main__":
    main()
