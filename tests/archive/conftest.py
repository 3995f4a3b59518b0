"""Archive fixtures: the tiny datastack exported as MaterializationEngine's Delta Lakes."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs
import pyarrow as pa
import pytest

from caveql.backends.archive import ArchiveBackend
from caveql.backends.local import LocalBackend
from tests.archive.writer import export_archive


def export_demo_synapses(demo: Path, folder: Path, partitions: int
                         ) -> tuple[Path, pa.Table, tuple[float, float, float]]:
    """The demo's synapse table at version 661 exported (``partitions`` per copy) as the datastack
    ``folder/minnie65_demo``: ``(that folder, the rows, the table's voxel resolution)``."""
    from caveql.backends.base import QueryRequest
    from caveql.datastack.delta_export import export_rows

    with LocalBackend(demo) as src:
        rows = src.query(QueryRequest(kind="table", table="synapses_pni_2", version=661)).table
        meta = src.table_metadata(661, "synapses_pni_2")
    root = folder / "minnie65_demo"
    export_rows(rows, root / "v661" / "synapses_pni_2", n_partitions=partitions, small_table_mb=0)
    return root, rows, tuple(float(meta[f"voxel_resolution_{a}"]) for a in "xyz")  # type: ignore[return-value]


def local_metadata(local: LocalBackend) -> dict[str, dict[str, object]]:
    """What the archive does not record, taken from the datastack it was exported from."""
    out: dict[str, dict[str, object]] = {}
    for v in local.all_versions():
        for t in local.tables(v):
            out[t] = local.table_metadata(v, t)
        for name, meta in local.views(v).items():
            out[name] = meta
    return out


@pytest.fixture(scope="session")
def tiny_local(tiny_datastack):
    b = LocalBackend(tiny_datastack)
    yield b
    b.close()


@pytest.fixture(scope="session")
def tiny_archive_root(tiny_datastack, tmp_path_factory):
    """Three partitions per copy (files to prune), nuclei trimmed to its ``id`` copy as a small
    table is (so its points stay WKB), two appends per copy before the z-order."""
    root = tmp_path_factory.mktemp("archive")
    export_archive(tiny_datastack, root, n_partitions=3, small_tables=("nuclei",), flushes=2)
    return root


@pytest.fixture(scope="session")
def tiny_archive(tiny_archive_root, tiny_local):
    b = ArchiveBackend(tiny_archive_root, datastack="tiny", metadata=local_metadata(tiny_local))
    yield b
    b.close()


SMALL_DEMO_SYNAPSES = 4_000


@pytest.fixture(scope="session")
def demo_4k() -> Path:
    """A small demo datastack (versions 343 and 661; built once per machine, as
    tests/conftest.py's demo_path)."""
    from caveql.datastack.demo import GENERATOR_VERSION, build_demo

    folder = os.path.join(platformdirs.user_cache_dir("caveql"), "test-demos",
                          f"minnie65_demo-g{GENERATOR_VERSION}-{SMALL_DEMO_SYNAPSES}-s0")
    return build_demo(folder, synapses=SMALL_DEMO_SYNAPSES, seed=0, progress=lambda _m: None)
