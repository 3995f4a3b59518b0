"""Building a Neuroglancer state from a frame: layers, annotations, where the answer is (see
:mod:`caveql.neuroglancer` for what a state holds).

>>> import pandas as pd
>>> s = state(pd.DataFrame({"pt_root_id": [7]}), image="", segmentation="precomputed://gs://b/s",
...           viewer_resolution=(4, 4, 40))
>>> s["layers"][0]["segments"]
['7']
"""

from __future__ import annotations

import gc
import re
import unicodedata
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from caveql.errors import CaveqlError, ConfigError, UnknownColumnError

__all__ = ["DEMO_IMAGE", "DEMO_SEGMENTATION", "context", "state"]

#: Placeholder sources of a local datastack (the demo has no imagery nor segmentation volume).
DEMO_IMAGE = "precomputed://https://caveql-demo.invalid/image"
DEMO_SEGMENTATION = "precomputed://https://caveql-demo.invalid/segmentation"

_IMAGE, _SEGMENTATION = "imagery", "segmentation"
# nglui's tag hotkeys: each layer asks for these (its first ten tags); Neuroglancer has one set of
# keys for the whole viewer, so a key taken by an earlier layer moves to the next free of _MORE_KEYS
_TAG_KEYS, _MORE_KEYS = "QWERTASDFG", "QWERTASDFGYUIOPHJKLZXCVBNM"


@contextmanager
def _no_gc() -> Iterator[None]:
    """No cyclic garbage collection while building: the hundreds of thousands of small dicts and
    lists of a state hold no cycles, yet would trigger collections (a third of the time)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()



# -------------------------------------------------------------------------------- the state
def state(answer: Any, *, info: Mapping[str, Any] | None = None,
          resolution: Sequence[float] | None = None, points: Sequence[str] | None = None,
          lines: bool | Sequence[str] | Sequence[Sequence[str]] = False,
          segments: str | Sequence[str] | None = None, description: str | None = None,
          tags: str | None = None, image: str | None = None, segmentation: str | None = None,
          viewer_resolution: Sequence[float] | None = None, backend: Any = None) -> dict[str, Any]:
    """The Neuroglancer state of ``answer`` (a DataFrame or a Result): see the module docstring.

    ``info``: the datastack info (``db.engine.catalog().info()``; default: what a caveql answer's
    ``attrs`` hold). ``resolution``: the positions' resolution in nm (default: the answer's, from
    its ``attrs``). ``points``: the position columns to draw (default all); ``lines``: ``True``
    (the two position columns) or pairs of them. ``segments``: the root id column(s) every
    annotation links (default: see the module docstring). ``description`` / ``tags``: columns.
    ``image`` / ``segmentation`` / ``viewer_resolution``: override the datastack's. ``backend``:
    the engine's backend, for a Result that ran without the Python API's ``attrs`` (the REPL's).

    >>> import pandas as pd
    >>> df = pd.DataFrame({"pre_pt_position_x": [1], "pre_pt_position_y": [2], "pre_pt_position_z": [3],
    ...                    "post_pt_position": [[2, 2, 3]], "pre_pt_root_id": [5], "post_pt_root_id": [6]})
    >>> s = state(df, lines=True, resolution=(4, 4, 40), image="", segmentation="precomputed://gs://b/s",
    ...           viewer_resolution=(4, 4, 40))
    >>> layer = s["layers"][-1]
    >>> layer["name"], layer["annotations"][0]["pointA"], layer["annotations"][0]["segments"]
    ('pre_pt_position-post_pt_position', [1.0, 2.0, 3.0], [['5', '6']])
    >>> state(df, info={})
    Traceback (most recent call last):
    caveql.errors.ConfigError: the answer's positions have no known resolution; help: ...
    """
    with _no_gc():
        return _state(answer, info=info, resolution=resolution, points=points, lines=lines,
                      segments=segments, description=description, tags=tags, image=image,
                      segmentation=segmentation, viewer_resolution=viewer_resolution, backend=backend)


def _state(answer: Any, *, info: Mapping[str, Any] | None = None,
           resolution: Sequence[float] | None = None, points: Sequence[str] | None = None,
           lines: bool | Sequence[str] | Sequence[Sequence[str]] = False,
           segments: str | Sequence[str] | None = None, description: str | None = None,
           tags: str | None = None, image: str | None = None, segmentation: str | None = None,
           viewer_resolution: Sequence[float] | None = None, backend: Any = None) -> dict[str, Any]:
    """:func:`state` (collecting no garbage)."""
    frame, attrs_source = _frame_of(answer)
    attrs = dict(getattr(frame, "attrs", None) or {})
    ctx = _context_of(attrs, attrs_source)
    if "segmentation_source" not in ctx and backend is not None:
        ctx = context(getattr(attrs_source, "plan", None), backend)
    info = dict(info) if info is not None else _info_of(attrs, ctx)
    positions = _position_columns(frame)
    roots = [c for c in frame.columns if _is_root_id(frame, c)]
    if frame.empty:
        raise ConfigError("the answer has no rows: there is nothing to show in Neuroglancer")
    if not positions and not roots:
        raise ConfigError("the answer has neither a position column nor a root id column to show "
                          f"(its columns: {', '.join(map(str, frame.columns))})",
                          hint="select a position (pt_position) or a root id (pt_root_id)")
    for name, chosen in (("description", description), ("tags", tags)):
        if chosen is not None:
            _check_columns(frame, [chosen], name)
    seg_columns = None if segments is None else _check_columns(
        frame, [segments] if isinstance(segments, str) else list(segments), "segments")
    for col in seg_columns or ():
        if not pd.api.types.is_integer_dtype(frame[col]):
            raise ConfigError(f"segments={col!r}: a root id column holds integers, not {frame[col].dtype}")
    drawn = _check_positions(positions, points)
    pairs = _pairs(drawn, lines)
    if (drawn or pairs) and resolution is None:
        resolution = _resolution_of(attrs, ctx)
    view_res = _viewer_resolution(viewer_resolution, info, resolution)
    dims = {a: [float(r) * 1e-9, "m"] for a, r in zip("xyz", view_res, strict=True)}
    img_src, seg_src = _sources(info, image, segmentation)

    layers: list[dict[str, Any]] = []
    if img_src:
        layers.append({"type": "image", "source": [_source(img_src, dims)], "name": _IMAGE})
    selected: list[str] = []
    if not drawn and not pairs:
        # root ids alone: select them (first appearance order, no 0 = "no segment")
        ids = pd.unique(pd.concat([frame[c].dropna() for c in roots]).to_numpy()) if roots else []
        selected = [str(int(v)) for v in ids if int(v) != 0]
    if seg_src:
        layers.append({"type": "segmentation", "source": [_source(seg_src, dims)],
                       "segments": selected, "selectedAlpha": 0.2, "notSelectedAlpha": 0.0,
                       "objectAlpha": 0.9, "segmentColors": {}, "meshSilhouetteRendering": 0.0,
                       "pick": True, "name": _SEGMENTATION})
    elif selected:
        raise ConfigError("the answer has root ids but the datastack has no segmentation source",
                          hint="pass segmentation='precomputed://...' (or graphene://...)")
    paired = {c for pair in pairs for c in pair}
    scale = None
    if resolution is not None:
        scale = np.asarray(resolution, dtype=float) / np.asarray(view_res, dtype=float)
    for name in drawn:
        if name in paired:
            continue
        segs = seg_columns if seg_columns is not None else _segments_for(name, roots)
        layers.append(_layer(frame, name, [positions[name]], segs, description, tags, scale, dims,
                             bool(seg_src)))
    for a, b in pairs:
        segs = seg_columns if seg_columns is not None else list(
            dict.fromkeys(_segments_for(a, roots) + _segments_for(b, roots)))
        layers.append(_layer(frame, f"{a}-{b}", [positions[a], positions[b]], segs, description,
                             tags, scale, dims, bool(seg_src)))
    _bind_keys(layers)
    out: dict[str, Any] = {"dimensions": dims, "layers": layers, "layout": "xy-3d",
                           "showSlices": False, "crossSectionScale": 1.0, "projectionScale": 50000.0}
    # nglui centres the view on the first annotation of each annotation layer: the last one wins
    for layer in reversed(layers):
        if layer["type"] == "annotation" and layer["annotations"]:
            first = layer["annotations"][0]
            out["position"] = list(first.get("point") or first["pointA"])
            break
    return out


def _layer(frame: pd.DataFrame, name: str, where: list[tuple[str, ...]], segs: list[str],
           description: str | None, tags: str | None, scale: np.ndarray | None,
           dims: dict[str, Any], linked: bool) -> dict[str, Any]:
    """One annotation layer: points (one position) or lines (two) of the rows with positions.
    Column work is vectorized; the one Python loop builds the annotation dicts (100,000 rows:
    benchmarks/neuroglancer.py)."""
    coords = [_coordinates(frame, cols, name) for cols in where]
    keep = np.ones(len(frame), dtype=bool)
    for c in coords:
        keep &= np.isfinite(c).all(axis=1)  # (JSON has no NaN nor infinity)
    rows = frame[keep] if not keep.all() else frame
    scaled = [c[keep] * scale if scale is not None else c[keep] for c in coords]
    n = len(rows)
    # segments: each row's nonzero root ids as strings (0 is "no cell"), each once
    per_column = [_texts(rows[col], drop_zero=True) for col in segs]
    if not per_column:
        seg_lists: list[list[str]] = [[] for _ in range(n)]
    elif len(per_column) == 1:
        seg_lists = [[v] if v is not None else [] for v in per_column[0]]
    else:
        seg_lists = [list(dict.fromkeys(v for v in row if v is not None)) for row in zip(*per_column)]
    descriptions = _texts(rows[description]) if description is not None else np.full(n, None)
    tag_values = _texts(rows[tags]) if tags is not None else np.full(n, None)
    labels = sorted({t for t in tag_values if t is not None})
    ids = _property_ids(labels)
    props = [{"id": ids[t], "type": "bool", **({"description": t} if ids[t] != t else {})}
             for t in labels]
    flags = {t: [t == u for u in labels] for t in labels}
    blank = [False] * len(labels)
    kind = "point" if len(coords) == 1 else "line"
    anno_ids = _ids(kind, scaled, seg_lists, descriptions, tag_values)
    row_props = [list(flags[t]) if t is not None else list(blank) for t in tag_values]
    segments: list[Any] = [[s] for s in seg_lists] if segs else [None] * n
    # the keys in nglui's order; a missing description or segments is dropped after
    if kind == "point":
        annotations = [{"type": "point", "id": i, "description": d, "segments": s, "props": p, "point": a}
                       for i, d, s, p, a in zip(anno_ids, descriptions, segments, row_props,
                                                scaled[0].tolist(), strict=True)]
    else:
        annotations = [{"type": "line", "id": i, "description": d, "segments": s, "props": p,
                        "pointA": a, "pointB": b}
                       for i, d, s, p, a, b in zip(anno_ids, descriptions, segments, row_props,
                                                   scaled[0].tolist(), scaled[1].tolist(), strict=True)]
    for key, values in (("description", descriptions), ("segments", segments)):
        for anno, value in zip(annotations, values, strict=True):
            if value is None:
                del anno[key]
    layer: dict[str, Any] = {
        "type": "annotation",
        "source": [{"url": "local://annotations", "transform": {"outputDimensions": dims}}],
        "annotations": annotations}
    if linked:
        layer["linkedSegmentationLayer"] = {"segments": _SEGMENTATION}
    return {**layer, "annotationProperties": props,
            "toolBindings": {k: {"type": "toggleBoolProperty", "property": p["id"]}
                             for k, p in zip(_TAG_KEYS, props, strict=False)},  # (see _bind_keys)
            "swapVisbleSegmentsOnMove": bool(segs),  # sic: neuroglancer's key
            "name": name}


def _texts(column: pd.Series, drop_zero: bool = False) -> np.ndarray:
    """A column's values as strings, ``None`` where missing (and where 0, with ``drop_zero``)."""
    text = column.astype("string").to_numpy(dtype=object, na_value=None)
    if drop_zero:
        text[(column == 0).fillna(False).to_numpy(dtype=bool)] = None
    return text


def _ids(kind: str, coords: list[np.ndarray], segs: list[list[str]], descriptions: np.ndarray,
         tags: np.ndarray) -> list[str]:
    """Annotation ids from what each annotation shows (pandas' stable row hash), ``-2``, ``-3``...
    on repeats: the same answer gives the same ids, and a row keeps its id in another answer."""
    parts = pd.DataFrame({"kind": kind, "segments": [",".join(s) for s in segs],
                          "description": descriptions, "tag": tags})
    for i, c in enumerate(coords):
        for axis in range(3):
            parts[f"{i}{axis}"] = c[:, axis]
    hashes = pd.util.hash_pandas_object(parts, index=False).to_numpy()
    text = hashes.astype(">u8").tobytes().hex()  # 16 hex digits each, in one C call
    ids = [text[i:i + 16] for i in range(0, len(text), 16)]
    repeat = pd.Series(hashes).groupby(hashes).cumcount().to_numpy()
    for i in np.flatnonzero(repeat):
        ids[i] = f"{ids[i]}-{repeat[i] + 1}"
    return ids


def _bind_keys(layers: list[dict[str, Any]]) -> None:
    """Tag hotkeys unique viewer-wide, as nglui's ``bind_tools`` allocates them: a layer keeps its
    key when free; taken ones move to the next free key, or are dropped (the tag stays usable
    from the layer's annotation panel)."""
    used: set[str] = set()
    displaced: list[tuple[dict[str, Any], Any]] = []
    for layer in layers:
        wanted = layer.get("toolBindings")
        if not wanted:
            continue
        layer["toolBindings"] = {}
        for key, value in wanted.items():
            if key in used:
                displaced.append((layer, value))
            else:
                used.add(key)
                layer["toolBindings"][key] = value
    for layer, value in displaced:
        free = next((k for k in _MORE_KEYS if k not in used), None)
        if free is not None:
            used.add(free)
            layer["toolBindings"][free] = value


def _source(url_: str, dims: dict[str, Any]) -> dict[str, Any]:
    return {"url": url_, "transform": {"outputDimensions": dims}, "subsources": {},
            "enableDefaultSubsources": True}


# ------------------------------------------------------------------------------- the columns
def _position_columns(frame: pd.DataFrame) -> dict[str, tuple[str, ...]]:
    """Position name -> its column (an array column) or its three ``_x/_y/_z`` columns."""
    out: dict[str, tuple[str, ...]] = {}
    names = [str(c) for c in frame.columns]
    for c in names:
        if c[-2:] == "_x" and f"{c[:-2]}_y" in names and f"{c[:-2]}_z" in names:
            trio = (c, f"{c[:-2]}_y", f"{c[:-2]}_z")
            if all(pd.api.types.is_numeric_dtype(frame[t]) and not pd.api.types.is_bool_dtype(frame[t])
                   for t in trio):
                out[c[:-2]] = trio
        elif frame[c].dtype == object and len(frame) and _is_array_column(frame[c]):
            out[c] = (c,)
    return out


def _is_array_column(col: pd.Series) -> bool:
    values = col.dropna()
    if values.empty:
        return False
    first = values.iloc[0]
    return isinstance(first, (list, tuple, np.ndarray)) and len(first) == 3


def _coordinates(frame: pd.DataFrame, cols: tuple[str, ...], name: str) -> np.ndarray:
    """An (n, 3) float array of a position (NaN where the row has none)."""
    try:
        if len(cols) == 3:
            return np.column_stack([frame[c].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
                                    for c in cols])
        column = frame[cols[0]]
        present = column.notna().to_numpy(dtype=bool)
        out = np.full((len(column), 3), np.nan)
        if present.any():
            out[present] = np.stack(column.to_numpy(dtype=object)[present]).astype(float)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"position column {name!r} has a value that is not three numbers") from exc
    if out.ndim != 2 or out.shape[1] != 3:
        raise ConfigError(f"position column {name!r} has a value that is not three numbers")
    return out


def _is_root_id(frame: pd.DataFrame, column: Any) -> bool:
    return (str(column).lower().endswith("root_id") and pd.api.types.is_integer_dtype(frame[column]))


def _segments_for(position: str, roots: list[str]) -> list[str]:
    """The root id column of a position (``pre_pt_position`` -> ``pre_pt_root_id``), or all."""
    stem = position[: -len("position")] if position.endswith("position") else f"{position}_"
    own = f"{stem}root_id"
    return [own] if own in roots else list(roots)


def _check_columns(frame: pd.DataFrame, wanted: list[str], option: str) -> list[str]:
    names = [str(c) for c in frame.columns]
    for w in wanted:
        if w not in names:
            raise UnknownColumnError(f"{option}={w!r}: the answer has no column {w!r} "
                                     f"(its columns: {', '.join(names)})",
                                     candidates=[n for n in names if n])
    return list(wanted)


def _check_positions(positions: dict[str, tuple[str, ...]], points: Sequence[str] | None) -> list[str]:
    if points is None:
        return list(positions)
    chosen = [points] if isinstance(points, str) else list(points)
    for p in chosen:
        if p not in positions:
            raise UnknownColumnError(f"points={p!r}: the answer has no position column {p!r}"
                                     + (f" (its positions: {', '.join(positions)})" if positions else ""),
                                     candidates=list(positions))
    return chosen


def _pairs(drawn: list[str], lines: Any) -> list[tuple[str, str]]:
    if lines is False or lines is None:
        return []
    if lines is True:
        if len(drawn) != 2:
            raise ConfigError(f"lines=True joins two position columns; the answer has {len(drawn)}"
                              + (f" ({', '.join(drawn)})" if drawn else ""),
                              hint="name the pair: lines=('pre_pt_position', 'post_pt_position')")
        return [(drawn[0], drawn[1])]
    pairs = [tuple(lines)] if lines and isinstance(lines[0], str) else [tuple(p) for p in lines]
    for pair in pairs:
        if len(pair) != 2 or any(p not in drawn for p in pair):
            raise ConfigError(f"lines={pair!r}: a line joins two of the position columns "
                              f"{', '.join(drawn) or '(none)'}")
    return [(str(a), str(b)) for a, b in pairs]


# -------------------------------------------------- where the answer is: resolution, sources
def context(plan: Any, backend: Any) -> dict[str, Any]:
    """What a state of a frame needs that the frame does not hold (:mod:`caveql.frames` keeps it
    in ``attrs["caveql"]["neuroglancer"]``): the positions' resolution (``None`` when the
    statement mixes tables of different voxels without a resolution) and the datastack's viewer
    sources. Never raises: a missing piece is left out.

    >>> context(None, None)
    {'resolution': None}
    """
    out: dict[str, Any] = {"resolution": _plan_resolution(plan, backend)}
    try:
        info = dict(backend.info()) if backend is not None else {}
    except CaveqlError:
        info = {}
    if info:
        out["image_source"] = (info.get("aligned_volume") or {}).get("image_source") or ""
        out["segmentation_source"] = info.get("segmentation_source") or ""
        res = [info.get(f"viewer_resolution_{a}") for a in "xyz"]
        out["viewer_resolution"] = [float(r) for r in res] if None not in res else None
    return out


def _plan_resolution(plan: Any, backend: Any) -> list[float] | None:
    """The statement's resolution, else the one voxel resolution of every table it reads."""
    if plan is None:
        return None
    res = getattr(getattr(plan, "logical", None), "resolution", None)
    if res is not None:
        return [float(r) for r in res]
    voxels = set()
    stack = [plan]
    try:
        while stack:
            p = stack.pop()
            stack.extend(getattr(p, "subplans", ()) or ())
            for call in getattr(p, "calls", ()):
                req = call.request
                # a live call names no version: its catalog's (caveql.frames does the same)
                version = req.version if req.version is not None else getattr(p.logical, "version", None)
                tables = [t for t, _c in req.join] if req.kind == "join" and req.join else [req.table]
                for t in tables:
                    if req.kind == "view":
                        meta = backend.views(version)[t]
                    else:
                        meta = backend.table_metadata(version, t)
                    voxels.add(tuple(float(meta[f"voxel_resolution_{a}"]) for a in "xyz"))
    except (CaveqlError, KeyError, TypeError, ValueError, AttributeError):
        return None
    return list(voxels.pop()) if len(voxels) == 1 else None


def _frame_of(answer: Any) -> tuple[pd.DataFrame, Any]:
    if isinstance(answer, pd.DataFrame):
        return answer, None
    frame = getattr(answer, "frame", None)
    if isinstance(frame, pd.DataFrame):
        return frame, answer
    raise ConfigError("a Neuroglancer state is drawn from rows; this answer has none "
                      f"({type(answer).__name__})")


def _context_of(attrs: dict[str, Any], result: Any) -> dict[str, Any]:
    mine = (attrs.get("caveql") or {}).get("neuroglancer")
    if isinstance(mine, dict):
        return mine
    if result is not None:  # a Result without attrs: its plan still knows the resolution
        res = getattr(getattr(getattr(result, "plan", None), "logical", None), "resolution", None)
        return {"resolution": [float(r) for r in res] if res is not None else None}
    return {}


def _resolution_of(attrs: dict[str, Any], ctx: dict[str, Any]) -> list[float]:
    for res in (attrs.get("dataframe_resolution"), ctx.get("resolution")):
        if isinstance(res, (list, tuple)) and len(res) == 3 and all(isinstance(r, (int, float)) for r in res):
            return [float(r) for r in res]
    raise ConfigError("the answer's positions have no known resolution",
                      hint="pass resolution=(x, y, z) in nm, or run the statement AT RESOLUTION x, y, z")


def _info_of(attrs: dict[str, Any], ctx: dict[str, Any]) -> dict[str, Any]:
    if "segmentation_source" in ctx:
        res = ctx.get("viewer_resolution")
        return {"aligned_volume": {"image_source": ctx.get("image_source", "")},
                "segmentation_source": ctx["segmentation_source"],
                **({f"viewer_resolution_{a}": r for a, r in zip("xyz", res, strict=True)} if res else {})}
    path = (attrs.get("caveql") or {}).get("path")
    if path:  # a local datastack: its info is a file
        from caveql.datastack.layout import read_info

        return read_info(Path(path))
    return {}


def _viewer_resolution(given: Sequence[float] | None, info: Mapping[str, Any],
                       resolution: Sequence[float] | None) -> list[float]:
    res = list(given) if given is not None else [info.get(f"viewer_resolution_{a}") for a in "xyz"]
    if None in res:
        if resolution is None:
            raise ConfigError("the viewer's resolution is unknown",
                              hint="pass viewer_resolution=(x, y, z) in nm, or info= (the datastack info)")
        res = list(resolution)
    if len(res) != 3 or not all(isinstance(r, (int, float)) and r > 0 for r in res):
        raise ConfigError(f"viewer_resolution={given!r}: needs three positive numbers (nm)")
    return [float(r) for r in res]


def _sources(info: Mapping[str, Any], image: str | None, segmentation: str | None) -> tuple[str, str]:
    img = image if image is not None else str((info.get("aligned_volume") or {}).get("image_source") or "")
    seg = segmentation if segmentation is not None else str(info.get("segmentation_source") or "")
    if segmentation is None and _local(seg):  # the demo: no volume to show (module docstring)
        seg = DEMO_SEGMENTATION
        img = DEMO_IMAGE if image is None else img
    if image is None and not img and not seg:
        raise ConfigError("no datastack sources to draw the answer over",
                          hint="pass info= (the datastack info), or image= and segmentation=")
    return _auth(img, image=True), _auth(seg, image=False)


def _local(source: str) -> bool:
    return urllib.parse.urlparse(source).netloc == "local"


def _auth(source: str, image: bool) -> str:
    """CAVE's graphene sources as nglui writes them (``middleauth+``: the viewer logs in)."""
    if not source.startswith("graphene://"):
        return source
    q = urllib.parse.urlparse(source)
    scheme = "https" if "https" in q.netloc else "http"
    return f"{'precomputed' if image else 'graphene'}://middleauth+{scheme}:{q.path}"


# ---------------------------------------------------------------------------------- the tags
def _property_ids(labels: list[str]) -> dict[str, str]:
    """Each tag's annotation property id, as nglui's ``build_property_ids`` makes them (a valid
    ``[a-z][a-zA-Z0-9_]*``; repeats get ``_2``, ``_3``)."""
    used: set[str] = set()
    out = {}
    for i, tag in enumerate(labels):
        base = _sanitize(tag, i)
        unique, n = base, 2
        while unique in used:
            unique, n = f"{base}_{n}", n + 1
        used.add(unique)
        out[tag] = unique
    return out


def _sanitize(label: str, index: int) -> str:
    """nglui's ``sanitize_property_id``: ``'23P'`` -> ``'tag_23p'``, ``'β-cell'`` -> ``'beta_cell'``.

    >>> _sanitize("23P", 0), _sanitize("Cell Body", 1), _sanitize("β-cell", 2), _sanitize("%", 3)
    ('tag_23p', 'cell_body', 'beta_cell', 'tag_3')
    """
    chars = []
    for ch in unicodedata.normalize("NFKD", label):
        if unicodedata.combining(ch):
            continue
        if ch.isascii():
            chars.append(ch)
            continue
        greek = re.match(r"^GREEK (?:SMALL|CAPITAL) LETTER ([A-Z]+)$", unicodedata.name(ch, ""))
        if greek:
            chars.append(f"_{greek.group(1).lower()}_")
    cleaned = re.sub(r"[-\s]+", "_", "".join(chars)).lower()
    cleaned = re.sub(r"_+", "_", re.sub(r"[^a-z0-9_]", "", cleaned)).strip("_")
    if not cleaned:
        return f"tag_{index}"
    return cleaned if cleaned[0].isalpha() else f"tag_{cleaned}"
