"""What checking every answer whole costs: caveql's decoder vs a bare pyarrow decode.

    .venv/bin/python benchmarks/integrity.py              # the default 2M-synapse demo
    .venv/bin/python benchmarks/integrity.py --path DIR --rows 200000 --repeat 9

One answer of ``--rows`` synapse rows (the service's cap by default) is encoded as the service
encodes it (one IPC stream, pandas metadata; ZSTD, LZ4 or uncompressed buffers). Timed on the
same bytes, interleaved, medians of ``--repeat``:

- baseline: ``pa.ipc.open_stream(body).read_all()`` (what a client that checks nothing does);
- caveql: :func:`caveql.backends.wire.decode_arrow` (end-of-stream marker, nothing after it,
  full validation, pandas metadata readable) and, as against ``caveql serve``, plus
  :func:`~caveql.backends.wire.check_digest` (SHA-256 of the body).
"""

from __future__ import annotations

import argparse
import statistics
import time

import pyarrow as pa
import pyarrow.parquet as pq


def main() -> None:
    from caveql.backends.wire import check_digest, content_digest, decode_arrow, encode_arrow
    from caveql.datastack.demo import build_demo

    ap = argparse.ArgumentParser()
    ap.add_argument("--path", default=None)
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=9)
    args = ap.parse_args()
    path = args.path or str(build_demo())
    from pathlib import Path

    files = sorted(Path(path).glob("**/synapses_pni_2*.parquet"))
    table = pq.read_table(files[0]).slice(0, args.rows)
    print(f"{table.num_rows:,} rows x {table.num_columns} columns from {files[0].name}")
    print("| buffers | body MB | pyarrow read_all | decode_arrow | + Content-Digest | ratio | ratio with digest |")
    print("|---|---|---|---|---|---|---|")
    for codec in ("zstd", "lz4", None):
        body = encode_arrow(table, codec or "", compress=codec is not None)
        digest = content_digest(body)
        times: dict[str, list[float]] = {"base": [], "caveql": [], "digest": []}
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            with pa.ipc.open_stream(pa.py_buffer(body)) as r:
                r.read_all()
            t1 = time.perf_counter()
            decode_arrow(body)
            t2 = time.perf_counter()
            check_digest(digest, body)
            decode_arrow(body)
            t3 = time.perf_counter()
            times["base"].append(t1 - t0)
            times["caveql"].append(t2 - t1)
            times["digest"].append(t3 - t2)
        m = {k: statistics.median(v) * 1000 for k, v in times.items()}
        print(f"| {codec or 'none'} | {len(body) / 1e6:.1f} | {m['base']:.2f} ms | {m['caveql']:.2f} ms | "
              f"{m['digest']:.2f} ms | {m['caveql'] / m['base']:.2f}x | {m['digest'] / m['base']:.2f}x |")


if __name__ == "__main__":
    main()
