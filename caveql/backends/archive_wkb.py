"""PostGIS points of a Delta Lake export: (E)WKB ``POINT Z`` bytes decoded with numpy.

The exporter decodes only the Morton copy's point to Int32 ``x/y/z`` columns; every other point
stays PostGIS (E)WKB bytes, which :class:`caveql.backends.archive.ArchiveBackend` decodes as the
exporter would (float coordinates truncated to Int32): in the query, by :func:`wkb_axis` as a
DuckDB function where the statement filters or scales them, else after it, in one pass over the
answer (:func:`decode_axes`).

>>> import struct
>>> le = pa.array([b"\\x01" + struct.pack("<I", 0x80000001) + struct.pack("<3d", 1.5, -2.5, 3.0)])
>>> wkb_axis(le, pa.array([1])).to_pylist()
[-2.5]
>>> decode_axes(pa.table({"p_x": le, "p_y": le}), {"p_x": ("p", 0), "p_y": ("p", 1)}).to_pydict()
{'p_x': [1], 'p_y': [-2]}
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["decode_axes", "wkb_axis", "wkb_points"]


def wkb_points(arr: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """``(xyz, valid)``: the ``n x 3`` float64 coordinates of (E)WKB POINT Z values (PostGIS's
    bytes) and which are not null; ``ValueError`` when a value is not a POINT Z.

    A point's coordinates are its last 24 bytes in WKB and EWKB (with or without SRID)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if isinstance(arr.type, pa.BaseExtensionType):
        arr = arr.storage
    n = len(arr)
    if n == 0:
        return np.zeros((0, 3), np.float64), np.zeros(0, bool)
    large = pa.types.is_large_binary(arr.type)
    bufs = arr.buffers()
    offs = np.frombuffer(bufs[1], dtype=np.int64 if large else np.int32)[arr.offset:arr.offset + n + 1]
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    valid = arr.is_valid().to_numpy(zero_copy_only=False) if arr.null_count else np.ones(n, bool)
    starts, ends = offs[:-1].astype(np.int64), offs[1:].astype(np.int64)
    lens = ends - starts
    bad = valid & ~np.isin(lens, (29, 33))
    out = np.zeros((n, 3), np.float64)
    rows = np.nonzero(valid & ~bad)[0]
    if len(rows):
        size = int(lens[0])
        if len(rows) == n and (lens == size).all():
            # every value the same size (the exporter's): one view of the bytes, no gathers
            block = data[int(starts[0]):int(ends[-1])].reshape(n, size)
            head, raw = block[:, :5], block[:, size - 24:]
        else:
            s = starts[rows]
            head = data[s[:, None] + np.arange(5)]
            raw = data[(ends[rows] - 24)[:, None] + np.arange(24)]
        little = head[:, 0] == 1
        word = np.ascontiguousarray(head[:, 1:5])
        kind = np.where(little, word.view("<u4")[:, 0], word.view(">u4")[:, 0])
        has_z = ((kind & 0x80000000) != 0) | ((kind & 0xFFFF) == 1001)
        is_point = ((kind & 0xFFFF) == 1) | ((kind & 0xFFFF) == 1001)
        bad[rows[~(has_z & is_point)]] = True
        xyz = np.ascontiguousarray(raw).view("<f8")
        if not little.all():  # big-endian values: each 8-byte coordinate reversed
            swapped = np.ascontiguousarray(raw.reshape(-1, 3, 8)[:, :, ::-1]).view("<f8").reshape(-1, 3)
            xyz = np.where(little[:, None], xyz, swapped)
        out[rows] = xyz
    if bad.any():
        raise ValueError(f"{int(bad.sum())} geometry value(s) are not PostGIS POINT Z (E)WKB")
    return out, valid


def wkb_axis(arr: pa.Array | pa.ChunkedArray, axis: pa.Array) -> pa.Array:
    """DuckDB UDF: one coordinate (``axis``: 0, 1, 2) of (E)WKB POINT Z values, as float64."""
    k = int(axis[0].as_py()) if len(axis) else 0
    xyz, valid = wkb_points(arr)
    return pa.array(xyz[:, k], pa.float64(), mask=~valid)


def decode_axes(table: pa.Table, raw: dict[str, tuple[object, int]]) -> pa.Table:
    """``table`` with each column of ``raw`` (``{name: (point, axis)}``, WKB bytes; the columns
    of one ``point`` hold the same bytes, decoded once) decoded to that axis, truncated to Int32
    as the exporter decodes (``ValueError``/``ArrowInvalid`` on a value that is not a POINT Z or
    does not fit)."""
    points: dict[object, tuple[np.ndarray, np.ndarray]] = {}
    for i, name in enumerate(table.column_names):
        if name in raw:
            point, k = raw[name]
            if point not in points:
                points[point] = wkb_points(table.column(i))
            xyz, valid = points[point]
            axis = pa.array(xyz[:, k], pa.float64(), mask=~valid)
            table = table.set_column(i, name, pc.cast(pc.trunc(axis), pa.int32()))
    return table
