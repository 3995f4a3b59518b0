"""The REPL through prompt_toolkit's pipe input: multi-line entry, commands, errors, completion."""

from __future__ import annotations

import io
import threading
import time

import pytest
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from caveql.repl.app import history_path, input_is_complete, run_repl
from caveql.repl.session import Session


def drive(session: Session, chunks: list[str], history: str = "") -> None:
    """Type ``chunks`` into the REPL one after another (a pause between them lets completion and
    queries finish, as a person typing would), then end the input (EOF, like Ctrl-D)."""

    def typist(inp: object) -> None:
        session.catalog_ready.wait(30)  # a person looks at the prompt before pressing Tab
        for chunk in chunks:
            time.sleep(0.15)
            inp.send_text(chunk)  # type: ignore[attr-defined]
            if "\t" in chunk:
                time.sleep(1.0)  # completion runs asynchronously (values may need a backend call)
        time.sleep(0.2)
        inp.close()  # type: ignore[attr-defined]

    with create_pipe_input() as inp:
        t = threading.Thread(target=typist, args=(inp,))
        t.start()
        assert run_repl(session, input=inp, output=DummyOutput(), history=history) == 0
        t.join()


def repl(keys: str | list[str], tmp_path, opener, **kw: object) -> tuple[Session, str, str]:
    session = Session(opener, out=io.StringIO(), err=io.StringIO(), interactive=True)
    session.pager = "off"
    for k, v in kw.items():
        setattr(session, k, v)
    drive(session, [keys] if isinstance(keys, str) else keys, str(tmp_path / "h"))
    return session, session.out.getvalue(), session.err.getvalue()


def test_multiline_statement_runs_on_semicolon(tmp_path, opener) -> None:
    s, out, _ = repl("SELECT id\r  FROM cells\r;\r", tmp_path, opener)
    assert "6 rows" in out and s.last_query == "SELECT id\n  FROM cells\n;"
    assert (tmp_path / "h").read_text().count("FROM cells") == 1


def test_enter_without_semicolon_continues(tmp_path, opener) -> None:
    s, out, _ = repl("SELECT id FROM cells\r", tmp_path, opener)
    assert s.last_query is None and "rows" not in out


def test_escape_enter_forces_run(tmp_path, opener) -> None:
    s, out, _ = repl("SELECT id FROM cells\x1b\r", tmp_path, opener)
    assert "6 rows" in out


def test_semicolon_inside_string_does_not_run(tmp_path, opener) -> None:
    s, out, _ = repl(["SELECT id FROM cells WHERE cell_type = 'a;\r", "';\r"], tmp_path, opener)
    assert s.last_query == "SELECT id FROM cells WHERE cell_type = 'a;\n';"


def test_backslash_commands_and_variables(tmp_path, opener) -> None:
    keys = ["\\T csv\r", "\\set ids (1,2)\r", "SELECT id FROM cells WHERE id IN :ids;\r"]
    s, out, _ = repl(keys, tmp_path, opener)
    assert "id\n1\n2\n" in out


def test_quit_command(tmp_path, opener) -> None:
    s, out, _ = repl(["\\q\r", "SELECT id FROM cells;\r"], tmp_path, opener)
    assert s.quit and s.last_query is None


def test_error_brings_input_back_with_cursor_on_it(tmp_path, opener) -> None:
    # the failed input comes back: Esc-Enter re-runs the same text
    s, _, err = repl(["SELECT nope FROM cells;\r", "\x1b\r"], tmp_path, opener)
    assert err.count("unknown column 'nope'") == 2
    assert "^^^^" in err


def test_error_cursor_position(tmp_path, opener) -> None:
    # the cursor sits on 'nope' (offset 7): four Deletes and typing 'id' fix the column name
    keys = ["SELECT nope FROM cells;\r", "\x1b[3~" * 4 + "id", "\x1b\r"]
    s, out, err = repl(keys, tmp_path, opener)
    assert s.last_query == "SELECT id FROM cells;" and "6 rows" in out


def test_ctrl_c_at_prompt_clears(tmp_path, opener) -> None:
    s, out, _ = repl(["SELECT garbage", "\x03", "SELECT id FROM cells;\r"], tmp_path, opener)
    assert s.last_query == "SELECT id FROM cells;"


def test_tab_completion_in_the_prompt(tmp_path, opener) -> None:
    s, out, _ = repl(["SELECT id FROM syna", "\t", ";\r"], tmp_path, opener)
    assert s.last_query == "SELECT id FROM synapses;" and "10 rows" in out


def test_tab_completion_of_values(tmp_path, opener) -> None:
    s, out, _ = repl(["SELECT id FROM cells WHERE cell_type = 'B", "\t", ";\r"], tmp_path, opener)
    assert s.last_query == "SELECT id FROM cells WHERE cell_type = 'BC';" and "2 rows" in out


def test_input_is_complete() -> None:
    assert input_is_complete("")
    assert input_is_complete("  \\dt  ")
    assert input_is_complete("quit")
    assert not input_is_complete("SELECT 1 FROM t")
    assert not input_is_complete("SELECT * FROM t WHERE x = 'a;")
    assert not input_is_complete("SELECT * FROM t /* ; */")
    assert input_is_complete("SELECT * FROM t; SELECT 2 FROM u;")
    assert input_is_complete("SELEC 1;")  # an error runs (and is shown) rather than waiting


def test_an_unclosed_block_comment_waits_for_more_input_like_an_unclosed_string(tmp_path, opener) -> None:
    """`SELECT id /* FROM;` ran at Enter and failed as a syntax error (`/` `*`), whereas an unclosed
    string asked for more input."""
    assert not input_is_complete("SELECT id /* FROM;")
    assert not input_is_complete("SELECT id FROM cells WHERE id = 1 /* AND x = 2;")
    assert not input_is_complete("SELECT /* the columns;")
    assert input_is_complete("SELECT id /* FROM; */ FROM cells;")
    s, out, err = repl(["SELECT id /* FROM;\r", " */ FROM cells;\r"], tmp_path, opener)
    assert s.last_query == "SELECT id /* FROM;\n */ FROM cells;"
    assert "6 rows" in out and "error" not in err


def test_history_per_datastack(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("CAVEQL_HISTORY_DIR", str(tmp_path))
    assert history_path("minnie65_public") == str(tmp_path / "minnie65_public.history")
    assert history_path("a/b") != history_path("a_c")


def test_ctrl_r_searches_history(tmp_path, opener) -> None:
    hist = tmp_path / "h"
    repl(["SELECT id FROM cells;\r", "\\T csv\r"], tmp_path, opener)
    s, out, _ = repl(["\x12", "FROM ce", "\r", "\r"], tmp_path, opener)
    assert hist.exists() and s.last_query == "SELECT id FROM cells;"


@pytest.mark.parametrize("mode", ["vi", "emacs"])
def test_editing_modes(tmp_path, opener, mode: str) -> None:
    from caveql.repl.config import Config

    # vi: Esc leaves insert mode, "0" goes to the line start, "i" inserts; emacs: Ctrl-A
    fix = ["\x1b", "0", "iSELECT "] if mode == "vi" else ["\x01", "SELECT "]
    s, out, _ = repl(["id FROM cells;", *fix, "\x1b\r"], tmp_path, opener,
                     config=Config(editing_mode=mode, history=False))
    assert s.last_query == "SELECT id FROM cells;"


@pytest.mark.parametrize("server, host", [("https://cave.example.org", "cave.example.org"),
                                          ("http://127.0.0.1:8080/", "127.0.0.1:8080")])
def test_a_service_connection_is_named_by_its_datastack(server: str, host: str) -> None:
    # --server/--datastack NAME: the prompt, the toolbar and \conninfo name the datastack
    # (the service's backend is called "http"); nothing here touches the network
    from caveql import connect
    from caveql.repl.app import _CatalogLoader, _prompt_text, _toolbar
    from caveql.repl.completion import CompletionCatalog

    session = Session(lambda: connect("minnie65_public", server=server, token="t" * 32, cache=False),
                      out=io.StringIO(), err=io.StringIO(), interactive=True)
    session.pager = "off"
    try:
        assert session.run("\\conninfo")
        info = session.out.getvalue()
        assert "datastack:  minnie65_public" in info and server.rstrip("/") in info
        assert _prompt_text(session) == "minnie65_public> "
        toolbar = _toolbar(session, _CatalogLoader(session, CompletionCatalog()), {"vi": False})()
        assert toolbar.startswith(f"minnie65_public @ {host}  ") and "http" not in toolbar.split("  ")[0]
    finally:
        session.close()
