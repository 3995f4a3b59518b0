"""The retrying HTTP transport under :class:`~caveql.backends.http.HttpBackend`: sending a
request with timeouts and retries, reading its whole body, and turning error statuses into
CaveqlErrors.

What is retried (with exponential backoff and jitter): timeouts, dropped connections, bodies cut
short, 429 (honouring ``Retry-After``), 502, 503 and 504. What is not: other 4xx and 500 (the
service's answer), and failures a retry cannot mend (:mod:`caveql.backends.unreachable`: a name
that does not resolve, a refused connection, an untrusted certificate). A cancelled statement
sends nothing more and its retry waits end at once (:mod:`caveql.cancel`).

>>> sorted(RETRY_STATUS)
[429, 502, 503, 504]
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Mapping, Sequence
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from caveql import cancel
from caveql.backends.auth import Token, auth_headers, redact, token_help
from caveql.backends.progress import Progress
from caveql.backends.unreachable import lasting_failure, unreachable_error
from caveql.errors import AuthError, CancelledError, ConfigError, ServiceError, TransportError

__all__ = ["GET_HEADERS", "RETRY_STATUS", "Transport"]

#: Statuses retried with backoff (caveclient retries 502/503/504; we add 429).
RETRY_STATUS = frozenset({429, 502, 503, 504})

GET_HEADERS = {"Accept-Encoding": "gzip, deflate"}  # what requests sends on caveclient's GETs


class Transport:
    """Sending with retries and checking statuses; the backend sets the attributes below."""

    _client: httpx.Client
    _token: Token | None
    _sleep: Callable[[float], None]
    server: str
    datastack: str
    retries: int
    backoff: float
    max_backoff: float
    calls: int

    def _delay(self, attempt: int, response: httpx.Response | None = None) -> float:
        wait_s = min(self.max_backoff, self.backoff * 2**attempt) * random.uniform(0.5, 1.0)
        if response is not None and response.status_code == 429:
            after = _retry_after(response.headers.get("Retry-After"))
            if after is not None:
                wait_s = max(wait_s, min(after, 10 * self.max_backoff))
        return wait_s

    def _send(self, method: str, url: str, *, params: Sequence[tuple[str, str]] = (),
              content: bytes | None = None, headers: Mapping[str, str] | None = None,
              what: str, progress: Progress | None = None) -> tuple[httpx.Response, bytes | bytearray]:
        """One request with retries; returns the final response and its whole body."""
        hdrs = {**(headers or {}), **auth_headers(self._token)}
        attempt = 0
        while True:
            cancel.check()
            try:
                request = self._client.build_request(method, url, params=list(params), content=content,
                                                     headers=hdrs)
            except (httpx.InvalidURL, httpx.UnsupportedProtocol, ValueError) as exc:
                raise ConfigError(f"bad server URL {url!r}: {exc}") from exc
            self.calls += 1
            if self._client.is_closed:
                raise ConfigError(f"cannot send {what}: this HttpBackend was closed")
            try:
                response = self._client.send(request, stream=True)
                try:
                    if response.status_code in RETRY_STATUS and attempt < self.retries:
                        delay = self._delay(attempt, response)
                        response.close()
                        cancel.sleep(delay, self._sleep)
                        attempt += 1
                        continue
                    body = _read_body(response, progress)
                finally:
                    response.close()
                return response, body
            except (httpx.UnsupportedProtocol, httpx.LocalProtocolError) as exc:
                raise ConfigError(f"cannot send {what}: {self._clean(str(exc))}") from exc
            except (httpx.TransportError, httpx.DecodingError) as exc:
                token = cancel.current()
                if token is not None and token.cancelled:
                    raise CancelledError(f"{what} was abandoned: the statement was cancelled") from exc
                lasting = lasting_failure(exc)
                # retry only what can recover (timeouts, resets, truncated bodies); a name that does
                # not resolve, a refused connection or a bad certificate fail the same way again
                if lasting is None and attempt < self.retries:
                    cancel.sleep(self._delay(attempt), self._sleep)
                    attempt += 1
                    continue
                raise unreachable_error(exc, lasting, request, what=what, attempts=attempt + 1,
                                        server=self.server, datastack=self.datastack,
                                        clean=self._clean) from exc

    def _clean(self, text: str) -> str:
        return redact(text, self._token)

    def _check(self, response: httpx.Response, body: bytes | bytearray, what: str) -> None:
        """Turn an error status into the matching CaveqlError."""
        status = response.status_code
        if status < 300:
            return
        path = _path(str(response.request.url))
        if 300 <= status < 400:
            raise AuthError(
                self._clean(f"{what}: the service redirected {path} to {response.headers.get('Location', '?')} "
                            f"(a login page): the token is missing or not accepted"),
                status=status, hint=token_help(self.server))
        detail = self._clean(_error_detail(body))
        if status in (401, 403):
            tos = _tos_url(body)
            if tos:
                msg = f"{what}: you must accept the terms of service first: {tos}"
            elif self._token is None:
                msg = f"{what}: the service requires a token (HTTP {status}) and none was found"
            else:
                msg = (f"{what}: the service refused the token from {self._token.source} "
                       f"(HTTP {status}): {detail or 'no detail'}")
            raise AuthError(msg, status=status, detail=detail, hint=token_help(self.server))
        if status == 429:
            raise ServiceError(f"{what}: the service is rate-limiting (HTTP 429) and kept refusing after "
                               f"{self.retries + 1} attempts", status=status, detail=detail)
        kind = "failed" if status >= 500 else "rejected the request"
        raise ServiceError(f"{what}: the service {kind} (HTTP {status}) on {path}: {detail or 'no detail'}",
                           status=status, detail=detail)

    @staticmethod
    def _json(body: bytes | bytearray, what: str) -> Any:
        try:
            return json.loads(body)
        except ValueError as exc:
            raise TransportError(f"{what}: the service's answer is not JSON ({len(body)} bytes)") from exc

    def _get_json(self, url: str, *, params: Sequence[tuple[str, str]] = (), what: str) -> Any:
        response, body = self._send("GET", url, params=params, headers=GET_HEADERS, what=what)
        self._check(response, body, what)
        return self._json(body, what)

def _read_body(response: httpx.Response, progress: Progress | None) -> bytes | bytearray:
    """The whole body, read into one preallocated buffer when its length is known.

    Query answers are hundreds of MB at most and arrive in many chunks: filling one buffer
    (instead of joining a list of chunks) halves the peak memory of a fetch, and the Arrow
    reader then uses the buffer without copying it.
    """
    if response.is_stream_consumed:  # already read (a transport that answers in memory)
        return response.content
    length = response.headers.get("Content-Length")
    if length is None or response.headers.get("Content-Encoding") or not length.isdigit():
        parts = []
        for chunk in response.iter_bytes():
            parts.append(chunk)
            if progress is not None:
                progress.update(0, nbytes=len(chunk))
        return b"".join(parts)
    buf = bytearray(int(length))
    view = memoryview(buf)
    pos = 0
    for chunk in response.iter_raw():
        end = pos + len(chunk)
        if end > len(buf):
            raise httpx.RemoteProtocolError("the body is longer than its Content-Length")
        view[pos:end] = chunk
        pos = end
        if progress is not None:
            progress.update(0, nbytes=len(chunk))
    if pos != len(buf):
        raise httpx.RemoteProtocolError(f"the body ended after {pos} of {len(buf)} bytes")
    return buf


def _path(url: str) -> str:
    # the path only: URLs never carry tokens, but keep messages short
    return httpx.URL(url).path


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date).

    >>> _retry_after("3"), _retry_after(None), _retry_after("soon")
    (3.0, None, None)
    """
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_detail(body: bytes | bytearray) -> str:
    """The service's error text: JSON ``message``, schema errors, or the body's start.

    >>> _error_detail(b'{"code": 500, "message": "boom", "traceback": []}')
    'boom'
    >>> _error_detail(b'{"schema_errors": {"filter_out_dict": ["Unknown field."]}}')
    'invalid request body: {"filter_out_dict": ["Unknown field."]}'
    """
    try:
        data = json.loads(body)
    except ValueError:
        text = body[:500].decode("utf-8", "replace").strip()
        return text
    if isinstance(data, dict):
        if data.get("message"):
            return str(data["message"])
        for key in ("schema_errors", "errors"):
            if data.get(key):
                return f"invalid request body: {json.dumps(data[key])}"
        if data.get("error"):
            return str(data["error"])
    return json.dumps(data)[:500]


def _tos_url(body: bytes | bytearray) -> str | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if isinstance(data, dict) and data.get("error") == "missing_tos":
        inner = data.get("data") or {}
        return str(inner.get("tos_form_url") or "") or None
    return None
