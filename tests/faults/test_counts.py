"""Counts are checked, not believed: an impossible count is a transport failure, and a split
driven by counts that do not add up stops at its budget instead of sending thousands of calls."""

from __future__ import annotations

import httpx
import pyarrow as pa
import pytest

from caveql.backends.base import QueryRequest, QueryResult
from caveql.backends.http import HttpBackend
from caveql.backends.local import LocalBackend
from caveql.backends.wire import encode_arrow
from caveql.engine import Engine
from caveql.errors import TransportError

DS = "tiny"


class Lying:
    """A backend whose count answers come from ``lie(request, true_count)``."""

    def __init__(self, inner: LocalBackend, lie) -> None:  # type: ignore[no-untyped-def]
        self.inner = inner
        self.lie = lie
        self.calls = 0

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.inner, name)

    def query(self, request: QueryRequest) -> QueryResult:
        self.calls += 1
        res = self.inner.query(request)
        if not request.count:
            return res
        n = self.lie(request, res.table.column("count")[0].as_py())
        return QueryResult(pa.table({"count": pa.array([n], pa.int64())}), res.warnings, res.resolution)


@pytest.mark.parametrize("lie", [lambda r, n: -5, lambda r, n: None])
def test_an_impossible_count_is_refused(tiny_datastack, lie):
    inner = LocalBackend(tiny_datastack, row_cap=3, parallel=1)
    with pytest.raises(TransportError, match="count"):
        Engine(Lying(inner, lie)).execute("SELECT * FROM synapses")
    inner.close()


def test_counts_that_do_not_add_up_stop_the_split(tiny_datastack):
    """Every id range claims ten million rows: before the fix this recursed through thousands of
    calls; now the first part counted above its whole is a clear error, after a few calls."""
    inner = LocalBackend(tiny_datastack, row_cap=3, parallel=1)
    lying = Lying(inner, lambda r, n: 10_000_000 if r.filter_greater_equal or r.filter_less else 10)
    with pytest.raises(TransportError, match="counts do not add up"):
        Engine(lying).execute("SELECT * FROM synapses")
    assert lying.calls < 20
    inner.close()


def test_a_split_has_a_budget(tiny_datastack):
    """Counts that are each plausible but keep the split going (every piece 'full') hit the budget."""
    inner = LocalBackend(tiny_datastack, row_cap=3, parallel=1)
    total = Engine(inner).execute("SELECT COUNT(*) AS n FROM synapses").frame["n"][0]
    lying = Lying(inner, lambda r, n: 3 if (r.filter_greater_equal or r.filter_less) else n)
    try:
        frame = Engine(lying).execute("SELECT * FROM synapses").frame
    except TransportError as exc:
        assert "requests" in str(exc) or "counts" in str(exc)
    else:
        assert len(frame) == total  # the pieces were really fetched whole
    assert lying.calls < 64 + 8 * (total // 3 + 1) + 10
    inner.close()


def _count_service(count_answer: pa.Table, table_rows: int):  # type: ignore[no-untyped-def]
    posts = []

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith(f"/datastack/full/{DS}"):
            return httpx.Response(200, json={"local_server": "http://svc", "aligned_volume": {"name": "v"}})
        if path == "/materialize/api/versions":
            return httpx.Response(200, json=[2, 3])
        if path == "/materialize/version":
            return httpx.Response(200, json="5.26.4")
        if path.endswith("/count"):
            return httpx.Response(200, json=table_rows)
        if request.method == "POST":
            posts.append(request)
            return httpx.Response(200, headers={"Content-Type": "data.arrow"}, content=encode_arrow(count_answer))
        return httpx.Response(404, json={"message": "no"})

    return httpx.MockTransport(handler), posts


@pytest.mark.parametrize("answer", [
    pa.table({"count": pa.array([-1], pa.int64())}),
    pa.table({"count": pa.array([10_001], pa.int64())}),   # more than the table has
    pa.table({"count": pa.array([1, 2], pa.int64())}),
    pa.table({"count": pa.array(["7"], pa.string())}),
    pa.table({"id": pa.array([1], pa.int64())}),
])
def test_http_backend_retries_then_refuses_an_impossible_count(answer):
    transport, posts = _count_service(answer, table_rows=10_000)
    b = HttpBackend(DS, server="http://svc", token="t", transport=transport, cache=False, retries=2,
                    backoff=0.0, max_backoff=0.0, progress=False)
    with pytest.raises(TransportError, match="count"):
        b.query(QueryRequest(kind="table", table="synapses", version=1, count=True))
    assert len(posts) == 3  # retried, never believed
    b.close()


def test_http_backend_believes_a_possible_count():
    transport, posts = _count_service(pa.table({"count": pa.array([10_000], pa.int64())}), table_rows=10_000)
    b = HttpBackend(DS, server="http://svc", token="t", transport=transport, cache=False, progress=False)
    res = b.query(QueryRequest(kind="table", table="synapses", version=1, count=True))
    assert res.table.column("count").to_pylist() == [10_000] and len(posts) == 1
    b.close()
