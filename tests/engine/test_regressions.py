"""Regressions found by the differential tests, each checked against the backend's raw tables."""

from __future__ import annotations

import pandas as pd
import pytest

from caveql.backends.base import QueryRequest
from caveql.backends.local import LocalBackend
from caveql.engine import Engine

REF = "nucleus_alternative_points"  # references nucleus_detection_v0 and has its own pt_* columns
TARGET = "nucleus_detection_v0"


def raw(backend, table, version, **kw):
    """One table as the backend stores it (no merge), positions split, as a pandas frame."""
    t = backend.query(QueryRequest(kind="table", table=table, version=version, **kw)).table
    return t.to_pandas(types_mapper=pd.ArrowDtype)


@pytest.fixture(scope="module")
def merged(demo_backend):
    """caveclient's merge, built by hand: reference rows joined to their target on target_id = id,
    the reference's clashing columns suffixed ``_ref``, at resolution 1, 1, 1."""
    v = max(demo_backend.versions())
    ref = raw(demo_backend, REF, v, desired_resolution=(1.0, 1.0, 1.0))
    tgt = raw(demo_backend, TARGET, v, desired_resolution=(1.0, 1.0, 1.0))
    ref = ref.rename(columns={c: (f"{c[:-2]}_ref{c[-2:]}" if c.startswith("pt_position_") else c + "_ref")
                              for c in ref.columns if c != "target_id"})
    out = tgt.merge(ref, left_on="id", right_on="target_id", how="inner")
    return v, out.sort_values(["id", "id_ref"]).reset_index(drop=True)


QUERY = """SELECT valid_ref, pt_position_ref, pt_root_id_ref, created_ref, pt_supervoxel_id_ref
  FROM nucleus_alternative_points
  WHERE id BETWEEN {lo} AND {hi} AND pt_root_id NOT BETWEEN 0 AND 864691136212870537
  SPLIT POSITIONS AT RESOLUTION 1, 1, 1"""
COLUMNS = ["valid_ref", "pt_position_ref_x", "pt_position_ref_y", "pt_position_ref_z",
           "pt_root_id_ref", "created_ref", "pt_supervoxel_id_ref"]


@pytest.mark.parametrize("row_cap", [None, 50])
def test_ref_columns_of_a_reference_table_with_its_own_points(demo_path, merged, row_cap):
    """Bug 9: selecting the target's pt_root_id (for a local filter) made the service add the
    target's pt_supervoxel_id, so the reference's came back suffixed: a raw KeyError before."""
    v, m = merged
    lo, hi = 7768, 20751
    want = m[(m.id >= lo) & (m.id <= hi) & ~m.pt_root_id.between(0, 864691136212870537)]
    assert len(want) > 0
    # the check can tell the tables apart: the reference's own points differ from the target's
    assert (want.pt_supervoxel_id_ref != want.pt_supervoxel_id).any()
    backend = LocalBackend(demo_path, row_cap=row_cap)
    try:
        res = Engine(backend).execute(QUERY.format(lo=lo, hi=hi) + f" AT VERSION {v}")
    finally:
        backend.close()
    got = res.frame
    if row_cap:  # the pushed part passes the cap: the call was split (on id_ref, by the answers)
        assert res.stats["calls"][REF]["requests"] > 1
    assert list(got.columns) == COLUMNS
    for c in COLUMNS:
        assert got[c].tolist() == want[c].tolist(), c


def test_target_and_reference_points_side_by_side(demo_backend, merged):
    """Both tables' supervoxel and root ids in one answer land in the right columns."""
    v, m = merged
    got = Engine(demo_backend).execute(
        f"SELECT id, id_ref, pt_root_id, pt_supervoxel_id_ref, pt_root_id_ref, pt_supervoxel_id "
        f"FROM {REF} WHERE id < 3000 AT VERSION {v}").frame
    want = m[m.id < 3000]
    assert len(want) > 0
    for c in got.columns:
        assert got[c].tolist() == want[c].tolist(), c


@pytest.mark.parametrize("added", [False, True])
def test_ref_names_follow_the_answer(demo_backend, added):
    """Whether or not the service adds the target's supervoxel id before a selected root id,
    each local column is read from the right backend column (an answer made by hand)."""
    import pyarrow as pa

    from caveql.execute import _apply_rename

    call = Engine(demo_backend).physical_plan(QUERY.format(lo=1, hi=2)).calls[0]
    tgt = {"id": 1, "pt_root_id": 10}
    own = {"id": 2, "created": 3, "valid": True, "pt_position_x": 4, "pt_position_y": 5,
           "pt_position_z": 6, "pt_supervoxel_id": 7, "pt_root_id": 8}
    cols: dict[str, list] = {}
    if added:
        cols["pt_supervoxel_id"] = [99]  # the target's, unselected: must not be read
    cols["pt_root_id"] = [tgt["pt_root_id"]]
    cols["id"] = [tgt["id"]]
    both = set(tgt) | ({"pt_supervoxel_id"} if added else set())
    for k, val in own.items():
        base = k[:-2] if k.startswith("pt_position_") else k
        name = (f"{base}_ref{k[len(base):]}" if base in both else k)
        cols[name] = [val]
    table = _apply_rename(pa.table(cols), call)
    got = table.to_pylist()[0]
    assert got["pt_supervoxel_id_ref"] == 7 and got["pt_root_id_ref"] == 8
    assert got["pt_root_id"] == 10 and got["id"] == 1 and got["id_ref"] == 2
    assert (got["pt_position_ref_x"], got["pt_position_ref_z"]) == (4, 6)
