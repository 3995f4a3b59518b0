"""Cancelling statements on the HTTP backend (a real loopback server): a request waiting for its
answer is abandoned, retry waits end, no further request is sent, and the backend keeps working."""

from __future__ import annotations

import threading
import time

import pytest

from caveql import cancel
from caveql.backends.base import QueryRequest
from caveql.backends.http import HttpBackend
from caveql.errors import CancelledError

pytestmark = pytest.mark.timeout(60)

NUCQ = QueryRequest(kind="table", table="nucleus_detection_v0", version=661)


def backend(ms, fs, **kw):
    kw.setdefault("timeout", (5.0, 30.0))  # a long read timeout: only the cancel can end a stall early
    return HttpBackend(ms.DS, server=fs.url, local_server=fs.url, token=ms.TOKEN, cache=False, **kw)


def quiet(fs):  # type: ignore[no-untyped-def]
    """The stalled handler writes its answer after the client has gone (a broken pipe): not an
    error of this test, and its traceback would land in a later test's captured stderr."""
    fs.httpd.handle_error = lambda request, client_address: None
    return fs


def run_with_token(fn):
    """Run ``fn`` on a thread with a fresh current token; (token, box, thread)."""
    token = cancel.CancelToken()
    box: dict = {}

    def target() -> None:
        with cancel.activate(token):
            try:
                box["value"] = fn()
            except BaseException as exc:  # noqa: BLE001 - inspected by the test
                box["error"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    return token, box, t


def test_a_request_waiting_for_its_answer_is_abandoned(ms, fault_server):
    with fault_server(["stall"], stall=20.0) as fs:
        quiet(fs)
        b = backend(ms, fs)
        assert b.aborts_in_flight  # httpx's own transport: reads are cancellable
        b.api_version  # discovery first, so the stalled request is the query
        token, box, t = run_with_token(lambda: b.query(NUCQ))
        deadline = time.monotonic() + 20
        while fs.actions != ["stall"]:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        t0 = time.monotonic()
        token.cancel()
        t.join(10)
        assert not t.is_alive() and time.monotonic() - t0 < 10  # not the 20 s stall
        assert isinstance(box.get("error"), CancelledError), box
        # the next request (no token: an ordinary call) works on the same backend
        assert b.query(NUCQ).table.equals(ms.NUC)
        assert fs.actions == ["stall", "ok"]  # the abandoned request was not retried
        b.close()


def test_retry_waits_end_and_no_further_request_is_sent(ms, fault_server):
    with fault_server(["503"] * 10) as fs:
        b = backend(ms, fs, retries=5, backoff=20.0, max_backoff=20.0)  # 10-20 s waits
        b.api_version
        token, box, t = run_with_token(lambda: b.query(NUCQ))
        deadline = time.monotonic() + 20
        while not fs.actions:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(0.1)  # in the back-off wait now
        token.cancel()
        t.join(10)
        assert not t.is_alive() and isinstance(box.get("error"), CancelledError), box
        assert fs.actions == ["503"]  # no retry after the cancel
        b.close()


def test_engine_cancel_reaches_the_http_backend(ms, fault_server):
    from caveql.engine import Engine

    with fault_server(["stall"], stall=20.0) as fs:
        quiet(fs)
        b = backend(ms, fs)
        engine = Engine(b)
        engine.catalog()  # metadata first: the stalled POST is the statement's query
        box: dict = {}

        def run() -> None:
            try:
                engine.execute("SELECT id FROM nucleus_detection_v0")
            except BaseException as exc:  # noqa: BLE001 - inspected below
                box["error"] = exc

        t = threading.Thread(target=run, daemon=True)
        t.start()
        deadline = time.monotonic() + 20
        while "stall" not in fs.actions:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert engine.cancel()
        t.join(10)
        assert not t.is_alive() and isinstance(box.get("error"), CancelledError), box
        got = engine.execute("SELECT id FROM nucleus_detection_v0").frame
        assert got.id.tolist() == ms.NUC.column("id").to_pylist()
        b.close()


def test_a_body_being_read_is_abandoned():
    """Headers and half the body arrive, then the server stalls: the read stops at the cancel, the
    half-read connection is dropped, and the client's next request gets a whole answer."""
    import http.server

    import httpx

    from caveql.backends.cancellable import make_cancellable

    body = b"x" * 100_000
    stall = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.path == "/stall":
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                stall.wait(20)
                self.close_connection = True
                return
            self.wfile.write(body)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    client = httpx.Client(timeout=30)
    assert make_cancellable(client)
    got: list[int] = []

    def fetch() -> None:
        with client.stream("GET", url + "/stall") as response:
            for chunk in response.iter_raw():
                got.append(len(chunk))

    token, box, t = run_with_token(fetch)
    deadline = time.monotonic() + 20
    while sum(got) < len(body) // 2:
        assert time.monotonic() < deadline and t.is_alive(), box
        time.sleep(0.01)
    t0 = time.monotonic()
    token.cancel()
    t.join(10)
    assert not t.is_alive() and time.monotonic() - t0 < 10
    assert isinstance(box.get("error"), CancelledError), box
    assert client.get(url + "/whole").content == body
    stall.set()
    client.close()
    httpd.shutdown()
    httpd.server_close()
