"""Fault injection on a real loopback server: dropped connections, stalls past the timeout, 429,
502, 503, 500 and truncated Arrow bodies. caveql retries what is retriable, fails clearly on the
rest, never returns part of an answer, and never hangs."""

from __future__ import annotations

import time

import pytest

from caveql.backends.base import QueryRequest
from caveql.backends.http import HttpBackend
from caveql.errors import ServiceError, TransportError

pytestmark = pytest.mark.timeout(60)

NUCQ = QueryRequest(kind="table", table="nucleus_detection_v0", version=661)


def backend(ms, fs, **kw):
    kw.setdefault("timeout", (5.0, 2.0))  # generous: a loaded CI machine must not time out good answers
    kw.setdefault("backoff", 0.01)
    kw.setdefault("max_backoff", 0.05)
    return HttpBackend(ms.DS, server=fs.url, local_server=fs.url, token=ms.TOKEN, cache=False, **kw)


@pytest.mark.parametrize("fault", ["drop", "stall", "429", "502", "503", "504", "reset_mid_body", "short_body"])
def test_retriable_faults_are_retried(ms, fault_server, fault):
    with fault_server([fault, fault], stall=2.5) as fs:
        b = backend(ms, fs)
        result = b.query(NUCQ)
        assert result.table.equals(ms.NUC)
        assert fs.actions == [fault, fault, "ok"]
        b.close()


@pytest.mark.parametrize("fault", ["drop", "stall", "503", "reset_mid_body", "short_body"])
def test_persistent_faults_fail_clearly_and_in_bounded_time(ms, fault_server, fault):
    with fault_server([fault] * 10, stall=2.5) as fs:
        b = backend(ms, fs, retries=2)
        start = time.monotonic()
        with pytest.raises((TransportError, ServiceError)) as err:
            b.query(NUCQ)
        assert time.monotonic() - start < 40  # bounded: 3 attempts of at most the read timeout each
        assert len(fs.actions) == 3  # 1 + 2 retries, then a clear error
        text = str(err.value)
        assert "nucleus_detection_v0" in text and ms.TOKEN not in text
        b.close()


def test_500_is_not_retried(ms, fault_server):
    with fault_server(["500"]) as fs:
        b = backend(ms, fs)
        with pytest.raises(ServiceError, match="injected 500") as err:
            b.query(NUCQ)
        assert err.value.status == 500 and fs.actions == ["500"]
        b.close()


def test_batches_are_all_or_nothing(ms, fault_server):
    reqs = [QueryRequest(kind="table", table="nucleus_detection_v0", version=661, offset=i) for i in range(8)]
    with fault_server(["ok", "ok", "500"]) as fs:
        b = backend(ms, fs, parallel=2)
        with pytest.raises(ServiceError):
            b.query_many(reqs)
        b.close()
    with fault_server(["drop", "503", "short_body", "429"]) as fs:
        b = backend(ms, fs, parallel=3)
        results = b.query_many(reqs)
        assert len(results) == 8 and all(r.table.equals(ms.NUC) for r in results)
        b.close()


def test_connection_refused_fails_fast(ms):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    url = f"http://127.0.0.1:{port}"
    b = HttpBackend(ms.DS, server=url, local_server=url, token=ms.TOKEN, cache=False, retries=2,
                    backoff=0.01, timeout=(1.0, 1.0))
    with pytest.raises(TransportError, match="ConnectError"):
        b.versions()
