"""Properties of the wire: Arrow answers round-trip for any table and codec; what HttpBackend
encodes, the server's validator reads back as the same request; any JSON body either validates
or is rejected with the service's schema error (never another exception)."""

from __future__ import annotations

import json

import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from caveql.backends.base import QueryRequest
from caveql.backends.endpoints import encode_body, wire_body
from caveql.backends.wire import decode_arrow, encode_arrow
from caveql.server.validate import BodyError, join_request, live_request, simple_request

INT64 = st.integers(-(2**63), 2**63 - 1)
TYPES = {
    "int64": (pa.int64(), INT64),
    "int32": (pa.int32(), st.integers(-(2**31), 2**31 - 1)),
    "float32": (pa.float32(), st.floats(width=32, allow_nan=False)),
    "bool": (pa.bool_(), st.booleans()),
    "string": (pa.string(), st.text(max_size=20)),
}


@st.composite
def tables(draw):
    n = draw(st.integers(0, 30))
    names = draw(st.lists(st.sampled_from(sorted(TYPES)), min_size=1, max_size=5))
    cols = {}
    for i, kind in enumerate(names):
        typ, values = TYPES[kind]
        cols[f"c{i}_{kind}"] = pa.array(draw(st.lists(st.none() | values, min_size=n, max_size=n)), typ)
    return pa.table(cols)


@given(tables(), st.sampled_from(["zstd", "lz4", "gzip, deflate", ""]))
def test_arrow_answers_round_trip(table, encoding):
    back = decode_arrow(encode_arrow(table, encoding))
    assert back.equals(table)
    assert back.schema.metadata and b"pandas" in back.schema.metadata


@given(tables(), st.integers(1, 200))
def test_truncated_answers_never_decode_to_a_partial_table(table, cut):
    body = encode_arrow(table, "zstd")
    cut = min(cut, len(body) - 1)
    try:
        part = decode_arrow(body[:-cut])
    except Exception as exc:  # noqa: BLE001 - the only allowed failure is our TransportError
        from caveql.errors import TransportError

        assert isinstance(exc, TransportError)
    else:  # the stream's end marker was cut: every batch that was read is whole
        assert part.schema.equals(table.schema, check_metadata=False)
        assert part.num_rows in (0, table.num_rows)


COLS = st.sampled_from(["id", "pt_root_id", "size", "cell_type", "volume"])
VALUES = INT64 | st.text(max_size=10) | st.floats(allow_nan=False, allow_infinity=False) | st.booleans()


def filters(table: str, value=VALUES):
    return st.dictionaries(st.just(table), st.dictionaries(COLS, value, max_size=3), max_size=1)


@st.composite
def requests(draw):
    kind = draw(st.sampled_from(["table", "view", "join", "live"]))
    t = "syn"
    kw = {
        "filter_in": draw(filters(t, st.lists(INT64, max_size=5))),
        "filter_notin": draw(filters(t, st.lists(INT64, max_size=5))),
        "filter_equal": draw(filters(t)),
        "filter_greater": draw(filters(t)),
        "filter_less_equal": draw(filters(t)),
        "filter_regex": draw(filters(t, st.text(max_size=8))),
        "offset": draw(st.none() | st.integers(0, 10**6)),
        "limit": draw(st.none() | st.integers(1, 10**6)),
        "desired_resolution": draw(st.none() | st.tuples(*[st.sampled_from([1.0, 4.0, 40.0, 0.5])] * 3)),
    }
    if kind in ("table", "view"):
        cols = draw(st.none() | st.lists(COLS, min_size=1, max_size=3))
        return QueryRequest(kind=kind, table=t, version=661, select_columns={t: tuple(cols)} if cols else None,
                            count=draw(st.booleans()), **kw)
    if kind == "join":
        return QueryRequest(kind="join", join=((t, "post_pt_root_id"), ("nuc", "pt_root_id")), version=661,
                            suffix_map=draw(st.none() | st.just({t: "", "nuc": "_nuc"})), **kw)
    from datetime import datetime

    return QueryRequest(kind="live", table=t, timestamp=datetime(2024, 1, 1, 12, 30),
                        live_joins=draw(st.sampled_from([(), ((t, "pre_pt_root_id", "nuc", "pt_root_id"),)])), **kw)


@given(requests())
def test_what_we_send_is_what_the_server_reads(req):
    body = json.loads(encode_body(req))
    assert body == wire_body(req)
    if req.kind in ("table", "view"):
        back = simple_request(body, req.table, 661, kind=req.kind, count=req.count)
    elif req.kind == "join":
        back = join_request(body, 661)
    else:
        back = live_request(body)
    assert wire_body(back) == wire_body(req)


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner,
                                                                                 max_size=3),
                    max_leaves=10)
KEYS = st.sampled_from(["filter_in_dict", "filter_equal_dict", "select_columns", "limit", "offset",
                        "desired_resolution", "tables", "table", "timestamp", "suffix_map", "join_tables",
                        "filter_out_dict", "select_column_map"])


@given(st.dictionaries(KEYS, JSON, max_size=4) | JSON)
def test_any_body_validates_or_is_a_schema_error(body):
    for parse in (lambda b: simple_request(b, "syn", 661), lambda b: join_request(b, 661), live_request):
        try:
            parse(body)
        except BodyError as err:
            assert err.errors and all(isinstance(v, list) for v in err.errors.values())
