"""How a failure inside a route reaches the client, as MaterializationEngine 5.26.4 shapes it.

``flask.abort`` (:class:`Abort`), a handler that returns ``(body, status)`` (:class:`_Returned`),
and :func:`_error`, the service's error handler: HTTP 500 with ``{"code", "message",
"traceback"}``, or ``{"schema_errors": ...}`` / ``{"errors": ...}`` for a bad body or argument.
"""

from __future__ import annotations

import traceback
from typing import Any

from starlette.responses import JSONResponse

from caveql.server.validate import ArgError, BodyError

_PHRASES = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 406: "Not Acceptable", 410: "Gone"}


class Abort(Exception):
    """``flask.abort(code, description)`` inside a resource: the error handler turns it into an
    HTTP 500 whose message is ``"<code> <phrase>: <description>"`` (common.py:28-51)."""

    def __init__(self, code: int, description: str) -> None:
        super().__init__(f"{code} {_PHRASES.get(code, '')}: {description}")
        self.code = code


class _Returned(Exception):
    """A handler that *returns* ``(body, status)``: the status is kept (api2.py:782, 915, 1030)."""

    def __init__(self, body: Any, status: int = 404) -> None:
        super().__init__(body)
        self.body = body
        self.status = status


class KeyError_(KeyError):  # noqa: N801 - a KeyError whose str() is its message (DADB TableNameNotFound)
    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class _BadJson:
    def __init__(self, message: str) -> None:
        self.message = message


def _raise_bad_json(raw: Any) -> Any:
    if isinstance(raw, _BadJson):
        raise Abort(400, raw.message)
    return raw


def _error(exc: BaseException) -> JSONResponse:
    """The service's error handler: anything raised inside a resource is an HTTP 500."""
    if isinstance(exc, BodyError):
        return JSONResponse({"schema_errors": exc.errors}, status_code=500)
    if isinstance(exc, ArgError):
        return JSONResponse({"errors": {exc.name: exc.message}, "message": "Input payload validation failed"},
                            status_code=500)
    message = getattr(exc, "message", None) if not isinstance(exc, (Abort, KeyError_)) else None
    message = message or str(exc)
    lines = traceback.format_exception_only(type(exc), exc)
    return JSONResponse({"code": 500, "message": message, "traceback": [ln.rstrip("\n") for ln in lines]},
                        status_code=500)
