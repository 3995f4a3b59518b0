"""The seed page's answers hold on the demo datastack, with caveclient's frame shape."""

from __future__ import annotations

import numpy as np
import pytest

from caveql.engine import Engine

ROOT = 864691135808473885


@pytest.fixture(scope="module")
def demo(demo_backend):
    return Engine(demo_backend)


def test_seed_cell_type_bc(demo):
    f = demo.execute("SELECT * FROM aibs_soma_nuc_metamodel_preds_v117 WHERE cell_type = 'BC'").frame
    assert len(f) == 3084
    assert list(f.columns) == [
        "id", "created", "valid", "volume", "pt_supervoxel_id", "pt_root_id", "id_ref", "created_ref",
        "valid_ref", "target_id", "classification_system", "cell_type", "pt_position",
        "bb_start_position", "bb_end_position"]
    assert (f.id == f.target_id).all() and (f.cell_type == "BC").all()
    assert str(f.dtypes["pt_root_id"]) == "Int64" and isinstance(f.pt_position[0], np.ndarray)


def test_seed_root_ids(demo):
    ids = [864691135771677771, 864691135560505569, 864691136723556861]
    f = demo.execute("SELECT * FROM aibs_soma_nuc_metamodel_preds_v117 WHERE pt_root_id IN :ids",
                     params={"ids": ids}).frame
    assert sorted(f.pt_root_id.tolist()) == sorted(ids) and f.id.is_monotonic_increasing


def test_seed_synapse_query_and_counts(demo):
    syn = demo.execute(f"SELECT * FROM synapses_pni_2 WHERE pre_pt_root_id = {ROOT}").frame
    assert len(syn) == 1498
    assert list(syn.columns) == [
        "id", "created", "superceded_id", "valid", "size", "pre_pt_supervoxel_id", "pre_pt_root_id",
        "post_pt_supervoxel_id", "post_pt_root_id", "pre_pt_position", "post_pt_position",
        "ctr_pt_position"]
    counts = demo.execute(
        "SELECT pre_pt_root_id, post_pt_root_id, COUNT(*) AS syn_count FROM synapses_pni_2 "
        f"WHERE pre_pt_root_id = {ROOT} GROUP BY pre_pt_root_id, post_pt_root_id "
        "ORDER BY syn_count DESC").frame
    assert len(counts) == 1038
    want = syn.groupby("post_pt_root_id").size().sort_values(ascending=False)
    assert counts.syn_count.tolist() == want.tolist()
    assert counts.syn_count.sum() == 1498


def test_seed_split_positions_in_nm(demo):
    f = demo.execute("SELECT pt_position, pt_root_id FROM nucleus_detection_v0 AT RESOLUTION 1,1,1 "
                     "SPLIT POSITIONS LIMIT 10").frame
    assert list(f.columns) == ["pt_position_x", "pt_position_y", "pt_position_z", "pt_root_id"]
    vox = demo.execute("SELECT pt_position, pt_root_id FROM nucleus_detection_v0 SPLIT POSITIONS LIMIT 10").frame
    assert (f.pt_position_x == vox.pt_position_x * 4).all() and (f.pt_position_z == vox.pt_position_z * 40).all()


def test_bc_join_equals_subquery(demo):
    a = demo.execute("SELECT s.id FROM synapses_pni_2 s JOIN aibs_soma_nuc_metamodel_preds_v117 c "
                     "ON s.post_pt_root_id = c.pt_root_id WHERE c.cell_type = 'BC' AND s.size > 1000").frame
    b = demo.execute("SELECT id FROM synapses_pni_2 WHERE post_pt_root_id IN (SELECT pt_root_id FROM "
                     "aibs_soma_nuc_metamodel_preds_v117 WHERE cell_type = 'BC') AND size > 1000").frame
    # a root with two BC rows repeats its synapses in the join (SQL), not in the semi-join
    assert sorted(set(a.id.tolist())) == b.id.tolist()
    assert len(a) >= len(b)
    assert len(b) > 1000


PAGED = [
    "SELECT * FROM aibs_soma_nuc_metamodel_preds_v117 WHERE cell_type = 'BC'",
    f"SELECT * FROM synapses_pni_2 WHERE pre_pt_root_id = {ROOT}",
    "SELECT id, pt_root_id, pt_position FROM nucleus_detection_v0 WHERE pt_position WITHIN "
    "BOX((700000, 400000, 800000), (800000, 500000, 850000)) AT RESOLUTION 1,1,1",
    "SELECT * FROM nucleus_detection_v0 WHERE pt_position_z BETWEEN 20000 AND 21000 AND volume > 100 "
    "AT VERSION 343",
    "SELECT pre.cell_type AS pre_type, post.cell_type AS post_type, COUNT(*) AS n_syn "
    "FROM synapses_pni_2 s JOIN aibs_soma_nuc_metamodel_preds_v117 pre ON s.pre_pt_root_id = pre.pt_root_id "
    "JOIN aibs_soma_nuc_metamodel_preds_v117 post ON s.post_pt_root_id = post.pt_root_id "
    f"WHERE pre.pt_root_id IN ({ROOT}, 864691135771677771) GROUP BY pre_type, post_type ORDER BY n_syn DESC",
]


@pytest.mark.parametrize("cql", PAGED)
def test_paging_with_cap_1000_gives_complete_answers(demo, demo_path, cql):
    from caveql.backends.local import LocalBackend

    with LocalBackend(demo_path, row_cap=1000) as capped:
        got = Engine(capped).execute(cql)
    want = demo.execute(cql).frame
    assert len(want) > 0
    assert got.frame.astype(str).equals(want.astype(str))
    assert sum(c["requests"] for c in got.stats["calls"].values()) > 1 or len(want) < 1000
