"""Remote benchmark: caveql's HTTP backend vs caveclient 8.2.1, both against ``caveql serve`` on loopback.

    .venv/bin/python benchmarks/remote.py                 # the default 2M-synapse demo
    .venv/bin/python benchmarks/remote.py --path DIR --json out.json
    .venv/bin/python benchmarks/remote.py --only d        # just the memory measurement

The server runs in its own process (``caveql serve --path <demo>``, the service's 200,000-row
cap), so the client's memory is measured alone. Four measurements:

(a) a ~1,000,000-row answer (``synapses_pni_2 WHERE size > <median>``, past the cap): caveql
    returns all of it (the engine splits the call by id ranges, fetched in parallel); caveclient's
    ``query_table`` with the same filter returns the first 200,000 rows. Rows per second of each.
(b) "synapses onto BC cells": the CQL semi-join vs the hand-written caveclient idiom (BC roots
    from the table manager, then ``synapse_query(post_ids=chunk)`` over chunks of 500 roots so
    that no call reaches the cap, then ``pd.concat``). Same rows checked; time ratio.
(c) a repeated versioned query (the query of (b) at version 661) with the disk cache cold vs
    warm (a fresh engine each time, so only the disk cache carries over).
(d) peak RSS growth of the client during (a), in a fresh process, relative to the final frame's
    size (target <= 3x), and of fetching the same calls alone (``HttpBackend.query_many`` in
    another fresh process) relative to the Arrow data they return; also with the local step
    forced through DuckDB, and with the disk cache cold (written) and warm (read). On Linux the peak is the
    kernel's high-water mark (``VmHWM``, reset before the statement), so no short peak is missed.

(e) the local step of (a) alone (sort by id, project, build the frame) on the same fetched
    answers: caveql's direct step vs the same step through DuckDB, interleaved, same frame checked.

Timings are medians of ``--repeat`` runs (default 3; at least 3 for (e)), warm server.
"""

from __future__ import annotations

import argparse
import json
import logging
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import psutil

DATASTACK = "minnie65_demo"
TOKEN = "benchmark-token-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``caveql serve`` in a child process."""

    def __init__(self, path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "caveql.repl.cli", "serve", "--path", str(path), "--port", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("caveql serve did not start") from None
                time.sleep(0.1)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


class PeakRss:
    """Peak resident set size of this process while the block runs.

    Exact on Linux: the kernel's high-water mark (``VmHWM``) is reset on entry (``clear_refs``)
    and read on exit. Elsewhere, RSS sampled every 2 ms (may miss a short peak).
    """

    def __enter__(self) -> PeakRss:
        self._proc = psutil.Process()
        self.base = self._proc.memory_info().rss
        self.peak = self.base
        self.exact = _reset_hwm()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._watch, daemon=True)
        if not self.exact:
            self._t.start()
        return self

    def _watch(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            time.sleep(0.002)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self.exact:
            self.peak = max(self.peak, _hwm())
        else:
            self._t.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # 5: reset the peak RSS to the current RSS
        return _hwm() > 0
    except OSError:
        return False


def _hwm() -> int:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def caveclient_for(url: str) -> Any:
    import caveclient

    return caveclient.CAVEclient(DATASTACK, server_address=url, auth_token=TOKEN, write_server_cache=False)


def engine_for(url: str, cache: Any = False) -> Any:
    from caveql.backends.http import HttpBackend
    from caveql.engine import Engine

    return Engine(HttpBackend(DATASTACK, server=url, token=TOKEN, cache=cache, progress=False))


def median_size(path: Path) -> int:
    from caveql.backends.local import LocalBackend
    from caveql.engine import Engine

    with LocalBackend(path) as b:
        f = Engine(b).execute("SELECT size FROM synapses_pni_2").frame
    return int(f["size"].median())


def bench_a(url: str, size: int, repeat: int) -> dict[str, Any]:
    cql = f"SELECT * FROM synapses_pni_2 WHERE size > {size} SPLIT POSITIONS"
    eng = engine_for(url)
    t_cq, frame = timed(lambda: eng.execute(cql).frame, repeat)
    client = caveclient_for(url)
    t_cc, cc = timed(lambda: client.materialize.query_table(
        "synapses_pni_2", filter_greater_dict={"size": size}, split_positions=True), repeat)
    eng.backend.close()
    return {"cql": cql, "caveql_rows": len(frame), "caveql_s": t_cq, "caveql_rows_per_s": len(frame) / t_cq,
            "caveclient_rows": len(cc), "caveclient_s": t_cc, "caveclient_rows_per_s": len(cc) / t_cc,
            "caveclient_complete": len(cc) == len(frame)}


def bench_b(url: str, repeat: int) -> dict[str, Any]:
    cql = ("SELECT * FROM synapses_pni_2 WHERE post_pt_root_id IN "
           "(SELECT pt_root_id FROM aibs_soma_nuc_metamodel_preds_v117 WHERE cell_type = 'BC') SPLIT POSITIONS")
    eng = engine_for(url)
    t_cq, frame = timed(lambda: eng.execute(cql).frame, repeat)
    client = caveclient_for(url)

    def idiom() -> pd.DataFrame:
        bc = client.materialize.tables.aibs_soma_nuc_metamodel_preds_v117(cell_type="BC").query(split_positions=True)
        roots = [int(r) for r in bc["pt_root_id"].unique()]
        parts = [client.materialize.synapse_query(post_ids=roots[i:i + 500], remove_autapses=False,
                                                  split_positions=True)
                 for i in range(0, len(roots), 500)]
        return pd.concat(parts, ignore_index=True).sort_values("id", ignore_index=True)

    t_cc, cc = timed(idiom, repeat)
    eng.backend.close()
    same = len(cc) == len(frame) and cc["id"].tolist() == frame["id"].tolist()
    return {"cql": cql, "rows": len(frame), "caveql_s": t_cq, "caveclient_s": t_cc,
            "caveclient_over_caveql": t_cc / t_cq, "same_answer": same}


def bench_c(url: str, repeat: int) -> dict[str, Any]:
    from caveql.cache import ResultCache

    cql = ("SELECT * FROM synapses_pni_2 WHERE post_pt_root_id IN "
           "(SELECT pt_root_id FROM aibs_soma_nuc_metamodel_preds_v117 WHERE cell_type = 'BC') "
           "AT VERSION 661 SPLIT POSITIONS")
    colds, warms = [], []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as d:
            cache = ResultCache(d)
            cold = engine_for(url, cache)
            t = time.perf_counter()
            a = cold.execute(cql).frame
            colds.append(time.perf_counter() - t)
            cold.backend.close()
            warm = engine_for(url, cache)
            warm.execute("SHOW TABLES")  # discovery outside the timing, as for the cold engine's first call
            t = time.perf_counter()
            b = warm.execute(cql).frame
            warms.append(time.perf_counter() - t)
            warm.backend.close()
            assert a.equals(b)
    # the cold run's discovery is part of its time; measure it apart to be fair
    probe = engine_for(url)
    t = time.perf_counter()
    probe.execute("SHOW TABLES")
    discovery = time.perf_counter() - t
    probe.backend.close()
    cold_s, warm_s = statistics.median(colds), statistics.median(warms)
    return {"cql": cql, "cold_s": cold_s, "warm_s": warm_s, "discovery_s": discovery,
            "cold_over_warm": cold_s / warm_s}


def bench_d(url: str, size: int) -> dict[str, Any]:
    """(d) in fresh processes: the engine's peak RSS growth (as it runs; with the local step forced
    through DuckDB; with the disk cache cold, then warm), then the same calls fetched alone."""
    import pickle

    def child(*extra: str) -> dict[str, Any]:
        out = subprocess.run([sys.executable, __file__, "--engine-memory", str(size), "--url", url,
                              "--requests-out", str(sent), *extra], capture_output=True, text=True, check=True)
        return json.loads(out.stdout)

    with tempfile.TemporaryDirectory() as tmp:
        sent = Path(tmp) / "requests.pickle"
        d = child()
        requests = pickle.loads(sent.read_bytes())
        d["duckdb_rss_growth_bytes"] = child("--duckdb")["rss_growth_bytes"]
        # with the disk cache (the default for users): first run writes it, second reads it
        d["cache_cold_rss_growth_bytes"] = child("--cache-dir", str(Path(tmp) / "cache"))["rss_growth_bytes"]
        d["cache_warm_rss_growth_bytes"] = child("--cache-dir", str(Path(tmp) / "cache"))["rss_growth_bytes"]
    for k in ("duckdb", "cache_cold", "cache_warm"):
        d[f"{k}_growth_over_frame"] = d[f"{k}_rss_growth_bytes"] / d["frame_bytes"]
    return {**d, **_fetch_only(url, requests)}


def bench_e(url: str, size: int, repeat: int) -> dict[str, Any]:
    """(e) the local step of (a) alone, on the same fetched answers: direct vs DuckDB, interleaved."""
    from unittest import mock

    import caveql.execute as ex
    from caveql.execute.local import run_local

    cql = f"SELECT * FROM synapses_pni_2 WHERE size > {size} SPLIT POSITIONS"
    eng = engine_for(url)
    captured: list[Any] = []

    def capture(p: Any, relations: dict[str, Any], keep_arrow: bool = False) -> Any:
        captured.append((p, dict(relations)))
        return run_local(p, relations, keep_arrow=keep_arrow)

    with mock.patch.object(ex, "run_local", capture):
        want = eng.execute(cql).frame
    eng.backend.close()
    p, relations = captured[-1]
    direct, duck = [], []
    for _ in range(repeat):
        for times, patch in ((direct, None), (duck, mock.patch("caveql.execute.local.direct_step",
                                                                  return_value=None))):
            if patch is not None:
                patch.start()
            t = time.perf_counter()
            frame, _a, _s = run_local(p, dict(relations))
            times.append(time.perf_counter() - t)
            if patch is not None:
                patch.stop()
            pd.testing.assert_frame_equal(frame, want, check_exact=True)
            del frame
    d_s, k_s = statistics.median(direct), statistics.median(duck)
    return {"rows": len(want), "direct_s": d_s, "duckdb_s": k_s, "duckdb_over_direct": k_s / d_s}


def engine_memory_child(size: int, url: str, requests_out: Path, duckdb: bool = False,
                        cache_dir: Path | None = None) -> int:
    import dataclasses
    import pickle
    from unittest import mock

    from caveql.cache import ResultCache

    if duckdb:  # the local step as it was before caveql.execute.direct: through DuckDB
        mock.patch("caveql.execute.local.direct_step", return_value=None).start()

    cql = f"SELECT * FROM synapses_pni_2 WHERE size > {size} SPLIT POSITIONS"
    eng = engine_for(url, ResultCache(cache_dir) if cache_dir is not None else False)
    eng.execute("SHOW TABLES")  # discovery and catalog outside the measurement
    eng.execute("SELECT id FROM synapses_pni_2 WHERE id = 0")  # warm the code paths (imports, DuckDB)
    sent: list[Any] = []
    query = eng.backend.query

    def recording(request: Any, **kw: Any) -> Any:
        sent.append(request)
        return query(request, **kw)

    eng.backend.query = recording
    with PeakRss() as rss:
        frame = eng.execute(cql).frame
    eng.backend.close()
    frame_bytes = int(frame.memory_usage(deep=True).sum())
    growth = rss.peak - rss.base
    requests_out.write_bytes(pickle.dumps(
        [dataclasses.asdict(r) for r in sent if r.table == "synapses_pni_2" and r.limit != 1]))
    print(json.dumps({"rows": len(frame), "frame_bytes": frame_bytes, "rss_growth_bytes": growth,
                      "growth_over_frame": growth / frame_bytes, "exact_peak": rss.exact}))
    return 0


def _fetch_only(url: str, requests: list[dict[str, Any]]) -> dict[str, Any]:
    """RSS growth of fetching the same calls with ``HttpBackend.query_many`` alone, in a fresh process."""
    import pickle

    with tempfile.NamedTemporaryFile(suffix=".pickle", delete=False) as fh:
        pickle.dump(requests, fh)
    out = subprocess.run([sys.executable, __file__, "--fetch-only", fh.name, "--url", url],
                         capture_output=True, text=True, check=True)
    Path(fh.name).unlink()
    return json.loads(out.stdout)


def fetch_only_child(path: str, url: str) -> int:
    import pickle

    from caveql.backends.base import QueryRequest
    from caveql.backends.http import HttpBackend

    requests = [QueryRequest(**kw) for kw in pickle.loads(Path(path).read_bytes())]
    backend = HttpBackend(DATASTACK, server=url, token=TOKEN, cache=False, progress=False)
    backend.versions()  # discovery outside the measurement
    with PeakRss() as rss:
        results = backend.query_many(requests)
    arrow = sum(r.table.nbytes for r in results)
    print(json.dumps({"fetch_calls": len(requests), "fetch_arrow_bytes": arrow,
                      "fetch_rss_growth_bytes": rss.peak - rss.base,
                      "fetch_growth_over_arrow": (rss.peak - rss.base) / arrow}))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--path", type=Path, default=None, help="demo folder (default: build/reuse the default)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--fetch-only", metavar="REQUESTS", help=argparse.SUPPRESS)
    parser.add_argument("--only", default="abcde", help="which measurements to run, e.g. de (default abcde)")
    parser.add_argument("--engine-memory", metavar="SIZE", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--requests-out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--duckdb", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--cache-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.fetch_only:
        return fetch_only_child(args.fetch_only, args.url)
    if args.engine_memory is not None:
        return engine_memory_child(args.engine_memory, args.url, args.requests_out, args.duckdb,
                                   args.cache_dir)
    logging.getLogger("caveclient").setLevel(logging.ERROR)
    logging.getLogger().setLevel(logging.ERROR)
    if args.path is None:
        from caveql.datastack.demo import build_demo

        args.path = build_demo()
    size = median_size(args.path)
    server = Server(args.path)
    out: dict[str, dict[str, Any]] = {}
    try:
        if "d" in args.only:
            out["d"] = bench_d(server.url, size)  # first (its own process anyway)
        if "a" in args.only:
            out["a"] = bench_a(server.url, size, args.repeat)
        if "b" in args.only:
            out["b"] = bench_b(server.url, args.repeat)
        if "c" in args.only:
            out["c"] = bench_c(server.url, args.repeat)
        if "e" in args.only:
            out["e"] = bench_e(server.url, size, max(args.repeat, 3))
    finally:
        server.stop()
    if "a" in out:
        a = out["a"]
        print(f"(a) {a['caveql_rows']:,} rows: caveql {a['caveql_s']:.2f} s ({a['caveql_rows_per_s']:,.0f} rows/s, "
              f"complete); caveclient {a['caveclient_s']:.2f} s for {a['caveclient_rows']:,} rows "
              f"({a['caveclient_rows_per_s']:,.0f} rows/s, truncated at the cap)")
    if "b" in out:
        b = out["b"]
        print(f"(b) synapses onto BC cells, {b['rows']:,} rows: caveql {b['caveql_s']:.2f} s, caveclient idiom "
              f"{b['caveclient_s']:.2f} s -> caveclient/caveql = {b['caveclient_over_caveql']:.2f}x, "
              f"same answer: {b['same_answer']}")
    if "c" in out:
        c = out["c"]
        print(f"(c) repeated versioned query: cold {c['cold_s'] * 1000:.0f} ms (incl. discovery ~"
              f"{c['discovery_s'] * 1000:.0f} ms), warm {c['warm_s'] * 1000:.0f} ms -> {c['cold_over_warm']:.1f}x")
    if "d" in out:
        d = out["d"]
        print(f"(d) peak RSS growth during (a), fresh process: {d['rss_growth_bytes'] / 1e6:,.0f} MB for a "
              f"{d['frame_bytes'] / 1e6:,.0f} MB frame -> {d['growth_over_frame']:.2f}x (target <= 3x); the "
              f"{d['fetch_calls']} calls alone: {d['fetch_rss_growth_bytes'] / 1e6:,.0f} MB for "
              f"{d['fetch_arrow_bytes'] / 1e6:,.0f} MB of Arrow -> {d['fetch_growth_over_arrow']:.2f}x"
              f" ({'exact high-water mark' if d['exact_peak'] else 'sampled every 2 ms'}); with the local "
              f"step forced through DuckDB: {d['duckdb_rss_growth_bytes'] / 1e6:,.0f} MB -> "
              f"{d['duckdb_growth_over_frame']:.2f}x; with the disk cache cold (written) "
              f"{d['cache_cold_growth_over_frame']:.2f}x, warm (read) {d['cache_warm_growth_over_frame']:.2f}x")
    if "e" in out:
        e = out["e"]
        print(f"(e) the local step of (a) on the same answers ({e['rows']:,} rows): direct "
              f"{e['direct_s'] * 1000:.0f} ms, DuckDB {e['duckdb_s'] * 1000:.0f} ms -> DuckDB/direct = "
              f"{e['duckdb_over_direct']:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
