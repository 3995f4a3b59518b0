"""Push-down: the copy the filters suit, and only the files the Delta statistics allow."""

from __future__ import annotations

import json
import shutil
import struct

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from caveql.backends.archive import ArchiveBackend, _wkb_axis, is_archive, morton_encode
from caveql.backends.base import QueryRequest
from caveql.engine import Engine
from caveql.errors import CaveqlError, DatastackError
from tests.archive.conftest import local_metadata
from tests.archive.writer import ewkb_points, export_archive, morton_encode_3d


def _scan(backend: ArchiveBackend) -> dict[str, int]:
    return {folder.rsplit("/", 1)[1]: len(files) for folder, files in backend.last_scan}


def _files(backend: ArchiveBackend, version: int, table: str, spec: str) -> int:
    return len(backend._table(version, table).copies[spec].files)


def test_root_id_lookup_reads_the_root_id_copy_and_one_file(tiny_archive):
    r = tiny_archive.query(QueryRequest(kind="table", table="synapses", version=2,
                                        filter_equal={"synapses": {"post_pt_root_id": 1003}}))
    assert sorted(r.table.column("id").to_pylist()) == [102, 105]
    assert _scan(tiny_archive) == {"post_pt_root_id": 1}
    assert _files(tiny_archive, 2, "synapses", "post_pt_root_id") == 3
    assert r.bytes_read > 0


def test_in_list_prunes_files_without_any_value(tiny_archive):
    tiny_archive.query(QueryRequest(kind="table", table="synapses", version=2,
                                    filter_in={"synapses": {"pre_pt_root_id": [0, 1003]}}))
    # percentile partitions of the pre roots: (..1001], (1001..1002], (1002..]: 0 and 1003 are in two
    assert _scan(tiny_archive) == {"pre_pt_root_id": 2}
    tiny_archive.query(QueryRequest(kind="table", table="synapses", version=2,
                                    filter_in={"synapses": {"pre_pt_root_id": [1002]}}))
    assert _scan(tiny_archive) == {"pre_pt_root_id": 1}
    r = tiny_archive.query(QueryRequest(kind="table", table="synapses", version=2,
                                        filter_in={"synapses": {"pre_pt_root_id": [424242]}}))
    assert r.table.num_rows == 0 and _scan(tiny_archive) == {"pre_pt_root_id": 0}


def test_box_reads_the_morton_copy_and_prunes(tiny_archive):
    box = {"synapses": {"ctr_pt_position": [[0, 0, 0], [12, 22, 1]]}}
    r = tiny_archive.query(QueryRequest(kind="table", table="synapses", version=2, filter_spatial=box))
    assert sorted(r.table.column("id").to_pylist()) == [100, 101]
    scan = _scan(tiny_archive)
    assert list(scan) == ["ctr_pt_position_morton"]
    assert scan["ctr_pt_position_morton"] < _files(tiny_archive, 2, "synapses", "ctr_pt_position_morton")


def test_no_filter_reads_the_id_copy(tiny_archive):
    tiny_archive.query(QueryRequest(kind="table", table="cells", version=2))
    assert _scan(tiny_archive) == {"id": 3}
    tiny_archive.query(QueryRequest(kind="table", table="cells", version=2,
                                    filter_greater={"cells": {"id": 5}}))
    assert _scan(tiny_archive) == {"id": 1}


def test_reference_merge_prunes_both_tables(tiny_archive):
    r = tiny_archive.query(QueryRequest(kind="join", version=2,
                                        join=(("nuclei", "id"), ("cell_types", "target_id")),
                                        filter_equal={"cell_types": {"target_id": 11}}))
    assert r.table.num_rows == 1
    assert _scan(tiny_archive)["target_id"] == 1


def test_morton_matches_the_exporter():
    import numpy as np

    pts = [(0, 0, 0), (1, 2, 3), (2097151, 5, 77), (123456, 654321, 999)]
    want = morton_encode_3d(*(np.array(c, dtype=np.uint64) for c in zip(*pts, strict=True)))
    assert [morton_encode(*p) for p in pts] == want.tolist()


def test_wkb_with_srid_and_big_endian():
    le = ewkb_points(pa.array([1, None]), pa.array([2, None]), pa.array([3, None]), srid=4326)
    be = pa.array([struct.pack(">BI3d", 0, 0x80000001, 7.0, 8.0, 9.0)], pa.binary())
    assert _wkb_axis(le, pa.array([2])).to_pylist() == [3.0, None]
    assert _wkb_axis(be, pa.array([0])).to_pylist() == [7.0]
    with pytest.raises(ValueError, match="POINT Z"):
        _wkb_axis(pa.array([b"\x01\x01\x00\x00\x00" + bytes(16)], pa.binary()), pa.array([0]))


def test_is_archive(tiny_archive_root, tiny_datastack):
    assert is_archive(tiny_archive_root / "tiny") and not is_archive(tiny_datastack)


# -- damaged exports: a clear error naming the file, never a partial answer ------------------


@pytest.fixture()
def damaged(tiny_datastack, tiny_local, tmp_path):
    root = tmp_path / "arch"
    export_archive(tiny_datastack, root, n_partitions=2)
    return root / "tiny", local_metadata(tiny_local)


def test_missing_data_file(damaged):
    folder, meta = damaged
    victim = sorted((folder / "v2" / "cells" / "id").glob("id_partition=*/*.parquet"))[-1]
    victim.unlink()
    with ArchiveBackend(folder, metadata=meta) as b:
        with pytest.raises(DatastackError, match=str(victim.name)) as info:
            Engine(b).execute("SELECT * FROM cells")
        assert "missing" in str(info.value)
        # a lookup whose files all survive still answers
        assert len(Engine(b).execute("SELECT * FROM cells WHERE id = 1").frame) == 1


def test_bad_delta_log(damaged):
    folder, meta = damaged
    log = sorted((folder / "v2" / "synapses" / "id" / "_delta_log").glob("*.json"))
    for f in log:
        f.write_text("{not json")
    with ArchiveBackend(folder, metadata=meta) as b:
        with pytest.raises(DatastackError, match="synapses/id: not a readable Delta table"):
            Engine(b).execute("SELECT * FROM synapses")


def test_corrupt_parquet_file(damaged):
    folder, meta = damaged
    victim = sorted((folder / "v2" / "cells" / "id").glob("id_partition=*/*.parquet"))[0]
    victim.write_bytes(b"PAR1 this is not parquet")
    with ArchiveBackend(folder, metadata=meta) as b, \
            pytest.raises(DatastackError, match="reading the archive"):
        Engine(b).execute("SELECT * FROM cells")


def test_data_file_with_the_wrong_schema(damaged):
    folder, meta = damaged
    victim = sorted((folder / "v2" / "cells" / "id").glob("id_partition=*/*.parquet"))[0]
    t = pq.read_table(victim)
    pq.write_table(t.drop_columns(["cell_type"]), victim)
    with ArchiveBackend(folder, metadata=meta) as b, pytest.raises(CaveqlError, match="cell_type"):
        Engine(b).execute("SELECT * FROM cells")


def test_copies_with_different_columns(damaged):
    folder, meta = damaged
    shutil.rmtree(folder / "v2" / "cells" / "pt_root_id")
    shutil.copytree(folder / "v2" / "nuclei" / "pt_root_id", folder / "v2" / "cells" / "pt_root_id")
    with ArchiveBackend(folder, metadata=meta) as b, \
            pytest.raises(DatastackError, match="cells/pt_root_id: its columns differ"):
        Engine(b).execute("SELECT * FROM cells")


def test_unknown_resolution_is_an_error_for_positions(damaged):
    folder, _meta = damaged
    with ArchiveBackend(folder) as b:
        with pytest.raises(DatastackError, match="voxel resolution of 'cells' is unknown"):
            Engine(b).execute("SELECT pt_position FROM cells")
        assert b.table_metadata(2, "cell_types")["voxel_resolution_x"] is None


def test_archive_json_completes_the_metadata(damaged, tiny_local):
    folder, _meta = damaged
    (folder / "archive.json").write_text(json.dumps({
        "voxel_resolution": [4, 4, 40],
        "tables": {"nuclei": {"voxel_resolution_x": 8, "voxel_resolution_y": 8, "voxel_resolution_z": 40}},
        "versions": {"2": {"time_stamp": "2023-04-06T20:17:09.199182"}}}))
    with ArchiveBackend(folder) as b:
        cql = "SELECT id, pt_position FROM nuclei AT RESOLUTION 1,1,1 SPLIT POSITIONS"
        got, want = Engine(b).execute(cql).frame, Engine(tiny_local).execute(cql).frame
        assert got.equals(want)
        assert b.version_metadata(2)["time_stamp"] == "2023-04-06T20:17:09.199182"


def test_inexact_statistics_never_prune_a_matching_file():
    from datetime import datetime

    from caveql.backends.archive_prune import file_test

    stored = ("size", "ts", "name")
    # float32 0.1 is 0.10000000149...; the log writes it as 0.1
    f = {"num_records": 1, "min.size": 0.1, "max.size": 0.1, "null_count.size": 0}
    assert file_test("greater", "size", 0.1000000001, stored)(f)
    assert not file_test("greater", "size", 0.2, stored)(f)
    # timestamps are cut to milliseconds, long strings to a prefix
    g = {"num_records": 1, "min.ts": datetime(2020, 1, 1), "max.ts": datetime(2020, 1, 1)}
    test = file_test("greater", "ts", datetime(2020, 1, 1, 0, 0, 0, 500), stored)
    assert test is None or test(g)  # None: the filter does not prune
    h = {"num_records": 1, "min.name": "a" * 32, "max.name": "a" * 32}
    assert file_test("equal", "name", "a" * 40, stored)(h)
    assert not file_test("equal", "name", "b", stored)({"num_records": 1, "min.name": "a", "max.name": "a"})
    # a file of nulls only holds no value
    assert not file_test("equal", "size", 1.0, stored)({"num_records": 2, "null_count.size": 2,
                                                       "min.size": None, "max.size": None})


def test_table_names_with_double_underscores(damaged):
    folder, meta = damaged
    (folder / "v2" / "cells").rename(folder / "v2" / "my__cells__id")
    with ArchiveBackend(folder, metadata={"my__cells__id": meta["cells"]}) as b:
        f = Engine(b).execute("SELECT id FROM my__cells__id WHERE pt_root_id = 1002 AT VERSION 2").frame
        assert f.id.tolist() == [2]


def test_a_table_without_rows(tmp_path):
    from deltalake import write_deltalake

    schema = pa.schema([("id", pa.int64()), ("valid", pa.bool_()), ("pt_position", pa.binary()),
                        ("pt_root_id", pa.int64()), ("id_partition", pa.int32())])
    write_deltalake(str(tmp_path / "ds" / "v7" / "empty" / "id"), schema.empty_table(),
                    partition_by=["id_partition"])
    with ArchiveBackend(tmp_path, datastack="ds", voxel_resolution=(4, 4, 40)) as b:
        f = Engine(b).execute("SELECT * FROM empty").frame
        assert list(f.columns) == ["id", "valid", "pt_root_id", "pt_position"] and len(f) == 0
        assert b.table_count(7, "empty") == 0


def test_the_decoded_point_keeps_its_place_among_the_points(damaged, tiny_local):
    # nuclei exported in full: pt_position decoded (Morton copy), bb_*_position left WKB
    folder, meta = damaged
    with ArchiveBackend(folder, metadata=meta) as b:
        names = b.table_columns(2, "nuclei").names
        assert names == [n for n in tiny_local.table_columns(2, "nuclei").names
                         if n not in ("created", "superceded_id")]
        cql = "SELECT * FROM nuclei WHERE pt_position WITHIN BOX((60, 110, 10), (130, 180, 13))"
        got = Engine(b).execute(cql).frame
        want = Engine(tiny_local).execute(cql).frame.drop(columns=["created", "superceded_id"])
        assert list(got.columns) == list(want.columns) and got.equals(want)


def test_a_view_with_points(tmp_path):
    from caveql.backends.local import LocalBackend
    from caveql.datastack.layout import write_view
    from caveql.datastack.tiny import build_tiny

    local_root = build_tiny(tmp_path / "tiny")
    write_view(local_root, 2, "cell_points", {
        "id": 2, "description": "cells with their points", "datastack_name": "tiny",
        "voxel_resolution_x": 4.0, "voxel_resolution_y": 4.0, "voxel_resolution_z": 40.0,
        "notice_text": None, "live_compatible": False,
    }, "SELECT id, pt_position_x, pt_position_y, pt_position_z, cell_type, pt_root_id FROM cells WHERE valid")
    folder = export_archive(local_root, tmp_path / "arch", n_partitions=2)
    specs = sorted(p.name for p in (folder / "v2" / "cell_points").iterdir())
    assert specs == ["flat", "id", "pt_position_morton"]
    with LocalBackend(local_root) as local, ArchiveBackend(folder, metadata=local_metadata(local)) as b:
        for cql in ("SELECT * FROM cell_points",
                    "SELECT * FROM cell_points WHERE pt_position WITHIN BOX((120, 220, 9), (260, 360, 13))"):
            got, want = Engine(b).execute(cql).frame, Engine(local).execute(cql).frame
            assert len(want) and list(got.columns) == list(want.columns) and got.equals(want)
        assert list(_scan(b)) == ["pt_position_morton"]  # a box on a view reads its Morton copy


@pytest.mark.parametrize("content, problem", [
    ("[1, 2]", "needs a JSON object"),
    ('{"voxel_resolution": [4, 4]}', "voxel_resolution"),
    ('{"tables": {"cells": 4}}', "tables.cells"),
    ('{"versions": []}', "'versions' must be an object"),
    ("{oops", "cannot read"),
])
def test_a_bad_archive_json_is_named(damaged, content, problem):
    folder, _meta = damaged
    (folder / "archive.json").write_text(content)
    with pytest.raises(DatastackError, match=problem) as info:
        ArchiveBackend(folder)
    assert "archive.json" in str(info.value)
