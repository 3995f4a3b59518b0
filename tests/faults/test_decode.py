"""Property tests of the Arrow decoder on damaged bodies: every body either decodes to a table
that is safe to use (fully valid, readable by DuckDB and pandas) or raises TransportError; a
body cut anywhere never decodes; with a Content-Digest, no damage goes unseen."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from caveql.backends.wire import check_digest, content_digest, decode_arrow, encode_arrow
from caveql.cache import ResultCache
from caveql.errors import TransportError


def _table(n: int, seed: int) -> pa.Table:
    ids = [seed * 1000 + i for i in range(n)]
    return pa.table({
        "id": pa.array(ids, pa.int64()),
        "cell_type": pa.array([None if i % 7 == 3 else ["BC", "23P", "ünï"][i % 3] * (1 + i % 4) for i in range(n)],
                              pa.string()),
        "volume": pa.array([i * 0.5 for i in range(n)], pa.float32()),
        "pt_position_x": pa.array([i for i in range(n)], pa.int32()),
        "pt_position_y": pa.array([None if i % 5 == 0 else 2 * i for i in range(n)], pa.int32()),
        "pt_position_z": pa.array([3 * i for i in range(n)], pa.int32()),
        "valid": pa.array([i % 2 == 0 for i in range(n)], pa.bool_()),
    })


BODIES = {(codec, n): encode_arrow(_table(n, 1), codec or "", compress=codec is not None)
          for codec in (None, "lz4", "zstd") for n in (0, 1, 40)}
keys = st.sampled_from(sorted(BODIES, key=str))


def _safe(table: pa.Table) -> None:
    """What the engine does with a decoded answer must not crash or raise a foreign error."""
    table.validate(full=True)
    table.to_pandas()
    con = duckdb.connect()
    con.register("t", table)
    con.execute("SELECT * FROM t").fetchall()
    con.close()


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(key=keys, data=st.data())
def test_flipped_bytes_decode_safely_or_fail_clearly(key, data):
    body = bytearray(BODIES[key])
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(body) - 1))
        body[i] ^= data.draw(st.integers(1, 255))
    try:
        table = decode_arrow(bytes(body))
    except TransportError:
        return
    _safe(table)


@settings(max_examples=200, deadline=None)
@given(key=keys, data=st.data())
def test_a_cut_body_never_decodes(key, data):
    body = BODIES[key]
    cut = data.draw(st.integers(0, len(body) - 1))
    with pytest.raises(TransportError):
        decode_arrow(body[:cut])


@settings(max_examples=100, deadline=None)
@given(key=keys, junk=st.binary(min_size=1, max_size=64), at_end=st.booleans())
def test_extra_bytes_never_decode(key, junk, at_end):
    body = BODIES[key]
    with pytest.raises(TransportError):
        decode_arrow(body + junk if at_end else junk + body)


@settings(max_examples=200, deadline=None)
@given(key=keys, data=st.data())
def test_the_digest_sees_every_change(key, data):
    body = bytearray(BODIES[key])
    digest = content_digest(bytes(body))
    i = data.draw(st.integers(0, len(body) - 1))
    body[i] ^= data.draw(st.integers(1, 255))
    with pytest.raises(TransportError, match="Content-Digest"):
        check_digest(digest, bytes(body))


@settings(max_examples=100, deadline=None)
@given(key=keys)
def test_whole_bodies_decode_exactly(key):
    codec, n = key
    table = decode_arrow(BODIES[key])
    assert table.equals(_table(n, 1))
    check_digest(content_digest(BODIES[key]), BODIES[key])


def test_the_cache_refuses_and_drops_invalid_tables(tmp_path):
    cache = ResultCache(tmp_path)
    good = _table(5, 2)
    cache.put("a" * 64, good)
    # a string array holding bytes that are not UTF-8: passes the cheap checks, not the full one
    bad = pa.Array.from_buffers(pa.string(), 1, [None, pa.py_buffer(b"\x00\x00\x00\x00\x02\x00\x00\x00"),
                                                 pa.py_buffer(b"\xff\xfe")])
    with pytest.raises(pa.ArrowInvalid):
        cache.put("b" * 64, pa.table({"s": bad}))
    assert cache.get("b" * 64) is None
    # a stored entry damaged on disk reads as a miss, never as a table
    path = next(p for p in cache.entries() if p.name.startswith("a"))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    entry = cache.get("a" * 64)
    assert entry is None or entry.table.equals(good) or entry.table.validate(full=True) is None
