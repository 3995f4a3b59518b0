"""Engine.cancel(): a statement running in another thread stops promptly with CancelledError.

Long statements: a 12-way self-join of the tiny synapses (10 rows each) counted in the local
DuckDB step (~10^11 rows: it never ends by itself), and a LocalBackend call whose DuckDB query is
a huge cross join. Many-call plans: the tiny datastack under a row cap of 3 (13-35 calls). Every
guard on time is a generous "ends within N s", never a timed assertion on speed.
"""

from __future__ import annotations

import threading
import time

import pytest

from caveql import cancel
from caveql.backends.local import LocalBackend
from caveql.engine import Engine
from caveql.errors import CancelledError

pytestmark = pytest.mark.timeout(120)

_ALIASES = [f"s{i}" for i in range(12)]
ENDLESS = "SELECT COUNT(*) AS n FROM synapses s0 " + " ".join(
    f"JOIN synapses {b} ON {b}.id <> {a}.id" for a, b in zip(_ALIASES, _ALIASES[1:], strict=False))
JOINED = "SELECT s.id, c.cell_type FROM synapses s JOIN cells c ON c.pt_root_id = s.post_pt_root_id"


def run_in_thread(fn):
    """Start ``fn`` on a thread; a box that gets its ``value`` or ``error``, and the thread."""
    box: dict = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - inspected by the test
            box["error"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    return box, t


def cancel_when_running(engine: Engine, limit: float = 30.0) -> None:
    """Call ``engine.cancel()`` as soon as it has a statement to cancel."""
    deadline = time.monotonic() + limit
    while not engine.cancel():
        assert time.monotonic() < deadline, "the statement never started"
        time.sleep(0.01)


def expect_cancelled(box: dict, t: threading.Thread, within: float = 10.0) -> CancelledError:
    t.join(within)
    assert not t.is_alive(), f"the cancelled statement still runs after {within} s"
    err = box.get("error")
    assert isinstance(err, CancelledError), box
    assert err.code == "CQL070" and "cancelled" in err.message
    return err


def test_long_local_step_is_interrupted_and_engine_answers_after(tiny_backend):
    engine = Engine(tiny_backend)
    engine.execute("SET lim = 3")  # a SET parameter survives the cancel
    box, t = run_in_thread(lambda: engine.execute(ENDLESS))
    time.sleep(0.3)  # let it reach DuckDB (cancelling earlier is fine too)
    cancel_when_running(engine)
    t0 = time.monotonic()
    expect_cancelled(box, t)  # (in the local step, or earlier on a slow machine)
    assert time.monotonic() - t0 < 10.0
    # the next statement runs normally, with the parameter, and answers what a fresh engine does
    got = engine.execute("SELECT id, pre_pt_root_id FROM synapses ORDER BY id LIMIT :lim").frame
    want = Engine(tiny_backend).execute("SELECT id, pre_pt_root_id FROM synapses ORDER BY id LIMIT 3").frame
    assert got.equals(want) and len(got) == 3
    assert engine.cancel() is False  # nothing running any more


def test_explain_analyze_steps_are_interrupted(tiny_backend):
    engine = Engine(tiny_backend)
    box, t = run_in_thread(lambda: engine.explain(ENDLESS, analyze=True))
    time.sleep(0.3)
    cancel_when_running(engine)
    expect_cancelled(box, t)
    assert "Logical plan" in engine.explain("SELECT id FROM cells", analyze=True)


def test_long_backend_query_is_interrupted(tiny_datastack, monkeypatch):
    """A LocalBackend call whose DuckDB query would run for hours: DuckDB is interrupted."""
    import caveql.backends.local as local

    backend = LocalBackend(tiny_datastack)
    real = local.Builder
    started = threading.Event()

    class SlowBuilder(real):  # type: ignore[misc, valid-type]
        def build(self):  # type: ignore[no-untyped-def]
            sql, params, fields, res, warnings, limit = super().build()
            if self.r.table == "synapses":
                started.set()
                sql = ("SELECT a.* FROM (" + sql + ") a, range(100000000) r1, range(100000000) r2 "
                       "WHERE r1.range + r2.range = -1")
            return sql, params, fields, res, warnings, limit

    monkeypatch.setattr(local, "Builder", SlowBuilder)
    engine = Engine(backend)
    box, t = run_in_thread(lambda: engine.execute("SELECT id FROM synapses"))
    assert started.wait(30), box
    time.sleep(0.2)
    assert engine.cancel()
    err = expect_cancelled(box, t)
    assert "synapses" in err.message  # said by the backend, where DuckDB was interrupted
    monkeypatch.setattr(local, "Builder", real)
    want = Engine(LocalBackend(tiny_datastack)).execute("SELECT id FROM synapses").frame
    assert engine.execute("SELECT id FROM synapses").frame.equals(want)
    backend.close()


class Recording:
    """A backend that records its calls; ``on_call(n)`` runs before call ``n`` (1-based)."""

    def __init__(self, inner: LocalBackend, on_call) -> None:  # type: ignore[no-untyped-def]
        self.inner = inner
        self.on_call = on_call
        self.calls = 0
        self.after_cancel = 0
        self.cancelled = threading.Event()
        self.lock = threading.Lock()

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.inner, name)

    def query(self, request):  # type: ignore[no-untyped-def]
        with self.lock:
            self.calls += 1
            n = self.calls
            if self.cancelled.is_set():
                self.after_cancel += 1
        self.on_call(n)
        return self.inner.query(request)


@pytest.mark.parametrize("query", ["SELECT * FROM synapses", JOINED])
@pytest.mark.parametrize("stop_at", [2, 5])
def test_many_call_plan_stops_issuing_calls(tiny_datastack, query, stop_at):
    """Serial calls (parallel=1): after a cancel during call k, call k+1 is never made."""
    inner = LocalBackend(tiny_datastack, row_cap=3, parallel=1)
    total = Recording(inner, lambda n: None)
    want = Engine(total).execute(query).frame
    assert total.calls > stop_at + 2  # really a many-call plan

    holder: dict = {}

    def on_call(n: int) -> None:
        if n == stop_at:
            # from another thread, as a user's Ctrl-C handler would; joined, so it has happened
            canceller = threading.Thread(target=holder["engine"].cancel)
            canceller.start()
            canceller.join()
            rec.cancelled.set()

    rec = Recording(inner, on_call)
    engine = holder["engine"] = Engine(rec)
    with pytest.raises(CancelledError):
        engine.execute(query)
    assert rec.calls == stop_at and rec.after_cancel == 0
    # the same engine, right after: the whole answer, equal to an undisturbed run's
    rec.on_call = lambda n: None
    assert engine.execute(query).frame.equals(want)
    inner.close()


def test_parallel_calls_stop_after_cancel(tiny_datastack):
    """With 4 calls in flight at once, at most the ones already past their check still run."""
    inner = LocalBackend(tiny_datastack, row_cap=3, parallel=4)
    holder: dict = {}

    def on_call(n: int) -> None:
        if n == 3:
            holder["engine"].cancel()
            rec.cancelled.set()

    rec = Recording(inner, on_call)
    engine = holder["engine"] = Engine(rec)
    query = "SELECT * FROM synapses WHERE pre_pt_root_id IN (SELECT pt_root_id FROM cells)"
    with pytest.raises(CancelledError):
        engine.execute(query)
    assert rec.after_cancel <= 3  # the other pool threads' calls already under way, no more
    assert rec.calls < 32  # the undisturbed plan makes 32
    rec.on_call = lambda n: None
    assert engine.execute(query).frame.equals(Engine(inner).execute(query).frame)
    inner.close()


def test_a_cancel_between_statements_does_not_leak(engine):
    want = engine.execute("SELECT id FROM cells").frame
    assert engine.cancel() is False  # nothing running: nothing is remembered for later
    assert engine.execute("SELECT id FROM cells").frame.equals(want)
    old = cancel.CancelToken()
    old.cancel()
    with cancel.activate(old):  # a cancelled token current in the caller's thread: each statement has its own
        assert engine.execute("SELECT id FROM cells").frame.equals(want)


def test_a_failing_call_stops_the_other_pool_workers(tiny_datastack):
    """One piece fails: the statement's other pieces stop at their next request (not to their end)."""
    from caveql.errors import ServiceError

    inner = LocalBackend(tiny_datastack, row_cap=3, parallel=4)

    def on_call(n: int) -> None:
        if n == 3:
            raise ServiceError("injected failure")

    rec = Recording(inner, on_call)
    with pytest.raises(ServiceError, match="injected"):
        Engine(rec).execute("SELECT * FROM synapses WHERE pre_pt_root_id IN (SELECT pt_root_id FROM cells)")
    assert rec.calls < 32
    inner.close()


def test_cancel_token_refires_an_abort_that_came_too_early():
    """An abort that lands before the blocking call starts is sent again while it is registered."""
    token = cancel.CancelToken()
    aborts = []
    with token.on_cancel(lambda: aborts.append(time.monotonic())):
        token.cancel()
        deadline = time.monotonic() + 4.0  # re-sent every 50 ms (generous: a loaded machine)
        while len(aborts) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    n = len(aborts)
    assert n >= 3  # the first, then re-sent
    time.sleep(0.2)
    assert len(aborts) == n  # never after the block ended
