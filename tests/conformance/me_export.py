"""Export frozen versions with the genuine engine's Delta Lake exporter (5.26.4).

Runs under the ENGINE's Python, like ``me_loader.py`` (never imports caveql)::

    PYTHONPATH=<engine src> <engine env>/bin/python me_export.py \
        --pg-url postgresql://postgres@127.0.0.1:PORT --datastack tiny --versions 1 2 \
        --output /tmp/out [--small-table-threshold-mb 200] [--target-partition-size-mb 256] \
        [--n-partitions N] [--pg-bin /usr/lib/postgresql/15/bin]

For every table (``materializedmetadata``) and view (``analysisviews``) of
``{datastack}__mat{version}`` it does what the Celery task ``write_deltalake_table``
(workflows/deltalake_export.py) does, calling the same upstream functions
(``discover_default_output_specs`` / ``discover_view_output_specs``,
``estimate_bytes_per_row``, the small-table trim, ``resolve_n_partitions``,
``resolve_all_bounds``, ``export_table_to_deltalake`` / ``export_view_to_deltalake``) into
``{output}/{datastack}/v{version}/{table}/{spec}/``. The task itself is not called: it needs
the Flask app config, the app's database manager and Redis for its progress log; the two
config values that shape the output are the options ``--small-table-threshold-mb``
(``DELTALAKE_SMALL_TABLE_THRESHOLD_MB``) and ``--target-partition-size-mb``
(``DELTALAKE_TARGET_PARTITION_SIZE_MB``), with the engine's defaults; ``--n-partitions``
sets every copy's ``n_partitions`` as user-provided output specs do.

The exporter looks tables up by name alone (``information_schema.columns``, ``pg_class``,
no schema), and me_loader's frozen databases hold helper views of the same names in the
schema ``me_loader`` (the views' SQL reads them). So each version is exported from a copy of
its database (``pg_dump | psql`` into ``{db}__export``; the engine may hold connections to the
original, which ``CREATE DATABASE ... TEMPLATE`` refuses) in which those helpers are renamed
and the points get the GiST indexes a materialized database has.

Prints one JSON line: ``{"versions": {v: {"tables": {name: [specs]}, "views": {...}}}, "seconds": s}``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings

MISSING: str | None = None
try:
    import psycopg2
    from sqlalchemy import create_engine

    from materializationengine.workflows import deltalake_export as dx
except ImportError as _exc:  # pragma: no cover - reported by main()
    MISSING = str(_exc)


def _copy_database(pg_url: str, pg_bin: str, src: str, dst: str) -> str:
    """``dst`` as a copy of ``src`` without me_loader's same-named helper views; its URL."""
    admin = psycopg2.connect(f"{pg_url}/postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{dst}"')
        cur.execute(f'CREATE DATABASE "{dst}"')
    admin.close()
    dump = subprocess.run([os.path.join(pg_bin, "pg_dump"), "--no-owner", "-d", f"{pg_url}/{src}"],
                          capture_output=True, check=False)
    if dump.returncode != 0:
        raise SystemExit(f"me_export: pg_dump {src} failed: {dump.stderr.decode()[-2000:]}")
    done = subprocess.run([os.path.join(pg_bin, "psql"), "-q", "-v", "ON_ERROR_STOP=1", "-d",
                           f"{pg_url}/{dst}"], input=dump.stdout, capture_output=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"me_export: restoring {src} into {dst} failed: {done.stderr.decode()[-2000:]}")
    conn = psycopg2.connect(f"{pg_url}/{dst}")
    with conn.cursor() as cur:
        cur.execute("SELECT table_name FROM information_schema.views WHERE table_schema = 'me_loader'")
        for (name,) in cur.fetchall():
            # views depend on OIDs, not names: the public views keep reading them
            cur.execute(f'ALTER VIEW me_loader."{name}" RENAME TO "{name}__me_loader"')
        # the engine's frozen tables have GiST indexes on their points (me_loader's --indexes all,
        # not the harness's default): the exporter picks its Morton copy from them
        cur.execute("SELECT c.table_name, c.column_name FROM information_schema.columns c JOIN "
                    "information_schema.tables t USING (table_schema, table_name) WHERE "
                    "c.table_schema = 'public' AND c.udt_name = 'geometry' AND t.table_type = 'BASE TABLE'")
        for table, column in cur.fetchall():
            cur.execute(f'CREATE INDEX IF NOT EXISTS "idx_{table}_{column}" ON "{table}" '
                        f'USING GIST ("{column}" gist_geometry_ops_nd)')
        cur.execute("ANALYZE")  # pg_class statistics, as a materialized database has them
    conn.commit()
    conn.close()
    return f"{pg_url}/{dst}"


def export_version(pg_url: str, pg_bin: str, datastack: str, version: int, output: str,
                   threshold_mb: float, target_mb: float, n_partitions: int | None = None) -> dict:
    """Export every table and view of one frozen version; ``{"tables": {t: specs}, "views": ...}``."""
    from dynamicannotationdb.key_utils import build_segmentation_table_name

    frozen = f"{datastack}__mat{version}"
    cs = _copy_database(pg_url, pg_bin, frozen, f"{frozen}__export")
    engine = create_engine(cs)
    conn = psycopg2.connect(cs)
    with conn.cursor() as cur:
        cur.execute("SELECT table_name, row_count, segmentation_source FROM materializedmetadata "
                    "ORDER BY table_name")
        tables = cur.fetchall()
        cur.execute("SELECT table_name FROM analysisviews ORDER BY table_name")
        views = [r[0] for r in cur.fetchall()]
    conn.close()
    out: dict = {"tables": {}, "views": {}}
    for name, row_count, seg_source in tables:
        base = f"{output}/{datastack}/v{version}/{name}"
        seg = None
        if seg_source:
            candidate = build_segmentation_table_name(name, seg_source.split("/")[-1])
            seg = candidate if engine.dialect.has_table(engine.connect(), candidate) else None
        source = dx.TableSource(annotation_table=name, segmentation_table=seg)
        specs = dx.discover_default_output_specs(source, engine)
        bytes_per_row = dx.estimate_bytes_per_row(cs, source)
        # write_deltalake_table: a small table keeps its first spec only
        if row_count * bytes_per_row / (1024 * 1024) < threshold_mb and len(specs) > 1:
            specs = specs[:1]
        for spec in specs:
            # an explicit count is what user-provided output specs (``n_partitions``) give
            spec.n_partitions = n_partitions or dx.resolve_n_partitions(
                "auto", row_count, target_file_size_mb=target_mb, bytes_per_row=bytes_per_row)
        dx.resolve_all_bounds(specs, cs, name)
        dx.export_table_to_deltalake(connection_string=cs, source=source, output_specs=specs,
                                     output_uri_base=base, total_rows=row_count)
        out["tables"][name] = [s.name for s in specs]
    for name in views:
        base = f"{output}/{datastack}/v{version}/{name}"
        source = dx.TableSource(annotation_table=name)
        specs = dx.discover_view_output_specs(source, cs)
        for spec in specs:
            if spec.partition_by is not None and n_partitions:
                spec.n_partitions = n_partitions
        dx.export_view_to_deltalake(connection_string=cs, view_name=name, output_specs=specs,
                                    output_uri_base=base, target_partition_size_mb=target_mb)
        out["views"][name] = [s.name for s in specs]
    engine.dispose()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pg-url", required=True, help="cluster URL without a database")
    p.add_argument("--datastack", required=True)
    p.add_argument("--versions", type=int, nargs="+", required=True)
    p.add_argument("--output", required=True, help="the export root (DELTALAKE_OUTPUT_BUCKET)")
    p.add_argument("--small-table-threshold-mb", type=float, default=200)
    p.add_argument("--target-partition-size-mb", type=float, default=256)
    p.add_argument("--n-partitions", type=int, default=None,
                   help="partitions per copy (default: the engine's 'auto' from the target size)")
    p.add_argument("--pg-bin", default="/usr/lib/postgresql/15/bin")
    args = p.parse_args(argv)
    if MISSING is not None:
        p.error("run me with the engine's Python (PYTHONPATH=<engine src> <engine env>/bin/python): "
                f"{MISSING}")
    warnings.filterwarnings("ignore")
    t0 = time.perf_counter()
    result = {str(v): export_version(args.pg_url.rstrip("/"), args.pg_bin, args.datastack, v, args.output,
                                     args.small_table_threshold_mb, args.target_partition_size_mb,
                                     args.n_partitions)
              for v in args.versions}
    print(json.dumps({"versions": result, "seconds": round(time.perf_counter() - t0, 2)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
