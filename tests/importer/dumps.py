"""Write flat-file dumps of a local datastack version in the published CAVE shape.

Per table ``<t>_merged.csv.gz`` (gzip CSV, no header row, PostgreSQL text: ``t``/``f``
booleans, empty = NULL, ``""`` = empty string) and ``<t>_merged_header.csv`` (``column,type``
lines); positions as PostGIS text (``POINT Z (x y z)``), hex EWKB, or left split.
"""

from __future__ import annotations

import gzip
import json
import shutil
import struct
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from caveql.datastack.layout import read_info, read_versions

_PG = {"BIGINT": "bigint", "INTEGER": "integer", "SMALLINT": "smallint", "FLOAT": "real",
       "DOUBLE": "double precision", "BOOLEAN": "boolean", "VARCHAR": "character varying",
       "TIMESTAMP": "timestamp without time zone"}


def _ewkb(x: int, y: int, z: int) -> str:
    return (struct.pack("<BI", 1, 0x80000001) + struct.pack("<ddd", x, y, z)).hex().upper()


def write_dumps(root: Path, version: int, out: Path, *, style: dict[str, str] | None = None,
                files: dict[str, str] | None = None, tables: tuple[str, ...] | None = None,
                sidecar: bool = True) -> Path:
    """Dump ``version`` of the datastack ``root`` into ``out``; ``style[table]`` is ``text``
    (default), ``ewkb`` or ``split``; ``files[table]`` renames a dump's stem; ``tables``
    limits the dump to those tables."""
    style, files = style or {}, files or {}
    out.mkdir(parents=True, exist_ok=True)
    entry = read_versions(root)[version]
    con = duckdb.connect()
    out_meta: dict[str, Any] = {}
    for name, t in entry.tables.items():
        if tables is not None and name not in tables:
            continue
        src = "'" + str(t.files[0].path) + "'"
        desc = con.execute(f"DESCRIBE SELECT * FROM read_parquet({src})").fetchall()
        cols = [c for c, *_ in desc]
        types = {c: ty for c, ty, *_ in desc}
        sel, header, i = [], [], 0
        mode = style.get(name, "text")
        ewkb_cols = []
        while i < len(cols):
            c = cols[i]
            if (mode != "split" and c.endswith("_x") and cols[i + 1:i + 3] == [c[:-2] + "_y", c[:-2] + "_z"]):
                p = c[:-2]
                if mode == "ewkb":
                    sel += [f'"{p}_x"', f'"{p}_y"', f'"{p}_z"']
                    ewkb_cols.append(p)
                else:
                    sel.append(f"CASE WHEN \"{p}_x\" IS NOT NULL THEN 'POINT Z (' || \"{p}_x\" || ' ' "
                               f"|| \"{p}_y\" || ' ' || \"{p}_z\" || ')' END AS \"{p}\"")
                header.append(f"{p},geometry(PointZ)")
                i += 3
                continue
            v = f'"{c}"'
            if t.root_id_map is not None and c.endswith("_root_id"):
                v = (f"coalesce((SELECT version_root_id FROM read_parquet('{t.root_id_map}') m "
                     f"WHERE m.root_id = {v}), {v})")
            if types[c] == "BOOLEAN":
                v = f"CASE WHEN {v} THEN 't' WHEN NOT {v} THEN 'f' END"
            sel.append(f'{v} AS "{c}"')
            header.append(f"{c},{_PG[types[c]]}")
            i += 1
        stem = files.get(name, f"{name}_merged")
        query = f"SELECT {', '.join(sel)} FROM read_parquet({src})"
        target = out / f"{stem}.csv.gz"
        if ewkb_cols:  # small tables only: EWKB built in Python
            tab = con.sql(query).to_arrow_table()
            for p in ewkb_cols:
                xs, ys, zs = (tab.column(f"{p}_{a}").to_pylist() for a in "xyz")
                vals = [None if x is None else _ewkb(x, y, z) for x, y, z in zip(xs, ys, zs)]
                at = tab.schema.get_field_index(f"{p}_x")
                for a in "xyz":
                    tab = tab.drop_columns([f"{p}_{a}"])
                tab = tab.add_column(at, p, pa.array(vals, pa.string()))
            con.register("_dump", tab)
            query = "SELECT * FROM _dump"
        # DuckDB's own gzip writer is single-threaded and slow: write plain CSV, gzip it fast
        plain = out / f".{stem}.csv"
        con.execute(f"COPY ({query}) TO '{plain}' (HEADER false)")
        with open(plain, "rb") as fin, gzip.open(target, "wb", compresslevel=1) as fout:
            shutil.copyfileobj(fin, fout, 1 << 22)
        plain.unlink()
        (out / f"{stem}_header.csv").write_text("\n".join(header) + "\n", encoding="utf-8")
        raw = json.loads((root / "versions" / str(version) / "tables" / f"{name}.json").read_text())
        raw.pop("_storage", None)
        n = con.execute(f"SELECT count(*) FROM read_parquet({src})").fetchone()[0]
        out_meta[name] = {**raw, "rows": n, **({"file": files[name]} if name in files else {})}
    if sidecar:
        (out / "caveql_import.json").write_text(json.dumps({
            "datastack": read_info(root), "version": entry.metadata, "tables": out_meta}, indent=1))
    return out
