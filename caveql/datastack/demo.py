"""``caveql demo``: build the synthetic ``minnie65_demo`` datastack (see docs/datastacks.md).

Shaped like minnie65_public (microns-data.md): versions 343 and 661 with their real
timestamps, the 15 tables of version 661 (4 at 343), the service's schemas and dtypes,
144,120 nuclei, the reference cell-type mix, synapses from a distance-dependent model, and the
seed page's figures planted. Deterministic from the seed; idempotent (a marker file records
the generator version and parameters, a mismatch rebuilds); built in a temporary sibling
folder and renamed into place, so an interrupted build never leaves a half datastack.

Storage: synapses are written once, in the copies of :data:`SORTS` (sorted by
``pre_pt_root_id``, by ``post_pt_root_id``, by the x of ``ctr_pt_position`` and by ``size``;
row groups of :data:`ROW_GROUP` rows, so a root-id lookup, a small box or a narrow size range
reads one or two row groups), shared by both versions; version 343 rewrites the root ids of the
cells edited since through a root id map. ``history.parquet`` holds the proofreading history
(demo_history): the edits between 343 and 661 that made those ids, and more after 661. A demo built before a copy joined :data:`SORTS` gains
it in place (sorted from an existing copy) instead of being rebuilt: the rows are the same.

>>> default_demo_path().name if "CAVEQL_DEMO_PATH" not in os.environ else "minnie65_demo"
'minnie65_demo'
>>> read_marker(Path("/nonexistent")) is None
True
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from caveql.datastack.demo_cells import Cells, make_cells, make_tables
from caveql.datastack.demo_history import BASE, T661, after_versions, between_versions, candidates, fix_collisions
from caveql.datastack.demo_meta import (
    DATASTACK,
    DEFAULT_SYNAPSES,
    DESCRIPTION,
    SEED_SYNAPSES,
    SYNAPSE_CELL,
    TABLES_AT,
    VERSIONS,
    VOXEL,
    table_metadata,
)
from caveql.datastack.demo_synapses import SynapseGenerator
from caveql.datastack.history import write_history
from caveql.datastack.layout import write_info, write_table_metadata, write_version, write_view
from caveql.errors import DatastackError

__all__ = [
    "DEFAULT_SYNAPSES",
    "GENERATOR_VERSION",
    "ROW_GROUP",
    "SORTS",
    "build_demo",
    "default_demo_path",
    "read_marker",
]

#: Bump whenever the generated data changes: existing demos are then rebuilt.
GENERATOR_VERSION = "4"
ROW_GROUP = 65_536
IN_MEMORY_SORT = 12_000_000  # above this many synapses, DuckDB sorts out of core
MARKER = ".caveql-demo.json"
SYN = "synapses_pni_2"
#: The synapse copies: (sort column, file suffix). Root-id equalities read by_pre/by_post, a
#: spatial box by_x (pre/post points lie within ~100 voxels of the centre), a size range by_size
#: (sizes are spread through every row group of the other copies: a range decoded them all).
SORTS = (("pre_pt_root_id", "by_pre"), ("post_pt_root_id", "by_post"),
         ("ctr_pt_position_x", "by_x"), ("size", "by_size"))

Progress = Callable[[str], None]


def default_demo_path() -> Path:
    """Where ``caveql demo`` builds by default: ``$CAVEQL_DEMO_PATH``, else the user cache dir."""
    env = os.environ.get("CAVEQL_DEMO_PATH")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("caveql")) / DATASTACK


def read_marker(path: Path) -> dict[str, Any] | None:
    """The build marker of a demo folder, or None when there is none (or it is unreadable)."""
    try:
        data = json.loads((Path(path) / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _wanted(synapses: int, seed: int) -> dict[str, Any]:
    return {"generator": GENERATOR_VERSION, "datastack": DATASTACK, "synapses": synapses, "seed": seed}


def _stderr_progress() -> Progress | None:
    if not sys.stderr.isatty():
        return None
    start = time.perf_counter()

    def report(msg: str) -> None:
        sys.stderr.write(f"\r\x1b[K[caveql demo {time.perf_counter() - start:6.1f}s] {msg}")
        sys.stderr.flush()
    return report


def build_demo(path: str | Path | None = None, synapses: int = DEFAULT_SYNAPSES, seed: int = 0, *,
               force: bool = False, progress: Progress | None = None,
               memory_limit: str = "3GB") -> Path:
    """Build the demo datastack at ``path`` (default :func:`default_demo_path`); returns it.

    Does nothing when a complete demo with the same generator version, ``synapses`` and
    ``seed`` is already there (unless ``force``). ``progress`` receives one-line status
    messages (default: on stderr when it is a terminal).
    """
    if isinstance(synapses, bool) or not isinstance(synapses, int) or synapses < 2_000:
        raise DatastackError(f"--synapses must be an integer of at least 2000, not {synapses!r}")
    root = Path(path) if path is not None else default_demo_path()
    wanted = _wanted(synapses, seed)
    report = progress if progress is not None else (_stderr_progress() or (lambda _m: None))
    if not force and read_marker(root) == wanted:
        try:
            if _add_missing_copies(root, report, memory_limit):
                report(f"done: {root}\n")
        except OSError as exc:
            # a demo the user cannot write (shared, read-only): it answers the same without the
            # copy, only a size range reads more; not worth refusing to open it
            report(f"could not add the missing sorted copies ({exc}); the demo works without them\n")
        return root
    if root.exists() and not (root / MARKER).exists() and any(root.iterdir()):
        raise DatastackError(f"{root} exists and is not a caveql demo; refusing to overwrite it",
                             hint="choose another --path, or remove the folder")
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = root.parent / f".{root.name}.building-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        _build(tmp, synapses, seed, report, memory_limit)
        (tmp / MARKER).write_text(json.dumps(wanted) + "\n", encoding="utf-8")
        if root.exists():
            old = root.parent / f".{root.name}.old-{os.getpid()}"
            root.rename(old)
            tmp.rename(root)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    report(f"done: {root}\n")
    return root


def _write(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, row_group_size=ROW_GROUP, compression="zstd")


def _build(root: Path, synapses: int, seed: int, report: Progress, memory_limit: str) -> None:
    report("cells and annotation tables")
    cells = make_cells(seed)
    tables = make_tables(cells, seed)
    write_info(root, {
        "datastack_name": DATASTACK, "description": DESCRIPTION,
        "aligned_volume": {"name": "minnie65_demo_volume", "id": 1, "display_name": "minnie65 (demo)",
                           "description": "synthetic volume of the caveql demo", "image_source": ""},
        "synapse_table": SYN, "soma_table": "nucleus_detection_v0", "analysis_database": None,
        "viewer_site": "", "local_server": "", "skeleton_source": None,
        "segmentation_source": "graphene://local/segmentation/table/minnie65_demo_pcg",
        "viewer_resolution_x": VOXEL[0], "viewer_resolution_y": VOXEL[1], "viewer_resolution_z": VOXEL[2],
        "caveql_demo": {"generator": GENERATOR_VERSION, "synapses": synapses, "seed": seed},
    })
    for v, (ts, expires) in VERSIONS.items():
        write_version(root, v, {"id": v, "datastack": DATASTACK, "version": v, "time_stamp": ts,
                                "valid": True, "expires_on": expires, "status": "AVAILABLE",
                                "is_merged": False})
    index = {t: i for i, t in enumerate(TABLES_AT[661])}
    for v in VERSIONS:
        for name in TABLES_AT[v]:
            if name == SYN:
                continue
            meta = table_metadata(name, v, index[name])
            if v == 343 and name == "aibs_soma_nuc_metamodel_preds_v117":
                # a reference table has no root ids: both versions share one file
                write_table_metadata(root, v, name, meta, {"files": [
                    {"path": f"versions/661/tables/{name}.parquet"}]})
                continue
            _write(tables[v][name], root / "versions" / str(v) / "tables" / f"{name}.parquet")
            write_table_metadata(root, v, name, meta)
    _synapses(root, cells, tables[661]["nucleus_alternative_points"], synapses, seed, report, memory_limit)
    for v in VERSIONS:
        _views(root, v)


def _synapses(root: Path, cells: Cells, alt: pa.Table, total: int, seed: int, report: Progress,
              memory_limit: str) -> None:
    gen = SynapseGenerator(cells, total, seed)
    parts = root / "shared" / "_parts"
    parts.mkdir(parents=True)
    _write(gen.planted(), parts / "planted.parquet")
    done = 0
    for c, chunk in enumerate(gen.chunks()):
        _write(chunk, parts / f"part-{c:04d}.parquet")
        done += chunk.num_rows
        report(f"synapses {done:,}/{total:,}")
    report("supervoxels")
    fix_collisions(sorted(parts.glob("*.parquet")), _owners(cells, alt), memory_limit)
    _sort_copies(root, sorted(parts.glob("*.parquet")), total, SORTS, report, memory_limit)
    shutil.rmtree(parts)
    report("proofreading history")
    _history(root, cells, alt, seed)
    for v in VERSIONS:
        storage: dict[str, Any] = {"files": _files()}
        if v != 661:
            _write(cells.root_map(), root / "versions" / str(v) / "root_id_map.parquet")
            storage["root_id_map"] = f"versions/{v}/root_id_map.parquet"
        write_table_metadata(root, v, SYN, table_metadata(SYN, v, 0), storage)


def _owners(cells: Cells, alt: pa.Table) -> list[tuple[np.ndarray, np.ndarray]]:
    """(supervoxel, root) pairs that keep their supervoxel when a synapse row drew the same one
    for another root: the nuclei, the alternative points and the seed's planted synapses."""
    seed_sv = [s[3] for s in SEED_SYNAPSES] + [s[4] for s in SEED_SYNAPSES]
    seed_root = [SYNAPSE_CELL] * len(SEED_SYNAPSES) + [s[5] for s in SEED_SYNAPSES]
    return [(cells.sv, cells.root[661]),
            (alt["pt_supervoxel_id"].to_numpy(), alt["pt_root_id"].to_numpy()),
            (np.array(seed_sv, dtype=np.int64), np.array(seed_root, dtype=np.int64))]


def _history(root: Path, cells: Cells, alt: pa.Table, seed: int) -> None:
    """Write ``history.parquet``: the edits between 343 and 661 and after 661 (demo_history)."""
    between = between_versions(cells, seed)
    _roots, picks = candidates(cells, seed)
    busy = [int(r) for r in picks["busy"]]
    cols = [f"{side}_pt_{c}" for side in ("pre", "post") for c in
            ("supervoxel_id", "root_id", "position_x", "position_y", "position_z")]
    syn = pa.concat_tables(
        pq.read_table(root / "shared" / f"{SYN}.{suffix}.parquet", columns=cols,
                      filters=[(col, "in", busy)])
        for col, suffix in SORTS[:2])
    after = after_versions(cells, seed, syn, alt, first_op=between[-1].operation_id + 1)
    write_history(root, between + after, anchor_version=661, anchor_timestamp=T661, base_timestamp=BASE)


def _files() -> list[dict[str, str]]:
    """``_storage.files`` of the synapse table: every copy of :data:`SORTS`, in that order."""
    return [{"path": f"shared/{SYN}.{suffix}.parquet", "sorted_by": _sort_name(col)} for col, suffix in SORTS]


def _sort_copies(root: Path, sources: list[Path], total: int, sorts: tuple[tuple[str, str], ...],
                 report: Progress, memory_limit: str) -> None:
    """Write ``shared/<SYN>.<suffix>.parquet`` for each ``(column, suffix)``: the rows of the
    ``sources`` sorted by the column, then ``id`` (unique, so the order is deterministic).
    Each file is written under a temporary name and renamed into place."""
    shared = root / "shared"
    tmp_dir = shared / f"_tmp-{os.getpid()}"
    done: list[Path] = []
    try:
        if total <= IN_MEMORY_SORT:
            # small demos: sort in memory with Arrow (much faster than a spilling sort)
            table = pa.concat_tables(pq.read_table(p) for p in sources)
            for col, suffix in sorts:
                report(f"sorting synapses by {col}")
                out = shared / f".{SYN}.{suffix}.parquet.{os.getpid()}"
                done.append(out)
                _write(table.sort_by([(col, "ascending"), ("id", "ascending")]), out)
                out.replace(shared / f"{SYN}.{suffix}.parquet")
            del table
            return
        con = duckdb.connect(":memory:", config={
            "memory_limit": memory_limit, "temp_directory": str(tmp_dir), "preserve_insertion_order": True})
        try:
            con.execute("SET enable_progress_bar = false")
            src = "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in sources) + "]"
            for col, suffix in sorts:
                report(f"sorting synapses by {col}")
                out = shared / f".{SYN}.{suffix}.parquet.{os.getpid()}"
                done.append(out)
                lit = str(out).replace("'", "''")
                con.execute(f"COPY (SELECT * FROM read_parquet({src}) ORDER BY {col}, id) TO "
                            f"'{lit}' (FORMAT parquet, ROW_GROUP_SIZE {ROW_GROUP}, COMPRESSION zstd)")
                out.replace(shared / f"{SYN}.{suffix}.parquet")
        finally:
            con.close()
    finally:
        for p in done:
            p.unlink(missing_ok=True)  # (only left over when interrupted)
        shutil.rmtree(tmp_dir, ignore_errors=True)


def _add_missing_copies(root: Path, report: Progress, memory_limit: str) -> bool:
    """Give a demo built before a copy joined :data:`SORTS` that copy, sorted from an existing
    one (minutes at 100M instead of a rebuild of hours); True when something was added.

    The table JSONs are rewritten atomically after the file is in place, so a reader sees the
    old list or the new one; two processes doing this at once write identical files.
    """
    metas = [root / "versions" / str(v) / "tables" / f"{SYN}.json" for v in VERSIONS]
    try:
        docs = [json.loads(m.read_text(encoding="utf-8")) for m in metas]
        listed = [f["path"] for f in docs[-1]["_storage"]["files"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DatastackError(f"{root}: cannot read the synapse table's storage: {exc}",
                             hint="rebuild the demo with `caveql demo --force`") from exc
    present = [p for p in listed if (root / p).exists()]
    missing = tuple((col, suffix) for col, suffix in SORTS
                    if f"shared/{SYN}.{suffix}.parquet" not in present)
    if not missing:
        return False
    if not present:
        raise DatastackError(f"{root}: every synapse file is missing",
                             hint="rebuild the demo with `caveql demo --force`")
    source = root / present[0]
    total = pq.ParquetFile(source).metadata.num_rows
    _sort_copies(root, [source], total, missing, report, memory_limit)
    for meta, doc in zip(metas, docs, strict=True):
        doc["_storage"]["files"] = _files()
        tmp = meta.with_name(f".{meta.name}.{os.getpid()}")
        tmp.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        tmp.replace(meta)
    return True


def _sort_name(col: str) -> str:
    """``sorted_by`` of a copy: a position's name when it is sorted by that position's x."""
    return col[:-2] if col.endswith("_position_x") else col


_VIEW_META = {"datastack_name": DATASTACK, "voxel_resolution_x": VOXEL[0],
              "voxel_resolution_y": VOXEL[1], "voxel_resolution_z": VOXEL[2], "notice_text": None}

_SOMA_COUNTS = """
SELECT n.id, n.pt_position_x, n.pt_position_y, n.pt_position_z, n.pt_root_id, n.pt_supervoxel_id,
       s.cell_type,
       count(*) FILTER (WHERE s.cell_type = 'neuron') OVER (PARTITION BY n.pt_root_id) AS neuron_count,
       count(*) OVER (PARTITION BY n.pt_root_id) AS total_count
FROM nucleus_detection_v0 n JOIN nucleus_ref_neuron_svm s ON s.target_id = n.id
"""

VIEWS = {
    "synapses_pni_2_in_out_degree": (
        "in/out synapse counts per segment id (sizes averaged). [caveql demo]", False, None, """
WITH i AS (SELECT post_pt_root_id AS root_id, count(*) AS n_input, avg(size) AS avg_input_size
           FROM synapses_pni_2 GROUP BY 1),
     o AS (SELECT pre_pt_root_id AS root_id, count(*) AS n_output, avg(size) AS avg_output_size
           FROM synapses_pni_2 GROUP BY 1)
SELECT coalesce(i.root_id, o.root_id) AS root_id, coalesce(i.n_input, 0) AS n_input,
       i.avg_input_size, coalesce(o.n_output, 0) AS n_output, o.avg_output_size
FROM i FULL OUTER JOIN o ON i.root_id = o.root_id
"""),
    "connections_with_nuclei": (
        "One row per (pre, post) root pair without autapses: synapse count, summed size, and the "
        "nucleus id of each side when exactly one nucleus lies on the root. [caveql demo]", False, None, """
WITH c AS (SELECT pre_pt_root_id, post_pt_root_id, count(*) AS n_syn, sum(size) AS sum_size
           FROM synapses_pni_2 WHERE pre_pt_root_id != post_pt_root_id GROUP BY 1, 2),
     nuc AS (SELECT pt_root_id, min(id) AS nuc_id FROM nucleus_detection_v0 WHERE pt_root_id != 0
             GROUP BY 1 HAVING count(*) = 1)
SELECT c.pre_pt_root_id, c.post_pt_root_id, c.n_syn, c.sum_size, a.nuc_id AS pre_nuc_id,
       b.nuc_id AS post_nuc_id
FROM c LEFT JOIN nuc a ON a.pt_root_id = c.pre_pt_root_id LEFT JOIN nuc b ON b.pt_root_id = c.post_pt_root_id
"""),
    "soma_counts": (
        "Nuclei per root id and how many of them the SVM calls neurons. [caveql demo]", True, 661,
        _SOMA_COUNTS),
    "single_neurons": (
        "Nuclei called neurons that are the only neuron on their root id. [caveql demo]", True, 661,
        f"SELECT id, pt_root_id, pt_position_x, pt_position_y, pt_position_z, pt_supervoxel_id "
        f"FROM ({_SOMA_COUNTS}) WHERE cell_type = 'neuron' AND neuron_count = 1"),
}


def _views(root: Path, version: int) -> None:
    for i, (name, (desc, live, only, sql)) in enumerate(VIEWS.items()):
        if only is not None and only != version:
            continue
        write_view(root, version, name, {"id": i + 1, "description": desc, **_VIEW_META,
                                         "live_compatible": live}, " ".join(sql.split()))

