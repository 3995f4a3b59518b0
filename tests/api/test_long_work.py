"""Long work stays controllable (issue 16, item 13): Connection.cancel() stops a long script —
also while it is still being parsed — before its next statement; a script holds one result at a
time; and a Python process that exits while a statement runs in a daemon thread exits cleanly
instead of aborting inside DuckDB."""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
import threading
import time
import weakref

import pytest

import caveql
from caveql.engine import Engine
from caveql.errors import CancelledError

pytestmark = pytest.mark.timeout(180)

STATEMENT = "SELECT id FROM cells WHERE id = 1;\n"


def _run_in_thread(fn):  # type: ignore[no-untyped-def]
    box: dict = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - inspected by the test
            box["error"] = exc
        finally:
            box["done"] = time.perf_counter()

    t = threading.Thread(target=target, daemon=True)
    t.start()
    return t, box


def test_cancel_while_a_long_script_is_parsed(tiny_datastack, monkeypatch) -> None:
    """The cancel used to be lost (cancel() returned False: no statement ran yet) and the script
    then ran to its end."""
    ran = []
    real = Engine._dispatch
    monkeypatch.setattr(Engine, "_dispatch",
                        lambda self, stmt, params: ran.append(1) or real(self, stmt, params))
    with caveql.connect(path=tiny_datastack) as db:
        t, box = _run_in_thread(lambda: db.execute_script(STATEMENT * 100_000))
        time.sleep(0.3)  # parsing 100,000 statements takes seconds
        t_cancel = time.perf_counter()
        assert db.cancel() is True
        t.join(10)
        assert not t.is_alive() and isinstance(box.get("error"), CancelledError)
        assert box["done"] - t_cancel < 1.0
        assert len(ran) < 100_000
        assert db.cancel() is False  # nothing runs any more, and the connection answers
        assert len(db.query("SELECT id FROM cells WHERE id = 1")) == 1


def test_cancel_stops_a_running_script_at_the_next_statement(tiny_datastack) -> None:
    with caveql.connect(path=tiny_datastack) as db:
        seen: list[object] = []
        started = threading.Event()

        def on_result(result: object) -> None:
            seen.append(result)
            if len(seen) == 5:
                started.set()

        t, box = _run_in_thread(lambda: db.execute_script(STATEMENT * 3000, on_result))
        assert started.wait(60)
        t_cancel = time.perf_counter()
        assert db.cancel() is True
        t.join(10)
        assert not t.is_alive() and isinstance(box.get("error"), CancelledError)
        latency = box["done"] - t_cancel
        assert latency < 1.0, latency
        assert 5 <= len(seen) < 3000
        assert db.cancel() is False
        assert db.execute_script(STATEMENT * 2) != []  # a fresh call is not cancelled


def test_a_cancel_between_statements_of_a_script_is_not_lost(tiny_datastack) -> None:
    """A cancel that lands after one statement ended and before the next began stops the script."""
    with caveql.connect(path=tiny_datastack) as db:
        def on_result(result: object) -> None:
            assert db.cancel() is True  # between statement 1 and 2: only the script runs

        with pytest.raises(CancelledError, match="after 1 of 3 statements"):
            db.execute_script(STATEMENT * 3, on_result)


def test_a_script_holds_one_result_at_a_time(tiny_datastack, monkeypatch) -> None:
    """query() on a 10,000-statement script used to keep every statement's result until the end
    (RSS 212 -> 351 MB); it needs only the last."""
    refs: list[weakref.ref] = []
    alive: list[int] = []
    real = Engine._run

    def run(self, stmt, text, params):  # type: ignore[no-untyped-def]
        gc.collect()
        alive.append(sum(r() is not None for r in refs))
        res = real(self, stmt, text, params)
        refs.append(weakref.ref(res))
        return res

    monkeypatch.setattr(Engine, "_run", run)
    with caveql.connect(path=tiny_datastack) as db:
        frame = db.query(STATEMENT * 30 + "SELECT id FROM cells WHERE id = 2")
        assert frame.id.tolist() == [2]
        assert max(alive) <= 1, alive
        results: list[object] = []
        assert db.execute_script(STATEMENT * 3, results.append) == []
        assert len(results) == 3
        assert len(db.execute_script(STATEMENT * 3)) == 3  # without a callback: the list, as before


_EXIT_SCRIPT = textwrap.dedent("""
    import sys, threading, time
    import caveql
    aliases = [f"s{i}" for i in range(12)]
    endless = "SELECT COUNT(*) AS n FROM synapses s0 " + " ".join(
        f"JOIN synapses {b} ON {b}.id <> {a}.id" for a, b in zip(aliases, aliases[1:]))
    db = caveql.connect(path=sys.argv[1])

    def run():
        try:
            db.query(endless)
        except caveql.errors.CancelledError:
            print("cancelled at exit", flush=True)

    threading.Thread(target=run, daemon=True).start()
    deadline = time.monotonic() + 60
    while not db.engine._running and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(float(sys.argv[2]))  # inside DuckDB's local step by now
    print("main exits", flush=True)
""")


@pytest.mark.parametrize("delay", [0.5, 1.5])
def test_interpreter_exit_during_a_running_statement_is_clean(tiny_datastack, delay: float) -> None:
    """It aborted: `terminate called after throwing an instance of ''`, `FATAL: exception not
    rethrown` (a daemon thread killed inside DuckDB during finalization)."""
    for _ in range(2):
        proc = subprocess.run([sys.executable, "-c", _EXIT_SCRIPT, str(tiny_datastack), str(delay)],
                              capture_output=True, text=True, timeout=120)
        assert "terminate called" not in proc.stderr and "FATAL" not in proc.stderr, proc.stderr
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.splitlines() == ["main exits", "cancelled at exit"]


_NON_DAEMON_SCRIPT = textwrap.dedent("""
    import sys, threading, time
    import caveql
    from caveql.backends.local import LocalBackend
    real = LocalBackend.query

    def slow(self, request):
        time.sleep(1.0)
        return real(self, request)

    LocalBackend.query = slow
    db = caveql.connect(path=sys.argv[1])
    threading.Thread(target=lambda: print(len(db.query("SELECT id FROM cells")), flush=True)).start()
    print("main exits", flush=True)
""")


def test_a_non_daemon_thread_still_finishes_its_statement_at_exit(tiny_datastack) -> None:
    """Python waits for non-daemon threads before exiting: their statements are not cancelled."""
    proc = subprocess.run([sys.executable, "-c", _NON_DAEMON_SCRIPT, str(tiny_datastack)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    with caveql.connect(path=tiny_datastack) as db:
        rows = len(db.query("SELECT id FROM cells"))
    assert proc.stdout.splitlines() == ["main exits", str(rows)]
