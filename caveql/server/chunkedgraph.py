"""The ChunkedGraph routes of ``caveql serve``: PyChunkedGraph's segmentation API v1, answered
from the datastack's proofreading history (:mod:`caveql.datastack.history`).

caveclient's client-side timestamp queries (``live_query``, ``query_table(timestamp=...)``,
``synapse_query(timestamp=...)``) and its ChunkedGraph calls (``get_roots``,
``is_latest_roots``, ``get_root_timestamps``, ``get_past_ids``, ``get_lineage_graph``,
``get_latest_roots``, ``suggest_latest_roots``, ``get_delta_roots``,
``get_operation_details``), and the MaterializationEngine's live path, ask these. Each
handler follows its PyChunkedGraph 2.21 route (``app/segmentation/v1/routes.py`` and
``common.py``; the function is named in each docstring): query parameters (timestamps as
seconds since the epoch, ``int64_as_str``, ``stop_layer``, ``as_binary``), JSON bodies and
binary (uint64) bodies, answers (compact JSON and a newline, numpy ids as numbers or, with
``int64_as_str``, strings; datetimes as ``str(datetime)``), and failures: a bad argument is a
400 ``{"timestamp", "duration", "code", "message"}``, anything else (an id the graph does not
know, a body that is not JSON) a 500 that adds ``"traceback"``.

The graph has two layers the history knows: supervoxels (layer 1, their ids never change) and
roots (layer :data:`ROOT_LAYER`, the top 8 bits of an id being its layer as in PyChunkedGraph);
an id already at the root layer is its own root. ``leaves`` at any ``stop_layer`` answer the
supervoxels, so ``suggest_latest_roots`` measures overlap in supervoxels rather than chunks.

>>> _epoch_arg({"timestamp": "1600000000.5"}, "timestamp", None)
datetime.datetime(2020, 9, 13, 12, 26, 40, 500000, tzinfo=datetime.timezone.utc)
>>> _dumps({"root_ids": np.array([1, 2], np.uint64)}, int64_as_str=True)
b'{"root_ids":["1","2"]}\\n'
>>> layer_of(np.array([12 << 56 | 5, 1 << 56 | 9], np.uint64)).tolist()
[12, 1]
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

import numpy as np
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

__all__ = ["API_VERSIONS", "PCG_VERSION", "ROOT_LAYER", "ChunkedGraph", "HistoryLike", "history_of",
           "layer_of", "segmentation_routes"]

#: The PyChunkedGraph version answered (caveclient 8.2.1's version checks need >= 2.17.0 < 3).
PCG_VERSION = "2.21.1"
#: ``__api_versions__`` of pychunkedgraph/app/segmentation/common.py.
API_VERSIONS = [0, 1]
#: The root layer (minnie65's: root ids are ``12 << 56 | ...``).
ROOT_LAYER = 12
_LAYER_SHIFT = np.uint64(56)
UTC = dt.UTC


class HistoryLike(Protocol):
    """What the routes need of a history (:class:`caveql.datastack.history.History`)."""

    edits: tuple[Any, ...]  # each with operation_id, timestamp, old_roots, new_roots

    def roots_at(self, supervoxel_ids: np.ndarray, timestamp: dt.datetime | None) -> np.ndarray: ...
    def is_latest(self, root_ids: Any, timestamp: dt.datetime | None = None) -> np.ndarray: ...
    def past_ids(self, root_ids: Any, timestamp_past: dt.datetime,
                 timestamp_future: dt.datetime | None = None) -> dict[int, list[int]]: ...
    def lineage(self, root_ids: Any, timestamp_past: dt.datetime | None = None,
                timestamp_future: dt.datetime | None = None) -> tuple[Any, Any]: ...
    def root_timestamps(self, root_ids: Any, latest: bool = False) -> list[dt.datetime]: ...
    def operation_details(self, operation_ids: Any) -> dict[Any, Any]: ...
    def valid_range(self, root_id: int) -> tuple[dt.datetime, dt.datetime | None]: ...


def layer_of(ids: np.ndarray) -> np.ndarray:
    """The layer of each id (its top 8 bits, PyChunkedGraph's ``get_chunk_layer``).

    >>> layer_of(np.array([864691135808473885], np.uint64)).tolist()
    [12]
    """
    return (np.asarray(ids, np.uint64) >> _LAYER_SHIFT).astype(np.int64)


class PcgError(Exception):
    """A failure answered in PyChunkedGraph's shape: 400 for ``BadRequest`` (api_exception),
    500 with the traceback for anything else (unhandled_exception)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# --------------------------------------------------------------------------- encoding


class _Encoder(json.JSONEncoder):
    """pychunkedgraph/app/__init__.py ``CustomJsonEncoder``: numpy arrays and scalars as lists and
    numbers (int64/uint64 as strings with ``int64_as_str``), datetimes as ``str(datetime)``."""

    def __init__(self, *, int64_as_str: bool = False, **kw: Any) -> None:
        super().__init__(**kw)
        self.int64_as_str = int64_as_str

    def default(self, o: Any) -> Any:
        if isinstance(o, np.ndarray):
            if self.int64_as_str and o.dtype.type in (np.int64, np.uint64):
                return o.astype(str).tolist()
            return o.tolist()
        if isinstance(o, np.generic):
            if self.int64_as_str and o.dtype.type in (np.int64, np.uint64):
                return str(o)
            return o.item()
        if isinstance(o, dt.datetime):
            return str(o)
        return super().default(o)


def _dumps(data: Any, *, int64_as_str: bool = False) -> bytes:
    # jsonify_with_kwargs (app_utils.py): compact separators and a trailing newline
    return (json.dumps(data, cls=_Encoder, int64_as_str=int64_as_str, separators=(",", ":")) + "\n").encode()


def _json(data: Any, int64_as_str: bool = False) -> Response:
    return Response(_dumps(data, int64_as_str=int64_as_str), media_type="application/json")


def _failure(exc: BaseException, started: float) -> Response:
    """app/common.py ``api_exception`` / ``unhandled_exception``."""
    status = exc.status if isinstance(exc, PcgError) else 500
    body: dict[str, Any] = {"timestamp": dt.datetime.now(UTC).replace(tzinfo=None),
                            "duration": (time.time() - started) * 1000, "code": status,
                            "message": exc.message if isinstance(exc, PcgError) else str(exc)}
    if status == 500:
        body["traceback"] = traceback.format_exception_only(type(exc), exc)
    return Response(_dumps(body), status_code=status, media_type="application/json")


# --------------------------------------------------------------------------- arguments


def _toboolean(value: str | None, default: bool) -> bool:
    """app_utils.py ``toboolean`` read through werkzeug's ``args.get(type=...)``: a value it
    cannot convert gives the default."""
    if not value:
        return default
    low = value.lower()
    return True if low in ("true", "1") else False if low in ("false", "0") else default


def _epoch_arg(args: Mapping[str, str], name: str, default: float | None) -> dt.datetime:
    """common.py ``_parse_timestamp``: seconds since the epoch → an aware UTC datetime (no
    default: the parameter is mandatory)."""
    raw: Any = args.get(name, default)
    if raw is None:
        raise PcgError(400, f"Timestamp parameter {name} is mandatory")
    try:
        return dt.datetime.fromtimestamp(float(raw), UTC)
    except (TypeError, ValueError, OverflowError, OSError) as exc:
        raise PcgError(400, f"Timestamp parameter {name} is not a valid unix timestamp") from exc


def _int_arg(args: Mapping[str, str], name: str, default: int) -> int:
    raw = args.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise PcgError(400, f"{name} is not an integer {exc}") from exc


def _json_body(body: bytes) -> Any:
    # json.loads(request.data): a body that is not JSON fails as the service's handler does (500)
    return json.loads(body)


def _ids(values: Any) -> np.ndarray:
    """``np.array(values, dtype=np.uint64)`` (a negative or non-integer id fails, 500)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise TypeError(f"expected a list of ids, got {type(values).__name__}")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, str)):
            raise TypeError(f"not an id: {v!r}")
        n = int(v)
        if not 0 <= n < 2**64:
            raise OverflowError(f"Python integer {n} out of bounds for uint64")
        out.append(n)
    return np.array(out, dtype=np.uint64)


def _body_ids(body: bytes, key: str) -> np.ndarray:
    data = _json_body(body)
    if not isinstance(data, dict) or key not in data:
        raise KeyError(key)
    return _ids(data[key])


def _binary_ids(body: bytes) -> np.ndarray:
    if len(body) % 8:
        raise ValueError("buffer size must be a multiple of element size")
    return np.frombuffer(body, dtype=np.uint64)


def _epoch(ts: dt.datetime) -> float:
    return (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).timestamp()


# --------------------------------------------------------------------------- the graph


class ChunkedGraph:
    """The handlers over one history. ``history``: a callable giving the history (loaded on the
    first request that needs it; ``None``: the datastack has none, and every table route answers
    404); ``table``: the ChunkedGraph table name the datastack's ``segmentation_source`` names."""

    def __init__(self, history: Callable[[], HistoryLike | None], table: str) -> None:
        self._source = history
        self._history: HistoryLike | None = None
        self._loaded = False
        self._index: tuple[Any, dict[int, Any], dict[int, Any]] | None = None
        self._lock = threading.Lock()
        self.table = table

    def history(self, table: str) -> HistoryLike:
        if table != self.table:
            raise PcgError(404, f"table {table!r} not found (this ChunkedGraph serves {self.table!r})")
        with self._lock:
            if not self._loaded:
                self._history = self._source()
                self._loaded = True
        if self._history is None:
            raise PcgError(404, f"table {table!r}: this server has no datastack folder to read a history from")
        return self._history

    # ------------------------------------------------------------ roots

    def roots(self, h: HistoryLike, ids: np.ndarray, ts: dt.datetime, stop_layer: int | None) -> np.ndarray:
        """``cg.get_roots(..., fail_to_zero=True)``: ids at the root layer stay, 0 and unknown
        supervoxels give 0."""
        if stop_layer is not None and stop_layer != ROOT_LAYER:
            raise PcgError(400, f"stop_layer {stop_layer}: this ChunkedGraph has supervoxels and roots "
                                f"(layer {ROOT_LAYER}) only")
        out = np.zeros(len(ids), np.uint64)
        top = layer_of(ids) >= ROOT_LAYER
        out[top] = ids[top]
        low = ~top & (ids != 0)
        if low.any():
            out[low] = np.asarray(h.roots_at(ids[low], ts), np.uint64)
        return out

    def root(self, h: HistoryLike, node_id: int, ts: dt.datetime, stop_layer: int | None) -> int:
        """``cg.get_root``: an unknown supervoxel fails (ChunkedGraphError, 500)."""
        got = int(self.roots(h, np.array([node_id], np.uint64), ts, stop_layer)[0])
        if got == 0:
            raise PcgError(500, f"Cannot find root id {node_id}, {stop_layer or ROOT_LAYER}, {ts}")
        return got

    # ------------------------------------------------------------ root info

    def root_timestamps(self, h: HistoryLike, ids: np.ndarray, latest: bool, ts: dt.datetime) -> list[float]:
        """common.py ``handle_root_timestamps``: when each root was made; with ``latest``, the
        query time for a root still current then, else when it was superseded
        (``_handle_latest``). An unknown id, or (``latest``) one not made yet, fails (500)."""
        if not len(ids):
            return []
        if not latest:
            try:
                return [_epoch(t) for t in h.root_timestamps(ids)]
            except KeyError as exc:
                raise PcgError(500, f"{exc.args[0]} is not a root id this ChunkedGraph knows") from exc
        current = np.asarray(h.is_latest(ids, ts), bool)
        out = []
        for rid, cur in zip(ids.tolist(), current.tolist(), strict=True):
            if cur:
                out.append(_epoch(ts))
                continue
            try:
                made, gone = h.valid_range(rid)
            except KeyError as exc:
                raise PcgError(500, f"{rid} is not a root id this ChunkedGraph knows") from exc
            if gone is None or gone > ts or made > ts:
                raise PcgError(500, f"root {rid} is not a root at {ts} (made {made}): it has no latest timestamp then")
            out.append(_epoch(gone))
        return out

    def past_id_mapping(self, h: HistoryLike, ids: np.ndarray, past: dt.datetime,
                        future: dt.datetime) -> dict[str, Any]:
        """common.py ``handle_past_id_mapping`` (SegmentHistory.past_future_id_mapping): the roots
        at ``past`` each root came from (the history's ``past_ids``; itself when it was a root
        then); ``future_id_map``: a past id whose every descendant up to now ends in one root
        through merges alone maps to that root (the genuine rule, over the lineage to now)."""
        self._made(h, [int(x) for x in ids.tolist()])  # SegmentHistory asserts every id is a root
        past_map = h.past_ids(ids, past, future)
        graph = self._lineage(h, ids, past, dt.datetime.now(UTC))
        future_map = _future_map(graph, {p for v in past_map.values() for p in v})
        return {"past_id_map": {str(int(k)): np.asarray(v, np.uint64) for k, v in past_map.items()},
                "future_id_map": {str(k): np.uint64(v) for k, v in future_map.items()}}

    def lineage_graph(self, h: HistoryLike, ids: np.ndarray, past: dt.datetime,
                      future: dt.datetime) -> dict[str, Any]:
        """lineage.py ``lineage_graph`` as networkx's ``node_link_data``: nodes ``{"timestamp",
        ["operation_id"], "id"}`` (when the root was made; the operation that superseded it, if
        one did), links from the older root to the newer, in the genuine graph's order."""
        graph = self._lineage(h, ids, past, future)
        return {"directed": True, "multigraph": False, "graph": {},
                "nodes": [{**attrs, "id": np.uint64(n)} for n, attrs in graph.nodes.items()],
                "links": [{"source": np.uint64(a), "target": np.uint64(b)}
                          for a, succ in graph.succ.items() for b in succ]}

    def _lineage(self, h: HistoryLike, ids: np.ndarray, past: dt.datetime, future: dt.datetime) -> _Lineage:
        """lineage.py ``lineage_graph``'s walk: back from each root through the edits that made it
        while the root was made after ``past`` (a root current at ``past`` ends the walk), forward
        through the edits that replaced it while it was made at or before ``future`` — so the
        roots one edit past ``future`` are in the graph (caveclient's ``exclude_links_to_future``
        drops them)."""
        made, gone = self._edit_index(h)
        graph = _Lineage()
        stamps: dict[int, float] = {}

        def attrs(root: int) -> dict[str, Any]:
            out: dict[str, Any] = {"timestamp": stamps[root]}
            if root in gone:
                out["operation_id"] = np.uint64(gone[root].operation_id)
            return out

        back = fwd = [int(x) for x in dict.fromkeys(ids.tolist())]
        while back or fwd:
            new = [r for r in dict.fromkeys(back + fwd) if r not in stamps]
            stamps.update(zip(new, self._made(h, new), strict=True))  # one look-up per step
            next_back: list[int] = []
            for k in back:
                node = graph.add_node(k, attrs(k))
                e = made.get(k)
                if e is None or node["timestamp"] <= _epoch(past):
                    continue
                next_back += [o for o in e.old_roots if o not in graph.nodes]
                for o in e.old_roots:
                    graph.add_edge(int(o), k)
            next_fwd: list[int] = []
            for k in fwd:
                node = graph.add_node(k, attrs(k))
                e = gone.get(k)
                if e is None or node["timestamp"] > _epoch(future):
                    continue
                next_fwd += [n for n in e.new_roots if n not in graph.nodes]
                for n in e.new_roots:
                    graph.add_edge(k, int(n))
            back, fwd = sorted(set(next_back)), sorted(set(next_fwd))
        return graph

    @staticmethod
    def _made(h: HistoryLike, roots: list[int]) -> list[float]:
        """When each root was made (seconds); the graph reads every root's row, so an id it does
        not know fails (500)."""
        if not roots:
            return []
        try:
            return [_epoch(t) for t in h.root_timestamps(np.array(roots, np.uint64))]
        except KeyError as exc:
            raise PcgError(500, f"{exc.args[0]} is not a root id this ChunkedGraph knows") from exc

    def _edit_index(self, h: HistoryLike) -> tuple[dict[int, Any], dict[int, Any]]:
        """(the edit that made each root, the edit that replaced it), from the history's edits."""
        with self._lock:
            if self._index is None or self._index[0] is not h:
                made = {int(r): e for e in h.edits for r in e.new_roots}
                gone = {int(r): e for e in h.edits for r in e.old_roots}
                self._index = (h, made, gone)
            return self._index[1], self._index[2]

    def leaves(self, h: HistoryLike, root_id: int) -> np.ndarray:
        """The supervoxels of a root (while it is a root); an unknown id has none."""
        try:
            made, _gone = h.valid_range(root_id)
        except KeyError:
            return np.zeros(0, np.uint64)
        svs = _supervoxels(h)
        return svs[np.asarray(h.roots_at(svs, made), np.uint64) == np.uint64(root_id)]

    def delta_roots(self, h: HistoryLike, past: dt.datetime, future: dt.datetime) -> dict[str, Any]:
        """misc.py ``get_proofread_root_ids``: ``new_roots``, the roots every operation from
        ``past`` to ``future`` (both included) made, in operation order; ``old_roots``, the roots
        each of those replaced, by new root id (a root made and replaced in the window is in
        both; a split's old root comes once per piece)."""
        window = sorted((e for e in h.edits if past <= e.timestamp <= future), key=lambda e: e.operation_id)
        new = [int(r) for e in window for r in e.new_roots]
        made = {int(r): e for e in window for r in e.new_roots}
        old = [int(o) for r in sorted(made) for o in made[r].old_roots]
        return {"old_roots": np.array(old, np.uint64 if old else np.int64), "new_roots": np.array(new, np.uint64)}

    def operation_details(self, h: HistoryLike, op_ids: Any) -> dict[str, Any]:
        """common.py ``operation_details``: the log rows of the operations it knows (others are
        left out), keyed by id."""
        if not isinstance(op_ids, list):
            raise TypeError(f"operation_ids must be a JSON list, not {type(op_ids).__name__}")
        found = h.operation_details([int(x) for x in op_ids])
        return {str(int(k)): _plain(v) for k, v in found.items()}


class _Lineage:
    """The little of networkx's DiGraph the lineage needs: nodes in insertion order with their
    attributes, successors in insertion order (node_link_data's order)."""

    def __init__(self) -> None:
        self.nodes: dict[int, dict[str, Any]] = {}
        self.succ: dict[int, dict[int, None]] = {}
        self.pred: dict[int, dict[int, None]] = {}

    def add_node(self, n: int, attrs: dict[str, Any] | None = None) -> dict[str, Any]:
        node = self.nodes.setdefault(n, {})
        self.succ.setdefault(n, {})
        self.pred.setdefault(n, {})
        node.update(attrs or {})
        return node

    def add_edge(self, a: int, b: int) -> None:
        self.add_node(a)
        self.add_node(b)
        self.succ[a][b] = None
        self.pred[b][a] = None


def _future_map(graph: _Lineage, past_ids: set[int]) -> dict[int, int]:
    """segmenthistory.py ``past_future_id_mapping``'s future half: a past id maps to the one root
    its descendants end in when no step on the way is a split or a plain (one-parent) step."""
    out: dict[int, int] = {}
    for p in sorted(past_ids):
        if p not in graph.nodes:
            continue
        seen, stack = {p}, [p]
        while stack:
            for c in graph.succ[stack.pop()]:
                if c not in seen:
                    seen.add(c)
                    stack.append(c)
        degrees = {d: len(graph.succ[d]) for d in seen}
        ends = [d for d, k in degrees.items() if k == 0]
        if 2 in degrees.values() or len(ends) > 1:
            continue  # a split on the way: no single future id
        if any(len(graph.pred[next(iter(graph.succ[d]))]) == 1 for d, k in degrees.items() if k == 1):
            continue  # a step that is not a merge
        out[p] = ends[0]
    return out


def _supervoxels(h: Any) -> np.ndarray:
    """Every supervoxel the history knows (those of its anchor version's tables)."""
    public = getattr(h, "supervoxel_ids", None)
    svs = public() if callable(public) else h._anchor()[0]
    return np.asarray(svs).astype(np.int64).view(np.uint64)


def _plain(value: Any) -> Any:
    """An operation's details as JSON-able values (numpy to lists, datetimes kept for the encoder)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def history_of(backend: Any) -> Callable[[], HistoryLike | None]:
    """How to get the history of a backend's datastack folder (read when first asked): its
    ``history.parquet`` (the backend's ``history`` when it has one); for a folder without one, the **static** history — nothing edited,
    every supervoxel has its root of the newest version at every instant from the oldest
    version on (roots only older versions name are unknown). None for a backend with no folder.

    >>> history_of(object())() is None
    True
    """

    def load() -> HistoryLike | None:
        path = getattr(backend, "path", None)
        if path is None:
            return None
        from caveql.datastack.history import History

        # the backend's own (LocalBackend reads it for its live queries): one copy in memory
        found = backend.history if hasattr(backend, "history") else History.load(path)
        if found is not None:
            return found
        stamps = {v: _version_time(backend.version_metadata(v).get("time_stamp")) for v in backend.versions()}
        stamps = {v: t for v, t in stamps.items() if t is not None}
        if not stamps:
            return None
        newest = max(stamps, key=lambda v: (stamps[v], v))
        return History([], anchor_version=newest, anchor_timestamp=stamps[newest],
                       base_timestamp=min(stamps.values()), folder=path)

    return load


def _version_time(raw: Any) -> dt.datetime | None:
    if raw is None:
        return None
    t = raw if isinstance(raw, dt.datetime) else dt.datetime.fromisoformat(str(raw))
    return t if t.tzinfo else t.replace(tzinfo=UTC)


# --------------------------------------------------------------------------- routes


def segmentation_routes(cg: ChunkedGraph) -> list[Route]:
    """The Starlette routes (``/segmentation/...``) of ``cg``.

    >>> [r.path for r in segmentation_routes(ChunkedGraph(lambda: None, "t"))][2:4]
    ['/segmentation/table/{table}/info', '/segmentation/api/v1/table/{table}/node/{node_id}/root']
    """
    v1 = "/segmentation/api/v1/table/{table}"

    def route(path: str, handler: Callable[..., Any], methods: list[str]) -> Route:
        async def endpoint(request: Request) -> Response:
            started = time.time()
            body = await request.body()
            args = dict(request.query_params)
            try:
                h = cg.history(request.path_params["table"]) if "table" in request.path_params else None
                out = await run_in_threadpool(handler, h, request.path_params, args, body)
            except Exception as exc:  # noqa: BLE001 - the service answers every failure in its shape
                return _failure(exc, started)
            if isinstance(out, Response):
                return out
            return _json(out, _toboolean(args.get("int64_as_str"), False))

        endpoint.__name__ = handler.__name__
        return Route(path, endpoint, methods=methods)

    def now(args: Mapping[str, str], name: str = "timestamp") -> dt.datetime:
        return _epoch_arg(args, name, time.time())

    def stop_layer(args: Mapping[str, str]) -> int | None:
        return _int_arg(args, "stop_layer", ROOT_LAYER) if "stop_layer" in args else None

    def handle_root(h: HistoryLike, path: dict[str, Any], args: dict[str, str], body: bytes) -> Any:
        """v1 ``handle_root``: ``{"root_id"}``."""
        node = _ids([path["node_id"]])[0]
        return {"root_id": np.uint64(cg.root(h, int(node), now(args), stop_layer(args)))}

    def handle_roots(h: HistoryLike, path: dict[str, Any], args: dict[str, str], body: bytes) -> Any:
        """v1 ``handle_roots``: ``{"root_ids"}``, or their bytes with ``as_binary=root_ids``."""
        roots = cg.roots(h, _body_ids(body, "node_ids"), now(args), stop_layer(args))
        if args.get("as_binary", "") == "root_ids":
            return Response(roots.tobytes(), media_type="application/octet-stream")
        return {"root_ids": roots}

    def handle_roots_binary(h: HistoryLike, path: dict[str, Any], args: dict[str, str], body: bytes) -> Any:
        """v1 ``handle_roots_binary``: uint64 bytes in, uint64 bytes out."""
        roots = cg.roots(h, _binary_ids(body), now(args), stop_layer(args))
        return Response(roots.tobytes(), media_type="application/octet-stream")

    def handle_is_latest_roots(h: HistoryLike, path: dict[str, Any], args: dict[str, str], body: bytes) -> Any:
        """v1 ``handle_is_latest_roots``: ``{"is_latest": [bool]}`` (unknown ids: false)."""
        ids = _body_ids(body, "node_ids")
        flags = np.asarray(h.is_latest(ids, now(args)), bool) if len(ids) else np.zeros(0, bool)
        return {"is_latest": [bool(x) for x in flags]}

    def handle_root_timestamps(h: HistoryLike, path: dict[str, Any], args: dict[str, str], body: bytes) -> Any:
        """v1 ``handle_root_timestamps``: ``{"timestamp": [seconds]}``."""
        ids = _binary_ids(body) if _toboolean(args.get("is_binary"), False) else _body_ids(body, "node_ids")
        latest = _toboolean(args.get("latest"), False)
        return {"timestamp": cg.root_timestamps(h, ids, latest, now(args))}

    def handle_past_id_mapping(h: HistoryLike, path: dict[str, Any], args: dict[str, str], body: bytes) -> Any:
        """v1 ``handle_past_id_mapping`` (a GET with a JSON body)."""
        ids = _body_ids(body, "root_ids")
        past = _epoch_arg(args, "timestamp_past", 0)
        return cg.past_id_mapping(h, ids, past, now(args, "timestamp_future"))

    def handle_lineage_graph_multiple(h: HistoryLike, path: dict[str, Any], args: dict[str, str],
                                      body: bytes) -> Any:
        """v1 ``handle_lineage_graph_multiple``."""
        past = _epoch_arg(args, "timestamp_past", 0)
        return cg.lineage_graph(h, _body_ids(body, "root_ids"), past, now(args, "timestamp_future"))

    def handle_lineage_graph(h: HistoryLike, path: dict[str, Any], args: dict[str, str], body: bytes) -> Any:
        """v1 ``handle_lineage_graph`` (one root): SegmentHistory's lineage, which reaches the
        present whatever ``timestamp_future`` says (segmenthistory.py's constructor)."""
        past = _epoch_arg(args, "timestamp_past", 0)
        return cg.lineage_graph(h, _ids([path["root_id"]]), past, dt.datetime.now(UTC))

    def handle_leaves(h: HistoryLike, path: dict[str, Any], args: dict[str, str], body: bytes) -> Any:
        """v1 ``handle_leaves``: ``{"leaf_ids"}`` (supervoxels at every ``stop_layer``)."""
        _int_arg(args, "stop_layer", 1)
        return {"leaf_ids": cg.leaves(h, int(_ids([path["node_id"]])[0]))}

    def handle_delta_roots(h: HistoryLike, path: dict[str, Any], args: dict[str, str], body: bytes) -> Any:
        """v1 ``delta_roots``."""
        past = _epoch_arg(args, "timestamp_past", None)
        return cg.delta_roots(h, past, now(args, "timestamp_future"))

    def handle_operation_details(h: HistoryLike, path: dict[str, Any], args: dict[str, str],
                                 body: bytes) -> Any:
        """v1 ``operation_details``: ``?operation_ids=<JSON list>``."""
        return cg.operation_details(h, json.loads(args.get("operation_ids", "[]")))

    def handle_oldest_timestamp(h: HistoryLike, path: dict[str, Any], args: dict[str, str],
                                body: bytes) -> Any:
        """v1 ``oldest_timestamp``: the first operation's time less half a second
        (``get_earliest_timestamp``), ISO with ``delimiter`` (default a space)."""
        edits = getattr(h, "edits", ())
        if not edits:
            raise PcgError(500, "'NoneType' object has no attribute 'isoformat' (the graph has no operation)")
        first = min(e.timestamp for e in edits) - dt.timedelta(milliseconds=500)
        first = first if first.tzinfo else first.replace(tzinfo=UTC)
        return {"iso": first.isoformat(args.get("delimiter", " "))}

    def handle_info(h: HistoryLike, path: dict[str, Any], args: dict[str, str], body: bytes) -> Any:
        """generic ``handle_info``: the dataset info caveclient reads (``graph.n_layers``)."""
        return {"app": {"supported_api_versions": API_VERSIONS}, "data_dir": "", "type": "segmentation",
                "graph": {"n_layers": ROOT_LAYER, "chunk_size": [256, 256, 512], "n_bits_for_layer_id": 8,
                          "spatial_bit_masks": {}}, "num_channels": 1, "data_type": "uint64",
                "scales": [{"resolution": [8, 8, 40], "size": [0, 0, 0], "voxel_offset": [0, 0, 0],
                            "key": "8_8_40", "encoding": "compressed_segmentation",
                            "chunk_sizes": [[256, 256, 32]]}],
                "mesh": "graphene_meshes", "sharded_mesh": True, "verify_mesh": False}

    def versions(h: Any, path: dict[str, Any], args: dict[str, str], body: bytes) -> Any:
        return JSONResponse(API_VERSIONS)

    def version(h: Any, path: dict[str, Any], args: dict[str, str], body: bytes) -> Any:
        return JSONResponse(PCG_VERSION)

    return [
        route("/segmentation/api/versions", versions, ["GET"]),
        route("/segmentation/api/version", version, ["GET"]),
        route("/segmentation/table/{table}/info", handle_info, ["GET"]),
        route(v1 + "/node/{node_id}/root", handle_root, ["GET"]),
        route(v1 + "/roots", handle_roots, ["POST"]),
        route(v1 + "/roots_binary", handle_roots_binary, ["POST"]),
        route(v1 + "/is_latest_roots", handle_is_latest_roots, ["POST"]),
        route(v1 + "/root_timestamps", handle_root_timestamps, ["POST"]),
        route(v1 + "/past_id_mapping", handle_past_id_mapping, ["GET"]),
        route(v1 + "/lineage_graph_multiple", handle_lineage_graph_multiple, ["POST"]),
        route(v1 + "/root/{root_id}/lineage_graph", handle_lineage_graph, ["GET"]),
        route(v1 + "/node/{node_id}/leaves", handle_leaves, ["GET"]),
        route(v1 + "/delta_roots", handle_delta_roots, ["GET"]),
        route(v1 + "/operation_details", handle_operation_details, ["GET"]),
        route(v1 + "/oldest_timestamp", handle_oldest_timestamp, ["GET"]),
    ]
