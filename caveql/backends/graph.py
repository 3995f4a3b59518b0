"""The segmentation's proofreading graph (the ChunkedGraph) as a backend facet.

A root id names a cell only until the next edit. What caveql asks of the graph — the roots of
supervoxels at an instant, whether roots are current, what a root became or came from, when it
was made and superseded — is the :class:`SegmentationGraph` protocol, one method per question,
mirroring PyChunkedGraph's segmentation API v1 (the calls caveclient's ``chunkedgraph`` client
makes). A backend whose ``capabilities.graph`` is true answers ``backend.graph()`` with one:

- :class:`LocalGraph` reads a local datastack's proofreading history (``history.parquet``);
- the HTTP backend's asks the ChunkedGraph server the datastack's ``segmentation_source`` names
  (the genuine PyChunkedGraph, or ``caveql serve``'s routes).

:meth:`SegmentationGraph.states` is what the invalid-root check and the identity functions
build on: one :class:`RootState` per id, and :func:`describe` words a state that is not valid.

Every timestamp is an aware UTC datetime; ``None`` means now. Ids are Python ints.

>>> import tempfile
>>> from caveql.backends.local import LocalBackend
>>> from caveql.datastack.tiny import build_tiny
>>> g = LocalBackend(build_tiny(tempfile.mkdtemp())).graph()
>>> g.latest_roots(905), g.is_latest([905, 1005])
([1005, 2001], [False, True])
>>> print(describe(g.states([905], None)[0], "now"))
root id 905 is not current now: it stopped being current at 2022-08-01 00:00:00+00:00; its latest roots are 1005, 2001
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from caveql.datastack.history import History

__all__ = ["LocalGraph", "RootState", "SegmentationGraph", "describe"]


@dataclass(frozen=True)
class RootState:
    """What the graph says of one root id at an instant.

    ``known``: it was a root of this segmentation at some time; ``valid``: a current root at the
    instant asked; ``created``/``superseded``: when it was made and when an edit replaced it
    (``None``: never replaced, or unknown); ``latest``: the roots it became by the instant (itself
    when valid; empty when made after the instant, or unknown).
    """

    root_id: int
    known: bool
    valid: bool
    created: datetime | None = None
    superseded: datetime | None = None
    latest: tuple[int, ...] = ()


def describe(state: RootState, where: str) -> str | None:
    """A sentence for a root id that is not valid ``where`` (e.g. ``"at version 343 (2022-…)"``):
    when it stopped being current (or was made) and its latest roots; ``None`` when it is valid.

    >>> describe(RootState(7, known=False, valid=False), "now")
    'root id 7 is not a root id of this datastack at any time'
    """
    r = state.root_id
    if state.valid:
        return None
    if not state.known:
        return f"root id {r} is not a root id of this datastack at any time"
    if state.superseded is None or (state.created is not None and not state.latest):
        return f"root id {r} is not current {where}: it was made later, at {state.created}"
    latest = ", ".join(str(x) for x in state.latest) or "none"
    return (f"root id {r} is not current {where}: it stopped being current at {state.superseded}; "
            f"its latest roots are {latest}")


@runtime_checkable
class SegmentationGraph(Protocol):
    """The ChunkedGraph questions caveql asks (PyChunkedGraph segmentation API v1)."""

    def roots(self, supervoxel_ids: Sequence[int], timestamp: datetime | None = None) -> list[int]:
        """The root of each supervoxel at ``timestamp`` (``get_roots``); 0 for 0 and unknown ones."""

    def is_latest(self, root_ids: Sequence[int], timestamp: datetime | None = None) -> list[bool]:
        """Whether each root is current at ``timestamp`` (``is_latest_roots``); unknown ids: False."""

    def latest_roots(self, root_id: int, timestamp: datetime | None = None) -> list[int]:
        """The roots ``root_id`` became by ``timestamp`` (``get_latest_roots``), sorted; itself when
        current then; empty for an id made after ``timestamp`` or never a root."""

    def past_ids(self, root_ids: Sequence[int], timestamp_past: datetime,
                 timestamp_future: datetime | None = None) -> dict[int, list[int]]:
        """For each root, the roots at ``timestamp_past`` it came from, sorted (``get_past_ids``'s
        ``past_id_map``; itself when it was a root then)."""

    def states(self, root_ids: Sequence[int], timestamp: datetime | None = None) -> list[RootState]:
        """One :class:`RootState` per id at ``timestamp``, in order."""


class LocalGraph:
    """:class:`SegmentationGraph` over a local datastack's :class:`History`."""

    def __init__(self, history: History) -> None:
        self.history = history

    def roots(self, supervoxel_ids: Sequence[int], timestamp: datetime | None = None) -> list[int]:
        return [int(x) for x in self.history.roots_at(list(supervoxel_ids), timestamp).tolist()]

    def is_latest(self, root_ids: Sequence[int], timestamp: datetime | None = None) -> list[bool]:
        return [bool(x) for x in self.history.is_latest(list(root_ids), timestamp).tolist()]

    def latest_roots(self, root_id: int, timestamp: datetime | None = None) -> list[int]:
        return sorted(int(x) for x in self.history.latest_roots(int(root_id), timestamp).tolist())

    def past_ids(self, root_ids: Sequence[int], timestamp_past: datetime,
                 timestamp_future: datetime | None = None) -> dict[int, list[int]]:
        got = self.history.past_ids(list(root_ids), timestamp_past, timestamp_future)
        return {int(k): sorted(int(x) for x in v) for k, v in got.items()}

    def states(self, root_ids: Sequence[int], timestamp: datetime | None = None) -> list[RootState]:
        h = self.history
        ids = [int(r) for r in root_ids]
        if not ids:
            return []
        # one vectorised reading of every id's span; the walk to the latest roots only for the
        # known ones that are not current (a column of 100,000 roots is mostly current ones)
        born, died, known = h.spans(ids)
        valid = h.is_latest(ids, timestamp).tolist()
        out = []
        for r, b, d, k, v in zip(ids, born, died, known.tolist(), valid, strict=True):
            if not k:
                out.append(RootState(r, known=False, valid=False))
                continue
            latest = (r,) if v else tuple(self.latest_roots(r, timestamp))
            out.append(RootState(r, known=True, valid=bool(v), created=b, superseded=d, latest=latest))
        return out
