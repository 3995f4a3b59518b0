"""Plans kept per statement: a statement run again is not analysed and planned again.

A notebook's loop, a script run twice, a dashboard asking the same question: analysis and
planning cost ~0.5 ms for a one-line SELECT, a tenth of a small archive query. The engine keeps
the physical plans of the statements it ran (LRU, :data:`SIZE` entries), keyed by everything
the plan is made from:

- the statement's tree (after identity functions of constants are folded), its parameter values;
- the session's settings, the backend object and its capabilities;
- the catalog the statement's first block reads (its version; catalogs are the engine's own,
  dropped with the cache on ``USE``).

A plan is kept only when it depends on nothing else (:func:`storable`): not when an identity
function was folded (its roots are the graph's at that moment), not when any block runs at a
timestamp (a live call's instant is the statement's "now"), not when it reads the user's local
tables (files that may change). What runs after planning — the root-id check, the fetch guard's
counts, the notices — runs for every statement. Plans are frozen: one serves every run.

>>> cache = PlanCache(size=2)
>>> cache.get(("a",)) is None
True
>>> cache.put(("a",), "plan-a"); cache.put(("b",), "plan-b"); cache.put(("c",), "plan-c")
>>> cache.get(("a",)), cache.get(("c",))
(None, 'plan-c')
>>> key(["not", "hashable"]) is None
True
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

from caveql.lru import LRU
from caveql.plan.physical import PhysicalPlan

__all__ = ["SIZE", "PlanCache", "key", "params_key", "storable"]

#: Plans an engine keeps.
SIZE = 128


def key(*parts: Any) -> Hashable | None:
    """``parts`` as a dictionary key, or ``None`` when one of them cannot be hashed (the
    statement is then planned each time)."""
    try:
        hash(parts)
    except TypeError:
        return None
    return parts


def params_key(params: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """The parameter values as a key: each with its type (``1`` and ``True`` and ``1.0`` plan
    differently); ``None`` when a value cannot be hashed (a list: planned each time).

    >>> params_key({"b": 2, "a": True})
    (('a', 'bool', True), ('b', 'int', 2))
    >>> params_key({"ids": [1, 2]}) is None
    True
    """
    out = tuple(sorted((name, type(v).__name__, v) for name, v in params.items()))
    try:
        hash(out)
    except TypeError:
        return None
    return out


def storable(p: PhysicalPlan) -> bool:
    """Whether ``p`` depends only on its key: no call at a timestamp (live; its instant is the
    statement's "now"), no local table, in any block."""
    if p.locals:
        return False
    if any(c.request.kind == "live" or c.request.timestamp is not None for c in p.calls):
        return False
    return all(storable(sp) for sp in p.subplans)


class PlanCache(LRU[Any]):
    """The engine's kept plans by :func:`key` (a thread-safe LRU of :data:`SIZE` plans)."""

    def __init__(self, size: int = SIZE) -> None:
        super().__init__(size)
