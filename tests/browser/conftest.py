"""Fixtures of the browser tests: one headless Chromium per session (harness.py), a tiny
image + segmentation volume served on loopback, and screenshots kept for people to look at.

A missing prerequisite (Chromium, chromedriver, neuroglancer, selenium) fails every test
here with the command that installs it (never a skip).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tests.browser.harness import Browser, BrowserHarnessError, LoopbackFiles, write_precomputed

# nm per voxel of the loopback volumes (MICrONS-like anisotropy)
RESOLUTION = (4.0, 4.0, 40.0)
SHAPE = (64, 64, 8)


@dataclass(frozen=True)
class Volumes:
    """The loopback volumes: ``image`` and ``segmentation`` are ``precomputed://`` sources."""

    image: str
    segmentation: str
    segment_ids: tuple[int, ...]
    resolution: tuple[float, float, float]
    shape: tuple[int, int, int]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Headless Chromium with the neuroglancer client, shared by the session's tests."""
    try:
        chromium = Browser()
    except BrowserHarnessError as e:
        pytest.fail(f"browser harness: {e}", pytrace=False)
    yield chromium
    chromium.close()


def paint_segments(ids: tuple[int, ...], shape: tuple[int, int, int] = SHAPE) -> np.ndarray:
    """A uint64 label volume of vertical stripes, one per id (so every id shows in an xy view)."""
    seg = np.zeros(shape, np.uint64)
    for i, stripe in enumerate(np.array_split(np.arange(shape[0]), len(ids))):
        seg[stripe] = ids[i]
    return seg


def write_volumes(folder: Path, ids: tuple[int, ...], offset: tuple[int, int, int] = (0, 0, 0)) -> None:
    """An image and a segmentation holding ``ids``, voxels from ``offset`` on, under ``folder``."""
    x, y, z = np.indices(SHAPE)
    write_precomputed(folder / "image", ((x * 3 + y * 5 + z * 17) % 256).astype(np.uint8),
                      kind="image", resolution=RESOLUTION, voxel_offset=offset)
    write_precomputed(folder / "segmentation", paint_segments(ids), kind="segmentation",
                      resolution=RESOLUTION, voxel_offset=offset)


def volumes_at(files: LoopbackFiles, ids: tuple[int, ...]) -> Volumes:
    """The sources of :func:`write_volumes`' volumes as ``files`` serves them."""
    return Volumes(image=f"precomputed://{files.url}/image",
                   segmentation=f"precomputed://{files.url}/segmentation",
                   segment_ids=ids, resolution=RESOLUTION, shape=SHAPE)


def serve_volumes(folder: Path, ids: tuple[int, ...]) -> tuple[LoopbackFiles, Volumes]:
    """Write :func:`write_volumes`' volumes under ``folder`` and serve them on loopback."""
    write_volumes(folder, ids)
    files = LoopbackFiles(folder)
    return files, volumes_at(files, ids)


@pytest.fixture(scope="session")
def volumes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Volumes]:
    """A 64x64x8 image and a segmentation with segments 11, 22 and 33, served on 127.0.0.1."""
    files, vols = serve_volumes(tmp_path_factory.mktemp("volumes"), (11, 22, 33))
    yield vols
    files.close()


@pytest.fixture
def keep_screenshot(tmp_path: Path, request: pytest.FixtureRequest) -> Callable[[Path], Path]:
    """Copy a screenshot to ``$CAVEQL_TEST_ARTIFACTS`` (named after the test) when that is set.

    Returns the path to look at (the copy, or the file under ``tmp_path``) and prints it.
    """

    def keep(path: Path) -> Path:
        target_dir = os.environ.get("CAVEQL_TEST_ARTIFACTS")
        kept = path
        if target_dir:
            name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid) + path.suffix
            kept = Path(target_dir) / "browser" / name
            kept.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, kept)
        print(f"screenshot: {kept}")
        return kept

    return keep
