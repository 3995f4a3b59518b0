"""Connection.cancel() and Ctrl-C (KeyboardInterrupt) during Connection.query: the statement stops,
the connection stays usable with its settings and SET parameters."""

from __future__ import annotations

import _thread
import signal
import threading
import time

import pytest

import caveql
from caveql.backends.local import LocalBackend
from caveql.errors import CancelledError

pytestmark = pytest.mark.timeout(120)

_ALIASES = [f"s{i}" for i in range(12)]
# a 12-way self-join of the tiny synapses counted locally (~10^11 rows): never ends by itself
ENDLESS = "SELECT COUNT(*) AS n FROM synapses s0 " + " ".join(
    f"JOIN synapses {b} ON {b}.id <> {a}.id" for a, b in zip(_ALIASES, _ALIASES[1:], strict=False))
FIRST = "SELECT id, pre_pt_root_id FROM synapses ORDER BY id LIMIT :lim"


@pytest.fixture
def sigint(request):
    """Python's default SIGINT handler (Ctrl-C = KeyboardInterrupt) for the test."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, previous))


def _endless_in_thread(db):  # type: ignore[no-untyped-def]
    """Run ENDLESS on ``db`` in a daemon thread; the box gets the exception it ends with."""
    box: dict = {}

    def run() -> None:
        try:
            db.query(ENDLESS)
        except BaseException as exc:  # noqa: BLE001 - inspected by the caller
            box["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, box


def test_cancel_from_another_thread(tiny_datastack):
    with caveql.connect(path=tiny_datastack, version=1) as db:
        db.query("SET lim = 2")
        t, box = _endless_in_thread(db)
        deadline = time.monotonic() + 30
        while not db.cancel():
            assert time.monotonic() < deadline, "the statement never started"
            time.sleep(0.01)
        t.join(10)
        assert not t.is_alive() and isinstance(box.get("error"), CancelledError)
        got = db.query(FIRST)
        assert db.version == 1 and db.cancel() is False
    with caveql.connect(path=tiny_datastack, version=1) as fresh:
        assert got.equals(fresh.query(FIRST, lim=2))


def test_keyboard_interrupt_in_main_thread_leaves_connection_usable(tiny_datastack, monkeypatch, sigint):
    assert threading.current_thread() is threading.main_thread()
    real = LocalBackend.query
    armed = {"on": False}

    def query(self, req):  # type: ignore[no-untyped-def]
        if armed["on"]:
            armed["on"] = False
            _thread.interrupt_main()  # Ctrl-C while the statement runs
        return real(self, req)

    monkeypatch.setattr(LocalBackend, "query", query)
    with caveql.connect(path=tiny_datastack, version=1) as db:
        db.query("SET lim = 3")
        armed["on"] = True
        t0 = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            db.query(ENDLESS)
        assert time.monotonic() - t0 < 30  # it would never end by itself
        assert db.cancel() is False  # the statement stopped: nothing runs on the connection
        got = db.query(FIRST)  # same connection, same SET parameter and version
        assert db.version == 1
    with caveql.connect(path=tiny_datastack, version=1) as fresh:
        assert got.equals(fresh.query(FIRST, lim=3))


def test_interrupt_cancels_and_waits_until_the_statement_has_stopped(tiny_datastack):
    """Connection.interrupt(): cancel, then wait — when it returns True nothing runs any more (the
    REPL's Ctrl-C rests on it)."""
    with caveql.connect(path=tiny_datastack, version=1) as db:
        t, box = _endless_in_thread(db)
        deadline = time.monotonic() + 30
        while not db.engine._running:  # started
            assert time.monotonic() < deadline, "the statement never started"
            time.sleep(0.01)
        start = time.monotonic()
        assert db.interrupt(10.0) is True
        assert time.monotonic() - start < 5
        assert not db.engine._running and db.cancel() is False
        t.join(5)
        assert isinstance(box.get("error"), CancelledError)
        assert db.interrupt() is True  # nothing running: at once
