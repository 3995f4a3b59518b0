"""What cancellation costs when nothing is cancelled (docs/performance.md, "Cancellation").

    .venv/bin/python benchmarks/cancel.py [--runs 200] [--mb 64]

Three figures, each against a baseline in this process, interleaved (A, B, A, B, ...):

1. ``Connection.query`` from the main thread (run on the connection's worker thread, so that
   Ctrl-C can cancel it) against ``engine.execute`` of the same statement called inline, on
   the tiny datastack: the thread hand-off per statement.
2. The per-statement token: ``Engine._statement()`` entered and left (a token made, registered
   and made current), in microseconds (no baseline: it is the whole cost).
3. Reading an HTTP body of ``--mb`` MB from a loopback server through a cancellable httpx
   client with a current token (reads in 0.2 s slices, a look at the token per read) against
   the same client without a token (reads exactly as httpx's own).
"""

from __future__ import annotations

import argparse
import http.server
import os
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def _interleaved(a, b, runs: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Median seconds of ``a()`` and ``b()`` over ``runs`` alternating runs (after a warm-up)."""
    a(), b()
    ta: list[float] = []
    tb: list[float] = []
    for i in range(runs):
        for fn, out in ((a, ta), (b, tb)) if i % 2 == 0 else ((b, tb), (a, ta)):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
    return statistics.median(ta), statistics.median(tb)


def bench_api(runs: int) -> None:
    import caveql
    from caveql.datastack.tiny import build_tiny

    db = caveql.connect(path=build_tiny(tempfile.mkdtemp()))
    q = "SELECT id, cell_type FROM cells WHERE cell_type = 'BC'"
    via_worker, inline = _interleaved(lambda: db.query(q), lambda: db.engine.execute(q), runs)
    print(f"1. Connection.query (worker thread) {via_worker * 1e3:.3f} ms, engine.execute inline "
          f"{inline * 1e3:.3f} ms: x{via_worker / inline:.3f} (+{(via_worker - inline) * 1e6:.0f} us)")

    eng = db.engine
    n = 20_000
    t0 = time.perf_counter()
    for _ in range(n):
        with eng._statement():
            pass
    per = (time.perf_counter() - t0) / n
    print(f"2. per-statement token (made, registered, current, removed): {per * 1e6:.2f} us")
    db.close()


def bench_http(runs: int, mb: int) -> None:
    import httpx

    from caveql import cancel
    from caveql.backends.cancellable import make_cancellable

    body = os.urandom(mb << 20)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    client = httpx.Client(timeout=60)
    assert make_cancellable(client)

    def plain() -> None:
        assert len(client.get(url).content) == len(body)

    def with_token() -> None:
        with cancel.activate(cancel.CancelToken()):
            assert len(client.get(url).content) == len(body)

    tok, base = _interleaved(with_token, plain, runs)
    print(f"3. {mb} MB over loopback: with a current token {tok * 1e3:.1f} ms, without "
          f"{base * 1e3:.1f} ms: x{tok / base:.3f}")
    client.close()
    httpd.shutdown()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--mb", type=int, default=64)
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    bench_api(args.runs)
    bench_http(max(5, args.runs // 20), args.mb)


if __name__ == "__main__":
    main()
