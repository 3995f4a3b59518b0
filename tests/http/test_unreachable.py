"""An unreachable service: what a retry cannot mend fails at once, naming the host and the URL it
tried, with the help of the surface in use (flags on the command line, arguments in Python)."""

from __future__ import annotations

import socket
import ssl

import httpx
import pytest

from caveql.backends.http import HttpBackend
from caveql.errors import TransportError
from caveql.surface import current, using

NOWHERE = "http://nonexistent.invalid"  # .invalid never resolves (RFC 6761)


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    return int(port)


def _backend(ms, server: str, sleeps: list[float], **kw: object) -> HttpBackend:
    return HttpBackend(ms.DS, server=server, token=ms.TOKEN, cache=False, retries=4, sleep=sleeps.append,
                       timeout=(2.0, 2.0), **kw)  # type: ignore[arg-type]


def test_a_host_name_that_does_not_resolve_fails_at_once(ms) -> None:
    sleeps: list[float] = []
    b = _backend(ms, NOWHERE, sleeps)
    with pytest.raises(TransportError) as err:
        b.info()
    assert b.calls == 1 and sleeps == []  # no retry (it was five attempts and ~5 s of backoff)
    msg = err.value.message
    assert "cannot reach nonexistent.invalid: the host name does not resolve" in msg
    assert f"GET {NOWHERE}/info/api/v2/datastack/full/{ms.DS}" in msg
    assert isinstance(err.value.__cause__, httpx.ConnectError)
    b.close()


def test_a_refused_connection_fails_at_once(ms) -> None:
    port = _closed_port()
    sleeps: list[float] = []
    b = _backend(ms, f"http://127.0.0.1:{port}", sleeps)
    with pytest.raises(TransportError) as err:
        b.info()
    assert b.calls == 1 and sleeps == []
    msg = err.value.message
    assert f"cannot reach 127.0.0.1:{port}: the connection was refused" in msg
    assert f"http://127.0.0.1:{port}/info/api/v2/datastack/full/{ms.DS}" in msg
    b.close()


@pytest.mark.parametrize("cause, words", [
    (socket.gaierror(-3, "Temporary failure in name resolution"), "does not resolve"),
    (ConnectionRefusedError(111, "Connection refused"), "was refused"),
    (ssl.SSLCertVerificationError(1, "certificate verify failed"), "certificate is not trusted"),
])
def test_lasting_failures_are_recognised_through_httpx_chain(ms, cause: Exception, words: str) -> None:
    svc = ms.MockService()

    def fault(request: httpx.Request, n: int) -> object:
        exc = httpx.ConnectError(str(cause), request=request)
        exc.__cause__ = cause  # as httpx chains the socket's error
        return exc

    svc.fault = fault
    sleeps: list[float] = []
    b = _backend(ms, ms.GLOBAL, sleeps, transport=svc.transport())
    with pytest.raises(TransportError, match=words) as err:
        b.info()
    assert len(svc.requests) == 1 and sleeps == []
    assert "global.caveql.test" in err.value.message
    b.close()


@pytest.mark.parametrize("error", [
    lambda r: httpx.ConnectTimeout("timed out", request=r),
    lambda r: httpx.ReadTimeout("timed out", request=r),
    lambda r: httpx.ReadError("[Errno 104] Connection reset by peer", request=r),
    lambda r: httpx.RemoteProtocolError("peer closed connection", request=r),
    lambda r: httpx.Response(503),
    lambda r: httpx.Response(429),
])
def test_what_can_recover_is_still_retried(ms, error) -> None:
    svc = ms.MockService()
    # the info service fails twice, then answers (discovery then asks the materialize host)
    svc.fault = lambda request, n: error(request) if n < 2 and "/info/" in request.url.path else None
    sleeps: list[float] = []
    b = _backend(ms, ms.GLOBAL, sleeps, transport=svc.transport())
    assert b.info()["local_server"] == ms.LOCAL
    assert len(sleeps) == 2  # two failures, two waits, then the answer
    b.close()


def test_retries_used_up_name_the_url_and_count(ms) -> None:
    svc = ms.MockService()
    svc.fault = lambda request, n: httpx.ReadTimeout("timed out", request=request)
    sleeps: list[float] = []
    b = _backend(ms, ms.GLOBAL, sleeps, transport=svc.transport())
    with pytest.raises(TransportError) as err:
        b.info()
    assert len(sleeps) == 4
    assert err.value.message.startswith("datastack info timed out after 5 attempt(s) "
                                        f"(GET {ms.GLOBAL}/info/api/v2/datastack/full/{ms.DS})")
    b.close()


def test_a_discovered_host_is_named_as_the_info_services(ms) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "global.caveql.test":
            return httpx.Response(200, json={"local_server": ms.LOCAL})
        # the materialize host the info record names refuses connections
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request) \
            from ConnectionRefusedError(111, "Connection refused")

    sleeps: list[float] = []
    b = _backend(ms, ms.GLOBAL, sleeps, transport=httpx.MockTransport(handler))
    with pytest.raises(TransportError) as err:
        b.versions()
    assert sleeps == []
    assert "cannot reach local.caveql.test: the connection was refused" in err.value.message
    assert f"GET {ms.LOCAL}/materialize/api/versions" in err.value.message
    assert f"the info service at {ms.GLOBAL} names local.caveql.test" in (err.value.hint or "")
    b.close()


@pytest.mark.parametrize("surface, present, absent", [
    ("python", ["connect(..., server=URL)", "$CAVEQL_SERVER"], ["--server"]),
    ("cli", ["--server URL", "$CAVEQL_SERVER"], ["server=", "retries=", "timeout="]),
    ("repl", ["--server URL"], ["server=", "retries="]),
    ("magic", ["%cql --server URL"], ["connect(", "retries="]),
])
def test_the_help_names_the_surface_in_use(ms, surface: str, present: list[str], absent: list[str]) -> None:
    b = _backend(ms, NOWHERE, [])
    with using(surface), pytest.raises(TransportError) as err:
        b.info()
    hint = err.value.hint or ""
    assert all(p in hint for p in present), hint
    assert not any(a in hint for a in absent), hint
    b.close()


def test_the_help_after_timeouts_names_the_surface_in_use(ms) -> None:
    svc = ms.MockService()
    svc.fault = lambda request, n: httpx.ConnectTimeout("timed out", request=request)
    b = _backend(ms, ms.GLOBAL, [], transport=svc.transport())
    with pytest.raises(TransportError) as err:
        b.info()
    assert "HttpBackend(timeout=..., retries=...)" in (err.value.hint or "")
    with using("cli"), pytest.raises(TransportError) as err:
        b.info()
    assert "--server URL" in (err.value.hint or "") and "retries=" not in (err.value.hint or "")
    b.close()


def test_the_command_line_fails_at_once_with_flags_in_its_help(monkeypatch, tmp_path, capsys) -> None:
    from caveql.repl.cli import main

    monkeypatch.setenv("CAVEQL_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.setenv("CAVEQL_NO_CACHE", "1")
    port = _closed_port()
    code = main(["--server", f"http://127.0.0.1:{port}", "--datastack", "minnie65_public",
                 "-c", "SHOW TABLES"])
    err = capsys.readouterr().err
    assert code == 1
    assert f"cannot reach 127.0.0.1:{port}: the connection was refused" in err
    assert "--server URL" in err and "retries=" not in err and "timeout=" not in err
    assert "after 5 attempt" not in err
    assert current() == "python"  # the command line's surface ends with it
