"""The one exception tree of caveql, and how errors are shown to a person.

Every error caveql raises on purpose is a :class:`CaveqlError`, with a stable
``code`` (documented in docs/errors.md) and, when it is about source text, a
:class:`Span`. Foreign exceptions (lark, httpx, duckdb, pyarrow) are translated
where they enter caveql, with ``raise ... from exc``.

::

    CaveqlError                      CQL000
    ├── CqlSyntaxError               CQL001  the text does not parse
    │   ├── UnexpectedEndError       CQL002  input ended inside a statement
    │   ├── UnterminatedError        CQL003  unclosed quote / comment / parenthesis
    │   └── InvalidLiteralError      CQL004  integer out of uint64 range, bad escape, ...
    ├── CqlSemanticError             CQL010  names and types (analysis)
    │   ├── UnknownTableError        CQL011
    │   ├── UnknownColumnError       CQL012
    │   ├── AmbiguousColumnError     CQL013
    │   ├── CqlTypeError             CQL014
    │   ├── AggregateError           CQL015  aggregate misuse, non-grouped column
    │   ├── ParameterError           CQL016  missing / wrongly typed :param
    │   └── InvalidRootIdError       CQL017  a root id not current at the version / timestamp
    ├── PlanError                    CQL020
    │   └── UnsupportedError         CQL021  cannot be pushed down nor run locally
    ├── ExecutionError               CQL030  a local step failed (DuckDB)
    │   ├── TruncatedResultError     CQL031  the service capped an answer we could not split
    │   └── FetchLimitError          CQL032  the plan would fetch more rows than max_fetch_rows
    ├── BackendError                 CQL040
    │   ├── TransportError           CQL041  connection, timeout, protocol
    │   ├── ServiceError             CQL042  the service answered with an error
    │   ├── AuthError                CQL043  401/403, no token
    │   └── DatastackError           CQL044  local datastack missing or malformed
    ├── CqlFileError                 CQL050  .cql loading, headers, parameter binding
    ├── ConfigError                  CQL060  settings, SET values, config file
    └── CancelledError               CQL070  the statement was cancelled (Ctrl-C, cancel())

>>> err = UnknownColumnError("unknown column 'cel_type'", span=Span(7, 15, 1, 8),
...                          candidates=("cell_type",))
>>> print(render_error("SELECT cel_type FROM t", err))
error[CQL012]: unknown column 'cel_type'
 --> line 1, column 8
  |
1 | SELECT cel_type FROM t
  |        ^^^^^^^^
  = help: did you mean 'cell_type'?
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "AggregateError",
    "AmbiguousColumnError",
    "AuthError",
    "BackendError",
    "CancelledError",
    "CaveqlError",
    "ConfigError",
    "CqlFileError",
    "CqlSemanticError",
    "CqlSyntaxError",
    "CqlTypeError",
    "DatastackError",
    "InvalidRootIdError",
    "ExecutionError",
    "FetchLimitError",
    "InvalidLiteralError",
    "ParameterError",
    "PlanError",
    "ServiceError",
    "Span",
    "TransportError",
    "TruncatedResultError",
    "UnexpectedEndError",
    "UnknownColumnError",
    "UnknownTableError",
    "UnsupportedError",
    "UnterminatedError",
    "did_you_mean",
    "render_error",
]


@dataclass(frozen=True, slots=True)
class Span:
    """A half-open ``[start, end)`` range of character offsets in the source.

    ``line`` and ``column`` are 1-based and belong to ``start``.

    >>> Span(0, 6, 1, 1).end
    6
    """

    start: int
    end: int
    line: int
    column: int

    def merge(self, other: Span | None) -> Span:
        """The smallest span covering both.

        >>> Span(0, 2, 1, 1).merge(Span(5, 9, 1, 6))
        Span(start=0, end=9, line=1, column=1)
        """
        if other is None:
            return self
        first = self if self.start <= other.start else other
        return Span(min(self.start, other.start), max(self.end, other.end), first.line, first.column)


class CaveqlError(Exception):
    """Root of every error caveql raises on purpose.

    ``message`` says what is wrong in a sentence; ``span`` points into the
    source when the error is about text; ``hint`` is an optional help line;
    ``source`` and ``filename`` may be attached so the error renders itself.
    """

    code = "CQL000"

    def __init__(
        self,
        message: str,
        *,
        span: Span | None = None,
        hint: str | None = None,
        source: str | None = None,
        filename: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.span = span
        self.hint = hint
        self.source = source
        self.filename = filename

    def with_source(self, source: str, filename: str | None = None) -> CaveqlError:
        """Attach the source text (and file name) unless already set; returns self."""
        if self.source is None:
            self.source = source
        if filename is not None and self.filename is None:
            self.filename = filename
        return self

    def render(self, color: bool = False) -> str:
        """The error as a person reads it (see :func:`render_error`)."""
        return render_error(self.source, self, filename=self.filename, color=color)

    def __str__(self) -> str:
        """The message, where it is, and the hint: what a log or a bare traceback shows, so the
        "did you mean" is not only in :meth:`render` (which prints ``message`` and ``hint`` apart).

        >>> str(UnknownColumnError("unknown column 'cel_type'", span=Span(7, 15, 1, 8),
        ...                        candidates=("cell_type",)))
        "unknown column 'cel_type' (line 1, column 8); help: did you mean 'cell_type'?"
        """
        text = self.message
        if self.span is not None:
            text += f" (line {self.span.line}, column {self.span.column})"
        if self.hint:
            text += f"; help: {self.hint}"
        return text


class CqlSyntaxError(CaveqlError):
    """The text does not parse. ``expected`` lists what would have been accepted."""

    code = "CQL001"

    def __init__(self, message: str, *, expected: Sequence[str] = (), **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.expected = tuple(expected)


class UnexpectedEndError(CqlSyntaxError):
    """The input ended inside a statement (the REPL keeps reading)."""

    code = "CQL002"


class UnterminatedError(CqlSyntaxError):
    """A quote, block comment or parenthesis is never closed."""

    code = "CQL003"


class InvalidLiteralError(CqlSyntaxError):
    """A literal that cannot be represented (integer beyond uint64, ...)."""

    code = "CQL004"


class CqlSemanticError(CaveqlError):
    """The statement parses but names or types do not work out."""

    code = "CQL010"


class UnknownTableError(CqlSemanticError):
    """No such table or view in the datastack at this version."""

    code = "CQL011"

    def __init__(self, message: str, *, candidates: Sequence[str] = (), **kw: object) -> None:
        self.candidates = tuple(candidates)
        if "hint" not in kw and self.candidates:
            kw["hint"] = _mean(self.candidates)
        super().__init__(message, **kw)  # type: ignore[arg-type]


class UnknownColumnError(CqlSemanticError):
    """No such column in the statement's sources."""

    code = "CQL012"

    def __init__(self, message: str, *, candidates: Sequence[str] = (), **kw: object) -> None:
        self.candidates = tuple(candidates)
        if "hint" not in kw and self.candidates:
            kw["hint"] = _mean(self.candidates)
        super().__init__(message, **kw)  # type: ignore[arg-type]


class AmbiguousColumnError(CqlSemanticError):
    """A bare column name that more than one source has."""

    code = "CQL013"


class CqlTypeError(CqlSemanticError, TypeError):
    """Operands whose types do not fit the operator or function."""

    code = "CQL014"


class AggregateError(CqlSemanticError):
    """An aggregate where none is allowed, or a non-grouped column."""

    code = "CQL015"


class ParameterError(CqlSemanticError):
    """A ``:param`` without a value, or with a value of the wrong kind."""

    code = "CQL016"


class InvalidRootIdError(CqlSemanticError):
    """A root id a statement names is not a current root at the statement's version or timestamp
    (or never was one): the message says when it stopped being current and its latest roots.
    ``root_ids`` are the ids that are not valid."""

    code = "CQL017"

    def __init__(self, message: str, *, root_ids: Sequence[int] = (), **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.root_ids = tuple(root_ids)


class PlanError(CaveqlError):
    """The planner cannot lower the statement."""

    code = "CQL020"


class UnsupportedError(PlanError):
    """A construct neither the backend nor the local engine can run."""

    code = "CQL021"


class ExecutionError(CaveqlError):
    """A local step failed while running."""

    code = "CQL030"


class TruncatedResultError(ExecutionError):
    """The service capped an answer and the planner could not split the call."""

    code = "CQL031"


class BackendError(CaveqlError):
    """Talking to a backend failed."""

    code = "CQL040"


class TransportError(BackendError):
    """Connection refused, reset, timed out, or a malformed response."""

    code = "CQL041"


class ServiceError(BackendError):
    """The service answered with an error status; ``status`` and ``detail`` quote it."""

    code = "CQL042"

    def __init__(self, message: str, *, status: int | None = None, detail: str | None = None,
                 **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.status = status
        self.detail = detail


class AuthError(ServiceError):
    """401/403 or a missing token."""

    code = "CQL043"


class DatastackError(BackendError):
    """A local datastack folder is missing or malformed."""

    code = "CQL044"


class CqlFileError(CaveqlError):
    """A ``.cql`` file cannot be loaded or its parameters bound."""

    code = "CQL050"


class ConfigError(CaveqlError):
    """A bad setting: SET value, connection option, config file entry."""

    code = "CQL060"


class CancelledError(CaveqlError):
    """The statement was cancelled (``Engine.cancel()``, ``Connection.cancel()``, Ctrl-C in the
    REPL) before it finished; nothing partial is returned and the session stays usable."""

    code = "CQL070"


def did_you_mean(word: str, choices: Iterable[str], n: int = 3) -> tuple[str, ...]:
    """Close matches for a misspelt name, best first (case-insensitive).

    >>> did_you_mean("cel_type", ["cell_type", "pt_root_id", "id"])
    ('cell_type',)
    """
    choices = list(dict.fromkeys(choices))
    lowered = {c.lower(): c for c in choices}
    exact = lowered.get(word.lower())
    if exact is not None and exact != word:
        return (exact,)
    found = difflib.get_close_matches(word.lower(), list(lowered), n=n, cutoff=0.6)
    return tuple(lowered[f] for f in found)


def _mean(candidates: Sequence[str]) -> str:
    quoted = [f"'{c}'" for c in candidates]
    if len(quoted) == 1:
        return f"did you mean {quoted[0]}?"
    return "did you mean " + ", ".join(quoted[:-1]) + f" or {quoted[-1]}?"


_RED = "\x1b[1;31m"
_BLUE = "\x1b[1;34m"
_RESET = "\x1b[0m"


def render_error(
    source: str | None,
    err: CaveqlError,
    *,
    filename: str | None = None,
    color: bool = False,
) -> str:
    """Render an error with its location, the source line and a caret underline.

    >>> print(render_error("SELEC 1", CqlSyntaxError("unknown keyword 'SELEC'",
    ...       span=Span(0, 5, 1, 1), hint="did you mean SELECT?")))
    error[CQL001]: unknown keyword 'SELEC'
     --> line 1, column 1
      |
    1 | SELEC 1
      | ^^^^^
      = help: did you mean SELECT?
    """
    red, blue, reset = (_RED, _BLUE, _RESET) if color else ("", "", "")
    out = [f"{red}error[{err.code}]{reset}: {err.message}"]
    span = err.span
    filename = filename or err.filename
    if span is not None:
        where = f"line {span.line}, column {span.column}"
        out.append(f" --> {filename}:{span.line}:{span.column}" if filename else f" --> {where}")
        if source is not None:
            lines = source.split("\n")
            if 1 <= span.line <= len(lines):
                # (a byte-order mark is invisible: a blank keeps the caret under its column)
                text = lines[span.line - 1].replace("\t", " ").replace("\ufeff", " ")
                num = str(span.line)
                pad = " " * len(num)
                line_start = span.start - (span.column - 1)
                width = max(1, min(span.end, line_start + len(text)) - span.start) if span.end > span.start else 1
                out.append(f"{pad} {blue}|{reset}")
                out.append(f"{blue}{num} |{reset} {text}")
                out.append(f"{pad} {blue}|{reset} " + " " * (span.column - 1) + f"{red}{'^' * width}{reset}")
                if err.hint:
                    out.append(f"{pad} {blue}={reset} help: {err.hint}")
                return "\n".join(out)
    elif filename:
        out.append(f" --> {filename}")
    if err.hint:
        out.append(f"  = help: {err.hint}")
    return "\n".join(out)


class FetchLimitError(ExecutionError):
    """A statement would fetch more rows from the service than ``max_fetch_rows`` allows; it is
    refused before any row is fetched. ``rows`` is the estimate, ``limit`` the threshold.

    >>> FetchLimitError("too many", rows=5, limit=1).code
    'CQL032'
    """

    code = "CQL032"

    def __init__(self, message: str, *, rows: int | None = None, limit: int | None = None,
                 **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.rows = rows
        self.limit = limit
