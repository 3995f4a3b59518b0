"""WKB points decoded after the query (one pass per point) equal the per-axis DuckDB function's."""

from __future__ import annotations

import struct

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caveql.backends.archive_wkb import decode_axes, wkb_axis, wkb_points

_COORD = st.floats(min_value=-2e9, max_value=2e9, allow_nan=False)


@st.composite
def _point(draw) -> bytes | None:
    if draw(st.integers(0, 9)) == 0:
        return None
    xyz = [draw(_COORD) for _ in range(3)]
    little = draw(st.booleans())
    e = "<" if little else ">"
    srid = draw(st.booleans())  # EWKB with an SRID: 4 more bytes, the flag in the kind word
    kind = (0xA0000001 if srid else 0x80000001) if draw(st.booleans()) or srid else 1001
    head = bytes([1 if little else 0]) + struct.pack(e + "I", kind)
    head += struct.pack(e + "I", 4326) if srid else b""
    return head + struct.pack(e + "3d", *xyz)


@settings(max_examples=60, deadline=None)
@given(st.lists(_point(), max_size=40), st.booleans())
def test_points_decode_as_the_axis_function(values, large):
    arr = pa.array(values, pa.large_binary() if large else pa.binary())
    xyz, valid = wkb_points(arr)
    for k in range(3):
        want = [None if v is None else struct.unpack(("<" if v[0] == 1 else ">") + "3d", v[-24:])[k]
                for v in values]
        assert wkb_axis(arr, pa.array([k])).to_pylist() == want
    assert valid.tolist() == [v is not None for v in values]
    table = pa.table({"p_x": arr, "p_z": arr})
    small = [v for v in values if v is None or all(abs(c) < 2**31 - 1 for c in struct.unpack(
        ("<" if v[0] == 1 else ">") + "3d", v[-24:]))]
    if len(small) == len(values):
        got = decode_axes(table, {"p_x": ("p", 0), "p_z": ("p", 2)})
        assert got.column("p_x").to_pylist() == [None if v is None else int(xyz[i, 0])
                                                 for i, v in enumerate(values)]
        assert got.schema.field("p_z").type == pa.int32()


def test_a_value_that_is_not_a_point_z_is_refused():
    bad = pa.array([b"\x01\x01\x00\x00\x00" + bytes(16)], pa.binary())  # a 2-D point
    with pytest.raises(ValueError, match="not PostGIS POINT Z"):
        wkb_points(bad)
    with pytest.raises(pa.ArrowInvalid):  # out of Int32 range: as DuckDB's cast would refuse
        decode_axes(pa.table({"p_x": pa.array([b"\x01" + struct.pack("<I", 0x80000001)
                                                + struct.pack("<3d", 3e9, 0, 0)])}), {"p_x": ("p", 0)})
