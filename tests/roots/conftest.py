"""Fixtures of the invalid-root tests: the tiny datastack and the demo, each locally and served by
``caveql serve`` (its ChunkedGraph routes answering from the same history), engines over both, and
a plain-Python reading of a history's edits (the oracle: a root is valid from the edit that made
it, or the base, until the edit that replaced it, exclusive)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest

from caveql.backends.local import LocalBackend
from caveql.datastack.history import History
from caveql.engine import Engine


@dataclass(frozen=True)
class Reading:
    """What the edits alone say: each root's (made, replaced) and the roots that never change."""

    made: dict[int, datetime]
    gone: dict[int, datetime]
    base: datetime
    still: frozenset[int]  # roots of the anchor version's tables no edit names

    @classmethod
    def of(cls, h: History) -> Reading:
        made = {int(r): e.timestamp for e in h.edits for r in e.new_roots}
        gone = {int(r): e.timestamp for e in h.edits for r in e.old_roots}
        anchor = {int(r) for r in h._anchor()[1].tolist()} - {0}  # (the anchor's tables, read once)
        return cls(made, gone, h.base_timestamp, frozenset(anchor - made.keys() - gone.keys()))

    def valid(self, r: int, t: datetime | None) -> bool:
        if r not in self.made and r not in self.gone and r not in self.still:
            return False  # never a root
        if t is None:
            return r not in self.gone
        return self.made.get(r, self.base) <= t and (r not in self.gone or t < self.gone[r])


def _engine(path: Any) -> Iterator[Engine]:
    eng = Engine(LocalBackend(path))
    yield eng
    eng.backend.close()


def _served(path: Any) -> Iterator[Any]:
    from tests.server.conftest import serve

    s = serve(path)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def tiny(tiny_datastack) -> Iterator[Engine]:
    yield from _engine(tiny_datastack)


@pytest.fixture(scope="module")
def tiny_served(tiny_datastack):
    yield from _served(tiny_datastack)


@pytest.fixture(scope="module")
def tiny_http(tiny_served) -> Engine:
    return Engine(tiny_served.http())


@pytest.fixture(scope="module")
def demo(demo_path) -> Iterator[Engine]:
    yield from _engine(demo_path)


@pytest.fixture(scope="module")
def demo_served(demo_path):
    yield from _served(demo_path)


@pytest.fixture(scope="module")
def demo_http(demo_served) -> Engine:
    return Engine(demo_served.http())


@pytest.fixture(scope="module")
def demo_history(demo) -> History:
    h = demo.backend.history
    assert h is not None and len(h.edits) > 1000
    return h
