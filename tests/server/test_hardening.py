"""``caveql serve`` left running on a shared machine (issue #16, items 4-8): body limit, read
timeouts, connection cap, Host and CORS checks, bounded shutdown, clear bind errors."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from typing import Any

import httpx
import pytest

from caveql.backends.local import LocalBackend
from caveql.server import ServerThread, create_app
from caveql.server.guard import Limits

pytestmark = pytest.mark.timeout(180)


class Counting:
    """An ASGI app that answers how many body bytes it got, and counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        self.calls += 1
        size, more = 0, True
        while more:
            message = await receive()
            size += len(message.get("body", b""))
            more = message.get("more_body", False)
        body = str(size).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


@contextmanager
def served(app: Any, **limits: Any) -> Iterator[ServerThread]:
    with ServerThread(app, limits=Limits(**limits)) as server:
        yield server


def raw(server: ServerThread, timeout: float = 10.0) -> socket.socket:
    sock = socket.create_connection((server.host, server.port), timeout=timeout)
    return sock


def read_response(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    out = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        out += chunk
    return out


def status(response: bytes) -> int:
    m = re.match(rb"HTTP/1\.1 (\d{3}) ", response)
    assert m, response[:200]
    return int(m.group(1))


# -- 4. request-body limit ------------------------------------------------------------------------
def test_content_length_over_limit_refused_before_reading():
    app = Counting()
    with served(app, max_body=10_000) as server, closing(raw(server)) as sock:
        sock.sendall(b"POST /x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100000000\r\n\r\n" + b"x" * 1000)
        response = read_response(sock)  # 99,999,000 bytes still unsent: the server did not wait for them
    assert status(response) == 413
    assert b"more than 10,000 bytes" in response and b"--max-body" in response
    assert app.calls == 0


def test_chunked_body_over_limit_refused_as_it_arrives():
    app = Counting()
    chunk = b"y" * 4096
    with served(app, max_body=50_000) as server, closing(raw(server)) as sock:
        sock.sendall(b"POST /x HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n")
        sent = 0
        while sent <= 50_000:  # a body meant to go on and on (never terminated), sent just past the limit
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))  # (more would meet a closed socket)
            sent += len(chunk)
        response = read_response(sock)
    assert status(response) == 413
    assert app.calls == 0


def test_body_within_limit_served_chunked_or_not():
    app = Counting()
    with served(app, max_body=50_000) as server, httpx.Client(base_url=server.url) as client:
        assert client.post("/x", content=b"z" * 50_000).text == "50000"
        assert client.post("/x", content=iter([b"z" * 30_000, b"z" * 20_000])).text == "50000"  # chunked
        assert client.post("/x", content=b"z" * 50_001).status_code == 413
        assert client.get("/x").text == "0"


# -- 5. slow clients and the connection cap -------------------------------------------------------
def test_half_sent_request_lines_are_dropped_after_the_timeout():
    with served(Counting(), timeout=1.0, max_connections=200) as server:
        socks = [raw(server) for _ in range(50)]
        try:
            for s in socks:
                s.sendall(b"GET /info/vers")  # slowloris: half a request line, then nothing
            t0 = time.monotonic()
            for s in socks:
                assert s.recv(100) == b""  # closed by the server
            elapsed = time.monotonic() - t0
        finally:
            for s in socks:
                s.close()
    assert 0.8 < elapsed < 5


def test_stalled_second_request_on_a_kept_alive_connection_is_dropped():
    with served(Counting(), timeout=1.0) as server, closing(raw(server)) as sock:
        sock.sendall(b"GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        first = b""
        while not first.endswith(b"\r\n\r\n0"):  # the whole first answer
            first += sock.recv(65536)
        assert status(first) == 200
        sock.sendall(b"GET /x HTTP/1.1\r\nHos")  # (uvicorn's keep-alive timer stops at the first byte)
        t0 = time.monotonic()
        assert sock.recv(100) == b""
        assert time.monotonic() - t0 < 5


def test_slow_but_timely_request_is_served():
    with served(Counting(), timeout=2.0) as server, closing(raw(server)) as sock:
        parts = (b"POST /x HTTP/1.1\r\n", b"Host: 127.0.0.1\r\n", b"Content-Length: 4\r\n\r\n", b"ab", b"cd")
        for part in parts:
            sock.sendall(part)
            time.sleep(0.3)
        answer = b""
        while not answer.endswith(b"\r\n\r\n4"):
            chunk = sock.recv(65536)
            assert chunk, answer
            answer += chunk
        assert status(answer) == 200


def test_body_that_stops_arriving_gets_408():
    app = Counting()
    with served(app, timeout=1.0) as server, closing(raw(server)) as sock:
        sock.sendall(b"POST /x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10)
        t0 = time.monotonic()
        response = read_response(sock)
    assert status(response) == 408 and b"--timeout" in response
    assert time.monotonic() - t0 < 5 and app.calls == 0


def test_connection_cap_answers_503():
    with served(Counting(), max_connections=2) as server:
        held = [raw(server) for _ in range(2)]
        try:
            for s in held:
                s.sendall(b"GET /x HT")
            time.sleep(0.2)
            with httpx.Client(base_url=server.url) as client:
                assert client.get("/x").status_code == 503
        finally:
            for s in held:
                s.close()
        time.sleep(0.3)
        with httpx.Client(base_url=server.url) as client:
            assert client.get("/x").status_code == 200


# -- 6. Host and CORS -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_backend(tiny_datastack):
    backend = LocalBackend(tiny_datastack, server_compat=True)
    yield backend
    backend.close()


V2 = "/materialize/api/v2/datastack/tiny"
ROUTES = ["/info/version", "/materialize/api/versions", f"{V2}/versions", f"{V2}/version/2/tables",
          f"{V2}/version/2/table/cells/metadata", f"{V2}/version/9/table/cells/metadata",
          f"{V2}/version/2/table/nope/metadata", "/materialize/api/v3/datastack/tiny/version/2/views"]


def test_foreign_host_refused_allowed_names_answered(tiny_backend):
    app = create_app(tiny_backend)
    with ServerThread(app, limits=Limits(allow_hosts=("Lab.Example.org",))) as server, \
            httpx.Client(base_url=server.url) as client:
        port = server.port
        foreign = ("evil.example.com", f"evil.example.com:{port}", "127.0.0.1.evil.example.com", "10.1.2.3")
        for host in foreign:
            r = client.get("/info/version", headers={"Host": host})
            assert r.status_code == 400, host
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost", f"lab.example.org:{port}",
                     f"[::1]:{port}"):
            r = client.get("/info/version", headers={"Host": host})
            assert r.status_code == 200 and r.json() == "4.6.0", host


def test_no_wildcard_cors_anywhere(tiny_backend):
    with ServerThread(create_app(tiny_backend)) as server, httpx.Client(base_url=server.url) as client:
        seen = set()
        for path in ROUTES:
            r = client.get(path, headers={"Origin": "http://evil.example.com"})
            seen.add(r.status_code // 100)
            assert not [h for h in r.headers if h.lower().startswith("access-control-")], path
        r = client.post(f"{V2}/version/2/table/cells/query", json={"bad": 1},
                        headers={"Origin": "http://evil.example.com"})
        assert r.status_code == 500 and "access-control-allow-origin" not in r.headers
        preflight = client.options(f"{V2}/version/2/table/cells/query", headers={
            "Origin": "http://evil.example.com", "Access-Control-Request-Method": "POST"})
        assert "access-control-allow-origin" not in preflight.headers
    assert seen == {2, 5}  # answers and errors alike


def test_allowed_origin_gets_cors_including_preflight(tiny_backend):
    lab = "https://lab.example.org"
    limits = Limits(allow_origins=(lab,))
    with ServerThread(create_app(tiny_backend), limits=limits) as server, \
            httpx.Client(base_url=server.url) as client:
        query = f"{V2}/version/2/table/cells/query"
        pre = client.options(query, headers={"Origin": lab, "Access-Control-Request-Method": "POST",
                                             "Access-Control-Request-Headers": "authorization, content-type"})
        assert pre.status_code == 200 and pre.headers["access-control-allow-origin"] == lab
        assert "POST" in pre.headers["access-control-allow-methods"]
        for path in ROUTES[:5]:
            r = client.get(path, headers={"Origin": lab})
            assert r.headers["access-control-allow-origin"] == lab, path
            assert "column_names" in r.headers["access-control-expose-headers"]
        r = client.post(query, json={"bad": 1}, headers={"Origin": lab})  # errors too: the page reads why
        assert r.status_code == 500 and r.headers["access-control-allow-origin"] == lab
        other = "https://evil.example.com"
        r = client.get(ROUTES[0], headers={"Origin": other})
        assert not [h for h in r.headers if h.lower().startswith("access-control-")]
        pre = client.options(query, headers={"Origin": other, "Access-Control-Request-Method": "POST"})
        assert pre.status_code == 400 and "access-control-allow-origin" not in pre.headers


# -- 7. shutdown ----------------------------------------------------------------------------------
def start(args: list[str]) -> tuple[subprocess.Popen[str], int]:
    """``args`` started; the port it printed (after ``http://127.0.0.1:``)."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    found: list[int] = []

    def scan() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            m = re.search(r"http://127\.0\.0\.1:(\d+)", line)
            if m and not found:
                found.append(int(m.group(1)))

    scanner = threading.Thread(target=scan, daemon=True)
    scanner.start()
    proc.scanner = scanner  # type: ignore[attr-defined]
    deadline = time.monotonic() + 120
    while not found:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    return proc, found[0]


def stop_within(proc: subprocess.Popen[str], sig: int, seconds: float) -> tuple[float, str]:
    t0 = time.monotonic()
    proc.send_signal(sig)
    try:
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    elapsed = time.monotonic() - t0
    proc.scanner.join(10)  # type: ignore[attr-defined]  # (stdout at its end)
    assert proc.stdout is not None and proc.stderr is not None
    err = proc.stderr.read()
    proc.stdout.close()
    proc.stderr.close()
    assert elapsed < seconds, (elapsed, err)
    return elapsed, err


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_mid_upload_ends_serve_within_5s(tiny_datastack, sig):
    proc, port = start([sys.executable, "-m", "caveql.server.cli", "serve", "--path", str(tiny_datastack),
                        "--port", "0", "--timeout", "120"])
    with closing(socket.create_connection(("127.0.0.1", port), timeout=30)) as sock:
        sock.sendall(b"POST /materialize/api/v2/datastack/tiny/version/2/table/cells/query HTTP/1.1\r\n"
                     b"Host: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{")
        time.sleep(0.5)  # the upload has begun and stalls (a slow client)
        elapsed, err = stop_within(proc, sig, 5)
    print(f"{signal.Signals(sig).name} during a stalled upload: ended after {elapsed:.2f} s")
    assert "Traceback" not in err
    assert proc.returncode in (0, -signal.SIGTERM)


SLOW_APP = """
import sys, time
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from caveql import cancel
from caveql.errors import CancelledError
from caveql.server.guard import Limits
from caveql.server.run import _run, _server, bind

def stuck(request):        # a call nothing can interrupt
    time.sleep(60)
    return PlainTextResponse("late")

def query(request):        # a query that honours cancellation, as LocalBackend's do
    try:
        cancel.sleep(60)
    except CancelledError as exc:
        return PlainTextResponse(exc.message, status_code=503)
    return PlainTextResponse("late")

app = Starlette(routes=[Route("/stuck", stuck), Route("/query", query)])
sock = bind("127.0.0.1", 0)
print(f"http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
_run(_server(app, "127.0.0.1", Limits()), sock)
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.parametrize("path", ["/stuck", "/query"])
def test_signal_mid_request_ends_serve_within_5s(sig, path):
    proc, port = start([sys.executable, "-c", SLOW_APP])
    with closing(socket.create_connection(("127.0.0.1", port), timeout=30)) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        time.sleep(0.5)  # the handler is running in a worker thread
        elapsed, err = stop_within(proc, sig, 5)
        if path == "/query":  # interrupted: the request ends, the server answers before it goes
            assert b"cancelled" in read_response(sock)
    print(f"{signal.Signals(sig).name} during {path}: ended after {elapsed:.2f} s")
    assert "Traceback" not in err
    if path == "/query":
        assert elapsed < 3 and "unfinished" not in err


# -- 8. where to listen ---------------------------------------------------------------------------
def serve_error(tiny_datastack: Any, *args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "caveql.server.cli", "serve", "--path", str(tiny_datastack),
                          *args], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    return out.stderr


def test_out_of_range_port(tiny_datastack):
    assert "port 99999" in serve_error(tiny_datastack, "--port", "99999")
    assert "port -1" in serve_error(tiny_datastack, "--port", "-1")


def test_busy_port(tiny_datastack):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        err = serve_error(tiny_datastack, "--port", str(port))
    assert f"port {port}" in err and "busy" in err


def test_unresolvable_host(tiny_datastack):
    err = serve_error(tiny_datastack, "--host", "no-such-host.invalid", "--token", "t0ken-for-the-test")
    assert "no-such-host.invalid" in err and "does not resolve" in err
