"""The demo datastack: the seed page's figures, the shapes of microns-data.md, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from caveql.backends.base import QueryRequest
from caveql.backends.local import LocalBackend
from caveql.datastack.cli import main
from caveql.datastack.demo import build_demo, read_marker
from caveql.datastack.demo_cells import make_cells, uniq
from caveql.datastack.demo_meta import (
    SEED_CELLS,
    SEED_SYNAPSES,
    SYNAPSE_CELL,
    TABLES_AT,
    TOP_PARTNERS,
)
from caveql.errors import DatastackError

META = "aibs_soma_nuc_metamodel_preds_v117"
NUC = "nucleus_detection_v0"
SYN = "synapses_pni_2"


@pytest.fixture(scope="module")
def demo(demo_path: Path):
    backend = LocalBackend(demo_path)
    yield backend
    backend.close()


def merged(backend, table=META, version=661, **filters):
    """The reference table merged with its target as caveclient's table manager asks for it."""
    return backend.query(QueryRequest(kind="join", version=version, join=((table, "target_id"), (NUC, "id")),
                                      suffix_map={table: "_ref", NUC: ""}, **filters)).table


def outputs(backend, root=SYNAPSE_CELL, version=661) -> pa.Table:
    return backend.query(QueryRequest(kind="table", table=SYN, version=version,
                                      filter_equal={SYN: {"pre_pt_root_id": root}})).table


# -- the seed page ----------------------------------------------------------------------------

def test_description_says_synthetic(demo):
    info = demo.info()
    assert info["datastack_name"] == "minnie65_demo"
    assert "SYNTHETIC" in info["description"] and "NOT MICrONs data" in info["description"]
    assert info["synapse_table"] == SYN and info["soma_table"] == NUC


def test_versions_and_tables(demo):
    assert demo.versions() == [343, 661]
    assert demo.version_metadata(661)["time_stamp"] == "2023-04-06T20:17:09.199182"
    assert demo.version_metadata(343)["time_stamp"] == "2022-02-24T08:10:00.184668"
    assert sorted(demo.tables(661)) == sorted(TABLES_AT[661]) and len(demo.tables(661)) == 15
    assert sorted(demo.tables(343)) == sorted(TABLES_AT[343])
    meta = demo.table_metadata(661, NUC)
    assert meta["schema_type"] == "nucleus_detection" and meta["voxel_resolution_z"] == 40.0
    assert demo.table_metadata(661, META)["reference_table"] == NUC


def test_3084_basket_cells(demo):
    bc = merged(demo, filter_equal={META: {"cell_type": "BC"}})
    assert bc.num_rows == 3084
    assert bc.schema.names[:6] == ["id_ref", "created_ref", "valid_ref", "target_id",
                                   "classification_system", "cell_type"]
    assert pc.all(pc.equal(bc["id"], bc["target_id"])).as_py()
    assert set(bc["classification_system"].to_pylist()) == {"aibs_neuronal"}


def _utc(naive):
    """A seed page timestamp (naive UTC) as the service's frames hold it (UTC-aware)."""
    from datetime import UTC

    return naive.replace(tzinfo=UTC)


def test_the_three_23p_cells(demo):
    roots = [c[4] for c in SEED_CELLS]
    t = merged(demo, filter_in={NUC: {"pt_root_id": roots}})
    rows = {r["pt_root_id"]: r for r in t.to_pylist()}
    assert len(rows) == 3
    for nid, pos, volume, sv, root, id_ref, created, created_ref in SEED_CELLS:
        r = rows[root]
        assert (r["id"], r["target_id"], r["id_ref"], r["cell_type"]) == (nid, nid, id_ref, "23P")
        assert (r["pt_position_x"], r["pt_position_y"], r["pt_position_z"]) == pos
        assert r["pt_supervoxel_id"] == sv
        assert r["volume"] == pytest.approx(volume, rel=1e-6)
        # a table's DateTime columns come back UTC-aware, as the service sends them
        assert r["created"] == _utc(created) and r["created_ref"] == _utc(created_ref)


def test_the_synapse_cell(demo):
    syn = outputs(demo)
    assert syn.num_rows == 1498
    post = syn["post_pt_root_id"].to_numpy()
    roots, counts = uniq(post, return_counts=True)
    assert roots.size == 1038
    top = sorted(zip(counts.tolist(), roots.tolist(), strict=True), reverse=True)[:6]
    assert [(r, c) for c, r in top[:5]] == list(TOP_PARTNERS)
    assert top[5][0] < 11  # the fifth is unambiguous
    assert not (post == SYNAPSE_CELL).any() and not (post == 0).any()
    by_id = {r["id"]: r for r in syn.to_pylist()}
    for sid, created, size, pre_sv, post_sv, post_root, pre, post_pos, ctr in SEED_SYNAPSES:
        r = by_id[sid]
        assert (r["created"], r["size"], r["pre_pt_supervoxel_id"], r["post_pt_supervoxel_id"],
                r["post_pt_root_id"]) == (_utc(created), size, pre_sv, post_sv, post_root)
        assert tuple(r[f"pre_pt_position_{a}"] for a in "xyz") == pre
        assert tuple(r[f"post_pt_position_{a}"] for a in "xyz") == post_pos
        assert tuple(r[f"ctr_pt_position_{a}"] for a in "xyz") == ctr
    assert outputs(demo, version=343).num_rows == 1498  # this cell was not edited


def test_connections_view_agrees(demo):
    v = demo.query(QueryRequest(kind="view", table="connections_with_nuclei", version=661,
                                filter_equal={"connections_with_nuclei": {"pre_pt_root_id": SYNAPSE_CELL}}))
    t = v.table
    assert t.num_rows == 1038 and pc.sum(t["n_syn"]).as_py() == 1498
    assert t.schema.names == ["pre_pt_root_id", "post_pt_root_id", "n_syn", "sum_size", "pre_nuc_id",
                              "post_nuc_id"]


# -- shapes of microns-data.md ------------------------------------------------------------------

def test_schemas_and_types(demo):
    nuc = demo.table_columns(661, NUC)
    assert nuc.names == [
        "id", "created", "superceded_id", "valid", "volume", "pt_position_x", "pt_position_y",
        "pt_position_z", "bb_start_position_x", "bb_start_position_y", "bb_start_position_z",
        "bb_end_position_x", "bb_end_position_y", "bb_end_position_z", "pt_supervoxel_id", "pt_root_id"]
    syn = demo.table_columns(661, SYN)
    assert syn.names == [
        "id", "created", "superceded_id", "valid", "pre_pt_position_x", "pre_pt_position_y",
        "pre_pt_position_z", "post_pt_position_x", "post_pt_position_y", "post_pt_position_z",
        "ctr_pt_position_x", "ctr_pt_position_y", "ctr_pt_position_z", "size", "pre_pt_supervoxel_id",
        "pre_pt_root_id", "post_pt_supervoxel_id", "post_pt_root_id"]
    types = {f.name: f.type for f in syn}
    assert types["id"] == pa.int64() and types["pre_pt_position_x"] == pa.int32()
    assert types["size"] == pa.float32() and types["created"] == pa.timestamp("ns", tz="UTC")
    assert types["valid"] == pa.bool_()
    assert demo.table_columns(661, META).names == [
        "id", "created", "superceded_id", "valid", "target_id", "classification_system", "cell_type"]
    coreg = {f.name: f.type for f in demo.table_columns(661, "apl_functional_coreg_forward_v5")}
    assert coreg["session"] == pa.int32() and coreg["score"] == pa.float32()
    proof = demo.table_columns(661, "proofreading_status_public_release").names
    assert proof[4:] == ["pt_position_x", "pt_position_y", "pt_position_z", "valid_id", "status_dendrite",
                         "status_axon", "pt_supervoxel_id", "pt_root_id"]


@pytest.mark.parametrize(("table", "rows"), [
    (NUC, 144_120), (META, 86_916), ("nucleus_ref_neuron_svm", 144_120),
    ("aibs_soma_nuc_exc_mtype_preds_v117", 58_624), ("allen_column_mtypes_v1", 1_357),
    ("allen_v1_column_types_slanted_ref", 1_357), ("aibs_column_nonneuronal_ref", 542),
    ("connectivity_groups_v507", 163), ("nucleus_alternative_points", 8_388),
    ("baylor_log_reg_cell_type_coarse_v1", 55_063), ("baylor_gnn_cell_type_fine_model_v2", 49_051),
    ("apl_functional_coreg_forward_v5", 68_436), ("proofreading_status_public_release", 1_272),
    (SYN, 2_000_000),
])
def test_row_counts(demo, table, rows):
    assert demo.table_count(661, table) == rows
    count = demo.query(QueryRequest(kind="table", table=table, version=661, count=True))
    assert count.table["count"].to_pylist() == [rows]


def test_nuclei_shape(demo):
    t = demo.query(QueryRequest(kind="table", table=NUC, version=661)).table
    x, y, z = (t[f"pt_position_{a}"].to_numpy() for a in "xyz")
    assert x.min() >= 52_770 and x.max() <= 414_200 and y.min() >= 60_616 and y.max() <= 280_300
    assert z.min() >= 14_850 and z.max() <= 28_160
    assert (x % 16 == 0).all() and (y % 16 == 0).all()
    ids = t["id"].to_numpy()
    assert uniq(ids).size == ids.size and np.corrcoef(ids, x)[0, 1] > 0.95
    assert (t["volume"].to_numpy() > 25).all()
    roots = t["pt_root_id"].to_numpy()
    sv = t["pt_supervoxel_id"].to_numpy()
    assert ((roots == 0) == (sv == 0)).all() and (roots == 0).sum() > 1000
    _, per_root = uniq(roots[roots != 0], return_counts=True)
    assert per_root.max() == 346 and sorted(per_root)[-4:] == [43, 60, 102, 346]
    # supervoxel ids carry the chunk of their position
    chunk_x = (sv[sv != 0] >> 46) & 1023
    assert (chunk_x == (x[sv != 0] - 52_770) // 512).all()
    assert (roots[roots != 0] >> 56 == 12).all()


def test_cell_type_mix(demo):
    t = demo.query(QueryRequest(kind="table", table=META, version=661)).table
    types, counts = uniq(np.array(t["cell_type"].to_pylist()), return_counts=True)
    share = dict(zip(types.tolist(), (counts / counts.sum()).tolist(), strict=True))
    assert share["23P"] == pytest.approx(0.217, abs=0.01) and share["4P"] == pytest.approx(0.163, abs=0.01)
    assert share["astrocyte"] == pytest.approx(0.079, abs=0.01)
    assert uniq(t["target_id"].to_numpy()).size == t.num_rows


def test_synapse_shape(demo, demo_path):
    # the data itself (read straight from the file: this is about the generator, not the backend)
    t = pq.read_table(demo_path / "shared" / f"{SYN}.by_pre.parquet", columns=[
        "id", "size", "pre_pt_root_id", "post_pt_root_id", "pre_pt_position_x", "post_pt_position_x",
        "pre_pt_supervoxel_id", "post_pt_supervoxel_id"])
    pre, post = t["pre_pt_root_id"].to_numpy(), t["post_pt_root_id"].to_numpy()
    auto = pre == post
    assert 0.012 < auto.mean() < 0.02
    same = ((t["pre_pt_position_x"].to_numpy() == t["post_pt_position_x"].to_numpy())
            & (t["pre_pt_supervoxel_id"].to_numpy() == t["post_pt_supervoxel_id"].to_numpy()))
    assert same[auto].mean() > 0.95  # degenerate rows: one point, one supervoxel
    size = t["size"].to_numpy()
    assert (size % 4 == 0).all() and 2_000 < np.median(size) < 3_500
    assert 0.005 < (post == 0).mean() < 0.02
    ids = t["id"].to_numpy()
    assert uniq(ids).size == ids.size
    # ~30 % of a neuron's partners are soma-less fragments
    nuclei = pq.read_table(demo_path / "versions" / "661" / "tables" / f"{NUC}.parquet", columns=["pt_root_id"])
    soma_roots = uniq(nuclei["pt_root_id"].to_numpy())
    partners = uniq(outputs(demo)["post_pt_root_id"].to_numpy())
    assert 0.2 < (~np.isin(partners, soma_roots)).mean() < 0.4


def test_size_range_reads_the_size_sorted_copy(demo, demo_path):
    r = demo.query(QueryRequest(kind="table", table=SYN, version=661,
                                filter_greater_equal={SYN: {"size": 40_000}},
                                filter_less_equal={SYN: {"size": 40_400}}))
    by_pre = demo_path / "shared" / f"{SYN}.by_pre.parquet"
    want = pq.read_table(by_pre, columns=["id"], filters=[("size", ">=", 40_000), ("size", "<=", 40_400)])
    assert r.table.num_rows > 0 and r.table["id"].to_pylist() == sorted(want["id"].to_pylist())
    # the matches are contiguous in the by_size copy: a row group or two, not the whole table
    assert 0 < r.bytes_read < by_pre.stat().st_size / 10


def test_edited_cells_have_new_larger_roots(demo):
    old = demo.query(QueryRequest(kind="table", table=NUC, version=343,
                                  select_columns={NUC: ("id", "pt_root_id")})).table
    new = demo.query(QueryRequest(kind="table", table=NUC, version=661,
                                  select_columns={NUC: ("id", "pt_root_id")})).table
    assert old["id"].equals(new["id"])
    o, n = old["pt_root_id"].to_numpy(), new["pt_root_id"].to_numpy()
    changed = o != n
    assert 0.05 < changed.mean() < 0.2
    assert (n[changed] > o[changed]).all()
    # the synapse file is shared: version 343 sees the old root ids
    root343, root661 = int(o[changed][0]), int(n[changed][0])
    a = demo.query(QueryRequest(kind="table", table=SYN, version=343, count=True,
                                filter_equal={SYN: {"post_pt_root_id": root343}}))
    b = demo.query(QueryRequest(kind="table", table=SYN, version=661, count=True,
                                filter_equal={SYN: {"post_pt_root_id": root661}}))
    assert a.table["count"][0].as_py() == b.table["count"][0].as_py() > 0
    gone = demo.query(QueryRequest(kind="table", table=SYN, version=661, count=True,
                                   filter_equal={SYN: {"post_pt_root_id": root343}}))
    assert gone.table["count"][0].as_py() == 0


# -- building: determinism, idempotence, the command -----------------------------------------

def _frames(path: Path) -> dict[tuple[int, str], pa.Table]:
    with LocalBackend(path) as b:
        return {(v, t): b.query(QueryRequest(kind="table", table=t, version=v)).table
                for v in b.versions() for t in b.tables(v)}


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory) -> Path:
    return build_demo(tmp_path_factory.mktemp("small") / "demo", synapses=20_000, seed=3)


def test_determinism_and_idempotence(small_demo, tmp_path):
    b = build_demo(tmp_path / "b", synapses=20_000, seed=3)
    fa, fb = _frames(small_demo), _frames(b)
    assert fa.keys() == fb.keys()
    for key in fa:
        assert fa[key].equals(fb[key]), key
    assert not np.array_equal(make_cells(4).pos, make_cells(3).pos)  # the seed matters
    # idempotent: same parameters -> untouched; other parameters -> rebuilt
    stamp = (small_demo / ".caveql-demo.json").stat().st_mtime_ns
    assert build_demo(small_demo, synapses=20_000, seed=3) == small_demo
    assert (small_demo / ".caveql-demo.json").stat().st_mtime_ns == stamp
    build_demo(b, synapses=21_000, seed=3)
    assert read_marker(b)["synapses"] == 21_000
    with LocalBackend(b) as backend:
        assert backend.table_count(661, SYN) == 21_000
    assert not list(tmp_path.glob(".*building*"))


_METAS = [Path("versions") / str(v) / "tables" / f"{SYN}.json" for v in (343, 661)]


def _before_the_size_copy(demo: Path, tmp_path: Path) -> Path:
    """A copy of ``demo`` as it was built before the by_size copy existed."""
    import shutil

    old = tmp_path / "old"
    shutil.copytree(demo, old)
    (old / "shared" / f"{SYN}.by_size.parquet").unlink()
    for m in _METAS:
        doc = json.loads((old / m).read_text())
        doc["_storage"]["files"] = [f for f in doc["_storage"]["files"] if "by_size" not in f["path"]]
        (old / m).write_text(json.dumps(doc))
    return old


@pytest.mark.parametrize("in_memory", [True, False])
def test_an_older_demo_gains_a_missing_copy_in_place(small_demo, tmp_path, monkeypatch, in_memory):
    from caveql.datastack import demo as demo_module

    want = pq.read_table(small_demo / "shared" / f"{SYN}.by_size.parquet")
    old = _before_the_size_copy(small_demo, tmp_path)
    copy = old / "shared" / f"{SYN}.by_size.parquet"
    request = QueryRequest(kind="table", table=SYN, version=343, filter_greater={SYN: {"size": 20_000}})
    with LocalBackend(old) as b:
        before = b.query(request).table
    assert before.num_rows > 0
    stamp = (old / ".caveql-demo.json").stat().st_mtime_ns
    if not in_memory:
        monkeypatch.setattr(demo_module, "IN_MEMORY_SORT", 0)  # DuckDB's out-of-core sort
    messages: list[str] = []
    assert build_demo(old, synapses=20_000, seed=3, progress=messages.append) == old
    assert (old / ".caveql-demo.json").stat().st_mtime_ns == stamp  # not rebuilt
    assert any("size" in m for m in messages)
    got = pq.read_table(copy)
    # the same rows in the same order (DuckDB's sort writes the columns as nullable)
    assert got.schema.names == want.schema.names and got.to_pydict() == want.to_pydict()
    for m in _METAS:
        assert json.loads((old / m).read_text())["_storage"] == json.loads((small_demo / m).read_text())["_storage"]
    with LocalBackend(old) as b:
        assert b.query(request).table.equals(before)
    assert sorted(p.name for p in (old / "shared").iterdir()) == sorted(
        p.name for p in (small_demo / "shared").iterdir())  # no temporary files left
    messages.clear()
    build_demo(old, synapses=20_000, seed=3, progress=messages.append)
    assert messages == []  # complete: nothing to do


def test_a_demo_that_cannot_be_written_opens_without_the_missing_copy(small_demo, tmp_path, monkeypatch):
    from caveql.datastack import demo as demo_module

    old = _before_the_size_copy(small_demo, tmp_path)

    def refuse(*_args, **_kw):
        raise PermissionError(13, "Permission denied", str(old / "shared"))

    monkeypatch.setattr(demo_module, "_sort_copies", refuse)
    messages: list[str] = []
    assert build_demo(old, synapses=20_000, seed=3, progress=messages.append) == old
    assert any("could not add" in m and "Permission denied" in m for m in messages)
    assert not (old / "shared" / f"{SYN}.by_size.parquet").exists()
    with LocalBackend(old) as b, LocalBackend(small_demo) as full:
        request = QueryRequest(kind="table", table=SYN, version=661, filter_less={SYN: {"size": 100}})
        assert b.query(request).table.equals(full.query(request).table)  # slower, same answer


def test_refuses_foreign_folders_and_bad_sizes(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "precious.txt").write_text("keep me")
    with pytest.raises(DatastackError, match="not a caveql demo"):
        build_demo(tmp_path / "mine", synapses=5_000)
    with pytest.raises(DatastackError, match="at least 2000"):
        build_demo(tmp_path / "x", synapses=10)


def test_command(small_demo, capsys):
    stamp = (small_demo / ".caveql-demo.json").stat().st_mtime_ns
    assert main(["--path", str(small_demo), "--synapses", "2e4", "--seed", "3"]) == 0
    assert Path(capsys.readouterr().out.strip()) == small_demo
    assert (small_demo / ".caveql-demo.json").stat().st_mtime_ns == stamp  # up to date: no rebuild
    assert json.loads((small_demo / ".caveql-demo.json").read_text())["seed"] == 3
    with pytest.raises(SystemExit):
        main(["--synapses", "lots"])
    foreign = small_demo.parent / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    assert main(["--path", str(foreign)]) == 1
    assert "not a caveql demo" in capsys.readouterr().err
