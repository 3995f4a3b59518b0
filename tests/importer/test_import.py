"""Flat-file import (issue #11): dumps written from a local datastack in the published shape
import back into a datastack that answers every query alike; damaged dumps are clear errors
naming the file; an interrupted import resumes with verified counts; memory stays bounded."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas.testing as pdt
import pyarrow.parquet as pq
import pytest

from caveql.backends.local import LocalBackend
from caveql.datastack.importer import import_dumps
from caveql.engine import Engine
from caveql.errors import CaveqlError, DatastackError
from tests.importer.dumps import write_dumps

TINY_STATEMENTS = [
    "SELECT * FROM cells",
    "SELECT * FROM nuclei",
    "SELECT * FROM cell_types",
    "SELECT * FROM synapses",
    "SELECT id, pt_root_id FROM cells WHERE cell_type = 'BC'",
    "SELECT s.id FROM synapses s JOIN cells c ON s.post_pt_root_id = c.pt_root_id WHERE c.cell_type = 'BC'",
    "SELECT pre_pt_root_id, COUNT(*) AS n FROM synapses GROUP BY pre_pt_root_id "
    "ORDER BY n DESC, pre_pt_root_id",
    "SELECT pt_position, pt_root_id FROM cells AT RESOLUTION 1,1,1 SPLIT POSITIONS",
    "SELECT id FROM synapses WHERE ctr_pt_position WITHIN BOX((0, 0, 0), (300, 300, 30))",
    "SELECT id FROM synapses ORDER BY size DESC LIMIT 3",
    "SELECT pt_root_id FROM cells WHERE id = 5 AT VERSION 1",
    "SELECT * FROM synapses AT VERSION 1",
    "SELECT id, volume, pt_position FROM nuclei WHERE volume > 100 AT VERSION 1",
]

# the seed page's statements (tests/engine/test_spec.py) that need no view
ROOT = 864691135808473885
DEMO_STATEMENTS = [
    "SELECT * FROM aibs_soma_nuc_metamodel_preds_v117 WHERE cell_type = 'BC'",
    f"SELECT * FROM synapses_pni_2 WHERE pre_pt_root_id = {ROOT}",
    "SELECT id, pt_root_id, pt_position FROM nucleus_detection_v0 WHERE pt_position WITHIN "
    "BOX((700000, 400000, 800000), (800000, 500000, 850000)) AT RESOLUTION 1,1,1",
    "SELECT pre_pt_root_id, post_pt_root_id, COUNT(*) AS syn_count FROM synapses_pni_2 "
    f"WHERE pre_pt_root_id = {ROOT} GROUP BY pre_pt_root_id, post_pt_root_id ORDER BY syn_count DESC, "
    "post_pt_root_id",
    "SELECT id, size FROM synapses_pni_2 WHERE size BETWEEN 1000 AND 1010",
]


def _same(src: Path, dest: Path, statements: list[str]) -> None:
    a, b = Engine(LocalBackend(src)), Engine(LocalBackend(dest))
    for stmt in statements:
        want, got = a.execute(stmt).frame, b.execute(stmt).frame
        assert len(want) > 0, stmt  # a statement answering nothing would prove nothing
        pdt.assert_frame_equal(got, want, obj=stmt)


@pytest.fixture(scope="module")
def tiny_dumps(tiny_datastack, tmp_path_factory):
    out = tmp_path_factory.mktemp("dumps")
    # every position format: split (cells), hex EWKB (nuclei), PostGIS text (the rest)
    for v in (1, 2):
        write_dumps(tiny_datastack, v, out / f"v{v}", style={"cells": "split", "nuclei": "ewkb"},
                    files={"synapses": "synapses_v1_filtered_view"})
    return out


@pytest.fixture(scope="module")
def tiny_imported(tiny_dumps, tmp_path_factory):
    dest = tmp_path_factory.mktemp("imported") / "tiny"
    for v in (1, 2):
        import_dumps(tiny_dumps / f"v{v}", v, dest, progress=lambda _m: None)
    return dest


def test_import_answers_like_the_source(tiny_datastack, tiny_imported):
    _same(tiny_datastack, tiny_imported, TINY_STATEMENTS)
    storage = json.loads((tiny_imported / "versions/2/tables/synapses.json").read_text())["_storage"]
    assert [f["sorted_by"] for f in storage["files"]] == [
        "pre_pt_root_id", "post_pt_root_id", "ctr_pt_position", "size"]
    assert not (tiny_imported / "versions/2/.caveql-import.json").exists()


def _copy(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    return dest


class _Stop(Exception):
    pass


def test_interrupted_import_resumes(tiny_datastack, tiny_dumps, tmp_path):
    dest = tmp_path / "out"
    seen: list[str] = []

    def stop_at_second_sort(msg: str) -> None:
        seen.append(msg)
        if "sorting by post_pt_root_id" in msg:
            raise _Stop
    with pytest.raises(_Stop):
        import_dumps(tiny_dumps / "v2", 2, dest, progress=stop_at_second_sort)
    state = json.loads((dest / "versions/2/.caveql-import.json").read_text())
    syn = {k.split(":")[1]: n for k, n in state.items() if k.startswith("synapses@")}
    assert syn == {"read": 10, "by_pre": 10}
    with pytest.raises(DatastackError, match="version.json"):  # a half import is never read
        LocalBackend(dest).versions()
    # a damaged finished file is redone, not trusted
    (dest / "versions/2/tables/cells.parquet").write_bytes(b"PAR1 garbage")
    again: list[str] = []
    import_dumps(tiny_dumps / "v2", 2, dest, progress=again.append)
    assert any("reading cells" in m for m in again)
    assert not any("reading synapses" in m or "sorting by pre_pt" in m for m in again)
    assert any("sorting by post_pt_root_id" in m for m in again)
    for f in (dest / "versions/2/tables").glob("synapses.*.parquet"):
        assert pq.ParquetFile(f).metadata.num_rows == 10
    stmts = [s for s in TINY_STATEMENTS if "VERSION 1" not in s]
    _same(tiny_datastack, dest, stmts)


def _damage(src: Path, tmp: Path, how: str) -> tuple[Path, str]:
    d = _copy(src, tmp / "dump")
    data, header = d / "nuclei_merged.csv.gz", d / "nuclei_merged_header.csv"
    if how == "missing header":
        header.unlink()
        return d, header.name
    if how == "missing data":
        data.unlink()
        return d, data.name
    if how == "truncated gzip":
        raw = data.read_bytes()
        data.write_bytes(raw[: len(raw) * 2 // 3])
        return d, data.name
    lines = gzip.decompress(data.read_bytes()).decode().splitlines()
    if how == "wrong column count":
        lines[2] += ",42"
    elif how == "bad value":
        lines[3] = "x" + lines[3]
    elif how == "partial dump":
        lines = lines[:-1]
    if how == "bad type":
        header.write_text(header.read_text().replace("volume,real", "volume,tsvector"))
        return d, header.name
    if how == "wrong header":
        header.write_text("\n".join(header.read_text().splitlines()[:-1]) + "\n")
    data.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    return d, data.name


@pytest.mark.parametrize("how", ["missing header", "missing data", "truncated gzip",
                                 "wrong column count", "bad value", "partial dump", "bad type",
                                 "wrong header"])
def test_damaged_dump_is_a_clear_error(tiny_dumps, tmp_path, how):
    dump, name = _damage(tiny_dumps / "v2", tmp_path, how)
    dest = tmp_path / "out"
    with pytest.raises(CaveqlError, match=name.replace(".", r"\.")) as info:
        import_dumps(dump, 2, dest, progress=lambda _m: None)
    assert info.value.code == "CQL044"
    if dest.exists():  # nothing half-imported is readable
        with pytest.raises(DatastackError):
            LocalBackend(dest).versions()


def test_cli_import(tiny_datastack, tiny_dumps, tmp_path):
    dest = tmp_path / "cli"
    run = subprocess.run([sys.executable, "-m", "caveql", "import", str(tiny_dumps / "v2"),
                          "--version", "2", "--path", str(dest)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == str(dest)
    bad = subprocess.run([sys.executable, "-m", "caveql", "import", str(tmp_path / "nope"),
                          "--version", "2", "--path", str(dest)], capture_output=True, text=True)
    assert bad.returncode == 1 and "CQL044" in bad.stderr and "Traceback" not in bad.stderr


LIMIT_MB = 256
_MEASURE = textwrap.dedent(f"""
    import json, re, sys
    from caveql.datastack.importer import import_dumps

    def hwm():  # VmHWM: this process's peak RSS (ru_maxrss would count the forking parent's)
        with open("/proc/self/status") as f:
            return int(re.search(r"VmHWM:\\s*(\\d+) kB", f.read()).group(1))
    base = hwm()   # interpreter + libraries
    import_dumps(sys.argv[1], 661, sys.argv[2], progress=lambda _m: None,
                 memory_limit="{LIMIT_MB}MB", threads=2)
    print(json.dumps({{"base_kb": base, "peak_kb": hwm()}}))
""")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_demo_import_bounded_memory(demo_path, tmp_path):
    dump = write_dumps(demo_path, 661, tmp_path / "v661",
                       files={"synapses_pni_2": "synapses_pni_2_v1_filtered_view"},
                       tables=("synapses_pni_2", "nucleus_detection_v0",
                               "aibs_soma_nuc_metamodel_preds_v117"))
    dest = tmp_path / "demo"
    run = subprocess.run([sys.executable, "-c", _MEASURE, str(dump), str(dest)],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    rss = json.loads(run.stdout)
    base, peak = rss["base_kb"] * 1024, rss["peak_kb"] * 1024
    syn = dump / "synapses_pni_2_v1_filtered_view.csv.gz"
    with gzip.open(syn, "rb") as f:
        csv_bytes = sum(len(b) for b in iter(lambda: f.read(1 << 24), b""))
    print(f"peak RSS {peak / 1e6:.0f} MB (libraries {base / 1e6:.0f} MB); synapse dump "
          f"{syn.stat().st_size / 1e6:.0f} MB gzip, {csv_bytes / 1e6:.0f} MB CSV")
    # what the import adds is bounded by DuckDB's memory limit (plus its buffers), whatever
    # the dump's size; the rows themselves (424 MB of CSV here) are never all in memory
    assert peak - base < 2 * LIMIT_MB * 1e6
    _same(demo_path, dest, DEMO_STATEMENTS)


def test_postgres_types_and_point_encodings(tmp_path):
    """Types a materialized table can hold, and every point encoding PostGIS writes."""
    import struct

    def ewkb(x: float, y: float, z: float, *, srid: bool, big: bool) -> str:
        e = ">" if big else "<"
        kind = 0x80000001 | (0x20000000 if srid else 0)
        body = struct.pack(f"{e}I", kind) + (struct.pack(f"{e}I", 4326) if srid else b"")
        return (bytes([0 if big else 1]) + body + struct.pack(f"{e}ddd", x, y, z)).hex()

    dump = tmp_path / "v7"
    dump.mkdir()
    (dump / "things_merged_header.csv").write_text(
        "id,bigint\nn,smallint\nprice,\"numeric(10,2)\"\nseen,timestamp with time zone\n"
        "day,date\nok,boolean\nname,text\npt,\"geometry(PointZ,4326)\"\n".replace('"', ""))
    rows = [
        f"1,3,12.50,2021-03-04 05:06:07.5+02,2021-03-04,t,\"a,b\",{ewkb(1, 2, 3, srid=True, big=False)}",
        f"2,,0.25,2021-03-04 05:06:07+00,,f,\"\",{ewkb(-4, 5e6, 6, srid=False, big=True)}",
        "3,-7,,,,,,POINT Z (7 8 9)",
        "4,0,1,2021-01-01 00:00:00-05,2020-02-29,t,x,",
    ]
    with gzip.open(dump / "things_merged.csv.gz", "wt") as f:
        f.write("\n".join(rows) + "\n")
    dest = import_dumps(dump, 7, tmp_path / "out", metadata={"datastack": {"datastack_name": "t"}},
                        progress=lambda _m: None)
    t = pq.read_table(dest / "versions/7/tables/things.parquet").to_pandas()
    assert t.id.tolist() == [1, 2, 3, 4]
    assert [str(x) for x in t.seen] == ["2021-03-04 03:06:07.500000", "2021-03-04 05:06:07",
                                        "NaT", "2021-01-01 05:00:00"]
    assert t.name.tolist()[:3] == ["a,b", "", None]
    assert t.price.tolist()[:2] == [12.5, 0.25] and t.ok.tolist()[:2] == [True, False]
    assert t[["pt_x", "pt_y", "pt_z"]].values.tolist()[:3] == [[1, 2, 3], [-4, 5_000_000, 6], [7, 8, 9]]
    assert t.pt_x.isna().tolist() == [False, False, False, True]
    assert str(pq.read_schema(dest / "versions/7/tables/things.parquet").field("pt_x").type) == "int32"


def test_resume_rereads_a_replaced_dump(tiny_dumps, tmp_path):
    import os

    dump, dest = _copy(tiny_dumps / "v2", tmp_path / "dump"), tmp_path / "out"

    def stop(msg: str) -> None:
        if "sorting by post_pt_root_id" in msg:
            raise _Stop
    with pytest.raises(_Stop):
        import_dumps(dump, 2, dest, progress=stop)
    data = dump / "synapses_v1_filtered_view.csv.gz"
    st = data.stat()
    os.utime(data, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # the dump was replaced
    again: list[str] = []
    import_dumps(dump, 2, dest, progress=again.append)
    assert any("reading synapses" in m for m in again)
    assert not any("reading cells" in m for m in again)


def _view_dump(folder: Path, name: str, frame, header: list[str]) -> None:
    """A view's dump as MICrONs publishes them: ``<view>.csv.gz`` (no header row, no ``id``)
    and ``<view>_header.csv``."""
    import io

    buf = io.StringIO()
    frame.to_csv(buf, header=False, index=False, na_rep="")
    with gzip.open(folder / f"{name}.csv.gz", "wt", encoding="utf-8") as f:
        f.write(buf.getvalue())
    (folder / f"{name}_header.csv").write_text("\n".join(header) + "\n", encoding="utf-8")


def test_view_dumps_are_imported_as_views(tiny_datastack, tiny_dumps, tmp_path):
    """A version folder holds view dumps too (connections_with_nuclei, aibs_cell_info): a dump
    without ``id`` (or listed under the sidecar's ``views``) becomes a materialized view that
    answers as the source's view, positions included."""
    src = _copy(tiny_dumps / "v2", tmp_path / "v2")
    orig = Engine(LocalBackend(tiny_datastack))
    counts = orig.execute("SELECT * FROM syn_counts").frame
    _view_dump(src, "syn_counts", counts, ["pre_pt_root_id,bigint", "post_pt_root_id,bigint",
                                           "n_syn,bigint", "sum_size,double precision"])
    points = orig.execute("SELECT pt_root_id, pt_position FROM cells SPLIT POSITIONS").frame
    text = points.assign(pt_position=[f"POINT Z ({x} {y} {z})" for x, y, z in
                                      zip(points.pt_position_x, points.pt_position_y, points.pt_position_z,
                                          strict=True)])[["pt_root_id", "pt_position"]]
    _view_dump(src, "cell_points", text, ["pt_root_id,bigint", "pt_position,geometry(PointZ)"])
    side = json.loads((src / "caveql_import.json").read_text())
    resolution = {f"voxel_resolution_{a}": v for a, v in zip("xyz", (4.0, 4.0, 40.0), strict=True)}
    side["views"] = {"cell_points": {"description": "cells' points", **resolution},
                     "syn_counts": orig.backend.views(2)["syn_counts"]}
    (src / "caveql_import.json").write_text(json.dumps(side))
    dest = tmp_path / "tiny"
    import_dumps(src, 2, dest, progress=lambda _m: None)
    with LocalBackend(dest) as b:
        assert sorted(b.views(2)) == ["cell_points", "syn_counts"]
        assert "cell_points" not in b.tables(2) and b.views(2)["cell_points"]["description"] == "cells' points"
        got = Engine(b)
        pdt.assert_frame_equal(got.execute("SELECT * FROM syn_counts").frame, counts)
        order = " ORDER BY pt_root_id, pt_position_x"  # (a view without ids has no row order of its own)
        pdt.assert_frame_equal(got.execute("SELECT pt_root_id, pt_position FROM cell_points" + order).frame,
                               orig.execute("SELECT pt_root_id, pt_position FROM cells" + order).frame)
        nm = got.execute("SELECT pt_position FROM cell_points WHERE pt_root_id = 1001 "
                         "AT RESOLUTION 1, 1, 1").frame  # (the sidecar's resolution: nm are exact)
        one = points[points.pt_root_id == 1001].iloc[0]
        assert list(nm.pt_position[0]) == [4 * one.pt_position_x, 4 * one.pt_position_y, 40 * one.pt_position_z]
    # without the sidecar's word, a dump without id is a view too; a table's header without id
    # (listed under "tables") stays an error naming the file
    del side["views"]
    (src / "caveql_import.json").write_text(json.dumps(side))
    import_dumps(src, 2, tmp_path / "plain", progress=lambda _m: None)
    with LocalBackend(tmp_path / "plain") as b:
        assert sorted(b.views(2)) == ["cell_points", "syn_counts"]
        pdt.assert_frame_equal(Engine(b).execute("SELECT * FROM syn_counts").frame, counts)
    side["tables"]["cell_points"] = {}
    (src / "caveql_import.json").write_text(json.dumps(side))
    with pytest.raises(DatastackError, match="cell_points_header.csv has no 'id' column"):
        import_dumps(src, 2, tmp_path / "again", progress=lambda _m: None)
