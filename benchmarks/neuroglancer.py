"""Neuroglancer state benchmark: 100,000 synapses to a state, caveql against nglui 4.x.

    .venv/bin/python benchmarks/neuroglancer.py [--rows N] [--repeat N]

The frame is shaped as caveql answers a synapse query (``pre_pt_position`` / ``post_pt_position``
as array columns, nullable Int64 root ids, a string ``cell_type`` with ten values), drawn with
a fixed seed. Two states of it are built: points (a layer per position, linked to the row's root
id, tagged by cell type) and lines (pre to post, linked to both root ids). Each is timed as
caveql's ``neuroglancer(df, path=...)`` (state, JSON, file: what ``df.cql.neuroglancer`` does),
and as nglui's ``ViewerState`` with the same layers + ``to_json_string``, written to a file;
"dict only" is caveql's ``state`` alone (no JSON, no file). Times are CPU time
(``time.process_time``), median of ``--repeat`` runs after one warm-up. Figures go into
docs/performance.md, section "Neuroglancer states".
"""

from __future__ import annotations

import argparse
import tempfile
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

# this file's folder must not be on the path: its name would hide the neuroglancer package nglui uses
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))

from caveql import neuroglancer as ng  # noqa: E402

INFO = {"aligned_volume": {"image_source": "precomputed://https://bucket.example.org/em"},
        "segmentation_source": "graphene://https://cave.example.org/segmentation/table/pcg",
        "viewer_resolution_x": 4.0, "viewer_resolution_y": 4.0, "viewer_resolution_z": 40.0}
TYPES = ["23P", "4P", "5P-IT", "5P-ET", "6P-IT", "BC", "MC", "BPC", "NGC", "unsure"]


def synapses(rows: int, seed: int = 0) -> pd.DataFrame:
    """``rows`` synapses as caveql answers them (see the module docstring)."""
    rng = np.random.default_rng(seed)
    pre = rng.integers([0, 0, 0], [400_000, 300_000, 20_000], size=(rows, 3))
    post = pre + rng.integers(-50, 50, size=(rows, 3))
    cells = 864691135000000000 + rng.integers(0, 50_000, size=(rows, 2))
    return pd.DataFrame({
        "id": pd.array(np.arange(rows), dtype="Int64"),
        "pre_pt_position": list(pre), "post_pt_position": list(post),
        "pre_pt_root_id": pd.array(cells[:, 0], dtype="Int64"),
        "post_pt_root_id": pd.array(cells[:, 1], dtype="Int64"),
        "cell_type": pd.array(rng.choice(TYPES, size=rows), dtype="string"),
    })


def caveql(df: pd.DataFrame, lines: bool, path: Path) -> int:
    """caveql's state, as ``df.cql.neuroglancer(path=...)`` makes it: built, JSON, written."""
    view = ng.neuroglancer(df, path=path, info=INFO, resolution=(8, 8, 40), lines=lines, tags="cell_type")
    assert view.path is not None
    return path.stat().st_size


def nglui(df: pd.DataFrame, lines: bool, path: Path) -> int:
    """nglui's state with the same layers: built, JSON (``to_json_string``), written."""
    return path.write_text(_nglui(df, lines))


def _nglui(df: pd.DataFrame, lines: bool) -> str:
    from nglui.statebuilder import ViewerState

    vs = ViewerState(dimensions=[4, 4, 40], infer_coordinates=False)
    vs.add_image_layer(INFO["aligned_volume"]["image_source"], name="imagery")
    vs.add_segmentation_layer(INFO["segmentation_source"], name="segmentation")
    if lines:
        name = "pre_pt_position-post_pt_position"
        vs.add_annotation_layer(name, resolution=[4, 4, 40], linked_segmentation="segmentation")
        vs.add_lines(df, name=name, point_a_column="pre_pt_position", point_b_column="post_pt_position",
                     segment_column="both", tag_column="cell_type", data_resolution=[8, 8, 40])
    else:
        for p in ("pre", "post"):
            vs.add_annotation_layer(f"{p}_pt_position", resolution=[4, 4, 40],
                                    linked_segmentation="segmentation")
            vs.add_points(df, name=f"{p}_pt_position", point_column=f"{p}_pt_position",
                          segment_column=f"{p}_pt_root_id", tag_column="cell_type",
                          data_resolution=[8, 8, 40])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nglui renames tags such as '23P'
        return vs.to_json_string(compact=True)


def median_cpu(fn: Callable[[], object], repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    df = synapses(args.rows)
    with_both = df.assign(both=[list(dict.fromkeys(p)) for p in
                                zip(df.pre_pt_root_id, df.post_pt_root_id, strict=True)])
    print(f"{args.rows:,} synapses, CPU seconds (median of {args.repeat})")
    print(f"{'state':<8} {'caveql':>8} {'nglui':>8} {'nglui/caveql':>13} {'JSON MB':>8} {'dict only':>10}")
    tmp = Path(tempfile.mkdtemp())
    for label, mine, theirs in (("points", lambda: caveql(df, False, tmp / "a.json"),
                                 lambda: nglui(df, False, tmp / "b.json")),
                                ("lines", lambda: caveql(df, True, tmp / "a.json"),
                                 lambda: nglui(with_both, True, tmp / "b.json"))):
        a = median_cpu(mine, args.repeat)
        only = median_cpu(lambda: ng.state(df, info=INFO, resolution=(8, 8, 40), lines=label == "lines",
                                           tags="cell_type"), args.repeat)
        try:
            b: float | None = median_cpu(theirs, max(1, args.repeat // 2))
        except ImportError:
            b = None  # nglui is a test dependency
        size = mine() / 1e6
        ratio = f"{b / a:13.1f}" if b is not None else f"{'(no nglui)':>13}"
        theirs_s = b if b is not None else float("nan")
        print(f"{label:<8} {a:8.3f} {theirs_s:8.3f} {ratio} {size:8.1f} {only:10.3f}")


if __name__ == "__main__":
    main()
