"""Session and backslash commands: every command of the registry, variables, output files."""

from __future__ import annotations

import io
import os

import pandas as pd
import pytest

from caveql.repl import commands
from caveql.repl.formatting import render
from caveql.repl.session import Session


@pytest.fixture
def session(opener) -> Session:
    return Session(opener, out=io.StringIO(), err=io.StringIO())


def out(s: Session) -> str:
    text = s.out.getvalue()
    s.out.truncate(0)
    s.out.seek(0)
    return text


def err(s: Session) -> str:
    text = s.err.getvalue()
    s.err.truncate(0)
    s.err.seek(0)
    return text


def test_every_registered_command_is_tested() -> None:
    tested = {"\\dt", "\\d", "\\dv", "\\values", "\\timing", "\\x", "\\T", "\\o", "\\pager", "\\last", "\\i",
              "\\e", "\\set", "\\unset", "\\explain", "\\conninfo", "\\?", "\\q", "\\s",
              "\\c",  # \c: tests/api/test_connect_by_name.py
              "\\plot",  # \plot: tests/plot/test_plot.py
              "\\ng",  # \ng: tests/api/test_neuroglancer.py
              "\\table", "\\tables"}  # tests/userdata/test_surfaces.py
    assert set(commands.REGISTRY) == tested


def test_dt_d_dv(session: Session) -> None:
    assert session.run("\\dt") and "synapses" in out(session)
    assert session.run("\\d cells") and "cell_type" in out(session)
    assert not session.run("\\d cels")
    assert "did you mean 'cells'" in err(session)
    assert session.run("\\dv")
    assert session.run("\\d") and "cells" in out(session)


def test_dt_takes_psql_patterns(session: Session, expected) -> None:
    tables = expected("SHOW TABLES")["table_name"].tolist()

    def listed(pattern: str) -> list[str]:
        assert session.run(f"\\dt {pattern}"), err(session)
        assert session.last_frame is not None
        names = session.last_frame["table_name"].tolist()
        shown = out(session)
        assert all(n in shown for n in names)
        return names

    assert listed("syn*") == [t for t in tables if t.startswith("syn")] != []
    assert listed("SYN*") == listed("syn*")  # unquoted letters are lower-cased, as in psql
    assert listed("cell?") == [t for t in tables if len(t) == 5 and t.startswith("cell")] != []
    assert listed("*s") == [t for t in tables if t.endswith("s")]
    assert listed("cells|nuclei") == [t for t in tables if t in ("cells", "nuclei")]
    assert listed("cell%") == [t for t in tables if t.startswith("cell")]  # LIKE's % too
    assert listed('"cell*"') == []  # quoted: literal text
    assert listed("cells") == ["cells"] and listed("cell") == []  # whole names
    assert not session.run("\\dt public.cells") and "no schemas" in err(session)
    assert not session.run("\\dt cell[") and "invalid pattern" in err(session)
    views = expected("SHOW VIEWS").iloc[:, 0].tolist()
    assert session.run("\\dv *") and session.last_frame.iloc[:, 0].tolist() == views
    assert session.run("\\dv nothing_like_this*") and len(session.last_frame) == 0


def test_values(session: Session) -> None:
    assert session.run("\\values cells.cell_type")
    assert set(out(session).split()) == {"23P", "4P", "BC", "NULL"}
    assert session.run("\\values cell_types.cell_type")  # a reference table's own column
    assert "BC" in out(session)
    assert not session.run("\\values cells") and "usage" in err(session)
    assert not session.run("\\values cells.cel_type") and "did you mean 'cell_type'" in err(session)


def test_timing(session: Session) -> None:
    assert session.run("\\timing") and session.timing
    session.run("SELECT id FROM cells")
    assert "Time:" in err(session)
    assert session.run("\\timing off") and not session.timing
    assert not session.run("\\timing maybe")


@pytest.mark.parametrize("cancellable", [False, True])
def test_timing_leaves_out_the_time_spent_reading_the_pager(session: Session, monkeypatch,
                                                             cancellable: bool) -> None:
    import re
    import time

    reading = 1.5
    assert session.run("SELECT id FROM cells")  # the connection is open and warm: time queries only
    emit = session._emit

    def slow_pager(text: str) -> None:  # the reader takes a while before quitting the pager
        emit(text)
        time.sleep(reading)

    monkeypatch.setattr(session, "_emit", slow_pager)
    session.run("\\timing on")
    assert session.run("SELECT id FROM cells; SELECT cell_type FROM cells", cancellable=cancellable)
    times = [float(t) for t in re.findall(r"Time: ([0-9.]+)s", err(session))]
    assert len(times) == 2  # one per statement, as psql
    assert all(t < reading for t in times), times


def test_expanded(session: Session) -> None:
    assert session.run("\\x on") and session.expanded == "on"
    session.run("SELECT id, cell_type FROM cells")
    assert "-[ RECORD 6 ]" in out(session)
    assert session.run("\\x auto") and session.expanded == "auto"
    session.run("SELECT id FROM cells")
    assert "┌" in out(session)
    assert session.run("\\x") and session.expanded == "on"
    assert session.run("\\x") and session.expanded == "off"


def test_long_values_use_the_terminal_width_and_show_whole_in_last_and_x(session: Session) -> None:
    session.width = 160
    fits = "d" * 140  # with the id column: 152 characters, under the terminal's 160
    assert session.run(f"SELECT id, '{fits}' AS description FROM cells WHERE id = 1")
    shown = out(session)
    assert fits in shown and "…" not in shown
    long = "".join(chr(ord("a") + i % 26) for i in range(300))
    assert session.run(f"SELECT id, '{long}' AS description FROM cells WHERE id = 1")
    lines = out(session).splitlines()
    assert max(len(line) for line in lines) == 160  # cut, to use the whole width
    assert long not in "".join(lines) and long[:140] in "".join(lines)
    assert session.run("\\last") and long in out(session)  # \last: in full
    assert session.run("\\x on") and session.run("\\last") and f"description | {long}" in out(session)
    assert session.run(f"SELECT id, '{long}' AS description FROM cells WHERE id = 1")
    assert f"description | {long}" in out(session)  # \x: one block per row, values whole


@pytest.mark.parametrize("setting", ["\\x on", "\\x auto", "\\T vertical"])
def test_vertical_output_keeps_the_row_limit_and_says_what_is_left_out(session: Session, expected,
                                                                        setting: str) -> None:
    query = "SELECT id, cell_type, pt_root_id FROM cells"
    n = len(expected(query))
    session.max_rows = 4
    session.width = 30  # too narrow for the table: \x auto goes vertical
    assert n > session.max_rows and session.run(setting)
    out(session)
    assert session.run(query)
    shown = out(session)
    assert shown.count("-[ RECORD ") == session.max_rows
    assert f"-[ RECORD {n} ]" in shown and f"{n - session.max_rows} rows not shown" in shown
    assert f"({n} rows, {session.max_rows} shown)" in shown
    assert session.run("\\last") and out(session).count("-[ RECORD ") == n  # \last: every row


def test_format_switch_and_unknown(session: Session) -> None:
    assert session.run("\\T csv")
    session.run("SELECT id FROM cells WHERE id <= 3")
    assert out(session) == "id\n1\n2\n3\n"
    assert not session.run("\\T xml") and "formats:" in err(session)
    assert session.run(".mode json") and session.format == "json"


def test_output_file(session: Session, tmp_path) -> None:
    path = tmp_path / "r.parquet"
    assert session.run(f"\\o {path}")
    session.run("SELECT * FROM synapses")
    assert out(session) == ""
    assert pd.read_parquet(path)["pre_pt_root_id"].tolist() == session.last_frame["pre_pt_root_id"].tolist()
    assert session.run("\\o") and session.output_file is None


def test_last_shows_full(session: Session) -> None:
    assert not session.run("\\last")
    session.max_rows = 4
    session.run("SELECT id FROM synapses")
    first = out(session)
    assert "10 rows (4 shown)" in first
    assert session.run("\\last")
    full = out(session)
    assert "shown" not in full and full.count("│") > first.count("│")


def test_pager_setting(session: Session) -> None:
    assert session.run("\\pager on") and session.pager == "on"
    assert session.run("\\pager off") and session.pager == "off"
    assert not session.run("\\pager sometimes")


def test_include_file_with_params(session: Session, tmp_path) -> None:
    f = tmp_path / "q.cql"
    f.write_text("-- param: ids list[int] = (1)\nSELECT id FROM cells WHERE id IN :ids;")
    session.run("\\T csv")
    assert session.run(f"\\i {f} ids=4,5")
    assert out(session) == "id\n4\n5\n"
    assert session.run(f"\\i '{f}'") and out(session) == "id\n1\n"
    assert not session.run("\\i") and "usage" in err(session)
    assert not session.run(f"\\i {f} bad") and "name=value" in err(session)


def test_edit_uses_editor(session: Session, tmp_path, monkeypatch) -> None:
    script = tmp_path / "ed.sh"
    script.write_text("#!/bin/sh\necho 'SELECT id FROM cells;' > \"$1\"\n")
    script.chmod(0o755)
    monkeypatch.setenv("VISUAL", str(script))
    assert session.run("\\e")
    assert session.next_input == "SELECT id FROM cells;"
    monkeypatch.setenv("VISUAL", "/nonexistent/editor")
    assert not session.run("\\e") and "cannot run editor" in err(session)


def test_set_and_use_variables(session: Session) -> None:
    assert session.run("\\set ids (1, 2)")
    assert session.run("\\set name 'BC'")
    assert session.run("\\set")
    assert out(session) == "ids = (1, 2)\nname = 'BC'\n"
    session.run("\\T csv")
    assert session.run("SELECT id FROM cells WHERE id IN :ids")
    assert out(session) == "id\n1\n2\n"
    assert session.run("\\unset ids") and "ids" not in session.variables
    assert not session.run("\\unset ids")
    assert not session.run("\\set 1x 3")


def test_explain_command(session: Session) -> None:
    plan = session.connection.explain("SELECT id FROM cells")
    assert session.run("\\explain SELECT id FROM cells")
    assert out(session) == plan + "\n"
    assert session.run("\\explain analyze SELECT id FROM cells")
    assert "rows" in out(session)
    session.run("SELECT id FROM cells")
    out(session)
    assert session.run("\\explain")  # the last query
    assert out(session) == plan + "\n"
    assert not Session(lambda: None, out=io.StringIO(), err=io.StringIO()).run("\\explain")


def test_conninfo_help_quit(session: Session) -> None:
    assert session.run("\\conninfo") and "datastack:  tiny" in out(session)
    assert session.run("\\?")
    text = out(session)
    for cmd in commands.REGISTRY.values():
        assert cmd.usage in text
    assert session.run("\\q") and session.quit
    for word in ("quit", "exit", "\\quit"):
        s = Session(lambda: None, out=io.StringIO(), err=io.StringIO())
        assert s.run(word) and s.quit


def test_unknown_command_suggests(session: Session) -> None:
    assert not session.run("\\timming")
    assert "did you mean \\timing" in err(session)


def test_messages_and_results(session: Session) -> None:
    assert session.run("SET version = 1; SELECT id FROM cells")
    assert err(session) == "version = 1\n"
    assert out(session) == render(session.last_frame, "table", max_width=120) + "\n"


def test_ctrl_c_cancel_keeps_session(session: Session, monkeypatch, request) -> None:
    import _thread
    import signal
    import time

    from caveql.backends.local import LocalBackend

    session.run("SET version = 1")
    real = LocalBackend.query
    slow = {"on": True}

    def query(self, request):  # type: ignore[no-untyped-def]
        if slow["on"]:
            # Ctrl-C while the call runs (from here, so a loaded machine cannot reorder it)
            _thread.interrupt_main()
            time.sleep(10.0)
        return real(self, request)

    monkeypatch.setattr(LocalBackend, "query", query)
    # Ctrl-C means Python's default SIGINT handler (KeyboardInterrupt); another test in the same
    # process (an IPython shell, a server) may have left its own handler installed
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, previous))
    session.run("SET lim = 2")
    session.cancel_grace = 0.5  # the sleep above cannot be interrupted: fall back soon
    first = session.connection
    t0 = time.perf_counter()
    assert not session.run("SELECT id FROM cells", cancellable=True)
    assert time.perf_counter() - t0 < 8.0 and "Cancelled." in err(session)  # before the call ends
    slow["on"] = False
    assert session.run("SHOW DATASTACK", cancellable=True)
    assert session.connection is not first  # a fresh connection with the same settings
    assert session.connection.version == 1
    assert session.connection.engine.params == {"lim": 2}  # and the same SET parameters


def test_ctrl_c_waits_as_long_as_the_connection_does(session: Session) -> None:
    # one grace for a cancelled statement, the connection's, not a second number in the REPL
    from caveql.api import CANCEL_GRACE

    assert session.cancel_grace == CANCEL_GRACE


def test_ctrl_c_cancels_the_statement_and_keeps_the_connection(session: Session, opener, monkeypatch,
                                                                 request) -> None:
    """Ctrl-C during a statement that can be interrupted (DuckDB's local step of a 12-way self-join
    that would never end): the statement stops, and the same connection, with its SET parameter
    and settings, answers the next query."""
    import _thread
    import signal
    import time

    from caveql.backends.local import LocalBackend

    aliases = [f"s{i}" for i in range(12)]
    endless = "SELECT COUNT(*) AS n FROM synapses s0 " + " ".join(
        f"JOIN synapses {b} ON {b}.id <> {a}.id" for a, b in zip(aliases, aliases[1:], strict=False))
    assert session.run("SET version = 1") and session.run("SET lim = 2")
    err(session)
    real = LocalBackend.query
    interrupt = {"on": True}

    def query(self, req):  # type: ignore[no-untyped-def]
        if interrupt["on"]:
            interrupt["on"] = False
            _thread.interrupt_main()  # Ctrl-C while the statement runs (its first call)
        return real(self, req)

    monkeypatch.setattr(LocalBackend, "query", query)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, previous))
    first = session.connection
    t0 = time.perf_counter()
    assert not session.run(endless, cancellable=True)
    assert time.perf_counter() - t0 < 30.0 and "Cancelled." in err(session)
    assert session.connection is first  # kept: the statement stopped
    assert session.connection.engine.cancel() is False  # and nothing runs on it any more
    assert session.run("SELECT id FROM synapses ORDER BY id LIMIT :lim", cancellable=True)
    with opener() as db:
        want = db.query("SET version = 1; SELECT id FROM synapses ORDER BY id LIMIT 2")
    assert session.last_frame.equals(want)
    assert session.connection.version == 1


def test_ctrl_c_in_explain_analyze_keeps_the_repl(session: Session, monkeypatch, request) -> None:
    """A backslash command runs its statement from the main thread: Ctrl-C cancels it through the
    connection and the REPL goes on (it used to end the REPL with a KeyboardInterrupt)."""
    import _thread
    import signal

    from caveql.backends.local import LocalBackend

    aliases = [f"s{i}" for i in range(12)]
    endless = "SELECT COUNT(*) AS n FROM synapses s0 " + " ".join(
        f"JOIN synapses {b} ON {b}.id <> {a}.id" for a, b in zip(aliases, aliases[1:], strict=False))
    assert session.run("SET lim = 1")
    err(session)
    real = LocalBackend.query
    armed = {"on": True}

    def query(self, req):  # type: ignore[no-untyped-def]
        if armed["on"]:
            armed["on"] = False
            _thread.interrupt_main()
        return real(self, req)

    monkeypatch.setattr(LocalBackend, "query", query)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, previous))
    first = session.connection
    assert not session.run("\\explain analyze " + endless, cancellable=True)
    assert "Cancelled." in err(session)
    assert session.connection is first and first.engine.cancel() is False
    assert session.run("SELECT id FROM cells ORDER BY id LIMIT :lim", cancellable=True)
    assert len(session.last_frame) == 1


def test_docs_repl_md_lists_every_command() -> None:
    here = os.path.dirname(__file__)
    with open(os.path.join(here, "..", "..", "docs", "repl.md"), encoding="utf-8") as fh:
        text = fh.read()
    assert commands.help_table() in text, "regenerate: python -m caveql.repl.commands > table"


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_automatic_pager_for_tall_output(opener, tmp_path, monkeypatch) -> None:
    paged = tmp_path / "paged.txt"
    monkeypatch.setenv("CAVEQL_PAGER", f"cat > {paged}")
    monkeypatch.setattr("shutil.get_terminal_size", lambda fallback=None: os.terminal_size((100, 12)))
    s = Session(opener, out=_Tty(), err=io.StringIO(), interactive=True)
    s.run("SELECT id FROM cells WHERE id = 1")  # short: straight to the screen
    assert "1 row" in s.out.getvalue() and not paged.exists()
    s.run("SELECT id FROM synapses")  # taller than 12 lines: through the pager
    assert "10 rows" in paged.read_text() and "10 rows" not in s.out.getvalue()
    s.run("\\pager off")
    s.run("SELECT id FROM synapses")
    assert "10 rows" in s.out.getvalue()


def test_history_listing(session: Session, tmp_path) -> None:
    from prompt_toolkit.history import FileHistory

    assert session.run("\\s") and "No history yet." in err(session)
    session.history_file = str(tmp_path / "h")
    hist = FileHistory(session.history_file)
    for entry in ("SHOW TABLES;", "SELECT id\n  FROM cells;", "\\dt"):
        hist.store_string(entry)
    assert session.run("\\s")
    assert out(session) == "1  SHOW TABLES;\n2  SELECT id\n     FROM cells;\n3  \\dt\n"
    assert session.run("\\s 1") and out(session) == "1  \\dt\n"
    assert not session.run("\\s many")


def test_pasted_command_then_statements(session: Session) -> None:
    assert session.run("\\T csv\nSELECT id FROM cells WHERE id = 2;")
    assert out(session) == "id\n2\n"
    assert session.run("\\q\nSELECT 1 FROM cells;") and session.quit


def test_any_input_gives_a_result_or_a_rendered_error(opener) -> None:
    """Whatever is typed, the session answers or renders an error: never a traceback."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    words = ["SELECT", "FROM", "WHERE", "cells", "synapses", "id", "cell_type", "=", "'BC'", "IN", "(",
             ")", ",", "1", "1001", ":p", "*", "COUNT(*)", "GROUP BY", "ORDER BY", "LIMIT", "AT VERSION",
             "JOIN", "ON", ";", "\\d", "\\x", "\\T", "csv", "\\set", "p", "SHOW", "TABLES", "DESCRIBE",
             "SET", "version", "EXPLAIN", "pt_position", "WITHIN", "BOX", "-", "AND", "NOT", "NULL"]
    s = Session(opener, out=io.StringIO(), err=io.StringIO())

    @settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)
    @given(st.lists(st.sampled_from(words), min_size=1, max_size=14))
    def check(parts: list[str]) -> None:
        s.format = "table"
        assert s.run(" ".join(parts)) in (True, False)

    try:
        check()
    finally:
        s.close()


# -- long scripts (issue 16, item 13) --------------------------------------------------------------
LONG_STATEMENT = "SELECT id FROM cells WHERE id = 1;\n"


def test_ctrl_c_while_a_long_script_is_parsed_keeps_the_repl(session: Session, request) -> None:
    """Ctrl-C two tenths of a second into a 100,000-statement script: the script was parsed in the
    main thread, where the KeyboardInterrupt escaped Session.run (out of the REPL)."""
    import _thread
    import signal
    import threading
    import time

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, previous))
    assert session.run("SET lim = 1")
    first = session.connection
    timer = threading.Timer(0.2, _thread.interrupt_main)
    t0 = time.perf_counter()
    timer.start()
    assert not session.run(LONG_STATEMENT * 100_000, cancellable=True)
    timer.join()
    assert time.perf_counter() - t0 < 3.0 and "Cancelled." in err(session)
    assert session.connection is first and first.engine.cancel() is False  # stopped, kept
    assert session.run("SELECT id FROM cells ORDER BY id LIMIT :lim", cancellable=True)
    assert session.last_frame.id.tolist() == [1]


def test_a_script_shows_each_result_in_the_main_thread_as_it_comes(session: Session, expected,
                                                                   monkeypatch) -> None:
    import threading

    shown: list[tuple[object, int]] = []
    real = Session.show_result

    def show_result(self: Session, result: object) -> None:
        shown.append((threading.current_thread(), len(result.frame)))  # type: ignore[attr-defined]
        real(self, result)  # type: ignore[arg-type]

    monkeypatch.setattr(Session, "show_result", show_result)
    text = "SELECT id FROM cells WHERE id = 1; SELECT id FROM cells WHERE id < 3; SELECT id FROM cells"
    assert session.run(text, cancellable=True)
    sizes = [len(expected(s)) for s in text.split(";")]
    assert shown == [(threading.main_thread(), n) for n in sizes]


def test_an_output_error_stops_a_cancellable_script(session: Session, tmp_path, monkeypatch) -> None:
    from caveql.errors import ConfigError

    calls: list[int] = []

    def broken(self: Session, result: object) -> None:
        calls.append(1)
        raise ConfigError("cannot write out.csv: disk full")

    monkeypatch.setattr(Session, "show_result", broken)
    assert not session.run(LONG_STATEMENT * 5, cancellable=True)
    assert calls == [1] and "disk full" in err(session)  # the rest of the script did not run
    assert session.connection.engine.cancel() is False


def test_a_long_script_is_not_copied_per_statement(session: Session) -> None:
    """Each statement of a script ran on a copy of the whole script with the others blanked out:
    O(statements x length) memory and time (1,500 statements: ~80 MB)."""
    import tracemalloc

    text = LONG_STATEMENT * 1500
    assert session.run("SHOW TABLES")  # connected, catalog loaded
    tracemalloc.start()
    try:
        assert session.run_cql(text)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 30_000_000, peak
    assert out(session).count("1 row") == 1500
