"""A minimal PyChunkedGraph (segmentation API v1) over a caveql datastack folder, for the live
endpoints of the genuine MaterializationEngine.

The engine's live path (api2.py:1657-1911 ``assemble_live_query_dataframe``) talks to the
ChunkedGraph through caveclient 7.10's ``ChunkedGraphClient`` (chunkedgraph_gateway.py), whose
address is the engine's ``PCG_SERVER_URL`` (me_launch.py ``--pcg-url``). Exactly these requests
reach it (caveclient/chunkedgraph.py, caveclient/base.py):

* ``GET /segmentation/api/versions`` (``_api_endpoints``: the API versions, ``[0, 1]``) and
  ``GET /segmentation/api/version`` (``ClientBase._get_version``: the server version, a JSON
  string) when the client is made;
* ``POST .../is_latest_roots`` ``{"node_ids": [...]}`` → ``{"is_latest": [bool, ...]}``
  (new_query.py:52 ``update_rootids``, :212 ``map_filters``);
* ``POST .../roots_binary?timestamp=`` uint64 bytes → uint64 bytes (new_query.py:75);
* ``GET .../past_id_mapping`` with a JSON body ``{"root_ids": [...]}`` →
  ``{"past_id_map": {"<id>": [...]}, "future_id_map": {}}`` (new_query.py:236);
* ``POST .../root_timestamps?latest=`` ``{"node_ids": [...]}`` → ``{"timestamp": [s, ...]}``
  and ``POST .../lineage_graph_multiple`` ``{"root_ids": [...]}`` → networkx node-link data
  (new_query.py:268 ``get_latest_roots``, api2.py:2548);
* ``GET .../delta_roots`` → ``{"old_roots": [], "new_roots": []}`` (workflows only).

The graph is the datastack's data under the rule **live ≡ frozen at the newest version**:

* the root of a supervoxel is the root the newest version's tables give it (at every
  timestamp); unknown supervoxels and 0 give 0 (PyChunkedGraph's ``fail_to_zero``);
* a root is latest iff it is a root of the newest version (at every timestamp);
* a root's timestamp is the newest version's ``time_stamp`` for the newest version's roots;
  a root only older versions have gets the first version it appears in;
* the past ids of a root at time *t* are the roots, at the version in effect at *t* (the newest
  valid version with ``time_stamp <= t``, else the oldest), of the root's supervoxels at the
  newest version: ``[root]`` when the root already is a root then, or when nothing is known;
  the lineage graph links those past roots to the root (and an older root to the newest roots
  of its supervoxels), so ``get_latest_roots`` agrees with ``get_past_ids``;
* ``future_id_map`` is always empty (what the real server answers, new_query.py:245-253).

Used as an ASGI app (``CGStub(folder)``) mounted under ``/segmentation`` of the harness's
GlobalFront; it reads the folder with me_loader.py's readers (numpy + pyarrow only) on the
first request that needs the data.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tests.conformance import me_loader

PCG_VERSION = "2.21.1"  # pychunkedgraph/__init__.py of PyChunkedGraph at the time of 5.26.4
API_VERSIONS = [0, 1]  # pychunkedgraph/app/segmentation/common.py __api_versions__
PREFIX = "/segmentation"
V1 = "/segmentation/api/v1/table/"
UTC = dt.timezone.utc


def _epoch(ts: dt.datetime) -> float:
    return (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).timestamp()


@dataclass
class _Map:
    """supervoxel → root (sorted by supervoxel) and the sorted unique roots of one version."""

    sv: np.ndarray
    root: np.ndarray
    roots: np.ndarray
    conflicts: int = 0

    def lookup(self, svs: np.ndarray) -> np.ndarray:
        idx = np.searchsorted(self.sv, svs)
        idx = np.minimum(idx, max(len(self.sv) - 1, 0))
        found = (self.sv[idx] == svs) if len(self.sv) else np.zeros(len(svs), bool)
        out = np.where(found, self.root[idx] if len(self.sv) else 0, 0).astype(np.uint64)
        out[svs == 0] = 0
        return out

    def has_root(self, ids: np.ndarray) -> np.ndarray:
        return np.isin(ids, self.roots)


def _ids(column: Any) -> np.ndarray:
    """An id column as uint64 (null → 0)."""
    return pc.fill_null(column, 0).cast(pa.int64()).to_numpy().view(np.uint64)


def _version_map(tables: list[me_loader.TableSpec]) -> _Map:
    svs, roots, all_roots = [], [], []
    for spec in tables:
        t = me_loader.read_root_columns(spec)
        names = t.column_names
        for name in names:
            if name.endswith("_root_id"):
                all_roots.append(_ids(t.column(name)))
            root_name = name[: -len("supervoxel_id")] + "root_id"
            if name.endswith("_supervoxel_id") and root_name in names:
                svs.append(_ids(t.column(name)))
                roots.append(_ids(t.column(root_name)))
    sv = np.concatenate(svs) if svs else np.empty(0, np.uint64)
    rt = np.concatenate(roots) if roots else np.empty(0, np.uint64)
    keep = sv != 0
    sv, rt = sv[keep], rt[keep]
    order = np.lexsort((rt, sv))
    sv, rt = sv[order], rt[order]
    pair_first = np.r_[True, (sv[1:] != sv[:-1]) | (rt[1:] != rt[:-1])] if len(sv) else np.empty(0, bool)
    sv_first = np.r_[True, sv[1:] != sv[:-1]] if len(sv) else np.empty(0, bool)
    conflicts = int(pair_first.sum() - sv_first.sum())  # supervoxels with more than one root
    every = np.concatenate(all_roots) if all_roots else np.empty(0, np.uint64)
    every = np.unique(every)
    return _Map(sv[sv_first], rt[sv_first], every[every != 0], conflicts)


@dataclass
class _Graph:
    versions: list[tuple[int, dt.datetime]]  # valid versions (aware UTC stamps), oldest first
    newest: int
    maps: dict[int, _Map]
    _pairs: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    @property
    def newest_ts(self) -> dt.datetime:
        return dict(self.versions)[self.newest]

    def version_at(self, ts: dt.datetime) -> int:
        past = [v for v, t in self.versions if t <= ts]
        return past[-1] if past else self.versions[0][0]

    def pairs(self, v: int) -> tuple[np.ndarray, np.ndarray]:
        """(newest root, root at version v) of every supervoxel both versions know, unique."""
        if v not in self._pairs:
            a, b = self.maps[self.newest], self.maps[v]
            _, ia, ib = np.intersect1d(a.sv, b.sv, assume_unique=True, return_indices=True)
            new, old = a.root[ia], b.root[ib]
            keep = (new != 0) & (old != 0)
            both = np.unique(np.stack([new[keep], old[keep]], axis=1), axis=0) if keep.any() \
                else np.empty((0, 2), np.uint64)
            self._pairs[v] = (both[:, 0].copy(), both[:, 1].copy())
        return self._pairs[v]

    def past_ids(self, root: int, ts: dt.datetime) -> list[int]:
        v = self.version_at(ts)
        if v == self.newest or self.maps[v].has_root(np.array([root], np.uint64))[0] \
                or not self.maps[self.newest].has_root(np.array([root], np.uint64))[0]:
            return [root]
        new, old = self.pairs(v)
        lo, hi = np.searchsorted(new, root, "left"), np.searchsorted(new, root, "right")
        found = sorted(int(x) for x in old[lo:hi])
        return found or [root]

    def descendants(self, root: int) -> list[int]:
        """The newest roots of an older root's supervoxels (its latest successors)."""
        out: set[int] = set()
        for v, _ts in self.versions:
            if v == self.newest or not self.maps[v].has_root(np.array([root], np.uint64))[0]:
                continue
            new, old = self.pairs(v)
            out.update(int(x) for x in new[old == root])
        return sorted(out)

    def root_timestamp(self, root: int) -> dt.datetime:
        ids = np.array([root], np.uint64)
        if self.maps[self.newest].has_root(ids)[0]:
            return self.newest_ts
        for v, ts in self.versions:
            if self.maps[v].has_root(ids)[0]:
                return ts
        return self.newest_ts


class CGStub:
    """The ASGI app. ``table_name``: the pcg table it answers for (None: any)."""

    def __init__(self, datastack_path: Path, table_name: str | None = None) -> None:
        self.datastack_path = Path(datastack_path)
        self.table_name = table_name
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request, in order
        self._graph: _Graph | None = None
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- the data

    def graph(self) -> _Graph:
        with self._lock:
            if self._graph is None:
                _info, versions = me_loader.read_folder(self.datastack_path)
                stamps = []
                for v, spec in sorted(versions.items()):
                    if not spec.metadata.get("valid", True):
                        continue
                    ts = me_loader._ts(spec.metadata.get("time_stamp"))  # naive UTC
                    if ts is not None:
                        stamps.append((v, ts.replace(tzinfo=UTC)))
                stamps.sort(key=lambda vt: vt[1])
                if not stamps:
                    raise RuntimeError(f"{self.datastack_path}: no valid version with a time_stamp")
                maps = {v: _version_map(list(versions[v].tables.values())) for v, _ in stamps}
                self._graph = _Graph(stamps, stamps[-1][0], maps)
            return self._graph

    # ---------------------------------------------------------------- ASGI

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        method, path = scope["method"], scope["path"]
        self.requests.append((method, path))
        args = {k: v[-1] for k, v in parse_qs(scope.get("query_string", b"").decode()).items()}
        try:
            status, content_type, payload = await asyncio.to_thread(self.handle, method, path, args, body)
        except _HTTPError as e:
            status, content_type, payload = e.status, "application/json", _dumps({"message": e.message})
        except Exception as e:  # noqa: BLE001 - a 500 with the message, as the real server
            status, content_type, payload = 500, "application/json", _dumps({"message": repr(e)})
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", content_type.encode()),
                                (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})

    def handle(self, method: str, path: str, args: dict[str, str], body: bytes) -> tuple[int, str, bytes]:
        path = path.rstrip("/")
        if path == PREFIX + "/api/versions" and method == "GET":
            return _json(API_VERSIONS)
        if path == PREFIX + "/api/version" and method == "GET":
            return _json(PCG_VERSION)
        if not path.startswith(V1):
            raise _HTTPError(404, f"no route {method} {path}")
        table, _, route = path[len(V1):].partition("/")
        if self.table_name is not None and table != self.table_name:
            raise _HTTPError(404, f"table {table!r} not found (this ChunkedGraph is {self.table_name!r})")
        g = self.graph()
        newest = g.maps[g.newest]
        if route == "roots_binary" and method == "POST":
            svs = np.frombuffer(body, dtype=np.uint64)
            return 200, "application/octet-stream", newest.lookup(svs).tobytes()
        if route == "roots" and method == "POST":
            svs = np.array(_body(body)["node_ids"], dtype=np.uint64)
            return _json([int(x) for x in newest.lookup(svs)])
        if route.startswith("node/") and route.endswith("/root") and method == "GET":
            sv = np.array([int(route.split("/")[1])], dtype=np.uint64)
            return _json({"root_id": int(newest.lookup(sv)[0])})
        if route == "is_latest_roots" and method == "POST":
            ids = np.array(_body(body)["node_ids"], dtype=np.uint64)
            return _json({"is_latest": [bool(x) for x in newest.has_root(ids)]})
        if route == "root_timestamps" and method == "POST":
            ids = [int(x) for x in _body(body)["node_ids"]]
            latest = args.get("latest", "false").lower() in ("true", "1")
            query_ts = _arg_ts(args, "timestamp") or dt.datetime.now(UTC)
            if latest:  # common.py _handle_latest: the query time for a latest root
                is_latest = newest.has_root(np.array(ids, dtype=np.uint64))
                out = [_epoch(query_ts) if lat else _epoch(g.newest_ts) for lat in is_latest]
            else:
                out = [_epoch(g.root_timestamp(r)) for r in ids]
            return _json({"timestamp": out})
        if route == "past_id_mapping" and method == "GET":
            ids = [int(x) for x in _body(body)["root_ids"]]
            past = _arg_ts(args, "timestamp_past") or dt.datetime.fromtimestamp(0, UTC)
            return _json({"past_id_map": {str(r): g.past_ids(r, past) for r in ids},
                          "future_id_map": {}})
        if route == "lineage_graph_multiple" and method == "POST":
            ids = [int(x) for x in _body(body)["root_ids"]]
            return _json(self._lineage(g, ids, _arg_ts(args, "timestamp_past"),
                                       _arg_ts(args, "timestamp_future")))
        if route == "delta_roots" and method == "GET":
            return _json({"old_roots": [], "new_roots": []})
        if route == "oldest_timestamp" and method == "GET":
            return _json({"iso": g.versions[0][1].isoformat(" ")})
        raise _HTTPError(404, f"no route {method} {path}")

    @staticmethod
    def _lineage(g: _Graph, ids: list[int], past: dt.datetime | None,
                 future: dt.datetime | None) -> dict[str, Any]:
        """networkx ``node_link_data`` of the lineage (pychunkedgraph/graph/lineage.py): nodes
        ``{"id", "timestamp"}``, links older → newer root."""
        past = past or dt.datetime.fromtimestamp(0, UTC)
        nodes: dict[int, float] = {}
        links: list[tuple[int, int]] = []
        for r in ids:
            nodes[r] = _epoch(g.root_timestamp(r))
            for p in g.past_ids(r, past):
                if p != r:
                    nodes[p] = _epoch(g.root_timestamp(p))
                    links.append((p, r))
            if future is None or future >= g.newest_ts:
                for d in g.descendants(r):
                    if d != r:
                        nodes[d] = _epoch(g.root_timestamp(d))
                        links.append((r, d))
        return {"directed": True, "multigraph": False, "graph": {},
                "nodes": [{"timestamp": ts, "id": n} for n, ts in nodes.items()],
                "links": [{"source": a, "target": b} for a, b in dict.fromkeys(links)]}


class _HTTPError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _dumps(data: Any) -> bytes:
    # jsonify_with_kwargs (pychunkedgraph/app/app_utils.py): compact separators, a trailing newline
    return (json.dumps(data, separators=(",", ":")) + "\n").encode()


def _json(data: Any) -> tuple[int, str, bytes]:
    return 200, "application/json", _dumps(data)


def _body(body: bytes) -> dict[str, Any]:
    try:
        return json.loads(body)
    except ValueError as e:
        raise _HTTPError(400, f"the body is not JSON: {e}") from e


def _arg_ts(args: dict[str, str], name: str) -> dt.datetime | None:
    """A ``package_timestamp`` argument (seconds since the epoch, UTC)."""
    if name not in args:
        return None
    try:
        return dt.datetime.fromtimestamp(float(args[name]), UTC)
    except ValueError as e:
        raise _HTTPError(400, f"Timestamp parameter {name} is not a valid unix timestamp") from e
