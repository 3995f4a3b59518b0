"""``caveql import``: a version folder of CAVE flat-file dumps → a local datastack.

An expired materialization version survives as flat files (see docs/datastacks.md,
"Importing flat-file dumps"): per table ``<t>_merged.csv.gz`` (gzip CSV, no header row) and
``<t>_merged_header.csv`` (one ``column,type`` line per column, PostgreSQL types), the synapse
table as ``<name>.csv.gz`` with ``<name>_header.csv``. Positions are PostGIS text
(``POINT Z (x y z)`` or hex EWKB) or already split ``_x/_y/_z`` columns.

Everything streams through DuckDB (``read_csv`` → Parquet with a memory limit and a spill
folder), so a 20 GB dump is never held in memory. Each output file is written under a
temporary name and renamed; a state file records the finished steps with their row counts, so
an interrupted import resumes where it stopped, and every sorted copy is checked against the
count of rows read from the dump.

>>> pg_type("character varying(255)"), pg_type("double precision"), pg_type("geometry(PointZ)")
('VARCHAR', 'DOUBLE', 'POSITION')
>>> dump_name("nucleus_detection_v0_merged")
'nucleus_detection_v0'
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from caveql.datastack.layout import read_info, write_info, write_json, write_table_metadata, write_version
from caveql.errors import CaveqlError, DatastackError

__all__ = ["SIDECAR", "add_import_arguments", "dump_name", "import_dumps", "pg_type", "run_import",
           "service_metadata"]

#: Optional file in the dump folder with metadata the dumps do not carry (see import_dumps).
SIDECAR = "caveql_import.json"
STATE = ".caveql-import.json"
ROW_GROUP = 65_536
#: Sorted copies of a synapse-like table (as the demo's): (sort column, file suffix).
SYNAPSE_SORTS = (("pre_pt_root_id", "by_pre"), ("post_pt_root_id", "by_post"),
                 ("ctr_pt_position_x", "by_x"), ("size", "by_size"))

Progress = Callable[[str], None]

_TYPES = [  # PostgreSQL type (prefix, lower case) → DuckDB type; first match wins
    ("geometry", "POSITION"), ("bigint", "BIGINT"), ("int8", "BIGINT"), ("bigserial", "BIGINT"),
    ("integer", "INTEGER"), ("int4", "INTEGER"), ("serial", "INTEGER"), ("int", "INTEGER"),
    ("smallint", "SMALLINT"), ("int2", "SMALLINT"), ("real", "FLOAT"), ("float4", "FLOAT"),
    ("double precision", "DOUBLE"), ("float8", "DOUBLE"), ("numeric", "DOUBLE"),
    ("decimal", "DOUBLE"), ("boolean", "BOOLEAN"), ("bool", "BOOLEAN"), ("text", "VARCHAR"),
    ("character varying", "VARCHAR"), ("varchar", "VARCHAR"), ("character", "VARCHAR"),
    ("char", "VARCHAR"), ("uuid", "VARCHAR"), ("json", "VARCHAR"), ("user-defined", "VARCHAR"),
    ("timestamp with time zone", "TIMESTAMPTZ"), ("timestamptz", "TIMESTAMPTZ"),
    ("timestamp", "TIMESTAMP"), ("date", "DATE"),
]


def pg_type(name: str) -> str:
    """The DuckDB type a PostgreSQL column type is imported as (``POSITION`` for a PostGIS
    point, split into three int32 columns).

    >>> pg_type("timestamp with time zone")
    'TIMESTAMPTZ'
    """
    low = " ".join(name.strip().lower().split())
    for prefix, duck in _TYPES:
        if low == prefix or low.startswith(prefix + "(") or low.startswith(prefix + " "):
            return duck
    raise ValueError(f"unsupported column type {name!r}")


def dump_name(stem: str) -> str:
    """The table name of a dump file stem (``<t>_merged`` → ``<t>``)."""
    return stem[: -len("_merged")] if stem.endswith("_merged") else stem


def _header(path: Path, *, view: bool = False) -> list[tuple[str, str]]:
    """The ``(column, duckdb type)`` pairs of a header file, checked line by line (a table's
    must have ``id``; a view's need not)."""
    if not path.exists():
        raise DatastackError(f"missing header file {path}",
                             hint="each <t>.csv.gz needs its <t>_header.csv next to it")
    cols: list[tuple[str, str]] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatastackError(f"cannot read header file {path}: {exc}") from exc
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        name, sep, typ = line.partition(",")  # a type may hold commas: numeric(10,2)
        name = name.strip().strip('"')
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise DatastackError(f"{path}, line {n}: expected 'column,type', got {line!r}")
        try:
            cols.append((name, pg_type(typ)))
        except ValueError as exc:
            raise DatastackError(f"{path}, line {n}: {exc}") from exc
    if not cols:
        raise DatastackError(f"header file {path} lists no columns")
    if not view and "id" not in {c for c, _ in cols}:
        raise DatastackError(f"header file {path} has no 'id' column (every table needs one)",
                             hint=f"a view's dump: list it under \"views\" in {SIDECAR}")
    return cols


def _is_view(name: str, header: Path, sidecar: dict[str, Any]) -> bool:
    """Whether a dump is a view's: listed under the sidecar's ``views``, or (not listed under
    its ``tables``) a header without ``id`` — MICrONs' view dumps (``connections_with_nuclei``)
    have none, every table has one."""
    if name in (sidecar.get("views") or {}):
        return True
    if name in (sidecar.get("tables") or {}) or not header.exists():
        return False
    try:
        lines = header.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return False  # (_header names the problem)
    return not any(line.partition(",")[0].strip().strip('"') == "id" for line in lines)


def _lit(text: str | Path) -> str:
    return "'" + str(text).replace("'", "''") + "'"


# Hex EWKB of a PointZ: byte order, uint32 type (0x20000000 = SRID follows), 3 float64.
_MACROS = [
    "CREATE OR REPLACE MACRO _cq_bytes(h, i) AS CASE WHEN h[1:2] = '01' THEN concat_ws('', "
    "h[i+14:i+15], h[i+12:i+13], h[i+10:i+11], h[i+8:i+9], h[i+6:i+7], h[i+4:i+5], h[i+2:i+3], "
    "h[i:i+1]) ELSE h[i:i+15] END",
    "CREATE OR REPLACE MACRO _cq_f64(b) AS CASE WHEN ((b >> 52) & 2047) = 0 THEN 0.0 ELSE "
    "(1 - 2 * (b >> 63)::INT) * (1 + (b & 4503599627370495)::DOUBLE / 4503599627370496.0) * "
    "pow(2.0, ((b >> 52) & 2047)::INT - 1023) END",
    "CREATE OR REPLACE MACRO _cq_srid(h) AS CASE WHEN h[1:2] = '01' THEN "
    "(('0x' || h[9:10])::INT & 32) > 0 ELSE (('0x' || h[3:4])::INT & 32) > 0 END",
    "CREATE OR REPLACE MACRO _cq_wkb(h, k) AS round(_cq_f64(('0x' || _cq_bytes(upper(h), "
    "11 + 16 * k + CASE WHEN _cq_srid(upper(h)) THEN 8 ELSE 0 END))::UBIGINT))",
    # a point parsed once into [x, y, z] (string functions only: a regex per value was 5x slower)
    "CREATE OR REPLACE MACRO _cq_xyz(v) AS CASE WHEN v IS NULL OR trim(v) = '' THEN NULL "
    "WHEN strpos(v, '(') > 0 THEN string_split(trim(v[strpos(v, '(') + 1:strpos(v, ')') - 1]), ' ')"
    "::DOUBLE[] ELSE [_cq_wkb(trim(v), 0), _cq_wkb(trim(v), 1), _cq_wkb(trim(v), 2)] END",
]


def _select(cols: list[tuple[str, str]], src: Path) -> str:
    """The SELECT reading a dump with its header's types, positions split into int32 x/y/z."""
    read = {c: ("VARCHAR" if t in ("POSITION", "TIMESTAMPTZ") else t) for c, t in cols}
    inner, exprs = [], []
    for c, t in cols:
        q = f'"{c}"'
        if t == "POSITION":
            inner.append(f'_cq_xyz({q}) AS "__{c}"')
            # a point that is not three numbers is an error, not a silently wrong position
            exprs += [f'CASE WHEN "__{c}" IS NULL THEN NULL WHEN len("__{c}") = 3 THEN '
                      f'round("__{c}"[{k + 1}])::INTEGER ELSE error(\'not a 3D point in column '
                      f'{c}: \' || {q}) END AS "{c}_{a}"' for k, a in enumerate("xyz")]
        elif t == "TIMESTAMPTZ":  # stored naive, meaning UTC (docs/datastacks.md)
            exprs.append(f"{q}::TIMESTAMPTZ::TIMESTAMP AS {q}")
        else:
            exprs.append(q)
        inner.append(q)
    columns = "{" + ", ".join(f"{_lit(c)}: {_lit(t)}" for c, t in read.items()) + "}"
    return (f"SELECT {', '.join(exprs)} FROM (SELECT {', '.join(inner)} FROM read_csv({_lit(src)}, "
            "header = false, delim = ',', quote = '\"', escape = '\"', "
            f"columns = {columns}, allow_quoted_nulls = false, strict_mode = true, "
            "auto_detect = false, compression = 'gzip'))")


def _find_dumps(src: Path, sidecar: dict[str, Any]) -> dict[str, Path]:
    """Table name → data file, from the folder's ``*.csv.gz`` (the sidecar's ``file`` keys
    rename, e.g. ``synapses_pni_2_v1_filtered_view`` → ``synapses_pni_2``)."""
    if not src.is_dir():
        raise DatastackError(f"no dump folder at {src}")
    listed = {**(sidecar.get("tables") or {}), **(sidecar.get("views") or {})}
    renames = {str(m.get("file")): t for t, m in listed.items() if isinstance(m, dict) and m.get("file")}
    found: dict[str, Path] = {}
    for f in sorted(src.glob("*.csv.gz")):
        stem = f.name[: -len(".csv.gz")]
        found[renames.get(stem, dump_name(stem))] = f
    for t, m in listed.items():
        if t not in found:
            name = m.get("file", f"{t}_merged") if isinstance(m, dict) else f"{t}_merged"
            raise DatastackError(f"missing dump file {src / (name + '.csv.gz')} ({t} is "
                                 f"listed in {src / SIDECAR})")
    if not found:
        raise DatastackError(f"{src}: no *.csv.gz dump files")
    return found


def _header_of(data: Path) -> Path:
    return data.with_name(data.name[: -len(".csv.gz")] + "_header.csv")


def _progress() -> Progress:
    if not sys.stderr.isatty():
        return lambda _m: None
    start = time.perf_counter()

    def report(msg: str) -> None:
        sys.stderr.write(f"\r\x1b[K[caveql import {time.perf_counter() - start:6.1f}s] {msg}")
        sys.stderr.flush()
    return report


def service_metadata(service: Any, version: int, tables: list[str]) -> dict[str, Any]:
    """The sidecar's metadata read from a service (any backend): the datastack info, the
    version's record and each table's ``get_table_metadata`` (resolutions, reference targets)
    at ``version`` — an expired version's records stay on the service — or, for a table it
    does not know there, at the newest version holding it; and, under ``views``, the metadata
    of each of ``tables`` the service lists as a view at ``version``. Tables it has no record of
    are left out.
    """
    from caveql.errors import BackendError, TransportError

    out: dict[str, Any] = {"datastack": dict(service.info()), "tables": {}}
    try:
        out["version"] = dict(service.version_metadata(version))
    except TransportError:
        raise
    except BackendError:
        pass  # a version the service never had: the dumps' own defaults
    try:  # the views' metadata (resolutions) as the service lists them at the version
        out["views"] = {n: dict(m) for n, m in service.views(version).items() if n in tables}
    except TransportError:
        raise
    except BackendError:
        out["views"] = {}
    newest = sorted(service.versions(), reverse=True)
    for t in tables:
        if t in out["views"]:
            continue
        for v in (version, *newest):
            try:
                out["tables"][t] = dict(service.table_metadata(v, t))
                break
            except TransportError:
                raise
            except BackendError:
                continue
    return out


def import_dumps(src: str | Path, version: int, dest: str | Path, *,
                 metadata: dict[str, Any] | None = None, progress: Progress | None = None,
                 memory_limit: str = "1GB", threads: int | None = None, service: Any = None) -> Path:
    """Import the dump folder ``src`` as version ``version`` of the local datastack ``dest``.

    ``metadata`` (else ``src/caveql_import.json`` if present) may hold ``datastack`` (the
    datastack info), ``version`` (version.json) and ``tables`` (per table: its
    ``get_table_metadata`` dict — resolutions, ``reference_table`` — plus optional ``file``,
    the dump's stem, and ``rows``, the expected row count). Without it the datastack is named
    after the folder above ``src`` and resolutions default to 1. ``service`` (a backend, usually
    HTTP): when reachable, the info, version record and table metadata come from it instead
    (:func:`service_metadata`; the sidecar's ``file`` and ``rows`` still apply); unreachable, the
    sidecar's are used and the progress says so. Returns ``dest``.

    >>> import tempfile
    >>> import_dumps(tempfile.mkdtemp(), 1, tempfile.mkdtemp())   # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    caveql.errors.DatastackError: ...: no *.csv.gz dump files
    """
    src, dest = Path(src), Path(dest)
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise DatastackError(f"--version must be a non-negative integer, not {version!r}")
    if metadata is None and (src / SIDECAR).exists():
        try:
            metadata = json.loads((src / SIDECAR).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DatastackError(f"cannot read {src / SIDECAR}: {exc}") from exc
    meta: dict[str, Any] = metadata or {}
    report = progress if progress is not None else _progress()
    dumps = _find_dumps(src, meta)
    if service is not None:
        meta = _with_service(meta, service, version, list(dumps), report)
    views = {t for t, f in dumps.items() if _is_view(t, _header_of(f), meta)}
    # all checked before work
    headers = {t: _header(_header_of(f), view=t in views) for t, f in dumps.items()}
    info = dict(meta.get("datastack") or {})
    info.setdefault("datastack_name", src.resolve().parent.name or "imported")
    if (dest / "datastack.json").exists():  # another version imported before: keep its info
        info = read_info(dest)
    else:
        write_info(dest, info)
    vdir = dest / "versions" / str(version)
    state_path = vdir / STATE
    state: dict[str, int] = {}
    if state_path.exists():
        try:
            state = json.loads(state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            state = {}
    # version.json is written last: without it the half-imported version is never read (also
    # when re-importing over a finished one)
    (vdir / "version.json").unlink(missing_ok=True)
    import duckdb

    tmp = vdir / "_import_tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(":memory:", config={
        "memory_limit": memory_limit, "temp_directory": str(tmp / "spill"),
        "preserve_insertion_order": False, **({"threads": threads} if threads else {})})
    try:
        con.execute("SET enable_progress_bar = false")
        for m in _MACROS:
            con.execute(m)
        for i, (table, data) in enumerate(dumps.items(), 1):
            view = table in views
            tmeta = dict((meta.get("views" if view else "tables") or {}).get(table) or {})
            step = f"[{i}/{len(dumps)}] {'view ' if view else ''}{table}"
            _import_table(con, table, data, headers[table], tmeta, vdir, dest, version, state,
                          state_path, lambda m, s=step: report(f"{s}: {m}"),
                          synapse=table == info.get("synapse_table"), view=view)
    finally:
        con.close()
        shutil.rmtree(tmp, ignore_errors=True)
    vmeta = {"id": version, "datastack": info["datastack_name"], "version": version,
             "time_stamp": None, "valid": True, "expires_on": None, "status": "AVAILABLE",
             "is_merged": True, **(meta.get("version") or {})}
    write_version(dest, version, vmeta)
    state_path.unlink(missing_ok=True)
    report(f"done: {dest}\n")
    return dest


def _with_service(meta: dict[str, Any], service: Any, version: int, tables: list[str],
                  report: Progress) -> dict[str, Any]:
    from caveql.errors import TransportError

    try:
        got = service_metadata(service, version, tables)
    except TransportError as err:
        report(f"the service is unreachable ({err.message}); metadata from the dumps and the sidecar\n")
        return meta
    side = meta.get("tables") or {}
    side_views = meta.get("views") or {}
    views = {**{v: {**(side_views.get(v) or {}), **m} for v, m in got["views"].items()},
             **{v: m for v, m in side_views.items() if v not in got["views"]}}
    return {**meta, "datastack": {**(meta.get("datastack") or {}), **got["datastack"]},
            "version": {**(meta.get("version") or {}), **(got.get("version") or {})},
            "views": views,
            "tables": {t: {**(side.get(t) or {}), **(got["tables"].get(t) or {})}
                       for t in {*side, *tables} if t not in views}}


def _import_table(con: Any, table: str, data: Path, cols: list[tuple[str, str]],
                  tmeta: dict[str, Any], vdir: Path, dest: Path, version: int,
                  state: dict[str, int], state_path: Path, report: Progress, *,
                  synapse: bool, view: bool = False) -> None:
    import duckdb
    import pyarrow.parquet as pq

    # (a view's rows: one file, materialized as caveql snapshot writes a view, docs/datastacks.md)
    tdir = vdir / ("views" if view else "tables")
    tdir.mkdir(parents=True, exist_ok=True)
    names = {c for c, _ in cols}
    split = {c[:-2] for c in names if c.endswith("_x") and c[:-2] + "_y" in names}
    positions = {c for c, t in cols if t == "POSITION"} | split
    sorts = [(c, s) for c, s in SYNAPSE_SORTS if c in names or c[:-2] in positions] \
        if not view and (synapse or {"pre_pt_root_id", "post_pt_root_id"} <= names) else []
    # the rows as read, kept until every sorted copy is written (an interrupted import resumes
    # from it instead of decompressing the dump again)
    stage = tdir / f"{table}.parquet" if not sorts else tdir / f".{table}.stage.parquet"

    def done(key: str, path: Path) -> bool:  # finished before, and the file says so
        if key not in state or not path.exists():
            return False
        try:
            return bool(pq.ParquetFile(path).metadata.num_rows == state[key])
        except (OSError, ValueError):  # damaged since (ArrowInvalid is a ValueError): redo it
            return False

    def mark(key: str, rows: int) -> None:
        state[key] = rows
        write_json(state_path, state)

    def copy(sql: str, out: Path, what: str) -> int:
        part = out.with_name(f".{out.name}.part")
        try:
            con.execute(f"COPY ({sql}) TO {_lit(part)} (FORMAT parquet, ROW_GROUP_SIZE "
                        f"{ROW_GROUP}, COMPRESSION zstd)")
        except duckdb.Error as exc:
            part.unlink(missing_ok=True)
            msg = " ".join(str(exc).split())
            raise DatastackError(f"{what}: {msg[:600]}",
                                 hint="the dump is damaged or does not match its header") from exc
        part.replace(out)
        return pq.ParquetFile(out).metadata.num_rows

    # steps are keyed by the dump's size and mtime: a dump replaced since is read afresh
    st = data.stat()
    tk = f"{table}@{st.st_size}.{st.st_mtime_ns}"
    key = f"{tk}:read"
    if not (done(key, stage) or (sorts and _copies_done(state, tk, sorts, tdir, table, done))):
        report(f"reading {data.name}")
        mark(key, copy(_select(cols, data), stage, str(data)))
    rows = state[key]
    if "rows" in tmeta and int(tmeta["rows"]) != rows:
        raise DatastackError(f"{data}: {rows:,} rows read, the metadata says {int(tmeta['rows']):,}"
                             " (truncated or partial dump?)")
    storage = None
    if sorts:
        for col, suffix in sorts:
            out = tdir / f"{table}.{suffix}.parquet"
            if done(f"{tk}:{suffix}", out):
                continue
            report(f"sorting by {col}")
            n = copy(f"SELECT * FROM read_parquet({_lit(stage)}) ORDER BY {col}, id", out, str(out))
            if n != rows:
                raise DatastackError(f"{out}: {n:,} rows written, {rows:,} read from {data}")
            mark(f"{tk}:{suffix}", n)
        stage.unlink(missing_ok=True)
        storage = {"files": [{"path": f"versions/{version}/tables/{table}.{s}.parquet",
                              "sorted_by": c[:-2] if c.endswith("_position_x") else c}
                             for c, s in sorts]}
    public = {k: v for k, v in tmeta.items() if k not in ("file", "rows")}
    if view:
        write_json(tdir / f"{table}.json", {**public, "_storage": {
            "files": [{"path": f"versions/{version}/views/{table}.parquet"}]}})
        return
    public.setdefault("table_name", table)
    write_table_metadata(dest, version, table, public, storage)


def _copies_done(state: dict[str, int], tk: str, sorts: list[tuple[str, str]], tdir: Path,
                 table: str, done: Callable[[str, Path], bool]) -> bool:
    return f"{tk}:read" in state and all(
        done(f"{tk}:{s}", tdir / f"{table}.{s}.parquet") for _c, s in sorts)


def add_import_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``caveql import DIR --version N [--path DEST]``.

    >>> p = argparse.ArgumentParser()
    >>> add_import_arguments(p)
    >>> p.parse_args(["dumps/v1300", "--version", "1300"]).version
    1300
    """
    parser.add_argument("dir", metavar="DIR", help="the version folder of flat-file dumps")
    parser.add_argument("--version", type=int, required=True, metavar="N",
                        help="the materialization version the dumps hold")
    # SUPPRESS: `caveql --path X import ...` (the top-level option) is not overridden by None
    parser.add_argument("--path", metavar="DEST", default=argparse.SUPPRESS,
                        help="the local datastack folder to import into (default: ./<datastack>)")
    parser.add_argument("--metadata", metavar="JSON", default=None,
                        help=f"metadata sidecar (default: DIR/{SIDECAR} if present)")
    parser.add_argument("--memory-limit", metavar="SIZE", default="1GB",
                        help="DuckDB memory limit; larger sorts spill to disk (default 1GB)")
    parser.add_argument("--service", metavar="URL", default=None,
                        help="read the metadata (resolutions, reference targets, the version's record) "
                             "from this CAVE server when it is reachable, instead of the sidecar")
    parser.add_argument("--datastack", metavar="NAME", default=argparse.SUPPRESS,
                        help="the datastack's name on --service (default: the sidecar's, else the "
                             "folder above DIR)")
    parser.add_argument("--token", metavar="TOKEN", default=argparse.SUPPRESS,
                        help="auth token for --service (default: found as caveclient finds it)")


def run_import(args: argparse.Namespace) -> int:
    """Handle ``caveql import``; returns the exit code."""
    src = Path(args.dir)
    try:
        meta = None
        if args.metadata:
            try:
                meta = json.loads(Path(args.metadata).read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise DatastackError(f"cannot read {args.metadata}: {exc}") from exc
        path = getattr(args, "path", None)
        dest = Path(path) if path else Path.cwd() / (
            ((meta or {}).get("datastack") or {}).get("datastack_name")
            or src.resolve().parent.name or "imported")
        service = None
        if getattr(args, "service", None):
            from caveql.backends.http import HttpBackend

            name = getattr(args, "datastack", None) or ((meta or {}).get("datastack") or {}).get(
                "datastack_name") or src.resolve().parent.name
            service = HttpBackend(name, server=args.service, token=getattr(args, "token", None), cache=False,
                                  progress=False)
        try:
            print(import_dumps(src, args.version, dest, metadata=meta, memory_limit=args.memory_limit,
                               service=service))
        finally:
            if service is not None:
                service.close()
    except CaveqlError as err:
        print(err.render(), file=sys.stderr)
        return 1
    except OSError as err:
        print(f"error: cannot import {src}: {err}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m caveql.datastack.importer`` (the same as ``caveql import``)."""
    parser = argparse.ArgumentParser(prog="caveql import",
                                     description="Import a version folder of CAVE flat-file dumps.")
    add_import_arguments(parser)
    return run_import(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
