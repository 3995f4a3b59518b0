"""A tiny hand-made local datastack (``tiny``) whose every answer can be checked by hand.

Used by the tests and the docstring examples. Two versions: 1 (old) and 2 (latest).
Cell 5 was edited between them: its root is 905 at version 1 and 1005 at version 2
(the synapse files are shared; version 1 rewrites root ids through a root id map).

- ``cells`` (cell_type_local, 4×4×40 nm): ids 1–6 (+ an invalid row 7 never returned);
  ``BC`` = cells 2 and 5; cell 4 has root 0; cell 6 has no cell_type.
- ``nuclei`` (nucleus_detection, 8×8×40 nm): ids 10–14, bounding boxes all NULL.
- ``cell_types`` (cell_type_reference → nuclei): ids 1–4 with target ids 10, 11, 12, 14.
- ``synapses`` (synapse, 4×4×40 nm): ids 100–109, sizes 40–400 (40 · (id − 99)); copies sorted
  by pre root, by post root and (descending, to make order bugs visible) by the centre's x and
  by size.
- view ``syn_counts``: synapses per (pre, post) root pair without autapses.
- a proofreading history (``history.parquet``): 905 split into 1005 and a piece (2022-08-01,
  between the versions); after version 2, cells 3 and 6 merged by mistake (1003 + 1006 → 2002,
  2023-06-01), a piece merged in (→ 2006, 2023-07-01), and the cells split again (2003 holds
  1003's supervoxels 13 and 71003, 2004 holds 1006's 16 and the piece, 2023-09-01). Roots 1001,
  1002 and 1005 never change after version 2.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from caveql.datastack.history import Edit, write_history
from caveql.datastack.layout import (
    write_info,
    write_table_metadata,
    write_version,
    write_view,
)

__all__ = ["HOSTILE", "build_tiny"]

#: A string that must travel as data (it is the classification_system of cell 6).
HOSTILE = "it's \"ünïcødé\"; DROP TABLE cells; --"

_T0 = datetime(2020, 9, 28, 22, 40, 41, 123456)


def _pos(name: str, rows: list[tuple[int, int, int] | None]) -> dict[str, pa.Array]:
    return {f"{name}_{a}": pa.array([None if r is None else r[i] for r in rows], pa.int32())
            for i, a in enumerate("xyz")}


def _meta(name: str, schema: str, res: tuple[float, float, float], description: str,
          reference: str | None = None, notice: str | None = None) -> dict[str, object]:
    return {
        "id": sum(map(ord, name)), "aligned_volume": "tiny_volume", "schema": schema,
        "schema_type": schema, "table_name": name, "valid": True,
        "created": "2020-11-02T18:56:35.530100", "user_id": "1", "description": description,
        "notice_text": notice, "reference_table": reference, "flat_segmentation_source": "",
        "write_permission": "PRIVATE", "read_permission": "PUBLIC",
        "last_modified": "2022-10-25T19:24:28.559914", "segmentation_source": "",
        "pcg_table_name": "tiny_pcg", "last_updated": "2023-08-21T01:00:00.651639",
        "voxel_resolution_x": res[0], "voxel_resolution_y": res[1], "voxel_resolution_z": res[2],
    }


def _created(n: int) -> pa.Array:
    return pa.array([_T0.replace(second=i % 60) for i in range(n)], pa.timestamp("us"))


def build_tiny(path: str | Path) -> Path:
    """Write the tiny datastack into ``path`` (created if needed); returns the path."""
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    write_info(root, {
        "datastack_name": "tiny", "description": "A tiny hand-made datastack for caveql's tests.",
        "aligned_volume": {"name": "tiny_volume", "id": 1, "image_source": "", "description": ""},
        "synapse_table": "synapses", "soma_table": "nuclei", "analysis_database": None,
        "viewer_resolution_x": 4.0, "viewer_resolution_y": 4.0, "viewer_resolution_z": 40.0,
        "segmentation_source": "graphene://local/segmentation/table/tiny_pcg", "local_server": "",
    })
    for v, ts in ((1, "2022-02-24T08:10:00.184668"), (2, "2023-04-06T20:17:09.199182")):
        write_version(root, v, {"id": v, "datastack": "tiny", "version": v, "time_stamp": ts,
                                "valid": True, "expires_on": "2121-01-01T00:00:00",
                                "status": "AVAILABLE", "is_merged": False})
    shared = root / "shared"
    shared.mkdir(exist_ok=True)

    for v in (1, 2):
        r5 = 905 if v == 1 else 1005
        cells = pa.table({
            "id": pa.array([1, 2, 3, 4, 5, 6, 7], pa.int64()),
            "created": _created(7),
            "superceded_id": pa.array([None] * 6 + [8], pa.int64()),
            "valid": pa.array([True] * 6 + [False]),
            "classification_system": pa.array(["exc", "inh", "exc", "exc", "inh", HOSTILE, "exc"]),
            "cell_type": pa.array(["23P", "BC", "4P", "23P", "BC", None, "23P"]),
            **_pos("pt_position", [(100, 200, 10), (150, 250, 11), (200, 300, 12), (250, 350, 13),
                                   (301, 403, 15), (5, 7, 9), (100, 200, 10)]),
            "pt_supervoxel_id": pa.array([11, 12, 13, 0, 15, 16, 11], pa.int64()),
            "pt_root_id": pa.array([1001, 1002, 1003, 0, r5, 1006, 1001], pa.int64()),
        })
        tdir = root / "versions" / str(v) / "tables"
        tdir.mkdir(parents=True, exist_ok=True)
        pq.write_table(cells, tdir / "cells.parquet")
        write_table_metadata(root, v, "cells", _meta("cells", "cell_type_local", (4, 4, 40),
                                                     "Hand-made cell types."))
        nuclei = pa.table({
            "id": pa.array([10, 11, 12, 13, 14], pa.int64()),
            "created": _created(5),
            "superceded_id": pa.array([None] * 5, pa.int64()),
            "valid": pa.array([True] * 5),
            "volume": pa.array([250.5, 301.25, 30.0, 120.0, 512.0], pa.float32()),
            **_pos("pt_position", [(50, 100, 10), (75, 125, 11), (100, 150, 12), (125, 175, 13),
                                   (151, 201, 15)]),
            **_pos("bb_start_position", [None] * 5),
            **_pos("bb_end_position", [None] * 5),
            "pt_supervoxel_id": pa.array([11, 12, 13, 0, 15], pa.int64()),
            "pt_root_id": pa.array([1001, 1002, 1003, 0, r5], pa.int64()),
        })
        pq.write_table(nuclei, tdir / "nuclei.parquet")
        write_table_metadata(root, v, "nuclei", _meta("nuclei", "nucleus_detection", (8, 8, 40),
                                                      "Hand-made nuclei."))
        if v == 2:
            refs = pa.table({
                "id": pa.array([1, 2, 3, 4], pa.int64()),
                "created": _created(4),
                "superceded_id": pa.array([None] * 4, pa.int64()),
                "valid": pa.array([True] * 4),
                "target_id": pa.array([10, 11, 12, 14], pa.int64()),
                "classification_system": pa.array(["exc", "inh", "exc", "inh"]),
                "cell_type": pa.array(["23P", "BC", "4P", "BC"]),
            })
            pq.write_table(refs, tdir / "cell_types.parquet")
            write_table_metadata(root, v, "cell_types", _meta(
                "cell_types", "cell_type_reference", (4, 4, 40), "Hand-made reference cell types.",
                reference="nuclei", notice="Synthetic: for tests only."))

    # synapses: one shared file per sort order; version 1 rewrites 1005 -> 905
    pre = [1001, 1001, 1001, 1002, 1002, 1003, 1005, 1005, 0, 1001]
    post = [1002, 1002, 1003, 1001, 1005, 1003, 1001, 1002, 1001, 0]
    syn = pa.table({
        "id": pa.array(range(100, 110), pa.int64()),
        "created": _created(10),
        "superceded_id": pa.array([None] * 10, pa.int64()),
        "valid": pa.array([True] * 10),
        **_pos("pre_pt_position", [(10 * i, 20 * i, i) for i in range(10)]),
        **_pos("post_pt_position", [(10 * i + 2, 20 * i + 2, i) for i in range(10)]),
        **_pos("ctr_pt_position", [(10 * i + 1, 20 * i + 1, i) for i in range(10)]),
        "size": pa.array([40, 80, 120, 160, 200, 240, 280, 320, 360, 400], pa.float32()),
        "pre_pt_supervoxel_id": pa.array([p + 70000 if p else 0 for p in pre], pa.int64()),
        "pre_pt_root_id": pa.array(pre, pa.int64()),
        "post_pt_supervoxel_id": pa.array([p + 70000 if p else 0 for p in post], pa.int64()),
        "post_pt_root_id": pa.array(post, pa.int64()),
    })
    pq.write_table(syn.sort_by([("pre_pt_root_id", "ascending"), ("id", "ascending")]),
                   shared / "synapses.by_pre.parquet", row_group_size=3)
    pq.write_table(syn.sort_by([("post_pt_root_id", "ascending"), ("id", "ascending")]),
                   shared / "synapses.by_post.parquet", row_group_size=3)
    pq.write_table(syn.sort_by([("ctr_pt_position_x", "descending"), ("id", "ascending")]),
                   shared / "synapses.by_x.parquet", row_group_size=3)
    pq.write_table(syn.sort_by([("size", "descending"), ("id", "ascending")]),
                   shared / "synapses.by_size.parquet", row_group_size=3)
    pq.write_table(pa.table({"root_id": pa.array([1005], pa.int64()),
                             "version_root_id": pa.array([905], pa.int64())}),
                   root / "versions" / "1" / "root_id_map.parquet")
    files = [{"path": "shared/synapses.by_pre.parquet", "sorted_by": "pre_pt_root_id"},
             {"path": "shared/synapses.by_post.parquet", "sorted_by": "post_pt_root_id"},
             {"path": "shared/synapses.by_x.parquet", "sorted_by": "ctr_pt_position"},
             {"path": "shared/synapses.by_size.parquet", "sorted_by": "size"}]
    for v in (1, 2):
        storage: dict[str, object] = {"files": files}
        if v == 1:
            storage["root_id_map"] = "versions/1/root_id_map.parquet"
        write_table_metadata(root, v, "synapses", _meta("synapses", "synapse", (4, 4, 40),
                                                        "Hand-made synapses."), storage)
        write_view(root, v, "syn_counts", {
            "id": 1, "description": "Synapses per root pair, autapses removed.",
            "datastack_name": "tiny", "voxel_resolution_x": 4.0, "voxel_resolution_y": 4.0,
            "voxel_resolution_z": 40.0, "notice_text": None, "live_compatible": False,
        }, "SELECT pre_pt_root_id, post_pt_root_id, count(*) AS n_syn, sum(size) AS sum_size "
           "FROM synapses WHERE pre_pt_root_id != post_pt_root_id GROUP BY ALL")
    _history(root)
    return root


#: The tiny history's edits (see build_tiny's module docstring).
def _history(root: Path) -> None:
    def at(*a: int) -> datetime:
        return datetime(*a, tzinfo=UTC)
    write_history(root, [
        Edit(101, at(2022, 8, 1), "split", (905,), (1005, 2001), "1", (15,), (99001,), (99001,)),
        Edit(102, at(2023, 6, 1), "merge", (1003, 1006), (2002,), "2", (13,), (16,), (16,)),
        Edit(103, at(2023, 7, 1), "merge", (2002, 2005), (2006,), "1", (13,), (99002,), (99002,)),
        Edit(104, at(2023, 9, 1), "split", (2006,), (2003, 2004), "2", (13,), (16,), (16, 99002)),
    ], anchor_version=2, anchor_timestamp=at(2023, 4, 6, 20, 17, 9, 199182), base_timestamp=at(2020, 1, 1))
