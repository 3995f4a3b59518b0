"""docs/examples/*.cql run on the demo datastack, and their answers are checked against pandas
computations over plain single-table queries (the same data, a different route)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import caveql

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
CT = "aibs_soma_nuc_metamodel_preds_v117"


@pytest.fixture(scope="module")
def db(demo_path):
    with caveql.connect(path=demo_path) as conn:
        yield conn


def test_every_example_has_a_header_and_runs(db) -> None:
    files = sorted(EXAMPLES.glob("*.cql"))
    assert {f.name for f in files} >= {"seed.cql", "bc_inputs.cql", "celltype_connectivity.cql",
                                       "spatial_box.cql"}
    for f in files:
        cql = caveql.load_cql(f)
        assert cql.meta.get("name") and cql.meta.get("description"), f.name
        results = db.run_file(f)
        assert results and all(r.frame is not None and len(r.frame) for r in results), f.name


def test_seed(db) -> None:
    results = db.run_file(EXAMPLES / "seed.cql")
    assert len(results) == 11
    syn = results[9].frame
    counts = results[10].frame
    assert (syn["pre_pt_root_id"] == 864691135808473885).all()
    want = syn.groupby(["pre_pt_root_id", "post_pt_root_id"]).size()
    got = counts.set_index(["pre_pt_root_id", "post_pt_root_id"])["syn_count"]
    assert got.sort_index().tolist() == want.sort_index().tolist()
    assert counts["syn_count"].is_monotonic_decreasing and int(counts["syn_count"].sum()) == len(syn)
    limited = results[4].frame
    assert limited.columns.tolist() == ["pt_position_x", "pt_position_y", "pt_position_z", "pt_root_id"]
    assert len(limited) == 10
    assert (results[7].frame["cell_type"] == "BC").all()


def test_bc_inputs(db) -> None:
    root = 864691135808473885
    edges, per_cell = (r.frame for r in db.run_file(EXAMPLES / "bc_inputs.cql"))
    syn = db.query("SELECT id, post_pt_root_id, size FROM synapses_pni_2 WHERE pre_pt_root_id = :r", r=root)
    bc = set(db.query(f"SELECT pt_root_id FROM {CT} WHERE cell_type = 'BC'")["pt_root_id"].dropna())
    onto_bc = syn[syn["post_pt_root_id"].isin(bc) & (syn["post_pt_root_id"] != root)]
    # a BC root with two nuclei would repeat its synapses in the join: count join rows per synapse
    mult = db.query(f"SELECT pt_root_id, COUNT(*) AS k FROM {CT} WHERE cell_type = 'BC' GROUP BY pt_root_id")
    k = dict(zip(mult["pt_root_id"], mult["k"]))
    assert len(edges) == sum(k[p] for p in onto_bc["post_pt_root_id"])
    assert set(edges["id"]) == set(onto_bc["id"])
    assert (edges["cell_type"] == "BC").all() and edges["size"].is_monotonic_decreasing
    want = onto_bc.groupby("post_pt_root_id").size()
    assert dict(zip(per_cell["post_pt_root_id"], per_cell["n_syn"])) == want.to_dict()


def test_celltype_connectivity(db) -> None:
    cql = caveql.load_cql(EXAMPLES / "celltype_connectivity.cql")
    ids = cql.bind({})["proofread_ids"]
    (got,) = (r.frame for r in db.run_file(EXAMPLES / "celltype_connectivity.cql"))
    syn = db.query("SELECT pre_pt_root_id, post_pt_root_id FROM synapses_pni_2 WHERE pre_pt_root_id IN :ids",
                   ids=ids)
    types = db.query(f"SELECT pt_root_id, cell_type FROM {CT}").dropna(subset=["pt_root_id"])
    m = syn.merge(types.rename(columns={"pt_root_id": "pre_pt_root_id", "cell_type": "pre_type"}))
    m = m.merge(types.rename(columns={"pt_root_id": "post_pt_root_id", "cell_type": "post_type"}))
    want = m.groupby(["pre_type", "post_type"], dropna=False).size()
    assert {(a, b): n for a, b, n in got.itertuples(index=False)} == want.to_dict()


def test_spatial_box(db) -> None:
    boxed, per_type = (r.frame for r in db.run_file(EXAMPLES / "spatial_box.cql"))
    allnuc = db.query("SELECT id, pt_position FROM nucleus_detection_v0 AT RESOLUTION 1,1,1")
    pos = np.stack(allnuc["pt_position"].to_numpy()).astype("int64")
    inside = ((pos >= [700000, 400000, 800000]) & (pos <= [800000, 500000, 850000])).all(axis=1)
    assert sorted(boxed["id"]) == sorted(allnuc["id"][inside])
    types = db.query(f"SELECT id, cell_type, pt_position FROM {CT} AT RESOLUTION 1,1,1")
    tpos = np.stack(types["pt_position"].to_numpy()).astype("int64")
    tin = ((tpos >= [700000, 400000, 800000]) & (tpos <= [800000, 500000, 850000])).all(axis=1)
    want = pd.Series(types["cell_type"][tin]).value_counts(dropna=False)
    assert dict(zip(per_type["cell_type"], per_type["n"])) == want.to_dict()
