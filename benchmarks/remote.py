"""Remote benchmark: caveql's HTTP backend vs caveclient 8.2.1, both against ``caveql serve`` on loopback.

    .venv/bin/python benchmarks/remote.py                 # the default 2M-synapse demo
    .venv/bin/python benchmarks/remote.py --path DIR --json out.json

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
(d) peak RSS growth of the client during (a) relative to the final frame's size (target <= 3x),
    and of fetching the same calls alone (``HttpBackend.query_many`` in a fresh process) relative
    to the Arrow data they return.

Timings are medians of ``--repeat`` runs (default 3), warm server.
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
    """Peak resident set size of this process while the block runs (sampled every 2 ms)."""

    def __enter__(self) -> PeakRss:
        self._proc = psutil.Process()
        self.base = self._proc.memory_info().rss
        self.peak = self.base
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._watch, daemon=True)
        self._t.start()
        return self

    def _watch(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            time.sleep(0.002)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)


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
    cql = f"SELECT * FROM synapses_pni_2 WHERE size > {size} SPLIT POSITIONS"
    eng = engine_for(url)
    eng.execute("SHOW TABLES")  # discovery and catalog outside the measurement
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
    fetch = _fetch_only(url, [r for r in sent if r.table == "synapses_pni_2" and r.limit != 1])
    return {"rows": len(frame), "frame_bytes": frame_bytes, "rss_growth_bytes": growth,
            "growth_over_frame": growth / frame_bytes, **fetch}


def _fetch_only(url: str, requests: list[Any]) -> dict[str, Any]:
    """RSS growth of fetching the same calls with ``HttpBackend.query_many`` alone, in a fresh process."""
    import dataclasses
    import pickle

    with tempfile.NamedTemporaryFile(suffix=".pickle", delete=False) as fh:
        pickle.dump([dataclasses.asdict(r) for r in requests], fh)
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
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.fetch_only:
        return fetch_only_child(args.fetch_only, args.url)
    logging.getLogger("caveclient").setLevel(logging.ERROR)
    logging.getLogger().setLevel(logging.ERROR)
    if args.path is None:
        from caveql.datastack.demo import build_demo

        args.path = build_demo()
    size = median_size(args.path)
    server = Server(args.path)
    try:
        out = {"d": bench_d(server.url, size)}  # first: the cleanest process state for the RSS figure
        out["a"] = bench_a(server.url, size, args.repeat)
        out["b"] = bench_b(server.url, args.repeat)
        out["c"] = bench_c(server.url, args.repeat)
    finally:
        server.stop()
    a, b, c, d = out["a"], out["b"], out["c"], out["d"]
    print(f"(a) {a['caveql_rows']:,} rows: caveql {a['caveql_s']:.2f} s ({a['caveql_rows_per_s']:,.0f} rows/s, "
          f"complete); caveclient {a['caveclient_s']:.2f} s for {a['caveclient_rows']:,} rows "
          f"({a['caveclient_rows_per_s']:,.0f} rows/s, truncated at the cap)")
    print(f"(b) synapses onto BC cells, {b['rows']:,} rows: caveql {b['caveql_s']:.2f} s, caveclient idiom "
          f"{b['caveclient_s']:.2f} s -> caveclient/caveql = {b['caveclient_over_caveql']:.2f}x, "
          f"same answer: {b['same_answer']}")
    print(f"(c) repeated versioned query: cold {c['cold_s'] * 1000:.0f} ms (incl. discovery ~"
          f"{c['discovery_s'] * 1000:.0f} ms), warm {c['warm_s'] * 1000:.0f} ms -> {c['cold_over_warm']:.1f}x")
    print(f"(d) peak RSS growth during (a): {d['rss_growth_bytes'] / 1e6:,.0f} MB for a "
          f"{d['frame_bytes'] / 1e6:,.0f} MB frame -> {d['growth_over_frame']:.2f}x (target <= 3x); the "
          f"{d['fetch_calls']} calls alone: {d['fetch_rss_growth_bytes'] / 1e6:,.0f} MB for "
          f"{d['fetch_arrow_bytes'] / 1e6:,.0f} MB of Arrow -> {d['fetch_growth_over_arrow']:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
