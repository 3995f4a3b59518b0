"""A small thread-safe least-recently-used map: what the parser, the engine's kept plans, the
identity folder, the archive and the user's file tables each keep a bounded number of.

>>> kept = LRU(2)
>>> kept.put("a", 1); kept.put("b", 2); kept.get("a"); kept.put("c", 3)
1
>>> kept.get("b") is None, kept.get("a"), len(kept)
(True, 1, 2)
>>> kept.get_or_make("d", lambda: 4), kept.get("c")
(4, None)
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["LRU"]

V = TypeVar("V")


class LRU(Generic[V]):
    """At most ``size`` values by key; reading or writing one makes it the newest, the oldest
    goes when full. ``None`` is not a value (:meth:`get` returns it for a missing key)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> V | None:
        """The value kept under ``key`` (now the newest), or ``None``."""
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Hashable, value: V) -> None:
        """Keep ``value`` under ``key`` as the newest (the oldest goes when full)."""
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def get_or_make(self, key: Hashable, make: Callable[[], V]) -> V:
        """The value under ``key``, else ``make()`` kept there (made outside the lock: two threads
        may both make it; the last one made is kept)."""
        value = self.get(key)
        if value is None:
            value = make()
            self.put(key, value)
        return value

    def clear(self) -> None:
        """Forget every value."""
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
