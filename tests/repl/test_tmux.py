"""A real terminal: `caveql` runs in tmux, a query is typed with Tab completion, and the result is
read off the screen. tmux comes with `make test` (the Makefile installs it when missing)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid

import pytest

pytestmark = pytest.mark.tmux


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], check=True, capture_output=True, text=True).stdout


def type_text(name: str, text: str) -> None:
    """Type ``text`` literally; ';' goes as a hex key because tmux reads a ';' ending an argument
    as its own command separator."""
    for i, part in enumerate(text.split(";")):
        if i:
            tmux("send-keys", "-t", name, "-H", "3b")
        if part:
            tmux("send-keys", "-t", name, "-l", part)


def screen(name: str) -> str:
    return tmux("capture-pane", "-p", "-t", name)


def wait_for(name: str, predicate, what: str, timeout: float = 30.0) -> str:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    text = ""
    while time.monotonic() < end:
        text = screen(name)
        if predicate(text):
            return text
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; screen:\n{text}")


@pytest.fixture
def terminal(tiny_datastack, tmp_path, request):
    """caveql in a tmux terminal of 110 columns (``@pytest.mark.parametrize("terminal", [N],
    indirect=True)``: N columns)."""
    if shutil.which("tmux") is None:
        pytest.fail("tmux is not installed: `make test` installs it (apt-get install tmux)")
    name = f"caveql-{uuid.uuid4().hex[:8]}"
    # COLUMNS/LINES as a shell that exports them leaves them: stale; the terminal's size wins
    env = {"CAVEQL_CONFIG": str(tmp_path / "none.toml"), "CAVEQL_HISTORY_DIR": str(tmp_path),
           "TERM": "xterm-256color", "PAGER": "cat", "COLUMNS": "80", "LINES": "24"}
    exports = " ".join(f"{k}={v}" for k, v in env.items())
    cmd = f"env {exports} {sys.executable} -m caveql.repl.cli --path {tiny_datastack}"
    width = str(getattr(request, "param", 110))
    tmux("new-session", "-d", "-s", name, "-x", width, "-y", "40", cmd)
    try:
        yield name
    finally:
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)


def test_query_with_tab_completion_in_a_real_terminal(terminal: str, tmp_path) -> None:
    name = terminal
    wait_for(name, lambda s: "caveql>" in s and "tiny  [F4]" in s, "the prompt and the loaded catalog")
    type_text(name, "SELECT id, cell_type FROM cells WHERE cell_ty")
    tmux("send-keys", "-t", name, "Tab")
    wait_for(name, lambda s: "WHERE cell_type" in s, "the column completed")
    type_text(name, " = 'B")
    tmux("send-keys", "-t", name, "Tab")
    wait_for(name, lambda s: "= 'BC'" in s, "the cell type completed")
    type_text(name, ";")
    tmux("send-keys", "-t", name, "Enter")
    text = wait_for(name, lambda s: "2 rows" in s, "the result")
    rows = [ln for ln in text.splitlines() if ln.startswith("│") and " BC " in ln]
    assert [ln.split("│")[1].strip() for ln in rows] == ["2", "5"]
    # an error shows its caret, and the prompt stays
    tmux("send-keys", "-t", name, "C-c")
    type_text(name, "SELECT nope FROM cells;")
    tmux("send-keys", "-t", name, "Enter")
    text = wait_for(name, lambda s: "unknown column 'nope'" in s, "the error")
    assert "^^^^" in text
    tmux("send-keys", "-t", name, "C-c")
    type_text(name, "\\q")
    tmux("send-keys", "-t", name, "Enter")
    end = time.monotonic() + 10
    while time.monotonic() < end and subprocess.run(["tmux", "has-session", "-t", name],
                                                    capture_output=True).returncode == 0:
        time.sleep(0.1)
    assert subprocess.run(["tmux", "has-session", "-t", name], capture_output=True).returncode != 0
    assert os.listdir(tmp_path)  # the history file was written


def test_an_unclosed_comment_asks_for_more_input_in_a_real_terminal(terminal: str) -> None:
    """Enter inside an unclosed /* comment continues the statement (the `->` prompt), as inside an
    unclosed string; it used to run and fail with "expected an expression after `/`"."""
    name = terminal
    wait_for(name, lambda s: "caveql>" in s, "the prompt")
    type_text(name, "SELECT id, cell_type /* FROM;")
    tmux("send-keys", "-t", name, "Enter")
    text = wait_for(name, lambda s: "->" in s, "the continuation prompt")
    assert "error" not in text
    type_text(name, "*/ FROM cells WHERE id = 2;")
    tmux("send-keys", "-t", name, "Enter")
    text = wait_for(name, lambda s: "1 row" in s, "the result")
    assert "error" not in text
    rows = [ln for ln in text.splitlines() if ln.startswith("│") and " BC " in ln]
    assert [ln.split("│")[1].strip() for ln in rows] == ["2"]
    # an unclosed string behaves the same (the reference behaviour)
    type_text(name, "SELECT id FROM cells WHERE cell_type = 'B;")
    tmux("send-keys", "-t", name, "Enter")
    time.sleep(1.0)
    assert "error" not in screen(name)
    tmux("send-keys", "-t", name, "C-c")
    type_text(name, "\\q")
    tmux("send-keys", "-t", name, "Enter")


@pytest.mark.parametrize("terminal", [160], indirect=True)
def test_a_long_value_uses_the_terminal_width_and_x_shows_it_whole(terminal: str) -> None:
    """On a 160-column terminal a 140-character value is shown whole (cells used to be cut at
    ~60 characters whatever the width); a longer one is cut to the width, and \\x shows it whole."""
    name = terminal
    wait_for(name, lambda s: "caveql>" in s and "tiny  [F4]" in s, "the prompt and the loaded catalog")
    fits = "d" * 140
    type_text(name, f"SELECT id, '{fits}' AS description FROM cells WHERE id = 1;")
    tmux("send-keys", "-t", name, "Enter")
    text = wait_for(name, lambda s: "1 row" in s, "the result")
    assert any(ln.startswith("│") and f" {fits} " in ln for ln in text.splitlines()), text
    tmux("send-keys", "-t", name, "C-l")
    long = "".join(chr(ord("a") + i % 26) for i in range(200))
    type_text(name, f"SELECT id, '{long}' AS description FROM cells WHERE id = 1;")
    tmux("send-keys", "-t", name, "Enter")

    def cut_rows(screen_text: str) -> list[str]:
        return [ln for ln in screen_text.splitlines() if ln.startswith("│") and long[:100] in ln]

    text = wait_for(name, lambda s: bool(cut_rows(s)), "the result")
    rows = cut_rows(text)
    assert len(rows) == 1 and len(rows[0]) == 160 and rows[0].rstrip("│ ").endswith("…"), text
    tmux("send-keys", "-t", name, "C-l")
    type_text(name, "\\x on")
    tmux("send-keys", "-t", name, "Enter")
    type_text(name, "\\last")
    tmux("send-keys", "-t", name, "Enter")
    # the value wraps at the terminal's edge: read it joined
    text = wait_for(name, lambda s: "RECORD 1" in s, "the expanded result")
    assert long in "".join(text.splitlines()), text
    tmux("send-keys", "-t", name, "C-c")
    type_text(name, "\\q")
    tmux("send-keys", "-t", name, "Enter")
