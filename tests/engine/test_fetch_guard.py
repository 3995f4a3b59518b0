"""The fetch guard (issue 15, "Huge scans") and honest EXPLAIN row figures (issue 15, item 17).

A statement whose plan would fetch more than ``max_fetch_rows`` rows is refused before any row
is fetched (CQL032), the REPL asks first, ``SET max_fetch_rows = NONE`` / ``--yes`` /
``connect(max_fetch_rows=None)`` let it run. EXPLAIN's per-call rows are what is known: every
"exactly" is the rows the call fetched, every "at most" is at least that.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

import caveql
from caveql.backends.local import LocalBackend
from caveql.engine import DEFAULT_MAX_FETCH_ROWS, Engine
from caveql.errors import ConfigError, FetchLimitError
from caveql.execute import execute_arrow
from caveql.plan.estimate import Fetch, call_fetch, requests_for, total
from caveql.repl.cli import main
from caveql.repl.session import Session

PLANS = Path(__file__).parent / "plans"
EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
MINNIE_SYNAPSES = 337_312_429  # rows of minnie65's synapses_pni_2 (the tester's "337 million")


class Counted(LocalBackend):
    """A local datastack whose table counts are the service's (``counts``), recording requests."""

    def __init__(self, path, counts: dict[str, int], **kw) -> None:
        super().__init__(path, **kw)
        self.counts = counts
        self.requests: list = []

    def table_count(self, version, table):
        return self.counts.get(table) or super().table_count(version, table)

    def query(self, request, **kw):
        self.requests.append(request)
        return super().query(request, **kw)


@pytest.fixture()
def big(tiny_datastack):
    """The tiny datastack with minnie65's synapse count and the service's row cap."""
    b = Counted(tiny_datastack, {"synapses": MINNIE_SYNAPSES}, row_cap=500_000)
    yield b
    b.close()


# -- the guard ------------------------------------------------------------------------------------
def test_full_scan_of_a_real_synapse_table_is_refused_before_any_request(big) -> None:
    eng = Engine(big)
    with pytest.raises(FetchLimitError) as info:
        eng.execute("SELECT post_pt_root_id, COUNT(*) FROM synapses GROUP BY 1")
    err = info.value
    assert err.code == "CQL032" and isinstance(err, caveql.errors.ExecutionError)
    assert err.rows == MINNIE_SYNAPSES and err.limit == DEFAULT_MAX_FETCH_ROWS
    assert f"exactly {MINNIE_SYNAPSES:,} rows" in err.message
    assert f"max_fetch_rows = {DEFAULT_MAX_FETCH_ROWS:,}" in err.message
    # the requests it would take, as the executor splits (a count and two per range)
    assert f"about {requests_for(MINNIE_SYNAPSES, 500_000):,} requests" in err.message
    # (the Python API's way; the command line's names --yes: test_cli_refuses_and_yes_goes_ahead)
    assert all(x in err.hint for x in ("SET max_fetch_rows = NONE", "max_fetch_rows=None"))
    assert big.requests == []  # refused before anything was fetched (or counted)
    # the session stays usable, and the same statement runs once the guard is off
    eng.execute("SET max_fetch_rows = NONE")
    assert len(eng.execute("SELECT post_pt_root_id, COUNT(*) FROM synapses GROUP BY 1").frame) > 0


def test_a_filtered_call_over_the_limit_is_counted_by_the_service_first(big) -> None:
    eng = Engine(big)
    res = eng.execute("SELECT id FROM synapses WHERE pre_pt_root_id = 1001")
    assert len(res.frame) > 0
    counts = [r for r in big.requests if r.count]
    assert len(counts) == 1 and counts[0].filter_equal == {"synapses": {"pre_pt_root_id": 1001}}
    assert big.requests.index(counts[0]) == 0  # counted before fetching
    # a filter keeping too many rows is refused after the count
    eng.max_fetch_rows = 2
    big.requests.clear()
    with pytest.raises(FetchLimitError) as info:
        eng.execute("SELECT id FROM synapses WHERE pre_pt_root_id = 1001")
    assert f"exactly {len(res.frame)} rows" in info.value.message
    assert all(r.count for r in big.requests)  # nothing but the count was sent


def test_a_call_within_the_limit_sends_nothing_more(big) -> None:
    # (the executor itself counts a call on a table bigger than the row cap before fetching it)
    sent = []
    for limit in (None, DEFAULT_MAX_FETCH_ROWS):
        big.requests.clear()
        eng = Engine(big, max_fetch_rows=limit)
        eng.execute("SELECT id FROM synapses WHERE id IN (100, 101)")
        eng.execute("SELECT id FROM cells")
        sent.append(list(big.requests))
    assert sent[0] == sent[1]


def test_a_call_the_service_cannot_count_is_not_held_against_the_statement(big) -> None:
    # a live query is not counted (the count endpoint is the materialized one); its filter keeps
    # an unknown share of 337 million rows, so it runs, while a live full scan is refused
    eng = Engine(big)
    ts = "AT TIMESTAMP '2030-01-01T00:00:00Z'"
    assert len(eng.execute(f"SELECT id FROM synapses WHERE pre_pt_root_id = 1001 {ts}").frame) > 0
    assert not any(r.count for r in big.requests)
    with pytest.raises(FetchLimitError) as info:
        eng.execute(f"SELECT id FROM synapses {ts}")
    assert f"about {MINNIE_SYNAPSES:,} rows" in info.value.message


def test_fed_calls_do_not_trip_the_guard(big) -> None:
    # the synapses get the cells' root ids as keys: how many rows that keeps is known only then
    eng = Engine(big)
    frame = eng.execute("SELECT s.id FROM cells c JOIN synapses s ON s.pre_pt_root_id = c.pt_root_id "
                        "WHERE c.cell_type = 'BC'").frame
    assert len(frame) > 0


def test_the_seed_page_passes_the_default_guard_at_minnie65_scale(demo_path) -> None:
    b = Counted(demo_path, {"synapses_pni_2": MINNIE_SYNAPSES})
    try:
        db = caveql.Connection(Engine(b), name="minnie65_demo")
        results = db.run_file(EXAMPLES / "seed.cql")
        assert len(results) == 11
        # only the two root-id lookups needed the service's count
        counts = [r for r in b.requests if r.count]
        assert len(counts) == 2 and all(r.table == "synapses_pni_2" for r in counts)
    finally:
        b.close()


def test_confirm_hook_decides(big) -> None:
    eng = Engine(big)
    asked: list[str] = []
    eng.confirm = lambda message: asked.append(message) or False
    with pytest.raises(FetchLimitError):
        eng.execute("SELECT id FROM synapses")
    assert len(asked) == 1 and f"exactly {MINNIE_SYNAPSES:,} rows" in asked[0]
    eng.confirm = lambda message: True
    assert len(eng.execute("SELECT id FROM synapses").frame) == 10


def test_explain_analyze_is_guarded_and_explain_says_so(big) -> None:
    eng = Engine(big)
    text = eng.explain("SELECT id FROM synapses")
    assert f"rows to fetch: exactly {MINNIE_SYNAPSES:,} (the table count)" in text
    assert f"requests: about {requests_for(MINNIE_SYNAPSES, 500_000):,}" in text
    assert "Fetch guard: over max_fetch_rows = 20,000,000: refused" in text
    narrowed = eng.explain("SELECT id FROM synapses WHERE pre_pt_root_id = 1001")
    assert "the service counts scan synapses first" in narrowed
    assert big.requests == []  # EXPLAIN sends nothing
    with pytest.raises(FetchLimitError):
        eng.explain("SELECT id FROM synapses", analyze=True)
    assert "Fetch guard" not in eng.explain("SELECT id FROM cells")


def test_subqueries_count_toward_the_limit(tiny_backend) -> None:
    eng = Engine(tiny_backend, max_fetch_rows=10)
    q = "SELECT id FROM synapses WHERE pre_pt_root_id IN (SELECT pt_root_id FROM cells)"
    eng.execute(q)  # 6 cells: within; the fed synapses call is not counted
    eng.max_fetch_rows = 5
    with pytest.raises(FetchLimitError) as info:
        eng.execute(q)
    assert "exactly 6 rows" in info.value.message


@pytest.mark.parametrize("value, shown", [("0", "0"), ("1000", "1,000"), ("NONE", "NONE (no limit)"),
                                          ("NULL", "NONE (no limit)"), ("off", "NONE (no limit)")])
def test_set_max_fetch_rows(tiny_backend, value, shown) -> None:
    eng = Engine(tiny_backend)
    assert eng.execute(f"SET max_fetch_rows = {value}").message == f"max_fetch_rows = {shown}"
    assert eng.params == {}  # a setting, not a :parameter


@pytest.mark.parametrize("value", ["-1", "1.5", "'many'", "TRUE", "(1, 2)"])
def test_set_max_fetch_rows_rejects_bad_values(tiny_backend, value) -> None:
    eng = Engine(tiny_backend)
    with pytest.raises(ConfigError) as info:
        eng.execute(f"SET max_fetch_rows = {value}")
    assert "max_fetch_rows takes a whole number of rows" in info.value.message
    assert info.value.span is not None and info.value.span.column == len("SET max_fetch_rows = ") + 1
    assert eng.max_fetch_rows == DEFAULT_MAX_FETCH_ROWS


def test_the_default_leaves_the_demo_alone(demo_backend) -> None:
    # the demo's biggest table fetched whole stays below the default
    eng = Engine(demo_backend)
    assert eng.physical_plan("SELECT * FROM synapses_pni_2").fetch_total().rows < DEFAULT_MAX_FETCH_ROWS
    assert "Fetch guard" not in eng.explain("SELECT post_pt_root_id, COUNT(*) FROM synapses_pni_2 GROUP BY 1")


# -- the API, the CLI and the REPL --------------------------------------------------------------
def test_connect_max_fetch_rows(tiny_datastack) -> None:
    with caveql.connect(path=tiny_datastack) as db:
        assert db.max_fetch_rows == DEFAULT_MAX_FETCH_ROWS
    with caveql.connect(path=tiny_datastack, max_fetch_rows=3) as db:
        with pytest.raises(FetchLimitError):
            db.query("SELECT id FROM cells")
        db.max_fetch_rows = None
        assert len(db.query("SELECT id FROM cells")) == 6
        with pytest.raises(ConfigError):
            db.max_fetch_rows = -5
    with pytest.raises(ConfigError):
        caveql.connect(path=tiny_datastack, max_fetch_rows="lots")  # type: ignore[arg-type]
    with caveql.connect(path=tiny_datastack, max_fetch_rows=None) as db:
        assert db.max_fetch_rows is None


def test_cli_refuses_and_yes_goes_ahead(tiny_datastack, capsys) -> None:
    script = "SET max_fetch_rows = 3; SELECT id FROM cells"
    assert main(["--path", str(tiny_datastack), "-c", script]) == 1
    err = capsys.readouterr().err
    assert "error[CQL032]" in err and "run caveql with --yes" in err and "max_fetch_rows=None" not in err
    # --yes turns the guard off for the connection (a SET in the script still applies after it)
    assert main(["--path", str(tiny_datastack), "--yes", "-c", "SELECT id FROM cells"]) == 0
    from caveql.repl.cli import _connection_factory, build_parser
    from caveql.repl.config import load_config

    args = build_parser().parse_args(["--path", str(tiny_datastack), "--yes"])
    conn = _connection_factory(args, load_config())()
    try:
        assert conn.max_fetch_rows is None
    finally:
        conn.close()


@pytest.mark.parametrize("answer, ran", [("y\n", True), ("n\n", False), ("\n", False), ("", False)])
def test_repl_asks(tiny_datastack, monkeypatch, answer, ran) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(answer))
    s = Session(lambda: caveql.connect(path=tiny_datastack, max_fetch_rows=3),
                out=io.StringIO(), err=io.StringIO(), interactive=True, fmt="csv")
    try:
        assert s.run("SELECT id FROM cells", cancellable=True) is ran
        err = s.err.getvalue()
        assert "would fetch exactly 6 rows" in err
        assert ("6\n" in s.out.getvalue()) is ran
        if not ran:
            assert "CQL032" in err
    finally:
        s.close()


def test_non_interactive_session_does_not_ask(tiny_datastack, monkeypatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    s = Session(lambda: caveql.connect(path=tiny_datastack, max_fetch_rows=3),
                out=io.StringIO(), err=io.StringIO(), interactive=False)
    try:
        assert s.run("SELECT id FROM cells", cancellable=True) is False
        assert "CQL032" in s.err.getvalue() and "[y/N]" not in s.err.getvalue()
    finally:
        s.close()


# -- EXPLAIN's figures are facts ------------------------------------------------------------------
def _bounds_hold(eng: Engine, text: str, params: dict) -> int:
    """Run the statement; every call's fetched rows within its EXPLAIN figure. Calls checked."""
    p = eng.physical_plan(text, params)
    _frame, _arrow, stats = execute_arrow(p, eng.backend, keep_arrow=False, analyze=True)
    p = stats.get("plan") or p
    checked = 0

    def walk(plan, st) -> None:
        nonlocal checked
        for i, sp in enumerate(plan.subplans):
            walk(sp, st["subplans"][i])
        for c in plan.calls:
            f = c.fetch
            got = st["calls"][c.alias]["rows"]
            assert f is not None, c.alias
            if f.rows is not None and not f.about:
                if f.exact:
                    assert got == f.rows, (text, c.alias, f)
                else:
                    assert got <= f.rows, (text, c.alias, f)
                checked += 1

    walk(p, stats)
    return checked


def test_every_golden_plans_figures_hold(request, tiny_backend, capped_backend) -> None:
    from tests.engine.test_golden_plans import golden_engine

    checked = 0
    for path in sorted(PLANS.glob("*.cql")):
        text = path.read_text()
        eng, params = golden_engine(text, request, tiny_backend, capped_backend)
        eng.max_fetch_rows = None
        checked += _bounds_hold(eng, text, params)
    assert checked > 100


@pytest.mark.parametrize("q", [
    # the tester's: a root id with 1,498 synapses was "estimated rows: 20"
    "SELECT * FROM synapses_pni_2 WHERE pre_pt_root_id = 864691135808473885",
    "SELECT pt_position, pt_root_id FROM nucleus_detection_v0 ORDER BY pt_root_id LIMIT 10",
    "SELECT id FROM nucleus_detection_v0 WHERE id BETWEEN 1000 AND 2000",
    ("SELECT s.id FROM aibs_soma_nuc_metamodel_preds_v117 c JOIN synapses_pni_2 s "
     "ON s.pre_pt_root_id = c.pt_root_id WHERE c.cell_type = 'BC'"),
])
def test_demo_figures_hold(demo_backend, q) -> None:
    assert _bounds_hold(Engine(demo_backend), q, {}) >= 1


@pytest.mark.parametrize("cap", [200_000, 500_000])
def test_the_requests_figure_is_near_what_a_split_takes(demo_path, cap) -> None:
    # the demo's 2,000,000 synapses fetched whole by a backend capping answers at ``cap`` rows
    b = LocalBackend(demo_path, row_cap=cap)
    try:
        eng = Engine(b)
        p = eng.physical_plan("SELECT id, size FROM synapses_pni_2")
        _frame, _arrow, stats = execute_arrow(p, b, keep_arrow=False, analyze=True)
        (call,) = p.calls
        actual = stats["calls"][call.alias]["requests"]
        assert call.fetch is not None and call.fetch.requests is not None
        assert abs(call.fetch.requests - actual) <= max(4, actual // 4), (call.fetch.requests, actual)
    finally:
        b.close()


def test_no_guessed_figures_in_explain(demo_backend) -> None:
    text = Engine(demo_backend).explain(
        "SELECT * FROM synapses_pni_2 WHERE pre_pt_root_id = 864691135808473885")
    assert "estimated" not in text
    assert re.search(r"rows to fetch: at most 2,000,000 \(the table count; its filters keep an unknown "
                     r"share\)", text)


# -- the estimate module --------------------------------------------------------------------------
def _f(filters, count=1_000, **kw):
    kw = {"id_column": ("t", "id"), "limit": None, "row_cap": 100, "max_in_batch": 10, **kw}
    return call_fetch(filters, count=count, **kw)


def test_call_fetch_bounds() -> None:
    assert (_f([]).rows, _f([]).exact) == (1_000, True)
    assert _f([("in", "t", "id", (1, 2, 2, 3))]).rows == 3
    assert _f([("greater_equal", "t", "id", 10), ("less", "t", "id", 20)]).rows == 10
    assert _f([("greater", "t", "id", 10.5), ("less_equal", "t", "id", 12.5)]).rows == 2
    one_sided = _f([("greater", "t", "id", 10)])
    assert (one_sided.rows, one_sided.narrowed) == (1_000, True)
    assert _f([("equal", "t", "root", 5)], limit=7).rows == 7
    other = _f([("equal", "u", "id", 5)])  # an id of another table (a merged reference's target)
    assert (other.rows, other.narrowed) == (1_000, True)
    assert _f([], count=None).rows is None
    assert _f([], count=None, limit=4).rows == 4
    counted = _f([("in", "t", "root", tuple(range(25)))], counted=True)
    assert (counted.rows, counted.requests) == (3, 3)  # one count per IN batch
    fed = _f([], fed=True)
    assert (fed.rows, fed.exact, fed.requests) == (1_000, False, None)
    live = _f([], count_is="about")
    assert live.about and not live.exact and live.describe().startswith("about 1,000")
    assert not _f([], count_is="bound").exact


def test_total() -> None:
    t = total([("a", Fetch(10, True, "the table count", requests=1)),
               ("b", Fetch(5, False, "the table count", narrowed=True, requests=1)),
               ("c", Fetch(1_000, False, "the table count", fed=True))])
    assert (t.rows, t.exact, t.narrowed, t.fed, t.requests) == (15, False, ("b",), ("c",), 3)
    assert t.describe().startswith("at most 15 rows in at least 3 requests")
