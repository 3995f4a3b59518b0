"""Open Neuroglancer states in a real browser and read back what the running viewer holds.

One entry point, :func:`open_viewer`: it serves the web client that the ``neuroglancer``
Python package ships (its own loopback server, as neuroglancer's own browser tests do),
drives headless Chromium through Selenium and Debian's ``chromedriver``, restores the state
in the page, and returns a :class:`Viewer` handle that reads the *live* viewer: its state as
the client serialises it (``viewer.state.toJSON()``), every layer's load status, the
annotation layers' points and lines, the segmentation layers' segments, and screenshots.

Nothing may come from the internet: Chromium resolves only 127.0.0.1 (every other host name
fails to resolve), so a layer whose source is remote fails to load and the test says which.
Volumes for image/segmentation layers are written by :func:`write_precomputed` (the
``precomputed`` format: an ``info`` JSON and raw chunks) and served by :class:`LoopbackFiles`.

A missing prerequisite raises :class:`BrowserMissing` naming the command that installs it;
the tests fail with it (never skip).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np

APT_INSTALL = "apt-get install -y chromium chromium-driver"
PIP_INSTALL = "python -m pip install 'neuroglancer>=2.41' 'selenium>=4.20'"
# A chromium build runs as root (CI) only without its sandbox; software WebGL (no GPU in CI)
# needs SwiftShader, which Chromium no longer falls back to on its own.
CHROMIUM_ARGS = (
    "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu-sandbox",
    "--enable-unsafe-swiftshader", "--use-angle=swiftshader",
    # the viewer must not fetch anything from the internet: only loopback resolves
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    "--no-first-run", "--no-default-browser-check", "--disable-extensions",
)

# Reads every layer's status from the live client: ready (all its sources settled and
# visible chunks loaded) and each data source's load state or error message.
_STATUS_JS = """
const v = window.viewer;
if (v === undefined) return null;
return {
  ready: v.isReady(),
  layers: v.layerManager.managedLayers.map((l) => ({
    name: l.name,
    type: l.layer ? l.layer.type : null,
    ready: !!l.isReady(),
    sources: l.layer ? l.layer.dataSources.map((s) => ({
      url: s.spec.url,
      error: s.loadState === undefined || s.loadState.error === undefined ? null
        : String(s.loadState.error.message || s.loadState.error),
      loaded: s.loadState !== undefined && s.loadState.error === undefined,
    })) : [],
  })),
};
"""


class BrowserHarnessError(RuntimeError):
    """The browser harness could not do what was asked (a layer failed, a wait timed out)."""


class BrowserMissing(BrowserHarnessError):
    """A prerequisite (Chromium, chromedriver, a Python package) is missing; says how to install it."""


@dataclass(frozen=True)
class SourceStatus:
    """One data source of a layer, as the client sees it."""

    url: str
    loaded: bool
    error: str | None


@dataclass(frozen=True)
class LayerStatus:
    """One layer of the running viewer: its name, type, readiness and data sources."""

    name: str
    type: str | None
    ready: bool
    sources: tuple[SourceStatus, ...]

    @property
    def loaded(self) -> bool:
        """Ready, and every data source loaded without an error."""
        return self.ready and all(s.loaded and s.error is None for s in self.sources)

    def describe(self) -> str:
        """One line for an error message: ``name (type): state``."""
        errors = [f"{s.url}: {s.error}" for s in self.sources if s.error]
        state = "; ".join(errors) if errors else ("loaded" if self.loaded else "still loading")
        return f"{self.name!r} ({self.type}): {state}"


def _strip_nulls(value: Any) -> Any:
    """The client's ``toJSON`` writes ``null`` for every default; drop them, as its URLs do.

    >>> _strip_nulls({"a": None, "b": [1, {"c": None, "d": 2}]})
    {'b': [1, {'d': 2}]}
    """
    if isinstance(value, dict):
        return {k: _strip_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip_nulls(v) for v in value]
    return value


def _in_metres(scale: float, unit: str) -> float:
    """A coordinate-space entry ``[scale, unit]`` as one number in the base unit (m or s)."""
    prefixes = {"": 1.0, "k": 1e3, "c": 1e-2, "m": 1e-3, "u": 1e-6, "µ": 1e-6, "n": 1e-9, "p": 1e-12}
    base = unit[-1:] if unit else ""
    prefix = unit[:-1] if unit else ""
    if base not in ("m", "s", "") or prefix not in prefixes:
        raise BrowserHarnessError(f"unknown unit {unit!r} in a coordinate space")
    return float(scale) * prefixes[prefix]


def to_dimensions(points: np.ndarray, source: Mapping[str, Sequence[Any]],
                  target: Mapping[str, Sequence[Any]]) -> np.ndarray:
    """Convert coordinates from one Neuroglancer coordinate space to another (by dimension name).

    >>> to_dimensions(np.array([[1.0, 2.0, 3.0]]), {"x": [1e-9, "m"], "y": [1e-9, "m"], "z": [1e-9, "m"]},
    ...               {"x": [4, "nm"], "y": [4, "nm"], "z": [40, "nm"]}).round(9).tolist()
    [[0.25, 0.5, 0.075]]
    """
    names = list(source)
    if sorted(names) != sorted(target):
        raise BrowserHarnessError(f"dimensions {names} do not match the viewer's {list(target)}")
    order = [names.index(n) for n in target]
    # one ratio per axis (exactly 1.0 for equal units), so same-unit coordinates come back unchanged
    ratios = np.array([_in_metres(*source[n]) / _in_metres(*target[n]) for n in target])
    return np.asarray(points, dtype=float)[..., order] * ratios


def write_precomputed(folder: Path | str, data: np.ndarray, *, kind: str,
                      resolution: Sequence[float], voxel_offset: Sequence[int] = (0, 0, 0)) -> Path:
    """Write ``data`` (x, y, z) as a one-scale, one-chunk ``precomputed`` volume with raw encoding.

    ``kind`` is ``"image"`` or ``"segmentation"``; ``resolution`` is nm per voxel.

    >>> import tempfile
    >>> d = write_precomputed(tempfile.mkdtemp(), np.ones((2, 3, 1), np.uint64), kind="segmentation",
    ...                       resolution=[4, 4, 40])
    >>> sorted(p.name for p in d.rglob("*"))
    ['0-2_0-3_0-1', 'info', 's0']
    """
    if data.ndim != 3:
        raise BrowserHarnessError(f"a volume is (x, y, z); got shape {data.shape}")
    folder = Path(folder)
    (folder / "s0").mkdir(parents=True, exist_ok=True)
    size = [int(n) for n in data.shape]
    info = {
        "@type": "neuroglancer_multiscale_volume", "type": kind, "data_type": data.dtype.name,
        "num_channels": 1,
        "scales": [{"key": "s0", "size": size, "resolution": [float(r) for r in resolution],
                    "voxel_offset": [int(o) for o in voxel_offset], "chunk_sizes": [size],
                    "encoding": "raw"}],
    }
    (folder / "info").write_text(json.dumps(info))
    name = "_".join(f"{o}-{o + n}" for o, n in zip(voxel_offset, size, strict=True))
    # raw chunks are little-endian, x fastest (Fortran order)
    (folder / "s0" / name).write_bytes(data.astype(data.dtype.newbyteorder("<")).tobytes(order="F"))
    return folder


class LoopbackFiles:
    """Serve a folder over HTTP on 127.0.0.1 with CORS (neuroglancer's own static file server).

    >>> import tempfile
    >>> with LoopbackFiles(tempfile.mkdtemp()) as files:
    ...     files.url.startswith("http://127.0.0.1:")
    True
    """

    def __init__(self, folder: Path | str) -> None:
        _require_python_packages()
        import neuroglancer.static_file_server

        self._server = neuroglancer.static_file_server.StaticFileServer(
            str(folder), bind_address="127.0.0.1", daemon=True)
        self.url: str = self._server.url

    def close(self) -> None:
        """Stop serving."""
        self._server.request_stop()
        self._server.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _require_python_packages() -> None:
    missing = []
    for name in ("neuroglancer", "selenium"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise BrowserMissing(f"Python package(s) {', '.join(missing)} missing; install with: {PIP_INSTALL}")


def _executables() -> tuple[str, str]:
    """Chromium and chromedriver (``CAVEQL_CHROMIUM``/``CAVEQL_CHROMEDRIVER`` override the search)."""
    found = []
    for env, names in (("CAVEQL_CHROMIUM", ("chromium", "chromium-browser")),
                       ("CAVEQL_CHROMEDRIVER", ("chromedriver",))):
        given = os.environ.get(env)
        path = (given if given and os.access(given, os.X_OK) else None) if given else next(
            (p for p in map(shutil.which, names) if p), None)
        if path is None:
            where = f"{env}={given} is not an executable" if given else f"{names[0]} is not on PATH"
            raise BrowserMissing(f"{where}; install with: {APT_INSTALL}")
        found.append(path)
    return found[0], found[1]


def _statuses(raw: dict[str, Any] | None) -> list[LayerStatus]:
    """The layer statuses of one ``_STATUS_JS`` answer (``None``: the client is not up yet)."""
    if raw is None:
        return []
    return [LayerStatus(name=layer["name"], type=layer["type"], ready=layer["ready"],
                        sources=tuple(SourceStatus(**s) for s in layer["sources"])) for layer in raw["layers"]]


class Browser:
    """Headless Chromium and the neuroglancer client's loopback server; one per test session.

    Use :meth:`open` (or :func:`open_viewer`) to load a state; :meth:`close` ends both.
    """

    def __init__(self, *, window_size: tuple[int, int] = (1200, 800), timeout: float = 30.0) -> None:
        _require_python_packages()
        chromium, chromedriver = _executables()
        import neuroglancer
        from selenium import webdriver
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.chrome.service import Service

        self.timeout = timeout
        neuroglancer.set_server_bind_address("127.0.0.1")
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for arg in (*CHROMIUM_ARGS, f"--window-size={window_size[0]},{window_size[1]}"):
            options.add_argument(arg)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        try:
            # an explicit driver path: Selenium Manager would try to download one
            self.driver = webdriver.Chrome(options=options, service=Service(chromedriver))
        except WebDriverException as e:
            raise BrowserHarnessError(f"Chromium did not start ({chromium}, {chromedriver}): {e.msg}") from e
        self.driver.set_script_timeout(timeout)
        self.driver.set_page_load_timeout(timeout)

    def open(self, state: Mapping[str, Any] | str, *, wait: bool = True) -> Viewer:
        """Load ``state`` (a dict or JSON text) into a fresh viewer page; wait until every layer loaded."""
        import neuroglancer

        restored = json.loads(state) if isinstance(state, str) else dict(state)
        ng = neuroglancer.Viewer()  # a fresh page (own token): no state left from the last test
        self.driver.get(ng.get_viewer_url())
        viewer = Viewer(self, ng)
        viewer._wait(lambda: self.driver.execute_script("return window.viewer !== undefined"),
                     "the neuroglancer client to start")
        # what the client does with a URL's #!{state}: reset, then restore
        self.driver.execute_script(
            "window.viewer.state.reset(); window.viewer.state.restoreState(arguments[0]);", restored)
        if wait:
            viewer.wait_until_loaded()
        return viewer

    def console_errors(self) -> list[str]:
        """Messages the page logged at level SEVERE since the last call."""
        return [e["message"] for e in self.driver.get_log("browser") if e.get("level") == "SEVERE"]

    def close(self) -> None:
        """Quit Chromium and stop the neuroglancer server."""
        import neuroglancer

        try:
            self.driver.quit()
        finally:
            neuroglancer.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Viewer:
    """A state opened in the browser; every method reads the running client."""

    def __init__(self, browser: Browser, ng: Any) -> None:
        self.browser = browser
        self.driver = browser.driver
        self._ng = ng

    def _wait(self, ready: Any, what: str, timeout: float | None = None) -> Any:
        deadline = time.monotonic() + (timeout or self.browser.timeout)
        while True:
            value = ready()
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserHarnessError(f"timed out after {timeout or self.browser.timeout:.0f} s "
                                          f"waiting for {what}")
            time.sleep(0.05)

    def state(self) -> dict[str, Any]:
        """The live state as the client serialises it (defaults dropped), e.g. ``state()["layers"]``."""
        return _strip_nulls(self.driver.execute_script("return window.viewer.state.toJSON();"))

    def layer_status(self) -> list[LayerStatus]:
        """Every layer's status, in the viewer's order."""
        return _statuses(self.driver.execute_script(_STATUS_JS))

    def wait_until_loaded(self, timeout: float | None = None) -> list[LayerStatus]:
        """Wait until the viewer is ready (every layer loaded, visible chunks drawn); a layer that
        fails raises :class:`BrowserHarnessError` at once, naming it and the error."""

        def check() -> list[LayerStatus] | None:
            raw = self.driver.execute_script(_STATUS_JS)
            statuses = _statuses(raw)
            failed = [s for s in statuses if any(src.error for src in s.sources)]
            if failed:
                raise BrowserHarnessError("layers failed to load: " + "; ".join(s.describe() for s in failed))
            return statuses if raw and raw["ready"] and all(s.loaded for s in statuses) else None

        try:
            return self._wait(check, "every layer to load", timeout)
        except BrowserHarnessError as e:
            if "timed out" not in str(e):
                raise
            pending = "; ".join(s.describe() for s in self.layer_status() if not s.loaded) or "the display"
            errors = self.browser.console_errors()
            raise BrowserHarnessError(f"{e}: {pending}" + (f"; console: {errors[:5]}" if errors else "")) from e

    def layer(self, name: str) -> dict[str, Any]:
        """The live JSON of the layer called ``name``."""
        layers = self.state().get("layers", [])
        for layer in layers:
            if layer.get("name") == name:
                return layer
        raise BrowserHarnessError(f"no layer {name!r}; the viewer has {[l.get('name') for l in layers]}")

    def annotations(self, name: str) -> list[dict[str, Any]]:
        """The annotations the annotation layer ``name`` holds (the client's parsed copy)."""
        layer = self.layer(name)
        if layer.get("type") != "annotation":
            raise BrowserHarnessError(f"layer {name!r} is a {layer.get('type')} layer, not an annotation layer")
        return list(layer.get("annotations", []))

    def _to_viewer(self, name: str, coords: np.ndarray) -> np.ndarray:
        """Annotation coordinates of layer ``name`` in the viewer's global coordinates."""
        state = self.state()
        source = self.layer(name).get("source")
        if isinstance(source, list):  # several sources: the annotations are the first's
            source = source[0] if source else None
        transform = source.get("transform", {}) if isinstance(source, dict) else {}
        if "matrix" in transform:
            raise BrowserHarnessError(f"layer {name!r} has an affine transform; only unit scaling is read back")
        space = transform.get("outputDimensions") or state["dimensions"]
        if "inputDimensions" in transform:
            # the client writes the annotations' own units as inputDimensions ("0", "1", ...),
            # matched by position to the output dimensions
            space = dict(zip(space, transform["inputDimensions"].values(), strict=True))
        return to_dimensions(coords, space, state["dimensions"])

    def points(self, name: str) -> np.ndarray:
        """Point annotations of layer ``name`` as an (n, rank) array in the viewer's coordinates."""
        pts = [a["point"] for a in self.annotations(name) if a.get("type") == "point"]
        rank = len(self.state()["dimensions"])
        return self._to_viewer(name, np.array(pts, dtype=float).reshape(len(pts), rank))

    def lines(self, name: str) -> np.ndarray:
        """Line annotations of layer ``name`` as an (n, 2, rank) array in the viewer's coordinates."""
        pairs = [[a["pointA"], a["pointB"]] for a in self.annotations(name) if a.get("type") == "line"]
        rank = len(self.state()["dimensions"])
        return self._to_viewer(name, np.array(pairs, dtype=float).reshape(len(pairs), 2, rank))

    def annotation_segments(self, name: str) -> list[set[int]]:
        """The segment ids each annotation of layer ``name`` links to, in the layer's order."""
        # the state writes them as one list per linked segmentation layer: [["id", ...]]
        return [{int(s) for group in a.get("segments", []) for s in ([group] if isinstance(group, str) else group)}
                for a in self.annotations(name)]

    def segments(self, name: str, *, visible_only: bool = True) -> set[int]:
        """The segment ids selected in segmentation layer ``name`` (``!id`` marks a hidden one)."""
        layer = self.layer(name)
        if layer.get("type") != "segmentation":
            raise BrowserHarnessError(f"layer {name!r} is a {layer.get('type')} layer, not a segmentation layer")
        ids = [str(s) for s in layer.get("segments", [])]
        return {int(s.lstrip("!")) for s in ids if not (visible_only and s.startswith("!"))}

    def screenshot(self, path: Path | str) -> Path:
        """Save a PNG of the whole page (viewer panels and layer bar) to ``path``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not self.driver.save_screenshot(str(path)):
            raise BrowserHarnessError(f"Chromium could not write a screenshot to {path}")
        return path


@contextmanager
def open_viewer(state: Mapping[str, Any] | str, *, browser: Browser | None = None,
                timeout: float = 30.0) -> Iterator[Viewer]:
    """Open ``state`` in headless Chromium and yield a :class:`Viewer` once every layer loaded.

    Without ``browser`` a browser is started for this call and quit after it.

    >>> state = {"dimensions": {"x": [1e-9, "m"], "y": [1e-9, "m"], "z": [1e-9, "m"]},
    ...          "layers": [{"type": "annotation", "name": "pts", "source": "local://annotations",
    ...                      "annotations": [{"type": "point", "id": "1", "point": [1, 2, 3]}]}]}
    >>> with open_viewer(state) as viewer:
    ...     [s.loaded for s in viewer.layer_status()], viewer.points("pts").tolist()
    ([True], [[1.0, 2.0, 3.0]])
    """
    own = browser is None
    active = Browser(timeout=timeout) if browser is None else browser
    try:
        yield active.open(state)
    finally:
        if own:
            active.close()
