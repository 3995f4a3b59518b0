"""Fixtures of the HTTP backend tests: a scripted materialization service for httpx.MockTransport.

Every request is recorded; ``fault`` lets a test make chosen requests fail. Tests reach the
helpers through the ``ms`` fixture (this module), because tests/http cannot be a package: it
would shadow the standard library's ``http``.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import pyarrow as pa
import pytest

from caveql.backends.wire import encode_arrow

LOCAL = "http://local.caveql.test"
GLOBAL = "http://global.caveql.test"
DS = "minnie65_demo"
TOKEN = "0123456789abcdef0123456789abcdef"

TABLES = ["synapses_pni_2", "nucleus_detection_v0", "aibs_soma_nuc_metamodel_preds_v117"]
NUC = pa.table({
    "id": pa.array([1, 2], pa.int64()), "valid": pa.array([True, True]),
    "volume": pa.array([1.5, 2.5], pa.float32()),
    "pt_position_x": pa.array([10, 20], pa.int32()), "pt_position_y": pa.array([11, 21], pa.int32()),
    "pt_position_z": pa.array([12, 22], pa.int32()),
    "pt_supervoxel_id": pa.array([5, None], pa.int64()), "pt_root_id": pa.array([864691135808473885, 0], pa.int64()),
})


@dataclass
class MockService:
    """The handler of a MockTransport, with a request log and a fault script."""

    answer: pa.Table = field(default_factory=lambda: NUC)
    resolution: tuple[str, ...] = ("4.0", "4.0", "40.0")
    warnings: tuple[str, ...] = ()
    api_versions: list[int] = field(default_factory=lambda: [2, 3])
    server_version: str = "5.26.4"
    requests: list[httpx.Request] = field(default_factory=list)
    # fault(request, n) -> Response | Exception | None, n = index of this request among the same path
    fault: Callable[[httpx.Request, int], object] | None = None
    _seen: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.requests.append(request)
            n = self._seen.get(request.url.path, 0)
            self._seen[request.url.path] = n + 1
        if self.fault is not None:
            out = self.fault(request, n)
            if isinstance(out, Exception):
                raise out
            if isinstance(out, httpx.Response):
                return out
        return self.route(request)

    def route(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        mat = f"/materialize/api/v3/datastack/{DS}"
        if path == f"/info/api/v2/datastack/full/{DS}":
            return httpx.Response(200, json={"local_server": LOCAL, "synapse_table": "synapses_pni_2",
                                             "soma_table": "nucleus_detection_v0",
                                             "aligned_volume": {"name": "minnie65_phase3"}})
        if path.startswith("/info/api/v2/datastack/full/"):
            return httpx.Response(404, json={"message": "datastack not found"})
        if path == "/materialize/api/versions":
            return httpx.Response(200, json=self.api_versions)
        if path == "/materialize/version":
            return httpx.Response(200, json=self.server_version)
        if path.endswith("/versions"):
            return httpx.Response(200, json=[661, 343])
        if path.endswith("/version/661") or path.endswith("/version/343"):
            return httpx.Response(200, json={"version": int(path.rsplit("/", 1)[1]), "valid": True})
        if path.endswith("/tables"):
            return httpx.Response(200, json=TABLES)
        if path.endswith("/metadata") and "/table/" in path:
            return httpx.Response(200, json={"voxel_resolution_x": 4.0, "voxel_resolution_y": 4.0,
                                             "voxel_resolution_z": 40.0, "schema_type": "nucleus_detection",
                                             "reference_table": None})
        if path.endswith("/tables/metadata"):
            return httpx.Response(200, json=[])
        if path.endswith("/count"):
            return httpx.Response(200, json=144120)
        if path.endswith("/views"):
            return httpx.Response(200, json={"connections_with_nuclei": {"voxel_resolution_x": 4.0,
                                                                         "voxel_resolution_y": 4.0,
                                                                         "voxel_resolution_z": 40.0}})
        if path.endswith("/schema") and "/views/" in path:
            return httpx.Response(200, json={"id": {"type": "integer"}})
        if path.endswith("/unique_string_values"):
            return httpx.Response(200, json={"cell_type": ["BC", "23P"]})
        if request.method == "POST" and (path.endswith("/query")):
            assert path.startswith(mat) or path.startswith("/materialize/api/v2/")
            headers = [("Content-Type", "data.arrow")]
            headers += [("dataframe_resolution", r) for r in self.resolution]
            headers += [("Warning", w) for w in self.warnings]
            answer = self.answer
            if request.url.params.get("count") == "True":  # the service answers one count
                answer = pa.table({"count": pa.array([self.answer.num_rows], pa.int64())})
            return httpx.Response(200, headers=headers,
                                  content=encode_arrow(answer, request.headers.get("Accept-Encoding")))
        return httpx.Response(404, text="<html>not found</html>")

    def posts(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == "POST"]


def body_of(request: httpx.Request) -> object:
    return json.loads(request.content) if request.content else None


@pytest.fixture
def ms():
    """This module: MockService, body_of and the constants."""
    return sys.modules[__name__]


class FaultServer:
    """A loopback HTTP server (stdlib ThreadingHTTPServer) answering like MockService, except that
    query POSTs follow ``script``: one action per POST, in order, then ``"ok"``.

    Actions: ``ok``; ``drop`` (close without answering); ``stall`` (sleep ``stall`` seconds, then
    answer); ``reset_mid_body`` (send half the body under the full Content-Length, then close);
    ``short_body`` (a consistent but truncated Arrow body); ``429``/``502``/``503``/``504``/``500``.
    """

    def __init__(self, script: list[str], stall: float = 3.0) -> None:
        import http.server

        self.script = list(script)
        self.stall = stall
        self.svc = MockService()
        self.actions: list[str] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # quiet
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                content = self.rfile.read(length) if length else b""
                request = httpx.Request(self.command, f"{LOCAL}{self.path}", headers=dict(self.headers.items()),
                                        content=content)
                action = "ok"
                if self.command == "POST":
                    with outer._lock:
                        action = outer.script.pop(0) if outer.script else "ok"
                        outer.actions.append(action)
                if action == "drop":
                    self.close_connection = True
                    return
                if action == "stall":
                    time.sleep(outer.stall)
                    action = "ok"
                if action in ("429", "502", "503", "504", "500"):
                    status = int(action)
                    body = json.dumps({"code": status, "message": f"injected {status}"}).encode()
                    self.send_response(status)
                    if status == 429:
                        self.send_header("Retry-After", "0")
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                response = outer.svc.route(request)
                body = response.content
                if action == "short_body":
                    body = body[: len(body) // 2]
                self.send_response(response.status_code)
                for name, value in response.headers.multi_items():
                    if name.lower() not in ("content-length", "content-encoding", "transfer-encoding"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(response.content) if action == "reset_mid_body"
                                                       else len(body)))
                self.end_headers()
                if action == "reset_mid_body":
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

            do_GET = _handle
            do_POST = _handle

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    def __enter__(self) -> FaultServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def fault_server():
    """Start a FaultServer with a script: ``with fault_server(["drop", "ok"]) as fs: ...``."""
    return FaultServer
