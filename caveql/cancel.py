"""Cancelling a running statement from another thread: one token per statement.

The engine makes a :class:`CancelToken` for each statement and makes it *current*
(:func:`activate`) in every thread that works for the statement: its own, and each
pool thread the executor hands a remote call. Code that blocks checks it:

- between steps: :func:`check` raises :class:`~caveql.errors.CancelledError` once
  the token is cancelled;
- around a blocking call that can be aborted: ``with on_cancel(abort): ...`` runs
  ``abort`` (e.g. ``DuckDBPyConnection.interrupt``) when the token is cancelled while
  the call runs; the caller then raises :class:`~caveql.errors.CancelledError`
  ``from`` the aborted call's exception;
- waits (retry back-off): :func:`sleep` returns early when cancelled.

An abort that lands just before the call starts can be lost (DuckDB clears its
interrupt flag when a query begins), so a cancelled token fires its callbacks
again every 50 ms for a few seconds while any is registered. Callbacks run under
the token's lock, so once ``on_cancel`` has exited its callback never runs again.

>>> tok = CancelToken()
>>> with activate(tok):
...     check()                       # not cancelled: nothing happens
...     tok.cancel()
...     try:
...         check()
...     except CancelledError as err:
...         print(err.code, err.message)
CQL070 the statement was cancelled
>>> check()                           # no current token outside activate()

Interpreter exit: a statement still running in a daemon thread when Python exits would be
killed inside DuckDB, which aborts the process (``terminate called ... FATAL: exception not
rethrown``). Tokens made current by :func:`running` are known process-wide; at exit (an
``atexit`` hook, which runs once non-daemon threads have been joined) every one is cancelled and
the exit waits up to :data:`EXIT_GRACE` seconds for them to finish; statements that start after
that are cancelled at once.
"""

from __future__ import annotations

import atexit
import contextvars
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

from caveql.errors import CancelledError

__all__ = ["EXIT_GRACE", "CancelToken", "activate", "check", "child", "current", "on_cancel",
           "running", "sleep"]

_REFIRE_EVERY = 0.05
_REFIRE_FOR = 5.0

#: Seconds the interpreter's exit waits for cancelled statements to finish.
EXIT_GRACE = 5.0

_current: contextvars.ContextVar[CancelToken | None] = contextvars.ContextVar("caveql_cancel", default=None)


class CancelToken:
    """A thread-safe "stop" flag with abort callbacks.

    >>> tok = CancelToken(); calls = []
    >>> with tok.on_cancel(lambda: calls.append("abort")):
    ...     tok.cancel()
    >>> calls[:1], tok.cancelled
    (['abort'], True)
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: dict[int, Callable[[], object]] = {}
        self._next = 0

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called."""
        return self._event.is_set()

    def cancel(self) -> None:
        """Cancel: run the registered abort callbacks (and again, briefly, while any remain)."""
        if self._event.is_set():
            return
        self._event.set()
        if self._fire():
            threading.Thread(target=self._refire, name="caveql-cancel", daemon=True).start()

    def _fire(self) -> bool:
        """Run every registered callback; whether any was registered."""
        with self._lock:
            for fn in list(self._callbacks.values()):
                try:
                    fn()
                except Exception:  # noqa: BLE001 - an abort that fails leaves the call to end by itself
                    pass
            return bool(self._callbacks)

    def _refire(self) -> None:
        end = time.monotonic() + _REFIRE_FOR
        while time.monotonic() < end:
            time.sleep(_REFIRE_EVERY)
            if not self._fire():
                return

    def check(self) -> None:
        """Raise :class:`CancelledError` if cancelled."""
        if self._event.is_set():
            raise CancelledError("the statement was cancelled")

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True (early) if cancelled meanwhile."""
        return self._event.wait(seconds)

    @contextmanager
    def on_cancel(self, abort: Callable[[], object]) -> Iterator[None]:
        """Run ``abort`` if the token is cancelled while the block runs (at once if it already is)."""
        with self._lock:
            key = self._next
            self._next += 1
            self._callbacks[key] = abort
        if self._event.is_set():
            self._fire()
        try:
            yield
        finally:
            with self._lock:
                del self._callbacks[key]


def current() -> CancelToken | None:
    """The token of the statement this thread works for, if any."""
    return _current.get()


@contextmanager
def activate(token: CancelToken | None) -> Iterator[CancelToken | None]:
    """Make ``token`` current in this thread for the block."""
    reset = _current.set(token)
    try:
        yield token
    finally:
        _current.reset(reset)


def check() -> None:
    """Raise :class:`CancelledError` if the current statement was cancelled."""
    tok = _current.get()
    if tok is not None:
        tok.check()


def on_cancel(abort: Callable[[], object]) -> AbstractContextManager[None]:
    """:meth:`CancelToken.on_cancel` of the current token (a no-op without one)."""
    tok = _current.get()
    return tok.on_cancel(abort) if tok is not None else nullcontext()


@contextmanager
def child(token: CancelToken) -> Iterator[CancelToken]:
    """Make ``token`` current, cancelled when the current token (if any) is: a statement's
    token under its script's, a run's under its statement's."""
    outer = _current.get()
    with outer.on_cancel(token.cancel) if outer is not None else nullcontext(), activate(token):
        yield token


# -- every running top-level token, for the interpreter's exit -----------------------------------
_live: dict[CancelToken, threading.Thread] = {}  # token -> the thread running its statement
_live_lock = threading.Condition()
_exiting = False
_hooked = False


@contextmanager
def running(token: CancelToken) -> Iterator[CancelToken]:
    """Register ``token`` (a script's or statement's) as running in this thread until the block
    ends, so that interpreter exit cancels it and waits for it; once exit has begun it is
    cancelled at once."""
    global _hooked
    with _live_lock:
        if not _hooked:
            # registered on first use: atexit runs hooks last-in first-out, so this one runs
            # before those of libraries imported earlier (DuckDB's among them)
            atexit.register(_at_exit)
            _hooked = True
        _live[token] = threading.current_thread()
        exiting = _exiting
    if exiting:
        token.cancel()
    try:
        yield token
    finally:
        with _live_lock:
            _live.pop(token, None)
            _live_lock.notify_all()


def _at_exit(grace: float | None = None) -> bool:
    """Cancel every running statement, then wait (up to ``grace`` seconds in all, default
    :data:`EXIT_GRACE`) for the statements to finish and for the daemon threads that ran them to
    end — a thread still unwinding from DuckDB (or freeing its cursors as it ends) when the
    interpreter finalizes is killed inside DuckDB, which aborts the process. Whether all did."""
    global _exiting
    with _live_lock:
        _exiting = True
        tokens = list(_live)
        threads = {t for t in _live.values() if t is not threading.current_thread()}
    for tok in tokens:
        tok.cancel()
    deadline = time.monotonic() + (EXIT_GRACE if grace is None else grace)
    with _live_lock:
        while _live:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            _live_lock.wait(left)
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    return not any(t.is_alive() for t in threads)


def sleep(seconds: float, sleeper: Callable[[float], object] = time.sleep) -> None:
    """Sleep, returning early and raising :class:`CancelledError` if the statement is cancelled.

    ``sleeper`` other than ``time.sleep`` (a test's fake clock) is called as is.
    """
    tok = _current.get()
    if tok is None:
        sleeper(seconds)
        return
    tok.check()
    if sleeper is time.sleep:
        tok.wait(seconds)
    else:
        sleeper(seconds)
    tok.check()
