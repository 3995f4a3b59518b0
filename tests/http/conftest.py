"""Fixtures of the HTTP backend tests: a scripted materialization service for httpx.MockTransport.

Every request is recorded; ``fault`` lets a test make chosen requests fail. Tests reach the
helpers through the ``ms`` fixture (this module), because tests/http cannot be a package: it
would shadow the standard library's ``http``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import sys

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
            return httpx.Response(200, headers=headers,
                                  content=encode_arrow(self.answer, request.headers.get("Accept-Encoding")))
        return httpx.Response(404, text="<html>not found</html>")

    def posts(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == "POST"]


def body_of(request: httpx.Request) -> object:
    return json.loads(request.content) if request.content else None


@pytest.fixture
def ms():
    """This module: MockService, body_of and the constants."""
    return sys.modules[__name__]
