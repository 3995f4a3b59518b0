"""The segmentation's proofreading graph over HTTP: a :class:`SegmentationGraph` that asks the
ChunkedGraph server (PyChunkedGraph's segmentation API v1, or ``caveql serve``'s routes) exactly
as caveclient 8.2.1's ``chunkedgraph`` client does.

Where: the table is the last part of the datastack info's ``segmentation_source``
(``graphene://https://HOST/segmentation/table/TABLE``), the host the one it names — caveclient
asks the datastack's ``local_server``, which on every CAVE deployment is that host; when the two
agree the backend's materialize host is used (so a ``local_server`` override, e.g. a proxy, is
honoured). Every request goes through the HTTP backend's transport
(:class:`~caveql.backends.transport.Transport`: retries, timeouts, the token, cancellation).

What is sent (caveclient's ``chunkedgraph.py``): timestamps as seconds since the epoch
(``datetime.timestamp()``, aware UTC) in the query string; ``get_roots`` posts the ids as uint64
bytes to ``roots_binary``; ``is_latest_roots`` and ``root_timestamps`` post
``{"node_ids": [...]}``; ``get_lineage_graph`` posts ``{"root_ids": [...]}`` to
``lineage_graph_multiple``; ``get_past_ids`` is a GET with a JSON body to ``past_id_mapping``.
Every answer is checked whole (its length, ints where ids are, the keys it must have): anything
else is a :class:`~caveql.errors.ServiceError` naming the route.

>>> graph_source({"segmentation_source": "graphene://https://cave.example.org/segmentation/table/pcg_1"})
('https://cave.example.org', 'pcg_1')
>>> graph_source({"segmentation_source": "precomputed://gs://bucket/seg"}) is None
True
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

import numpy as np

from caveql.backends.graph import RootState
from caveql.backends.transport import GET_HEADERS, Transport
from caveql.errors import ServiceError

__all__ = ["DETAIL_CAP", "HttpGraph", "graph_source"]

#: How many roots one lineage request of :meth:`HttpGraph.states` asks for at most.
DETAIL_CAP = 200


def graph_source(info: dict[str, Any]) -> tuple[str, str] | None:
    """``(ChunkedGraph host URL, table)`` of a datastack info's graphene ``segmentation_source``
    (``""`` as host when the source names none: the materialize host is meant); ``None`` when
    the datastack has no graphene segmentation.

    >>> graph_source({"segmentation_source": "graphene://middleauth+https://h.org/segmentation/table/t"})
    ('https://h.org', 't')
    >>> graph_source({"segmentation_source": "graphene://local/segmentation/table/tiny_pcg"})
    ('', 'tiny_pcg')
    """
    source = str(info.get("segmentation_source") or "")
    if not source.startswith("graphene://"):
        return None
    inner = source[len("graphene://"):]
    inner = inner[len("middleauth+"):] if inner.startswith("middleauth+") else inner
    table = inner.rstrip("/").split("/")[-1]
    if not table:
        return None
    url = urlparse(inner)
    if url.scheme in ("http", "https") and url.netloc:
        prefix = url.path.split("/segmentation/")[0] if "/segmentation/" in url.path else ""
        return f"{url.scheme}://{url.netloc}{prefix}".rstrip("/"), table
    return "", table


def _epoch(ts: datetime) -> str:
    """caveclient's ``package_timestamp``: a naive time is UTC; seconds since the epoch, as
    ``requests`` writes a float."""
    aware = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
    return str(aware.timestamp())


def _utc(ts: datetime | None) -> datetime | None:
    return None if ts is None else ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**64


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _when(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class HttpGraph:
    """:class:`~caveql.backends.graph.SegmentationGraph` over a ChunkedGraph server.

    ``transport``: the HTTP backend whose sending, retries and token are used; ``server``: the
    ChunkedGraph host URL; ``table``: its table. ``detail``: how many roots one lineage request
    of :meth:`states` asks for (every non-valid id is described whole: created, superseded,
    latest roots).
    """

    def __init__(self, transport: Transport, server: str, table: str, *, detail: int = DETAIL_CAP) -> None:
        self.transport = transport
        self.server = server.rstrip("/")
        self.table = table
        self.detail = detail

    def __repr__(self) -> str:
        return f"HttpGraph(server={self.server!r}, table={self.table!r})"

    # ------------------------------------------------------------------ sending

    def _url(self, route: str) -> str:
        return f"{self.server}/segmentation/api/v1/table/{self.table}/{route}"

    def _call(self, method: str, route: str, *, params: Sequence[tuple[str, str]] = (),
              content: bytes | None = None) -> tuple[Any, bytes | bytearray]:
        what = f"ChunkedGraph {route}"
        t = self.transport
        response, body = t._send(method, self._url(route), params=params, content=content,
                                 headers=GET_HEADERS, what=what)
        t._check(response, body, what)
        return response, body

    def _json(self, method: str, route: str, *, params: Sequence[tuple[str, str]] = (),
              body: Any = None) -> Any:
        content = None if body is None else json.dumps(body).encode()
        _resp, raw = self._call(method, route, params=params, content=content)
        return self.transport._json(raw, f"ChunkedGraph {route}")

    @staticmethod
    def _bad(route: str, why: str) -> ServiceError:
        return ServiceError(f"ChunkedGraph {route}: the answer {why}")

    def _field(self, route: str, data: Any, key: str, n: int | None) -> list[Any]:
        if not isinstance(data, dict) or not isinstance(data.get(key), list):
            raise self._bad(route, f"has no {key!r} list")
        values = data[key]
        if n is not None and len(values) != n:
            raise self._bad(route, f"has {len(values)} {key!r} values for {n} ids")
        return values

    # ------------------------------------------------------------------ the protocol

    def roots(self, supervoxel_ids: Sequence[int], timestamp: datetime | None = None) -> list[int]:
        """``get_roots``: uint64 bytes to ``roots_binary``, uint64 bytes back."""
        ids = [int(x) for x in supervoxel_ids]
        if not ids:
            return []
        params = [("timestamp", _epoch(timestamp or datetime.now(UTC)))]
        _resp, raw = self._call("POST", "roots_binary", params=params,
                                content=np.array(ids, dtype=np.uint64).tobytes())
        if len(raw) != 8 * len(ids):
            raise self._bad("roots_binary", f"has {len(raw)} bytes for {len(ids)} ids (expected {8 * len(ids)})")
        return [int(x) for x in np.frombuffer(bytes(raw), dtype=np.uint64).tolist()]

    def is_latest(self, root_ids: Sequence[int], timestamp: datetime | None = None) -> list[bool]:
        """``is_latest_roots`` (no timestamp: the server's now, as caveclient sends none)."""
        ids = [int(x) for x in root_ids]
        if not ids:
            return []
        params = [] if timestamp is None else [("timestamp", _epoch(timestamp))]
        data = self._json("POST", "is_latest_roots", params=params, body={"node_ids": ids})
        flags = self._field("is_latest_roots", data, "is_latest", len(ids))
        if not all(isinstance(f, bool) for f in flags):
            raise self._bad("is_latest_roots", "has values that are not true/false")
        return list(flags)

    def root_timestamps(self, root_ids: Sequence[int], *, latest: bool = False,
                        timestamp: datetime | None = None) -> list[datetime]:
        """``get_root_timestamps`` as sent (no millisecond taken off ``latest`` ones): when each
        root was made, or (``latest``) superseded — ``timestamp`` itself for one current then.
        The server fails (HTTP 500) for an id it does not know."""
        ids = [int(x) for x in root_ids]
        if not ids:
            return []
        params = [("latest", str(bool(latest))), ("timestamp", _epoch(timestamp or datetime.now(UTC)))]
        data = self._json("POST", "root_timestamps", params=params, body={"node_ids": ids})
        stamps = self._field("root_timestamps", data, "timestamp", len(ids))
        if not all(_is_number(s) for s in stamps):
            raise self._bad("root_timestamps", "has values that are not seconds since the epoch")
        return [_when(s) for s in stamps]

    def lineage(self, root_id: int, timestamp_past: datetime | None,
                timestamp_future: datetime) -> tuple[dict[int, float], dict[int, list[int]]]:
        """``get_lineage_graph`` of one root: ``({node: made, seconds}, {node: successors})``."""
        return self.lineage_many([root_id], timestamp_past, timestamp_future)

    def lineage_many(self, root_ids: Sequence[int], timestamp_past: datetime | None,
                     timestamp_future: datetime) -> tuple[dict[int, float], dict[int, list[int]]]:
        """``get_lineage_graph`` of several roots in one request (their union)."""
        params = ([] if timestamp_past is None else [("timestamp_past", _epoch(timestamp_past))]) + [
            ("timestamp_future", _epoch(timestamp_future))]
        route = "lineage_graph_multiple"
        data = self._json("POST", route, params=params, body={"root_ids": [int(r) for r in root_ids]})
        nodes = self._field(route, data, "nodes", None)
        links = self._field(route, data, "links", None)
        made: dict[int, float] = {}
        for node in nodes:
            if not isinstance(node, dict) or not _is_int(node.get("id")) or not _is_number(node.get("timestamp")):
                raise self._bad(route, f"has a node without an integer id and a timestamp: {str(node)[:200]}")
            made[node["id"]] = float(node["timestamp"])
        succ: dict[int, list[int]] = {n: [] for n in made}
        for link in links:
            if not isinstance(link, dict) or link.get("source") not in made or link.get("target") not in made:
                raise self._bad(route, f"has a link between unknown nodes: {str(link)[:200]}")
            succ[link["source"]].append(link["target"])
        return made, succ

    def latest_roots(self, root_id: int, timestamp: datetime | None = None) -> list[int]:
        """caveclient's ``get_latest_roots``: the lineage from the root's creation to
        ``timestamp`` without the roots made after it, its leaves; empty for an id made after
        ``timestamp`` or unknown (the server fails on its timestamps)."""
        r = int(root_id)
        at = _utc(timestamp) or datetime.now(UTC)
        try:
            made = self.root_timestamps([r], timestamp=at)[0]
        except ServiceError as err:
            if err.status == 500:
                return []  # an id the graph does not know
            raise
        if made > at:
            return []
        return self._leaves(r, made, at)

    def _leaves(self, r: int, made: datetime, at: datetime) -> list[int]:
        stamps, succ = self.lineage(r, made, at)
        return self._walk_leaves(r, stamps, succ, at)

    def _walk_leaves(self, r: int, stamps: dict[int, float], succ: dict[int, list[int]],
                     at: datetime) -> list[int]:
        if r not in stamps:
            raise self._bad("lineage_graph_multiple", f"does not hold the root asked for ({r})")
        limit = float(_epoch(at))
        out, todo, seen = [], [r], {r}
        while todo:  # keep the roots made by `at` (caveclient's exclude_links_to_future)
            k = todo.pop()
            nxt = [n for n in succ[k] if stamps[n] <= limit]
            if not nxt:
                out.append(k)
            for n in nxt:
                if n not in seen:
                    seen.add(n)
                    todo.append(n)
        return sorted(out)

    def past_ids(self, root_ids: Sequence[int], timestamp_past: datetime,
                 timestamp_future: datetime | None = None) -> dict[int, list[int]]:
        """``get_past_ids``' ``past_id_map`` (a GET with a JSON body)."""
        ids = list(dict.fromkeys(int(x) for x in root_ids))
        if not ids:
            return {}
        params = [("timestamp_past", _epoch(timestamp_past))]
        if timestamp_future is not None:
            params.append(("timestamp_future", _epoch(timestamp_future)))
        route = "past_id_mapping"
        data = self._json("GET", route, params=params, body={"root_ids": ids})
        past = data.get("past_id_map") if isinstance(data, dict) else None
        if not isinstance(past, dict):
            raise self._bad(route, "has no 'past_id_map'")
        out: dict[int, list[int]] = {}
        for r in ids:
            got = past.get(str(r))
            if not isinstance(got, list) or not all(_is_int(x) for x in got):
                raise self._bad(route, f"has no list of ids for root {r}")
            out[r] = sorted(got)
        return out

    def states(self, root_ids: Sequence[int], timestamp: datetime | None = None) -> list[RootState]:
        """One :class:`RootState` per id: one ``is_latest_roots`` call for all; the valid ones'
        creation and supersession in one ``root_timestamps`` call each; for the first
        :attr:`detail` non-valid ones, their creation (one call each when the server fails on a
        batch: it does for an id it does not know, which is then ``known=False``), supersession
        and latest roots at ``timestamp`` (the lineage graph, as ``get_latest_roots``)."""
        ids = [int(r) for r in root_ids]
        if not ids:
            return []
        timestamp = _utc(timestamp)
        valid = self.is_latest(ids, timestamp)
        good = list(dict.fromkeys(r for r, v in zip(ids, valid, strict=True) if v))
        bad = list(dict.fromkeys(r for r, v in zip(ids, valid, strict=True) if not v))
        at = timestamp or datetime.now(UTC)
        now = max(datetime.now(UTC), at)
        made = dict(zip(good, self.root_timestamps(good, timestamp=now), strict=True))
        made.update(self._created(bad, now))
        known = [r for r in (*good, *bad) if r in made]
        gone = self._superseded(known, now)
        info: dict[int, RootState] = {}
        for r in good:
            info[r] = RootState(r, known=True, valid=True, created=made[r], superseded=gone[r], latest=(r,))
        leaves = self._leaves_many([r for r in bad if r in made and made[r] <= at], made, at)
        for r in bad:
            if r not in made:
                info[r] = RootState(r, known=False, valid=False)
                continue
            latest = () if made[r] > at else tuple(leaves[r])
            info[r] = RootState(r, known=True, valid=False, created=made[r], superseded=gone[r], latest=latest)
        return [info[r] for r in ids]

    def _leaves_many(self, roots: list[int], made: dict[int, datetime], at: datetime) -> dict[int, list[int]]:
        """:meth:`_leaves` of many roots, one lineage request per :attr:`detail` of them (the
        lineage from the earliest one's creation holds every later one's)."""
        out: dict[int, list[int]] = {}
        for start in range(0, len(roots), self.detail):
            part = roots[start:start + self.detail]
            stamps, succ = self.lineage_many(part, min(made[r] for r in part), at)
            for r in part:
                out[r] = self._walk_leaves(r, stamps, succ, at)
        return out

    def _created(self, ids: list[int], now: datetime) -> dict[int, datetime]:
        """When each id was made; ids the server does not know (it fails, HTTP 500) left out."""
        if not ids:
            return {}
        try:
            return dict(zip(ids, self.root_timestamps(ids, timestamp=now), strict=True))
        except ServiceError as err:
            if err.status != 500:
                raise
            if len(ids) == 1:
                return {}  # an id the graph does not know
        half = len(ids) // 2  # one unknown id fails the whole batch: isolate it by halves
        return {**self._created(ids[:half], now), **self._created(ids[half:], now)}

    def _superseded(self, ids: list[int], now: datetime) -> dict[int, datetime | None]:
        """When each root was replaced (None: still current at ``now``): ``root_timestamps``
        with ``latest``, which answers ``now`` itself for a root current then."""
        if not ids:
            return {}
        stamps = self.root_timestamps(ids, latest=True, timestamp=now)
        mark = float(_epoch(now))
        return {r: None if abs(t.timestamp() - mark) < 1e-6 else t for r, t in zip(ids, stamps, strict=True)}
