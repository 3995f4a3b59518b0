"""Requests that got no answer: which failures a retry can mend, and the error for the others.

A host name that does not resolve, a refused connection and an untrusted certificate fail the
same way on every attempt, so :class:`~caveql.backends.http.HttpBackend` does not retry them
(five attempts of a DNS failure took 5-8 s); timeouts, resets and cut bodies may recover and are
retried. The error names the host and the URL tried, and its help is the surface's own
(:mod:`caveql.surface`): ``--server`` on the command line, ``server=`` in Python.

>>> import httpx
>>> request = httpx.Request("GET", "http://nowhere.invalid/info")
>>> err = unreachable_error(httpx.ConnectError("no", request=request), "name", request,
...                         what="datastack info", attempts=1, server="http://nowhere.invalid",
...                         datastack="d")
>>> err.message.split(" (")[0]
'datastack info: cannot reach nowhere.invalid: the host name does not resolve'
>>> err.hint.split(" or ")[0]
'check the network and the server address: connect(..., server=URL)'
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable

import httpx

from caveql.errors import TransportError
from caveql.surface import hint

__all__ = ["lasting_failure", "unreachable_error"]


def lasting_failure(exc: BaseException) -> str | None:
    """Why a request failed in a way a retry cannot mend (``"name"``: the host name does not
    resolve, ``"refused"``, ``"certificate"``), read from the exceptions httpx chained; ``None``
    for the rest (timeouts, resets, cut bodies), which retries may mend.

    >>> try:
    ...     raise httpx.ConnectError("no") from socket.gaierror(-2, "Name or service not known")
    ... except httpx.ConnectError as exc:
    ...     lasting_failure(exc)
    'name'
    >>> lasting_failure(httpx.ReadTimeout("slow")) is None
    True
    """
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, socket.gaierror):
            return "name"
        if isinstance(cause, ConnectionRefusedError):
            return "refused"
        if isinstance(cause, ssl.SSLCertVerificationError):
            return "certificate"
        cause = cause.__cause__ or cause.__context__
    return None


def unreachable_error(exc: Exception, lasting: str | None, request: httpx.Request, *, what: str,
                      attempts: int, server: str, datastack: str,
                      clean: Callable[[str], str] = str) -> TransportError:
    """The error for ``request`` that got no answer (``exc``, after ``attempts``): the host and URL
    it tried, why (``lasting`` from :func:`lasting_failure`), and the help of the surface in use.
    ``server`` is the server the backend was given (another host is one its info record named);
    ``clean`` redacts the token from text."""
    url = request.url
    host = url.host if url.port is None else f"{url.host}:{url.port}"
    shown = f"{request.method} {clean(str(url.copy_with(query=None)))}"
    detail = f"{type(exc).__name__}: {clean(str(exc)) or 'no detail'}"
    if lasting == "name":
        message = f"{what}: cannot reach {host}: the host name does not resolve ({shown}): {detail}"
    elif lasting == "refused":
        message = (f"{what}: cannot reach {host}: the connection was refused, nothing listens there "
                   f"({shown}): {detail}")
    elif lasting == "certificate":
        message = f"{what}: cannot reach {host} securely: its certificate is not trusted ({shown}): {detail}"
    else:
        kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "failed"
        message = f"{what} {kind} after {attempts} attempt(s) ({shown}): {detail}"
    if url.host != httpx.URL(server).host:  # the materialize host the info record named
        where = (f"the info service at {server} names {host} for datastack {datastack!r}: "
                 "check the network, or ask the deployment's admins")
        busy = where + "; the service may be busy: try again later"
        help_text = where if lasting else hint(
            python=where + "; HttpBackend(timeout=..., retries=...) waits longer", cli=busy, magic=busy)
    elif lasting:
        help_text = hint(
            python=f"check the network and the server address: connect(..., server=URL) or "
                   f"$CAVEQL_SERVER (now {server})",
            cli=f"check the network and the server address: --server URL, $CAVEQL_SERVER or "
                f"'server' in the config file (now {server})",
            magic=f"check the network and the server address: %cql --server URL --datastack NAME "
                  f"(now {server})")
    else:
        help_text = hint(
            python="check the network; the service may be busy: try again later, or give "
                   "HttpBackend(timeout=..., retries=...) more room",
            cli=f"check the network and --server URL (now {server}); the service may be busy: "
                "try again later",
            magic=f"check the network and %cql --server URL (now {server}); the service may be "
                  "busy: try again later")
    return TransportError(message, hint=help_text)
