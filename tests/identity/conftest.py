"""Fixtures of the identity-function tests: engines over the tiny datastack and the demo (locally
and, for the HTTP tests, through ``caveql serve``), and the oracle: a plain-Python reading of a
history's edits, written from the model's rules (docs/datastacks.md, "Proofreading history"),
not from :class:`~caveql.datastack.history.History`'s code."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import strategies as st

from caveql.backends.local_live import version_time
from caveql.datastack.history import Edit, History
from caveql.engine import Engine
from tests.roots.conftest import demo, tiny  # noqa: F401  (the engines over both, shared)


@dataclass(frozen=True)
class Oracle:
    """What the edits alone say of roots and supervoxels through time."""

    edits: tuple[Edit, ...]  # sorted by (timestamp, operation id)
    made: dict[int, datetime]
    gone: dict[int, Edit]
    maker: dict[int, Edit]
    base: datetime
    anchor: datetime
    anchor_roots: dict[int, int]  # supervoxel -> root at the anchor version
    still: frozenset[int]

    @classmethod
    def of(cls, h: History) -> Oracle:
        edits = tuple(sorted(h.edits, key=lambda e: (e.timestamp, e.operation_id)))
        svs, roots = h._anchor()  # the anchor version's tables, as History read them
        anchor_roots = dict(zip((int(x) for x in svs.tolist()), (int(x) for x in roots.tolist()), strict=True))
        made = {int(r): e.timestamp for e in edits for r in e.new_roots}
        gone = {int(r): e for e in edits for r in e.old_roots}
        maker = {int(r): e for e in edits for r in e.new_roots}
        still = frozenset(set(anchor_roots.values()) - {0} - made.keys() - gone.keys())
        return cls(edits, made, gone, maker, h.base_timestamp, h.anchor_timestamp, anchor_roots, still)

    def known(self, r: int) -> bool:
        return r in self.made or r in self.gone or r in self.still

    def valid(self, r: int, t: datetime) -> bool:
        if not self.known(r):
            return False
        return self.made.get(r, self.base) <= t and (r not in self.gone or t < self.gone[r].timestamp)

    def latest_roots(self, r: int, t: datetime) -> list[int]:
        if self.valid(r, t):
            return [r]
        if self.made.get(r, self.base) > t:
            return []
        out, todo = set(), [r]
        while todo:
            x = todo.pop()
            if self.valid(x, t):
                out.add(x)
            elif x in self.gone and self.gone[x].timestamp <= t:
                todo += [int(n) for n in self.gone[x].new_roots]
        return sorted(out)

    def past_ids(self, r: int, t: datetime) -> list[int]:
        out, todo = set(), [r]
        while todo:
            x = todo.pop()
            if self.valid(x, t):
                out.add(x)
            elif x in self.maker and self.maker[x].timestamp > t:
                todo += [int(o) for o in self.maker[x].old_roots]
        return sorted(out)

    def root_at(self, sv: int, t: datetime) -> int | None:
        root = self.anchor_roots.get(sv, 0)
        if root == 0:
            return None
        if t >= self.anchor:
            for e in self.edits:  # forward: edits after the anchor, up to t (visible at t)
                if self.anchor < e.timestamp <= t and root in e.old_roots:
                    moved = sv in e.moved_supervoxels
                    root = int(e.new_roots[1] if e.kind == "split" and moved else e.new_roots[0])
        else:
            for e in reversed(self.edits):  # backward: undo the edits after t, up to the anchor
                if t < e.timestamp <= self.anchor and root in e.new_roots:
                    moved = sv in e.moved_supervoxels
                    root = int(e.old_roots[1] if e.kind == "merge" and moved else e.old_roots[0])
        return root


def stamps_of(engine: Engine) -> dict[int, datetime]:
    b = engine.backend
    return {v: version_time(b.version_metadata(v)) for v in b.versions()}


def instants(oracle: Oracle, stamps: dict[int, datetime]) -> st.SearchStrategy[datetime]:
    """Between the base and after the last edit, exactly at an edit (and a microsecond either
    side), and at the versions."""
    first, last = oracle.base, oracle.edits[-1].timestamp + timedelta(days=1)
    edit = st.tuples(st.sampled_from(oracle.edits), st.sampled_from([-1, 0, 1])).map(
        lambda e: e[0].timestamp + timedelta(microseconds=e[1]))
    span = int((last - first).total_seconds())
    return st.one_of(st.integers(0, span).map(lambda s: first + timedelta(seconds=s)), edit,
                     st.sampled_from(sorted(stamps.values())))


def roots(oracle: Oracle) -> st.SearchStrategy[int]:
    """Roots the edits name, roots no edit touches."""
    return st.one_of(st.sampled_from(oracle.edits).flatmap(
        lambda e: st.sampled_from([int(x) for x in (*e.old_roots, *e.new_roots)])),
        st.sampled_from(sorted(oracle.still)))


def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat()


@pytest.fixture(scope="module")
def tiny_oracle(tiny) -> Oracle:
    return Oracle.of(tiny.backend.history)


@pytest.fixture(scope="module")
def demo_oracle(demo) -> Oracle:
    h = demo.backend.history
    assert h is not None and len(h.edits) > 1000
    return Oracle.of(h)
