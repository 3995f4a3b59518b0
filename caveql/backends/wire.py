"""The service's data plane: Arrow IPC stream bodies with pandas metadata, both directions.

The materialization service answers a query with one RecordBatch written by
``pa.RecordBatch.from_pandas`` as an IPC *stream*, buffer-compressed with LZ4
or ZSTD according to the request's ``Accept-Encoding``; the pandas metadata in
the schema is what makes ``read_pandas()`` give back nullable dtypes (``Int64``
ids, ``Int32`` positions, ``Float32``, ``boolean``, ``string``; a table's ``DateTime`` columns
are ``timestamp[ns, tz=UTC]``, so ``datetime64[ns, UTC]``). ``caveql serve``
encodes with :func:`encode_arrow`; the HTTP backend decodes with
:func:`decode_arrow`.

>>> import pyarrow as pa
>>> t = pa.table({"id": pa.array([1, None], pa.int64()), "size": pa.array([4.0, 8.0], pa.float32())})
>>> body = encode_arrow(t, "zstd")
>>> back = decode_arrow(body)
>>> back.equals(t)
True
>>> back.to_pandas(types_mapper=service_dtype).dtypes.tolist()
[Int64Dtype(), Float32Dtype()]
>>> pa.ipc.open_stream(body).read_pandas().dtypes.tolist()   # what caveclient sees
[Int64Dtype(), Float32Dtype()]
>>> decode_arrow(encode_arrow(t.slice(0, 0))).schema == t.schema   # an empty answer keeps its columns
True
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json

import pandas as pd
import pyarrow as pa

from caveql.errors import TransportError

__all__ = ["ARROW_CONTENT_TYPE", "EOS_MARKER", "check_digest", "content_digest", "decode_arrow", "encode_arrow", "fold_positions", "ipc_compression", "service_dtype",
           "with_pandas_metadata"]

#: The literal Content-Type of query answers (Flask ``send_file(buf, "data.arrow")``).
ARROW_CONTENT_TYPE = "data.arrow"

_NULLABLE: dict[pa.DataType, object] = {
    pa.int8(): pd.Int8Dtype(), pa.int16(): pd.Int16Dtype(), pa.int32(): pd.Int32Dtype(),
    pa.int64(): pd.Int64Dtype(), pa.uint8(): pd.UInt8Dtype(), pa.uint16(): pd.UInt16Dtype(),
    pa.uint32(): pd.UInt32Dtype(), pa.uint64(): pd.UInt64Dtype(), pa.float32(): pd.Float32Dtype(),
    pa.float64(): pd.Float64Dtype(), pa.bool_(): pd.BooleanDtype(), pa.string(): pd.StringDtype(),
    pa.large_string(): pd.StringDtype(),
}


def fold_positions(schema: pa.Schema) -> list[tuple[str, bool, int]]:
    """``(name, is_position, first field index)`` per column of ``schema``, each consecutive
    integer ``P_x, P_y, P_z`` trio folded into one position ``P`` (how positions are stored and
    split on the wire).

    >>> fold_positions(pa.schema([("id", pa.int64()), ("p_x", pa.int32()), ("p_y", pa.int32()),
    ...                           ("p_z", pa.int32())]))
    [('id', False, 0), ('p', True, 1)]
    """
    names = schema.names
    out: list[tuple[str, bool, int]] = []
    i = 0
    while i < len(names):
        n = names[i]
        if (n.endswith("_x") and i + 2 < len(names) and names[i + 1] == n[:-2] + "_y"
                and names[i + 2] == n[:-2] + "_z"
                and all(pa.types.is_integer(schema.field(i + k).type) for k in range(3))):
            out.append((n[:-2], True, i))
            i += 3
            continue
        out.append((n, False, i))
        i += 1
    return out


def service_dtype(arrow_type: pa.DataType) -> object | None:
    """The pandas dtype the service's frames use for an Arrow type (``None``: pandas' default).

    Use as ``table.to_pandas(types_mapper=service_dtype)``.

    >>> service_dtype(pa.int32())
    Int32Dtype()
    >>> service_dtype(pa.timestamp("ns", tz="UTC")) is None   # pandas' own: datetime64[ns, UTC]
    True
    """
    return _NULLABLE.get(arrow_type)


def with_pandas_metadata(table: pa.Table) -> pa.Table:
    """``table`` with the pandas metadata ``RecordBatch.from_pandas`` would have written.

    Built from an empty slice, so it costs nothing for large tables.

    >>> t = with_pandas_metadata(pa.table({"id": pa.array([1], pa.int64())}))
    >>> t.to_pandas().dtypes["id"]      # read back as the service's nullable dtype
    Int64Dtype()
    """
    if table.schema.metadata and b"pandas" in table.schema.metadata:
        return table
    empty = table.slice(0, 0).to_pandas(types_mapper=service_dtype)
    meta = pa.Schema.from_pandas(empty, preserve_index=False).metadata
    return table.replace_schema_metadata({**(table.schema.metadata or {}), **meta})


def ipc_compression(accept_encoding: str | None) -> str | None:
    """The IPC buffer codec the service picks for an ``Accept-Encoding`` value.

    >>> ipc_compression("zstd"), ipc_compression("gzip, lz4"), ipc_compression("gzip")
    ('zstd', 'lz4', None)
    """
    value = (accept_encoding or "").lower()
    if "lz4" in value:
        return "lz4"
    if "zstd" in value:
        return "zstd"
    return None


def encode_arrow(table: pa.Table, accept_encoding: str | None = "zstd", *, compress: bool = True) -> bytes:
    """One IPC stream of ``table`` (single batch, pandas metadata), compressed as the service does.

    >>> len(encode_arrow(pa.table({"a": [1, 2]}), "lz4")) > 0
    True
    """
    table = with_pandas_metadata(table).combine_chunks()
    codec = ipc_compression(accept_encoding) if compress else None
    options = pa.ipc.IpcWriteOptions(compression=codec)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
        # one batch, as RecordBatch.from_pandas writes; an empty answer is one batch of no rows
        empty = pa.record_batch([pa.array([], f.type) for f in table.schema], schema=table.schema)
        for batch in table.to_batches() or [empty]:
            writer.write_batch(batch)
    return sink.getvalue().to_pybytes()


#: The IPC stream's end-of-stream marker (continuation token, then a zero length): a writer
#: closed properly ends with it, so a body without it was cut at a message boundary.
EOS_MARKER = b"\xff\xff\xff\xff\x00\x00\x00\x00"


def content_digest(body: bytes | bytearray) -> str:
    """The RFC 9530 ``Content-Digest`` value of ``body`` (SHA-256), as ``caveql serve`` sends it.

    >>> content_digest(b"abc")
    'sha-256=:ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=:'
    """
    return "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode() + ":"


def check_digest(header: str | None, body: bytes | bytearray) -> None:
    """Raise :class:`TransportError` when ``body`` does not match a ``Content-Digest`` header.

    Only SHA-256 and SHA-512 are checked (RFC 9530's registry); no header, or only other
    algorithms, checks nothing (the genuine service sends none).

    >>> check_digest(content_digest(b"abc"), b"abc")
    >>> check_digest(content_digest(b"abc"), b"abd")
    Traceback (most recent call last):
    ...
    caveql.errors.TransportError: the answer does not match its Content-Digest (sha-256): damaged in transit
    """
    if not header:
        return
    for item in header.split(","):
        name, _, value = item.strip().partition("=")
        algo = {"sha-256": "sha256", "sha-512": "sha512"}.get(name.strip().lower())
        value = value.strip()
        if algo is None:
            continue
        if len(value) < 2 or value[0] != ":" or value[-1] != ":":
            raise TransportError(f"the answer's Content-Digest is malformed: {item.strip()[:80]!r}")
        try:
            want = base64.b64decode(value[1:-1], validate=True)
        except (ValueError, binascii.Error) as exc:
            raise TransportError(f"the answer's Content-Digest is malformed: {item.strip()[:80]!r}") from exc
        if hashlib.new(algo, body).digest() != want:
            raise TransportError(f"the answer does not match its Content-Digest ({name.strip().lower()}): "
                                 "damaged in transit")


def decode_arrow(body: bytes | bytearray) -> pa.Table:
    """The table in an IPC stream body, checked whole; anything less is a :class:`TransportError`.

    Checked: the stream ends with its end-of-stream marker and nothing follows it (a body cut
    at a message boundary decodes as a shorter, even empty, table otherwise); every message
    decodes (compressed buffers decompress to their stated lengths); the table validates
    fully (offsets, lengths, UTF-8: a damaged table must never reach DuckDB or the cache);
    its pandas metadata reads back as a frame. A flipped byte inside uncompressed numbers
    cannot be seen without a checksum: :func:`check_digest` covers that when the server
    sends ``Content-Digest``.

    >>> decode_arrow(b"<html>login</html>")
    Traceback (most recent call last):
    ...
    caveql.errors.TransportError: the service's Arrow answer is malformed or truncated (18 bytes): ...
    >>> body = encode_arrow(pa.table({"a": [1, 2]}))
    >>> decode_arrow(body[:-8])
    Traceback (most recent call last):
    ...
    caveql.errors.TransportError: the service's Arrow answer is cut short (... bytes): no end-of-stream marker
    """
    size = len(body)
    if bytes(body[-8:]) != EOS_MARKER:
        # (validated first: a body cut after its schema would read as an empty answer)
        if size >= 8 and _readable(body):
            raise TransportError(f"the service's Arrow answer is cut short ({size} bytes): "
                                 "no end-of-stream marker")
        raise TransportError(f"the service's Arrow answer is malformed or truncated ({size} bytes): "
                             "no end-of-stream marker")
    try:
        source = pa.BufferReader(pa.py_buffer(body))
        with pa.ipc.open_stream(source) as reader:
            table = reader.read_all()
        if source.tell() != size:
            raise ValueError(f"{size - source.tell()} bytes follow the end-of-stream marker")
        table.validate(full=True)
        meta = table.schema.metadata or {}
        if b"pandas" in meta and not isinstance(json.loads(meta[b"pandas"]), dict):
            raise ValueError("the pandas metadata is not an object")
        empty = table.slice(0, 0)  # the pandas metadata fits the columns, either way it is read
        empty.to_pandas(types_mapper=service_dtype)
        empty.to_pandas()
    except Exception as exc:  # noqa: BLE001 - a damaged body can fail anywhere in pyarrow or pandas
        raise TransportError(
            f"the service's Arrow answer is malformed or truncated ({size} bytes): "
            f"{type(exc).__name__}: {str(exc)[:200]}"
        ) from exc
    return table


def _readable(body: bytes | bytearray) -> bool:
    try:
        with pa.ipc.open_stream(pa.py_buffer(body)) as reader:
            reader.read_all()
    except Exception:  # noqa: BLE001 - only asks whether it decodes
        return False
    return True
