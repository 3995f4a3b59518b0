"""Fixtures of the ChunkedGraph route tests: a hand-made history over realistic ids, the routes
alone over it (served on a loopback port), and the tiny datastack given a proofreading history and
served by ``caveql serve`` (caveclient's view of it)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime

import httpx
import pytest
from starlette.applications import Starlette

from caveql.datastack.history import Edit, History, write_history
from caveql.server import ServerThread
from caveql.server.chunkedgraph import ChunkedGraph, segmentation_routes


def R(n: int) -> int:
    """A root id (layer 12, as minnie65's)."""
    return 12 << 56 | n


def S(n: int) -> int:
    """A supervoxel id (layer 1)."""
    return 1 << 56 | n


def t(day: int, hour: int = 0) -> datetime:
    return datetime(2023, 1, day, hour, tzinfo=UTC)


# 10 + 20 merge into 30 (day 2); 30 splits into 40 + 50 (day 4); the anchor version is day 5;
# 40 + 60 merge into 70 (day 7); 70 + 50 merge into 80 (day 8). 90 is never edited.
EDITS = [
    Edit(1, t(2), "merge", (R(10), R(20)), (R(30),), user="7", source_supervoxels=(S(1),),
         sink_supervoxels=(S(2),), moved_supervoxels=(S(2),)),
    Edit(2, t(4), "split", (R(30),), (R(40), R(50)), user="7", source_supervoxels=(S(1),),
         sink_supervoxels=(S(2),), moved_supervoxels=(S(2),)),
    Edit(3, t(7), "merge", (R(40), R(60)), (R(70),), user="8", moved_supervoxels=(S(3), S(4))),
    Edit(4, t(8), "merge", (R(70), R(50)), (R(80),), user="8", moved_supervoxels=(S(2),)),
]
ANCHOR = ([S(1), S(2), S(3), S(4), S(5)], [R(40), R(50), R(60), R(60), R(90)])


def hand_history() -> History:
    return History(EDITS, anchor_version=5, anchor_timestamp=t(5), base_timestamp=t(1), anchor_index=ANCHOR)


@pytest.fixture(scope="session")
def history() -> History:
    return hand_history()


@pytest.fixture(scope="session")
def cg(history):
    """The routes alone over the hand-made history (table ``hand``), served; an HTTP client."""
    app = Starlette(routes=segmentation_routes(ChunkedGraph(lambda: history, "hand")))
    with ServerThread(app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


# The tiny datastack's roots given a history: cell 5's root 905 (version 1) became 1005
# (version 2) by a split; after version 2 (live): 1001 + 1002 merge, then split apart another
# way, and 1003 + 1005 merge. Supervoxels: the cells' 11..16, the synapses' 70000 + root.
def tiny_edits() -> list[Edit]:
    def ts(text: str) -> datetime:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)

    return [
        Edit(101, ts("2022-09-01T10:00:00.250000"), "split", (905,), (1005, 1905), user="3",
             moved_supervoxels=(99,)),
        Edit(102, ts("2024-01-10T12:00:00"), "merge", (1001, 1002), (2001,), user="3",
             moved_supervoxels=(12, 71002)),
        Edit(103, ts("2024-03-01T08:30:00.5"), "split", (2001,), (3001, 3002), user="4",
             moved_supervoxels=(12,)),
        Edit(104, ts("2024-06-01T00:00:00"), "merge", (1003, 1005), (4001,), user="4",
             moved_supervoxels=(15, 71005)),
    ]


TINY_V2 = datetime(2023, 4, 6, 20, 17, 9, 199182, tzinfo=UTC)


@pytest.fixture(scope="session")
def tiny_history_path(tiny_datastack, tmp_path_factory):
    """A copy of the tiny datastack with ``tiny_edits`` as its history (anchored at version 2)."""
    folder = tmp_path_factory.mktemp("tiny-history") / "tiny"
    shutil.copytree(tiny_datastack, folder)
    write_history(folder, tiny_edits(), anchor_version=2, anchor_timestamp=TINY_V2,
                  base_timestamp=datetime(2022, 1, 1, tzinfo=UTC))
    return folder


@pytest.fixture(scope="session")
def tiny_history_served(tiny_history_path):
    from tests.server.conftest import serve

    s = serve(tiny_history_path)
    yield s
    s.stop()


@pytest.fixture(scope="session")
def small_demo():
    """The small demo (20,000 synapses, seed 0) with its proofreading history, built once per
    machine in the cache (the conformance suite's folder)."""
    import os

    import platformdirs

    from caveql.datastack.demo import GENERATOR_VERSION, build_demo

    folder = os.environ.get("CAVEQL_TEST_SMALL_DEMO_PATH") or os.path.join(
        platformdirs.user_cache_dir("caveql"), "test-demos", f"minnie65_demo-g{GENERATOR_VERSION}-20000-s0")
    return build_demo(folder, synapses=20_000, seed=0, progress=lambda _msg: None)


@pytest.fixture(scope="session")
def demo_served(small_demo):
    from tests.server.conftest import serve

    s = serve(small_demo)
    yield s
    s.stop()
