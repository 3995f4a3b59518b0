"""Archive benchmark: CQL over a Delta Lake export vs the same query hand-written in DuckDB over the
same files, and the bytes each query reads (docs/performance.md, "Archives").

    .venv/bin/python benchmarks/archive.py [--demo DIR] [--scale 1] [--partitions auto] [--repeat 5]

The demo's synapse table at version 661 (2,000,000 rows; ``--scale 10``: ten shifted copies of
it, 20,000,000 rows) is exported in MaterializationEngine's layout (``id``, ``pre_pt_root_id``,
``post_pt_root_id`` and ``ctr_pt_position_morton`` copies, partitions as ``"auto"`` gives them,
or ``--partitions N``; :func:`caveql.datastack.delta_export.export_rows`, timed: rows/s), then
each query runs through ``Engine(ArchiveBackend)`` (a pandas frame in caveclient's shape) and as
the SQL a person would write in DuckDB over the right copy's Parquet files, made into the same
frame (:func:`hand_frame`: nullable dtypes, each position decoded from its WKB bytes or its x/y/z
columns and packed as one ``[x, y, z]`` array per row, as caveclient does; checked equal to
caveql's frame); medians of ``--repeat`` runs after one warm-up. Bytes read are DuckDB's profiler's
``total_bytes_read`` for caveql's archive call — or, for a call the local step reads in place
(``Capabilities.relations``), that step's own statement — and for the hand-written query, against
the bytes of the copy read and of the whole export (all four copies).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TABLE = "synapses_pni_2"
VERSION = 661


def _folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*.parquet"))


def export(demo: Path, out: Path, scale: int, partitions: int | None) -> dict[str, Any]:
    """Export the synapse table (``scale`` shifted copies) under ``out``; returns timings."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from caveql.backends.base import QueryRequest
    from caveql.backends.local import LocalBackend
    from caveql.datastack.delta_export import export_rows

    with LocalBackend(demo) as src:
        rows = src.query(QueryRequest(kind="table", table=TABLE, version=VERSION)).table
        meta = src.table_metadata(VERSION, TABLE)
    if scale > 1:  # ids and root ids shifted per copy: distinct rows, the same spatial spread
        top = int(pc.max(rows.column("id")).as_py()) + 1
        parts = []
        for k in range(scale):
            t = rows
            for col in ("id", "pre_pt_root_id", "post_pt_root_id"):
                i = t.schema.get_field_index(col)
                t = t.set_column(i, col, pc.add(t.column(col), pa.scalar(k * top, t.schema.field(col).type)))
            parts.append(t)
        rows = pa.concat_tables(parts)
    folder = out / "minnie65_demo" / f"v{VERSION}" / TABLE
    shutil.rmtree(folder, ignore_errors=True)
    t0 = time.perf_counter()
    specs = export_rows(rows, folder, n_partitions=partitions, small_table_mb=0)
    seconds = time.perf_counter() - t0
    (out / "minnie65_demo" / "archive.json").write_text(json.dumps(
        {"voxel_resolution": [meta[f"voxel_resolution_{a}"] for a in "xyz"], "tables": {TABLE: meta}},
        default=str))
    return {"rows": rows.num_rows, "export_s": seconds, "export_rows_per_s": rows.num_rows / seconds,
            "specs": specs}


_NULLABLE: dict[Any, Any] | None = None


def _wkb_xyz(col: Any) -> Any:
    """``n x 3`` int64 coordinates of PostGIS POINT Z (E)WKB values (all valid, little-endian,
    as the exporter writes them): the last 24 bytes, truncated as the exporter decodes."""
    import numpy as np
    import pyarrow as pa

    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    assert arr.null_count == 0
    wide = pa.types.is_large_binary(arr.type)
    offs = np.frombuffer(arr.buffers()[1], np.int64 if wide else np.int32)
    offs = offs[arr.offset:arr.offset + len(arr) + 1]
    data = np.frombuffer(arr.buffers()[2], np.uint8)
    assert len(arr) == 0 or (data[offs[:-1]] == 1).all()  # little-endian
    raw = data[(offs[1:, None] - 24) + np.arange(24)]
    return np.trunc(raw.copy().view("<f8")).astype(np.int64)


def hand_frame(table: Any, positions: dict[str, str]) -> Any:
    """A hand-written query's Arrow answer as caveclient's frame: nullable dtypes, and each of
    ``positions`` (``{name: "wkb" | "xyz"}``) one column of ``[x, y, z]`` arrays, at the end."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    global _NULLABLE
    if _NULLABLE is None:
        _NULLABLE = {pa.int32(): pd.Int32Dtype(), pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype(),
                     pa.float32(): pd.Float32Dtype(), pa.float64(): pd.Float64Dtype(),
                     pa.string(): pd.StringDtype("python")}
    packed = {}
    drop = []
    for name, kind in positions.items():
        if kind == "wkb":
            xyz = _wkb_xyz(table.column(name))
            drop.append(name)
        else:
            cols = [f"{name}_{a}" for a in "xyz"]
            xyz = np.stack([table.column(c).to_numpy() for c in cols], axis=1).astype(np.int64)
            drop += cols
        packed[name] = list(xyz)
    # (threads only for a large answer, as caveql converts: caveql.execute.local.to_frame)
    rest = table.drop_columns(drop)
    frame = rest.to_pandas(types_mapper=_NULLABLE.get, use_threads=rest.nbytes >= 16 << 20)
    for name, rows in packed.items():
        frame[name] = pd.Series(rows, index=frame.index, dtype=object)
    return frame


def _bytes(cur: Any) -> int:
    found = re.search(r'"total_bytes_read"\s*:\s*(\d+)', cur.get_profiling_information(format="json"))
    return int(found.group(1)) if found else 0


def _caveql_read(engine: Any, backend: Any, q: dict[str, Any]) -> tuple[int, int]:
    """Bytes and files the statement reads: its archive call's, or, for a call read in place
    (caveql.execute.relations), the local step's own statement over the relation."""
    import duckdb

    from caveql.execute.relations import in_place

    p = engine.physical_plan(q["cql"])
    call = p.calls[0]
    rel = in_place(backend, call, p.capabilities) if call.in_place else None
    if rel is None:
        res = backend.query(q["request"])
        return res.bytes_read, len(backend.last_scan[0][1])
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET enable_profiling = 'no_output'")
        con.register(call.relation, rel.bind(con))
        con.sql(p.sql, params=list(p.params)).fetchall()
        return _bytes(con), sum(len(f) for _d, f in rel.relation.scans)
    finally:
        con.close()


def _forget(engine: Any, backend: Any) -> None:
    """Forget what a statement run again reuses: the parsed text (caveql.syntax.parser), the
    plan (caveql.plancache) and the archive's statement for the request."""
    from caveql.syntax import parser

    parser._MEMO.clear()
    engine._plans.clear()
    backend._relations.clear()


_CPU: list[float] = []  # the CPU seconds (all the process's threads) of the last _median_times


def _median_times(fns: list[Any], repeat: int) -> list[float]:
    """Median seconds of each of ``fns``, run interleaved (the machine's load hits all alike);
    their median CPU seconds (this process, every thread: DuckDB's too) go to ``_CPU`` — on a
    loaded machine a small query's wall time is mostly waiting for a core."""
    for fn in fns:
        fn()  # warm-up (the Delta logs read, the OS cache filled)
    times: list[list[float]] = [[] for _ in fns]
    cpu: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for fn, ts, cs in zip(fns, times, cpu, strict=True):
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
            cs.append(time.process_time() - c0)
    _CPU[:] = [statistics.median(cs) for cs in cpu]
    return [statistics.median(ts) for ts in times]


def queries(backend: Any) -> list[dict[str, Any]]:
    """The benchmark's queries: CQL, the backend request whose bytes are read, the hand-written SQL."""
    from caveql.backends.base import QueryRequest

    t = backend._table(VERSION, TABLE)
    con = backend._con
    root = con.sql(f"SELECT pre_pt_root_id FROM read_parquet('{t.copies['id'].path}/**/*.parquet') "
                   "WHERE pre_pt_root_id != 0 GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1").fetchall()[0][0]
    box_lo, box_hi = (180_000, 180_000, 20_000), (200_000, 200_000, 21_000)  # voxels, ~1/100 of the volume

    def files(spec: str) -> str:
        return f"read_parquet('{t.copies[spec].path}/**/*.parquet', hive_partitioning = false)"

    box_sql = " AND ".join(f"ctr_pt_position_{a} BETWEEN {box_lo[k]} AND {box_hi[k]}"
                           for k, a in enumerate("xyz"))
    return [
        {"name": "root-id lookup (SELECT *)",
         "cql": f"SELECT * FROM {TABLE} WHERE pre_pt_root_id = {root}",
         "request": QueryRequest(kind="table", table=TABLE, version=VERSION,
                                 filter_equal={TABLE: {"pre_pt_root_id": root}}),
         "copy": "pre_pt_root_id",
         "sql": f"SELECT id, valid, CAST(size AS FLOAT) AS size, pre_pt_supervoxel_id, pre_pt_root_id, "
                "post_pt_supervoxel_id, post_pt_root_id, pre_pt_position, post_pt_position, "
                f"ctr_pt_position_x, ctr_pt_position_y, ctr_pt_position_z FROM {files('pre_pt_root_id')} "
                f"WHERE valid AND pre_pt_root_id = {root} ORDER BY id",
         "positions": {"pre_pt_position": "wkb", "post_pt_position": "wkb", "ctr_pt_position": "xyz"}},
        {"name": "root-id lookup, partners counted",
         "cql": f"SELECT post_pt_root_id, COUNT(*) AS n FROM {TABLE} WHERE pre_pt_root_id = {root} "
                "GROUP BY post_pt_root_id ORDER BY n DESC, post_pt_root_id",
         "request": QueryRequest(kind="table", table=TABLE, version=VERSION,
                                 filter_equal={TABLE: {"pre_pt_root_id": root}},
                                 select_columns={TABLE: ("id", "post_pt_root_id")}),
         "copy": "pre_pt_root_id",
         "sql": f"SELECT post_pt_root_id, count(*) AS n FROM {files('pre_pt_root_id')} WHERE valid AND "
                f"pre_pt_root_id = {root} GROUP BY 1 ORDER BY n DESC, post_pt_root_id"},
        {"name": "box (id, size)",
         "cql": f"SELECT id, size FROM {TABLE} WHERE ctr_pt_position WITHIN BOX({box_lo}, {box_hi})",
         "request": QueryRequest(kind="table", table=TABLE, version=VERSION,
                                 filter_spatial={TABLE: {"ctr_pt_position": [list(box_lo), list(box_hi)]}},
                                 select_columns={TABLE: ("id", "size")}),
         "copy": "ctr_pt_position_morton",
         "sql": f"SELECT id, CAST(size AS FLOAT) AS size FROM {files('ctr_pt_position_morton')} "
                f"WHERE valid AND {box_sql} ORDER BY id"},
        {"name": "scan: big synapses counted",
         "cql": f"SELECT COUNT(*) AS n, AVG(size) AS mean FROM {TABLE} WHERE size > 5000",
         "request": QueryRequest(kind="table", table=TABLE, version=VERSION,
                                 filter_greater={TABLE: {"size": 5000}},
                                 select_columns={TABLE: ("id", "size")}),
         "copy": "id",
         "sql": f"SELECT count(*) AS n, avg(CAST(size AS FLOAT)) AS mean FROM {files('id')} "
                "WHERE valid AND size > 5000"},
    ]


def run(root: Path, repeat: int) -> list[dict[str, Any]]:
    import duckdb
    import pandas as pd

    from caveql.backends.archive import ArchiveBackend
    from caveql.engine import Engine

    backend = ArchiveBackend(root / "minnie65_demo")
    engine = Engine(backend, max_fetch_rows=None)
    export_bytes = _folder_bytes(root / "minnie65_demo" / f"v{VERSION}" / TABLE)
    hand = duckdb.connect()
    hand.execute("SET enable_profiling = 'no_output'")
    out = []
    try:
        for q in queries(backend):
            copy = backend._table(VERSION, TABLE).copies[q["copy"]]
            frame = engine.execute(q["cql"]).frame
            rows = len(frame)
            pos = q.get("positions", {})

            def by_hand(q: dict[str, Any] = q, pos: dict[str, str] = pos) -> Any:
                return hand_frame(hand.sql(q["sql"]).to_arrow_table(), pos)
            # the same question: the hand-written query's frame equals caveql's
            pd.testing.assert_frame_equal(by_hand(), frame, check_exact=False, rtol=1e-12)
            in_place = bool(engine.physical_plan(q["cql"]).calls[0].in_place)
            # the archive call alone: only where the statement fetches rows (a call read in place
            # is part of the local step's one query)
            # the statement run again (its parse, plan and the archive's statement kept), and run
            # as new (each forgotten first: what its first run costs)
            fns = [lambda q=q: engine.execute(q["cql"]).frame, by_hand,
                   lambda q=q: _forget(engine, backend) or engine.execute(q["cql"]).frame]
            if not in_place:
                fns.append(lambda q=q: backend.query(q["request"]))
            ours, theirs, fresh, *call_s = _median_times(fns, repeat)
            call = call_s[0] if call_s else None
            cpu_ours, cpu_theirs = _CPU[0], _CPU[1]
            hand.sql(q["sql"]).fetchall()
            hand_bytes = _bytes(hand)
            nbytes, nfiles = _caveql_read(engine, backend, q)
            copy_bytes = _folder_bytes(Path(copy.path))
            out.append({"query": q["name"], "rows": rows, "caveql_s": ours, "duckdb_s": theirs,
                        "ratio": ours / theirs, "caveql_new_s": fresh, "new_ratio": fresh / theirs,
                        "backend_call_s": call,
                        "caveql_cpu_s": cpu_ours, "duckdb_cpu_s": cpu_theirs,
                        "cpu_ratio": cpu_ours / cpu_theirs,
                        "call_ratio": call / theirs if call is not None else None,
                        "caveql_bytes_read": nbytes, "duckdb_bytes_read": hand_bytes,
                        "files_read": nfiles, "files": len(copy.files),
                        "in_place": in_place,
                        "copy_bytes": copy_bytes, "export_bytes": export_bytes,
                        "share_of_copy": nbytes / copy_bytes,
                        "share_of_export": nbytes / export_bytes})
    finally:
        backend.close()
        hand.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--demo", default=None, help="demo datastack folder (default: build/find the 2M demo)")
    ap.add_argument("--scale", type=int, default=1, help="copies of the synapse table (10: 20M rows)")
    ap.add_argument("--partitions", default="auto",
                    help="partitions per copy (default: auto, as the exporter)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", default=None, help="keep the export here (default: a temporary folder)")
    ap.add_argument("--json", default=None, help="write the figures here too")
    ap.add_argument("--reuse", action="store_true", help="query the export already in --out")
    args = ap.parse_args()
    from caveql.datastack.demo import build_demo

    demo = Path(args.demo) if args.demo else build_demo()
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="caveql-archive-bench-"))
    parts = None if args.partitions == "auto" else int(args.partitions)
    try:
        if args.reuse:
            made = json.loads((out / "export.json").read_text())
        else:
            made = export(demo, out, args.scale, parts)
            (out / "export.json").write_text(json.dumps(made))
        print(f"export: {made['rows']:,} rows in {made['export_s']:.1f} s "
              f"({made['export_rows_per_s']:,.0f} rows/s), "
              f"copies {', '.join(made['specs'])}")
        figures = run(out, args.repeat)
        for f in figures:
            print(f"{f['query']}: {f['rows']:,} rows; caveql {f['caveql_s'] * 1e3:.1f} ms, DuckDB by hand "
                  f"{f['duckdb_s'] * 1e3:.1f} ms (x{f['ratio']:.2f}; CPU {f['caveql_cpu_s'] * 1e3:.1f} vs "
                  f"{f['duckdb_cpu_s'] * 1e3:.1f} ms, x{f['cpu_ratio']:.2f}; "
                  f"run as new {f['caveql_new_s'] * 1e3:.1f} ms, x{f['new_ratio']:.2f}; "
                  + ("read in place by the local step" if f["in_place"] else
                     f"the archive call alone {f['backend_call_s'] * 1e3:.1f} ms, x{f['call_ratio']:.2f}")
                  + "); "
                  + f"read {f['caveql_bytes_read']:,} B "
                  f"(by hand {f['duckdb_bytes_read']:,} B) = {100 * f['share_of_copy']:.1f}% of the copy, "
                  f"{100 * f['share_of_export']:.2f}% of the export; files {f['files_read']}/{f['files']}")
        if args.json:
            Path(args.json).write_text(json.dumps({"export": made, "queries": figures}, indent=1))
    finally:
        if not args.out:
            shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
