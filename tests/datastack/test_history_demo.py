"""The demo's proofreading history, and live queries of the local backend against a plain-Python
reading of it (the frozen version the service picks, each row's root carried edit by edit)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caveql.analyze.settings import Settings
from caveql.backends.base import QueryRequest
from caveql.backends.local import LocalBackend
from caveql.datastack.demo_history import LAST_EDIT, T343, T661, protected_roots
from caveql.datastack.history import Edit, History

US = timedelta(microseconds=1)
SYN, NUC = "synapses_pni_2", "nucleus_detection_v0"


@pytest.fixture(scope="module")
def demo() -> Path:
    """The demo with 20,000 synapses (seed 0), built once per machine in the user cache."""
    import platformdirs

    from caveql.datastack.demo import GENERATOR_VERSION, build_demo

    folder = os.environ.get("CAVEQL_TEST_SMALL_DEMO_PATH") or os.path.join(
        platformdirs.user_cache_dir("caveql"), "test-demos", f"minnie65_demo-g{GENERATOR_VERSION}-20000-s0")
    return build_demo(folder, synapses=20_000, seed=0, progress=lambda _msg: None)


@pytest.fixture(scope="module")
def backend(demo):
    with LocalBackend(demo) as b:
        yield b


@pytest.fixture(scope="module")
def history(backend) -> History:
    assert backend.history is not None
    return backend.history


def _pairs(backend: LocalBackend, v: int, table: str) -> list[tuple[str, str]]:
    cols = backend.table_columns(v, table).names
    return [(c, c[: -len("supervoxel_id")] + "root_id") for c in cols
            if c.endswith("_supervoxel_id") and c[: -len("supervoxel_id")] + "root_id" in cols]


def test_frozen_versions_hold_the_roots_of_their_timestamp(backend, history):
    checked = 0
    for v, stamp in ((343, T343), (661, T661)):
        for table in backend.tables(v):
            pairs = _pairs(backend, v, table)
            if not pairs:
                continue
            t = backend.query(QueryRequest(kind="table", table=table, version=v)).table
            for sv, root in pairs:
                assert history.roots_at(t[sv].to_numpy(), stamp).tolist() == t[root].to_pylist(), (v, table, sv)
                checked += t.num_rows
    assert checked > 300_000
    assert history.index_conflicts == 0  # every supervoxel has one root


def test_the_lineages(history):
    between = [e for e in history.edits if T343 < e.timestamp < T661]
    after = [e for e in history.edits if e.timestamp > T661]
    assert len(between) + len(after) == len(history.edits)
    for edits in (between, after):
        assert {e.kind for e in edits} == {"merge", "split"}
    assert max(e.timestamp for e in after) <= LAST_EDIT
    # roots no version saw: made and replaced between two versions
    never = [e.new_roots[0] for e in between if e.kind == "merge"
             and history.valid_range(e.new_roots[0])[1] is not None
             and history.valid_range(e.new_roots[0])[1] < T661]
    assert never
    # two cells merged by mistake after 661 (both had table rows), most split again since
    pairs = [e for e in after if e.kind == "merge" and len(e.moved_supervoxels) > 1
             and all(history.valid_range(r)[0] < T661 for r in e.old_roots)
             and len(history.latest_roots(e.old_roots[1])) >= 1]
    assert len(pairs) >= 5
    resplit = [e for e in pairs if not history.is_latest(list(e.new_roots))[0]]
    assert resplit and len(resplit) < len(pairs)
    nodes, edges = history.lineage([resplit[0].new_roots[0]])
    assert len(edges) == 4 and len(nodes) == 5
    # the seed page's roots are never edited
    seed = sorted(protected_roots())
    assert all(history.is_latest(seed, t).all() for t in (T343 + US, T661, None))


def test_live_now_differs_from_every_version(backend, history):
    nuc = backend.query(QueryRequest(kind="table", table=NUC, version=661,
                                     select_columns={NUC: ("pt_supervoxel_id", "pt_root_id")})).table
    now = history.roots_at(nuc["pt_supervoxel_id"].to_numpy(), None).view(np.int64)
    assert (now != nuc["pt_root_id"].to_numpy()).sum() > 1_000
    live = backend.query(QueryRequest(kind="live", table=NUC, timestamp=datetime.now(UTC),
                                      select_columns={NUC: ("pt_root_id",)})).table
    assert live["pt_root_id"].to_numpy().tolist() == now.tolist()


# -- a plain-Python reading of the history ---------------------------------------------------

class Plain:
    """Reads the history the slow way: the version a live query reads, then each row's root
    carried through the edits one by one (no vectorisation, no precomputed maps)."""

    def __init__(self, backend: LocalBackend, edits: tuple[Edit, ...]) -> None:
        self.stamps = {v: datetime.fromisoformat(backend.version_metadata(v)["time_stamp"]).replace(tzinfo=UTC)
                       for v in backend.versions()}
        self.replaced = {r: e for e in edits for r in e.old_roots}
        self.made = {r: e for e in edits for r in e.new_roots}
        self.moved = {e.operation_id: set(e.moved_supervoxels) for e in edits}

    def version(self, t: datetime) -> int:
        before = [v for v, s in self.stamps.items() if s <= t]
        return max(before) if before else min(self.stamps)

    def root(self, sv: int, root: int, t_from: datetime, t_to: datetime) -> int:
        while t_to > t_from and root in self.replaced and self.replaced[root].timestamp <= t_to:
            e = self.replaced[root]
            root = e.new_roots[1] if e.kind == "split" and sv in self.moved[e.operation_id] else e.new_roots[0]
        while t_to < t_from and root in self.made and self.made[root].timestamp > t_to:
            e = self.made[root]
            root = e.old_roots[1] if e.kind == "merge" and sv in self.moved[e.operation_id] else e.old_roots[0]
        return root


@pytest.fixture(scope="module")
def plain(backend, history) -> Plain:
    return Plain(backend, history.edits)


@pytest.fixture(scope="module")
def frozen(backend):
    """Every synapse and nucleus row at each version (id, supervoxels, roots)."""
    out = {}
    for v in backend.versions():
        out[(v, SYN)] = backend.query(QueryRequest(kind="table", table=SYN, version=v, select_columns={
            SYN: ("id", "pre_pt_supervoxel_id", "pre_pt_root_id", "post_pt_supervoxel_id", "post_pt_root_id")})
        ).table.to_pydict()
        out[(v, NUC)] = backend.query(QueryRequest(kind="table", table=NUC, version=v, select_columns={
            NUC: ("id", "pt_supervoxel_id", "pt_root_id")})).table.to_pydict()
    return out


@st.composite
def instants(draw, history: History):
    """Timestamps where live answers change: at an edit, just before it, between versions, at
    and around the versions, before the first and after the last edit."""
    edit = draw(st.sampled_from(history.edits)).timestamp
    return draw(st.sampled_from([
        edit, edit - US, edit + US, T343, T343 - US, T661, T661 + US, LAST_EDIT + timedelta(days=30),
        datetime(2021, 3, 1, tzinfo=UTC),
        draw(st.datetimes(datetime(2021, 1, 1), datetime(2025, 1, 1))).replace(tzinfo=UTC)]))


@settings(max_examples=12)
@given(data=st.data())
def test_live_nuclei_agree_with_a_plain_reading(backend, history, plain, frozen, data):
    t = data.draw(instants(history))
    naive = data.draw(st.booleans())  # a naive timestamp means UTC
    got = backend.query(QueryRequest(kind="live", table=NUC, timestamp=t.replace(tzinfo=None) if naive else t,
                                     select_columns={NUC: ("id", "pt_root_id")})).table.to_pydict()
    v = plain.version(t)
    rows = frozen[(v, NUC)]
    want = [plain.root(sv, r, plain.stamps[v], t) for sv, r in zip(rows["pt_supervoxel_id"], rows["pt_root_id"],
                                                                    strict=True)]
    assert got["id"] == rows["id"]
    assert got["pt_root_id"] == want


@settings(max_examples=25)
@given(data=st.data())
def test_live_root_filters_agree_with_a_plain_reading(backend, history, plain, frozen, data):
    e = data.draw(st.sampled_from([e for e in history.edits if len(e.moved_supervoxels) > 1]
                                  + list(history.edits[:50])))
    t = data.draw(st.sampled_from([e.timestamp, e.timestamp - US, T661, LAST_EDIT]) | instants(history))
    ids = list(e.old_roots + e.new_roots)
    chosen = data.draw(st.lists(st.sampled_from(ids), min_size=1, max_size=3, unique=True))
    side = data.draw(st.sampled_from(["pre", "post"]))
    got = backend.query(QueryRequest(
        kind="live", table=SYN, timestamp=t, filter_in={SYN: {f"{side}_pt_root_id": chosen}},
        select_columns={SYN: ("id", "pre_pt_root_id", "post_pt_root_id")})).table.to_pydict()
    v = plain.version(t)
    rows = frozen[(v, SYN)]
    want: dict[str, list[int]] = {"id": [], "pre_pt_root_id": [], "post_pt_root_id": []}
    for i in range(len(rows["id"])):
        mapped = {s: plain.root(rows[f"{s}_pt_supervoxel_id"][i], rows[f"{s}_pt_root_id"][i], plain.stamps[v], t)
                  for s in ("pre", "post")}
        if mapped[side] in chosen:
            want["id"].append(rows["id"][i])
            want["pre_pt_root_id"].append(mapped["pre"])
            want["post_pt_root_id"].append(mapped["post"])
    assert got == want


def test_at_an_edit_the_new_roots_hold(backend, history, frozen):
    # two cells merged by mistake: both nuclei change root at the merge's very timestamp
    cells = set(frozen[(661, NUC)]["pt_root_id"])
    e = next(e for e in history.edits if e.timestamp > T661 and e.kind == "merge" and set(e.old_roots) <= cells)

    def roots(t: datetime) -> list[int]:
        r = backend.query(QueryRequest(kind="live", table=NUC, timestamp=t,
                                       filter_in={NUC: {"pt_root_id": list(e.old_roots + e.new_roots)}},
                                       select_columns={NUC: ("pt_root_id",)})).table
        return sorted(r["pt_root_id"].to_pylist())

    assert roots(e.timestamp - US) == sorted(e.old_roots)
    assert roots(e.timestamp) == [e.new_roots[0]] * 2


def test_cql_at_timestamp_maps_root_ids(backend, history, plain, frozen):
    from caveql.engine import Engine

    e = next(e for e in history.edits if e.timestamp > T661 and e.kind == "split" and len(e.moved_supervoxels) > 1)
    # (the old and new roots together: at each instant some are not current, which is allowed here)
    eng = Engine(backend, Settings(allow_invalid_root_ids=True))
    for t in (e.timestamp - US, e.timestamp):
        stamp = t.replace(tzinfo=None).isoformat()
        frame = eng.execute(f"SELECT id, pt_root_id FROM {NUC} WHERE pt_root_id IN "
                            f"({', '.join(map(str, e.old_roots + e.new_roots))}) AT TIMESTAMP '{stamp}'").frame
        rows = frozen[(661, NUC)]
        want = sorted((i, plain.root(sv, r, T661, t)) for i, sv, r in zip(
            rows["id"], rows["pt_supervoxel_id"], rows["pt_root_id"], strict=True)
            if plain.root(sv, r, T661, t) in e.old_roots + e.new_roots)
        assert sorted(zip(frame["id"].tolist(), frame["pt_root_id"].tolist(), strict=True)) == want
        assert want


def test_a_root_that_is_not_current_is_refused_naming_what_it_became(backend, history):
    from caveql.engine import Engine
    from caveql.errors import InvalidRootIdError

    e = next(e for e in history.edits if T343 < e.timestamp < T661 and e.kind == "split"
             and history.is_latest([e.old_roots[0]], T343)[0])  # a root version 343 has
    old = e.old_roots[0]
    with pytest.raises(InvalidRootIdError) as err:
        Engine(backend).execute(f"SELECT id FROM {NUC} WHERE pt_root_id = {old} AT VERSION 661")
    assert str(old) in err.value.message and "stopped being current" in err.value.message
    assert all(str(r) in err.value.message for r in e.new_roots)
    # allowed: the empty answer, with the same sentence as a notice
    res = Engine(backend, Settings(allow_invalid_root_ids=True)).execute(
        f"SELECT id FROM {NUC} WHERE pt_root_id = {old} AT VERSION 661")
    assert res.frame.empty
    assert any(str(old) in n and "stopped being current" in n and str(e.new_roots[0]) in n for n in res.notices)
    # at the version where it is current: rows, no notice
    res = Engine(backend).execute(f"SELECT id FROM {NUC} WHERE pt_root_id = {old} AT VERSION 343")
    assert not res.frame.empty
