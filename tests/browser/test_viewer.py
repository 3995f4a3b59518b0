"""Neuroglancer states opened in headless Chromium (issue #12): every layer loads from
loopback, and the running viewer holds exactly the points, lines and segments of the state."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.browser.conftest import Volumes, volumes_at, write_volumes
from tests.browser.harness import (
    APT_INSTALL,
    Browser,
    BrowserHarnessError,
    BrowserMissing,
    LoopbackFiles,
    Viewer,
)

# a browser that hangs fails the test instead of the CI run
pytestmark = pytest.mark.timeout(120)


def _dimensions(resolution: tuple[float, ...]) -> dict[str, list[Any]]:
    return {axis: [r * 1e-9, "m"] for axis, r in zip("xyz", resolution, strict=True)}


def hand_state(vols: Volumes, points: np.ndarray, *, segments: list[str]) -> dict[str, Any]:
    """Image + segmentation from loopback, one local point annotation layer, in voxel coordinates."""
    centre = [n / 2 for n in vols.shape]
    return {
        "dimensions": _dimensions(vols.resolution),
        "position": centre,
        "crossSectionScale": 0.12,
        "layout": "xy",
        "layers": [
            {"type": "image", "name": "em", "source": vols.image},
            {"type": "segmentation", "name": "seg", "source": vols.segmentation, "segments": segments},
            {"type": "annotation", "name": "synapses", "source": "local://annotations",
             "annotations": [{"type": "point", "id": f"p{i}", "point": [float(c) for c in p]}
                             for i, p in enumerate(points)]},
        ],
    }


def assert_png(path: Path, browser: Browser) -> None:
    """A real picture: the window's size and more than a flat fill (the volume was drawn)."""
    with Image.open(path) as image:
        assert image.format == "PNG"
        pixels = np.asarray(image.convert("RGB"))
    width, height = browser.driver.get_window_size().values()
    assert pixels.shape[1] <= width and pixels.shape[0] <= height and pixels.size > 0
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50


def test_hand_written_state_loads_every_layer(browser: Browser, volumes: Volumes, tmp_path: Path,
                                              keep_screenshot: Callable[[Path], Path]) -> None:
    rng = np.random.default_rng(12)
    # in the plane the view opens on, so the screenshot shows them
    x, y = (rng.integers(0, n, 7) for n in volumes.shape[:2])
    points = np.column_stack([x, y, np.full(7, volumes.shape[2] / 2)]).astype(float)
    state = hand_state(volumes, points, segments=["11", "33"])
    viewer = browser.open(state)

    statuses = viewer.wait_until_loaded()
    assert [(s.name, s.type, s.loaded) for s in statuses] == [
        ("em", "image", True), ("seg", "segmentation", True), ("synapses", "annotation", True)]
    assert all(src.url for s in statuses for src in s.sources)
    np.testing.assert_array_equal(viewer.points("synapses"), points)
    assert viewer.segments("seg") == {11, 33}
    assert viewer.state()["dimensions"] == state["dimensions"]

    shot = viewer.screenshot(tmp_path / "viewer.png")
    assert_png(shot, browser)
    assert keep_screenshot(shot).is_file()


def test_annotations_in_nm_read_back_in_viewer_voxels(browser: Browser, volumes: Volumes) -> None:
    # an annotation layer whose coordinates are nm (as a CAVE answer's positions are)
    nm = np.array([[40.0, 80.0, 120.0], [4.0, 256.0, 0.0]])
    state = hand_state(volumes, np.empty((0, 3)), segments=["22"])
    state["layers"][2] = {
        "type": "annotation", "name": "nm",
        "source": {"url": "local://annotations",
                   "transform": {"outputDimensions": _dimensions((1.0, 1.0, 1.0))}},
        "annotations": [
            {"type": "point", "id": "a", "point": nm[0].tolist()},
            {"type": "line", "id": "b", "pointA": nm[0].tolist(), "pointB": nm[1].tolist()},
        ],
    }
    viewer = browser.open(state)

    voxels = nm / np.array(volumes.resolution)
    np.testing.assert_allclose(viewer.points("nm"), voxels[:1], rtol=1e-12)
    np.testing.assert_allclose(viewer.lines("nm"), voxels[None], rtol=1e-12)
    assert viewer.segments("seg") == {22}


def test_hidden_segments_are_not_visible(browser: Browser, volumes: Volumes) -> None:
    viewer = browser.open(hand_state(volumes, np.zeros((1, 3)), segments=["11", "!22"]))
    assert viewer.segments("seg") == {11}
    assert viewer.segments("seg", visible_only=False) == {11, 22}


def test_a_remote_source_fails_naming_the_layer(browser: Browser, volumes: Volumes) -> None:
    # only loopback resolves in the harness's Chromium: a layer on the internet cannot load
    state = hand_state(volumes, np.zeros((1, 3)), segments=["11"])
    state["layers"][0]["source"] = "precomputed://https://storage.example.org/em"
    with pytest.raises(BrowserHarnessError, match=r"'em' \(image\): .*storage\.example\.org"):
        browser.open(state)


def test_a_wrong_layer_kind_is_named(browser: Browser, volumes: Volumes) -> None:
    viewer: Viewer = browser.open(hand_state(volumes, np.zeros((1, 3)), segments=["11"]))
    with pytest.raises(BrowserHarnessError, match="'em' is a image layer, not an annotation layer"):
        viewer.points("em")
    with pytest.raises(BrowserHarnessError, match=r"no layer 'nope'; the viewer has \['em', 'seg', 'synapses'\]"):
        viewer.layer("nope")


@pytest.mark.parametrize("variable", ["CAVEQL_CHROMIUM", "CAVEQL_CHROMEDRIVER"])
def test_a_missing_browser_fails_with_the_install_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                          variable: str) -> None:
    monkeypatch.setenv(variable, str(tmp_path / "absent"))
    with pytest.raises(BrowserMissing, match=f"{variable}=.*absent is not an executable; install with: "
                                             + re.escape(APT_INSTALL)):
        Browser()


# ------------------------------------------------------------------- caveql answers on the demo
# The answers' positions in nm (the connection's resolution), so the state converts them to the
# viewer's voxels (the datastack's viewer_resolution_*): the test checks that conversion too.
ANSWER_RESOLUTION = (1.0, 1.0, 1.0)


@pytest.fixture(scope="module")
def demo_db(demo_path: str) -> Iterator[Any]:
    import caveql

    with caveql.connect(path=demo_path, resolution=ANSWER_RESOLUTION) as db:
        yield db


@pytest.fixture(scope="module")
def root_id(demo_db: Any) -> int:
    """The demo's busiest presynaptic root id (0 is "no segment")."""
    top = demo_db.query("SELECT pre_pt_root_id, COUNT(*) AS n FROM synapses_pni_2 WHERE pre_pt_root_id <> 0 "
                        "GROUP BY pre_pt_root_id ORDER BY n DESC, pre_pt_root_id LIMIT 1")
    return int(top.pre_pt_root_id.iloc[0])


def viewer_resolution(db: Any) -> np.ndarray:
    info = db.engine.catalog().info()
    return np.array([info[f"viewer_resolution_{a}"] for a in "xyz"], dtype=float)


def open_answer(browser: Browser, tmp_path: Path, answer: Any, **options: Any) -> tuple[Viewer, dict[str, Any]]:
    """The state caveql builds for ``answer``, with loopback volumes (painted with the answer's root
    ids, centred where the view opens) as its image and segmentation, opened in the browser."""
    from caveql.neuroglancer import state as ng_state

    ids = tuple(sorted({int(v) for c in answer.columns if str(c).endswith("root_id")
                        for v in answer[c].dropna() if int(v) != 0}))
    folder = tmp_path / "volumes"
    folder.mkdir()
    with LoopbackFiles(folder) as files:
        vols = volumes_at(files, ids)
        state = ng_state(answer, image=vols.image, segmentation=vols.segmentation, **options)
        centre = np.floor(state.get("position", np.array(vols.shape) / 2)).astype(int)
        x, y, z = (int(c) for c in centre - np.array(vols.shape) // 2)
        write_volumes(folder, ids, offset=(x, y, z))
        viewer = browser.open(state)
        viewer.screenshot(tmp_path / "viewer.png")  # while the files are still served
    return viewer, state


def positions(answer: Any, column: str, db: Any) -> np.ndarray:
    """An answer's position column in the viewer's voxels."""
    nm = np.stack(answer[column].to_numpy()).astype(float) * np.array(ANSWER_RESOLUTION)
    return nm / viewer_resolution(db)


def test_a_caveql_answer_opens_with_exactly_its_points(
        browser: Browser, demo_db: Any, root_id: int, tmp_path: Path,
        keep_screenshot: Callable[[Path], Path]) -> None:
    answer = demo_db.query("SELECT id, pre_pt_root_id, post_pt_root_id, pre_pt_position, post_pt_position "
                           "FROM synapses_pni_2 WHERE pre_pt_root_id = :r ORDER BY id LIMIT 25", r=root_id)
    assert len(answer) == 25
    viewer, _ = open_answer(browser, tmp_path, answer)

    assert [(s.name, s.loaded) for s in viewer.layer_status()] == [
        ("imagery", True), ("segmentation", True), ("pre_pt_position", True), ("post_pt_position", True)]
    for column in ("pre_pt_position", "post_pt_position"):
        np.testing.assert_allclose(viewer.points(column), positions(answer, column, demo_db), rtol=1e-12)
        roots = answer[column.replace("position", "root_id")]
        assert viewer.annotation_segments(column) == [{int(r)} - {0} for r in roots]
    assert_png(tmp_path / "viewer.png", browser)
    assert keep_screenshot(tmp_path / "viewer.png").is_file()


def test_a_caveql_answer_as_lines_links_both_root_ids(browser: Browser, demo_db: Any, root_id: int,
                                                      tmp_path: Path,
                                                      keep_screenshot: Callable[[Path], Path]) -> None:
    answer = demo_db.query("SELECT pre_pt_root_id, post_pt_root_id, pre_pt_position, post_pt_position "
                           "FROM synapses_pni_2 WHERE pre_pt_root_id = :r ORDER BY id LIMIT 10", r=root_id)
    viewer, _ = open_answer(browser, tmp_path, answer, lines=True)

    layer = "pre_pt_position-post_pt_position"
    assert [(s.name, s.loaded) for s in viewer.layer_status()] == [
        ("imagery", True), ("segmentation", True), (layer, True)]
    expected = np.stack([positions(answer, "pre_pt_position", demo_db),
                         positions(answer, "post_pt_position", demo_db)], axis=1)
    np.testing.assert_allclose(viewer.lines(layer), expected, rtol=1e-12)
    assert viewer.annotation_segments(layer) == [
        {int(a), int(b)} - {0} for a, b in zip(answer.pre_pt_root_id, answer.post_pt_root_id, strict=True)]
    assert keep_screenshot(tmp_path / "viewer.png").is_file()


def test_a_caveql_answer_of_root_ids_selects_them(browser: Browser, demo_db: Any, root_id: int,
                                                  tmp_path: Path) -> None:
    answer = demo_db.query("SELECT DISTINCT post_pt_root_id FROM synapses_pni_2 WHERE pre_pt_root_id = :r "
                           "ORDER BY post_pt_root_id LIMIT 6", r=root_id)
    viewer, _ = open_answer(browser, tmp_path, answer)

    assert [(s.name, s.loaded) for s in viewer.layer_status()] == [("imagery", True), ("segmentation", True)]
    assert viewer.segments("segmentation") == {int(v) for v in answer.post_pt_root_id} - {0}
    assert len(viewer.segments("segmentation")) >= 2
