"""End-to-end smoke run of the genuine MaterializationEngine as an oracle (not a pytest test).

Runs under caveql's venv (it drives unmodified caveclient 8.2.1)::

    /work/main/.venv/bin/python tests/conformance/smoke_me.py \
        [--pg-url postgresql://postgres@127.0.0.1:55432] [--engine-python /tmp/me/env/bin/python] \
        [--engine-src /tmp/me/src] [--tiny DIR] [--demo DIR] [--layouts merged,split]

For each datastack folder (default: the tiny datastack and a 20,000-synapse demo, built if
missing) it starts ``caveql serve`` on the folder (it is the info service the engine asks), and
for each layout: loads the folder with me_loader.py, starts the engine with me_launch.py, and
checks through caveclient, at every version:

- ``query_table(t)`` of every table returns the parquet file's number of valid rows;
- ``query_view(v)`` of every view, ``synapse_query`` (pre and post of one root) and a
  ``join_query`` (synapses x somas on the postsynaptic root) return as many rows as the same
  call answered by ``caveql serve``.

caveclient finds the materialization server through the info record's ``local_server`` (which
``caveql serve`` sets to itself); ``client.local_server`` is reassigned to the engine's URL
before ``client.materialize`` is first touched, so info comes from caveql serve and every
materialization call goes to the engine.

Prints one line per check, then one JSON summary line; exits 1 if any check failed.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
VENV = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.2)


def valid_rows(root: Path, version: int, table: str) -> int:
    """Valid rows of a table's parquet data at a version (first stored copy)."""
    meta = json.loads((root / "versions" / str(version) / "tables" / f"{table}.json").read_text())
    files = (meta.get("_storage") or {}).get("files") or []
    first = files[0]["path"] if files and isinstance(files[0], dict) else (files[0] if files else None)
    path = root / first if first else root / "versions" / str(version) / "tables" / f"{table}.parquet"
    t = pq.read_table(path, columns=["valid"]) if "valid" in pq.read_schema(path).names else None
    if t is None:
        return pq.ParquetFile(path).metadata.num_rows
    return int(pc.sum(pc.cast(t.column("valid"), "int64")).as_py() or 0)


class Engine:
    """me_launch.py in a child process; stopped by closing its stdin."""

    def __init__(self, args, info_url: str, datastack: str) -> None:
        env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": args.engine_src}
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            [args.engine_python, str(HERE / "me_launch.py"), "--pg-url", args.pg_url,
             "--info-url", info_url, "--datastack", datastack,
             "--query-limit", str(args.query_limit)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(args.log_dir / f"engine-{datastack}.log", "ab"),
            env=env, text=True)
        line = self.proc.stdout.readline().strip()
        if not line.startswith("LISTENING "):
            self.proc.kill()
            raise RuntimeError(f"engine did not start (got {line!r}); see {args.log_dir}")
        self.url = line.split()[1]
        self.start_seconds = time.perf_counter() - t0

    def stop(self) -> float:
        t0 = time.perf_counter()
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        return time.perf_counter() - t0


def run_checks(datastack: str, root: Path, serve_url: str, engine_url: str, report) -> None:
    import caveclient

    def client(materialize_url: str):
        c = caveclient.CAVEclient(datastack, server_address=serve_url, auth_token="x",
                                  write_server_cache=False)
        c.local_server = materialize_url  # materialize (created lazily) goes here
        return c.materialize

    eng, ref = client(engine_url), client(serve_url)
    info = json.loads((root / "datastack.json").read_text())
    syn, soma = info.get("synapse_table"), info.get("soma_table")
    for v in sorted(eng.get_versions()):
        for t in sorted(eng.get_tables(version=v)):
            want = valid_rows(root, v, t)
            got = len(eng.query_table(t, materialization_version=v))
            report(f"v{v} query_table {t}", got, want)
        for name in sorted(eng.get_views(version=v)):
            report(f"v{v} query_view {name}", len(eng.query_view(name, materialization_version=v)),
                   len(ref.query_view(name, materialization_version=v)))
        if syn:
            pre = ref.query_table(syn, materialization_version=v, limit=1, select_columns=["pre_pt_root_id"])
            root_id = int(pre["pre_pt_root_id"].iloc[0])
            for kw in ("pre_ids", "post_ids"):
                report(f"v{v} synapse_query {kw}={root_id}",
                       len(eng.synapse_query(**{kw: root_id}, materialization_version=v)),
                       len(ref.synapse_query(**{kw: root_id}, materialization_version=v)))
            if soma:
                tables = [[syn, "post_pt_root_id"], [soma, "pt_root_id"]]
                flt = {syn: {"pre_pt_root_id": [root_id]}}
                report(f"v{v} join_query {syn}x{soma}",
                       len(eng.join_query(tables, filter_in_dict=flt, materialization_version=v)),
                       len(ref.join_query(tables, filter_in_dict=flt, materialization_version=v)))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:55432")
    p.add_argument("--engine-python", default="/tmp/me/env/bin/python")
    p.add_argument("--engine-src", default="/tmp/me/src")
    p.add_argument("--tiny", default="/tmp/loader-tiny")
    p.add_argument("--demo", default="/tmp/loader-demo")
    p.add_argument("--demo-synapses", type=int, default=20000)
    p.add_argument("--layouts", default="merged,split")
    p.add_argument("--query-limit", type=int, default=200000)
    p.add_argument("--log-dir", default="/tmp/smoke_me_logs")
    args = p.parse_args(argv)
    args.log_dir = Path(args.log_dir)
    args.log_dir.mkdir(parents=True, exist_ok=True)
    warnings.simplefilter("ignore")

    tiny, demo = Path(args.tiny), Path(args.demo)
    if not (tiny / "datastack.json").exists():
        subprocess.run([str(VENV / "python"), "-c",
                        f"from caveql.datastack.tiny import build_tiny; build_tiny({str(tiny)!r})"],
                       check=True)
    subprocess.run([str(VENV / "caveql"), "demo", "--path", str(demo), "--synapses",
                    str(args.demo_synapses)], check=True, stdout=subprocess.DEVNULL)

    failures, results = [], []
    for root in (tiny, demo):
        datastack = json.loads((root / "datastack.json").read_text())["datastack_name"]
        port = free_port()
        serve_url = f"http://127.0.0.1:{port}"
        serve = subprocess.Popen(
            [str(VENV / "caveql"), "serve", "--path", str(root), "--port", str(port),
             "--row-cap", str(args.query_limit)],
            stdout=subprocess.DEVNULL, stderr=open(args.log_dir / f"serve-{datastack}.log", "ab"))
        try:
            wait_http(f"{serve_url}/info/api/v2/datastack/full/{datastack}")
            for layout in args.layouts.split(","):
                t0 = time.perf_counter()
                out = subprocess.run(
                    [args.engine_python, str(HERE / "me_loader.py"), "--datastack-path", str(root),
                     "--pg-url", args.pg_url, "--layout", layout, "--info-url", serve_url],
                    env={**os.environ, "PYTHONPATH": args.engine_src}, check=True,
                    capture_output=True, text=True)
                loaded = json.loads(out.stdout.strip().splitlines()[-1])
                load_s = time.perf_counter() - t0
                engine = Engine(args, serve_url, datastack)
                n_ok = n_bad = 0

                def report(what: str, got: int, want: int) -> None:
                    nonlocal n_ok, n_bad
                    ok = got == want
                    n_ok, n_bad = n_ok + ok, n_bad + (not ok)
                    print(f"{'ok  ' if ok else 'FAIL'} {datastack} {layout:6} {what}: {got}"
                          + ("" if ok else f" (expected {want})"), flush=True)
                    if not ok:
                        failures.append(f"{datastack} {layout} {what}: {got} != {want}")

                t1 = time.perf_counter()
                try:
                    run_checks(datastack, root, serve_url, engine.url, report)
                except Exception as exc:  # noqa: BLE001 - report and continue with the next
                    failures.append(f"{datastack} {layout}: {type(exc).__name__}: {exc}")
                    print(f"FAIL {datastack} {layout}: {type(exc).__name__}: {exc}", flush=True)
                checks_s = time.perf_counter() - t1
                stop_s = engine.stop()
                results.append({
                    "datastack": datastack, "layout": layout, "ok": n_ok, "failed": n_bad,
                    "load_seconds": round(load_s, 2), "load_rows": loaded["rows"],
                    "copy_rows_per_s": loaded["copy_rows_per_s"],
                    "engine_start_seconds": round(engine.start_seconds, 2),
                    "checks_seconds": round(checks_s, 2), "engine_stop_seconds": round(stop_s, 2)})
        finally:
            serve.terminate()
            serve.wait(timeout=30)
    print(json.dumps({"results": results, "failures": failures}), flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
