"""Fixtures of the conformance suite: the genuine MaterializationEngine (harness.py) and
``caveql serve`` over the same datastack folders.

One PostgreSQL cluster and one engine environment per session; an engine process per
(datastack, layout, ``QUERY_LIMIT_SIZE``). A missing prerequisite fails every test here
with the command that installs it (never a skip).
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs
import pytest

from tests.conformance.harness import HarnessError, start_genuine

# the demo, small: every table of minnie65_public's shape, 20,000 synapses
CONFORMANCE_SYNAPSES = 20_000


@pytest.fixture(scope="session")
def oracle(tmp_path_factory: pytest.TempPathFactory):
    """The harness: engine source + environment + a private PostgreSQL cluster."""
    cm = start_genuine(tmp_path_factory.mktemp("genuine"))
    try:
        oracle = cm.__enter__()
    except HarnessError as e:
        pytest.fail(f"conformance harness: {e}", pytrace=False)
    yield oracle
    cm.__exit__(None, None, None)


@pytest.fixture(scope="session")
def small_demo() -> Path:
    """A small demo datastack (20,000 synapses, seed 0), built once per machine in the cache."""
    from caveql.datastack.demo import GENERATOR_VERSION, build_demo

    folder = os.environ.get("CAVEQL_TEST_SMALL_DEMO_PATH") or os.path.join(
        platformdirs.user_cache_dir("caveql"), "test-demos",
        f"minnie65_demo-g{GENERATOR_VERSION}-{CONFORMANCE_SYNAPSES}-s0")
    return build_demo(folder, synapses=CONFORMANCE_SYNAPSES, seed=0, progress=lambda _msg: None)


def _engine(oracle, path, **kw):
    try:
        return oracle.start_engine(path, **kw)
    except HarnessError as e:
        pytest.fail(f"conformance harness: {e}", pytrace=False)


@pytest.fixture(scope="session")
def genuine_demo(oracle, small_demo):
    """The genuine engine over the small demo (merged layout, the service's 200,000-row cap)."""
    return _engine(oracle, small_demo)


@pytest.fixture(scope="session")
def genuine_demo_capped(oracle, small_demo, genuine_demo):
    """The same database served with ``QUERY_LIMIT_SIZE`` 1,000 (so paging runs)."""
    return _engine(oracle, small_demo, query_limit=1000)


@pytest.fixture(scope="session")
def genuine_tiny(oracle, tiny_datastack):
    """The genuine engine over the hand-made tiny datastack (views, reference tables), merged."""
    return _engine(oracle, tiny_datastack)


@pytest.fixture(scope="session")
def genuine_tiny_capped(oracle, tiny_datastack, genuine_tiny):
    """The tiny datastack with a 3-row ``QUERY_LIMIT_SIZE``."""
    return _engine(oracle, tiny_datastack, query_limit=3)


@pytest.fixture(scope="session")
def tiny_merged(tmp_path_factory, tiny_datastack) -> Path:
    """The tiny datastack declared merged (``is_merged`` true: flat tables, no crud columns),
    under its own name so both layouts live in one cluster."""
    import shutil

    folder = tmp_path_factory.mktemp("tiny-merged") / "tiny_merged"
    shutil.copytree(tiny_datastack, folder)
    for meta in folder.rglob("*.json"):
        text = meta.read_text().replace('"tiny"', '"tiny_merged"').replace("tiny_volume", "tiny_merged_volume")
        if meta.name == "version.json":
            text = text.replace('"is_merged": false', '"is_merged": true')
        meta.write_text(text)
    return folder


@pytest.fixture(scope="session")
def genuine_tiny_merged(oracle, tiny_merged):
    """The genuine engine over the merged tiny datastack."""
    return _engine(oracle, tiny_merged)


def _serve(path, **kw):
    from tests.server.conftest import serve

    return serve(path, **kw)


@pytest.fixture(scope="session")
def served_demo(small_demo):
    """``caveql serve`` over the small demo (its default 200,000-row cap)."""
    s = _serve(small_demo)
    yield s
    s.stop()


@pytest.fixture(scope="session")
def served_tiny(tiny_datastack):
    """``caveql serve`` over the tiny datastack."""
    s = _serve(tiny_datastack)
    yield s
    s.stop()


@pytest.fixture(scope="session")
def served_tiny_merged(tiny_merged):
    """``caveql serve`` over the merged tiny datastack."""
    s = _serve(tiny_merged)
    yield s
    s.stop()
