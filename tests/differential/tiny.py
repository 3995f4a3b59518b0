"""A tiny hand-made datastack in the documented folder format (docs/datastacks.md).

Small enough that the oracle's answers on it can be computed by hand: it checks the
oracle itself (valid rows only, reference merges, root-id maps, position rescaling)
and lets the generator's SQL be exercised without the demo.

Version 1 has ``nuc`` (soma table), ``syn`` (synapse table) and ``ct`` (a
reference table on ``nuc``) and the view ``pairs``; version 2 shares the files and renames root 1001 to
2001 through a ``root_id_map``.

>>> import tempfile
>>> root = build_tiny(tempfile.mkdtemp())
>>> sorted(p.name for p in (root / "versions").iterdir())
['1', '2']
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["build_tiny", "NUC", "SYN", "CT"]

R = 864691135000000000  # root ids as big as real ones, to catch float round trips

#: nucleus rows: id, valid, volume, (x, y, z) voxels, supervoxel, root
NUC = [
    (10, True, 250.5, (100, 200, 30), 5, R + 1001),
    (11, True, 80.25, (101, 205, 31), 6, R + 1002),
    (12, False, 300.0, (150, 250, 35), 7, R + 1003),  # invalid: never visible
    (13, True, 410.0, (7, 3, 1), 0, 0),
    (14, True, 120.75, (99, 199, 29), 8, R + 1002),  # a second nucleus on root 1002
]
#: synapse rows: id, valid, pre (x, y, z), pre root, post (x, y, z), post root, size
SYN = [
    (1, True, (100, 200, 30), R + 1001, (102, 202, 30), R + 1002, 400.0),
    (2, True, (100, 201, 30), R + 1001, (103, 203, 31), R + 1002, 88.0),
    (3, True, (5, 5, 5), R + 1002, (6, 6, 6), R + 1001, 1200.0),
    (4, False, (1, 1, 1), R + 1001, (1, 1, 1), R + 1001, 4.0),  # invalid autapse
    (5, True, (3, 3, 3), R + 1001, (3, 3, 3), R + 1001, 12.0),  # valid autapse
    (6, True, (9, 9, 9), R + 1003, (9, 9, 10), 0, 36.0),
]
#: cell-type reference rows: id, valid, target_id, classification_system, cell_type
CT = [
    (1, True, 10, "excitatory", "23P"),
    (2, True, 11, "inhibitory", "BC"),
    (3, True, 12, "inhibitory", "BC"),  # target invalid: the merge drops it
    (4, False, 13, "nonneuron", "astrocyte"),  # invalid itself
    (5, True, 14, "inhibitory", "MC"),
]


def _positions(name: str, values: list[tuple[int, int, int] | None]) -> dict[str, pa.Array]:
    return {f"{name}_{a}": pa.array([None if v is None else v[i] for v in values], pa.int32())
            for i, a in enumerate("xyz")}


def _write(path: Path, columns: dict[str, pa.Array]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), path)


def _meta(path: Path, data: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def build_tiny(root: str | Path) -> Path:
    """Write the tiny datastack under ``root``; returns the path."""
    root = Path(root)
    _meta(root / "datastack.json", {"datastack_name": "tiny", "description": "hand-made",
                                    "synapse_table": "syn", "soma_table": "nuc"})
    nuc = {"id": pa.array([r[0] for r in NUC], pa.int64()),
           "deleted": pa.array([None] * len(NUC), pa.timestamp("us")),
           "superceded_id": pa.array([None] * len(NUC), pa.int64()),
           "valid": pa.array([r[1] for r in NUC]),
           "volume": pa.array([r[2] for r in NUC], pa.float32()),
           **_positions("pt_position", [r[3] for r in NUC]),
           "pt_supervoxel_id": pa.array([r[4] for r in NUC], pa.int64()),
           "pt_root_id": pa.array([r[5] for r in NUC], pa.int64()),
           **_positions("bb_start_position", [None] * len(NUC))}
    syn = {"id": pa.array([r[0] for r in SYN], pa.int64()), "valid": pa.array([r[1] for r in SYN]),
           **_positions("pre_pt_position", [r[2] for r in SYN]),
           "pre_pt_root_id": pa.array([r[3] for r in SYN], pa.int64()),
           **_positions("post_pt_position", [r[4] for r in SYN]),
           "post_pt_root_id": pa.array([r[5] for r in SYN], pa.int64()),
           "size": pa.array([r[6] for r in SYN], pa.float32())}
    ct = {"id": pa.array([r[0] for r in CT], pa.int64()), "valid": pa.array([r[1] for r in CT]),
          "target_id": pa.array([r[2] for r in CT], pa.int64()),
          "classification_system": pa.array([r[3] for r in CT], pa.string()),
          "cell_type": pa.array([r[4] for r in CT], pa.string())}
    shared = root / "shared"
    _write(shared / "nuc.parquet", nuc)
    _write(shared / "syn.parquet", syn)
    _write(shared / "ct.parquet", ct)
    _write(shared / "map2.parquet", {"root_id": pa.array([R + 1001], pa.int64()),
                                     "version_root_id": pa.array([R + 2001], pa.int64())})
    res = {"voxel_resolution_x": 4.0, "voxel_resolution_y": 4.0, "voxel_resolution_z": 40.0}
    for v in (1, 2):
        folder = root / "versions" / str(v)
        _meta(folder / "version.json", {"version": v, "time_stamp": f"2024-0{v}-01T00:00:00",
                                        "valid": True})
        for name, extra in (("nuc", {"schema_type": "nucleus_detection", "reference_table": None}),
                            ("syn", {"schema_type": "synapse", "reference_table": None}),
                            ("ct", {"schema_type": "cell_type_reference", "reference_table": "nuc"})):
            storage: dict[str, object] = {"files": [{"path": f"shared/{name}.parquet"}]}
            if v == 2:
                storage["root_id_map"] = "shared/map2.parquet"
            _meta(folder / "tables" / f"{name}.json", {**extra, **res, "_storage": storage})
        _meta(folder / "views" / "pairs.json", {
            **res, "description": "synapses per root pair, autapses removed",
            "sql": "SELECT pre_pt_root_id, post_pt_root_id, count(*) AS n_syn, sum(size) AS sum_size "
                   "FROM syn WHERE pre_pt_root_id != post_pt_root_id GROUP BY ALL"})
    return root
