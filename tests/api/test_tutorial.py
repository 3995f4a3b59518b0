"""docs/tutorial.md: every ```cql block runs on the demo and prints exactly the ```text block after
it; the ```pycon blocks run as doctests. CAVEQL_REGEN_TUTORIAL=1 rewrites the outputs (review the
diff before committing)."""

from __future__ import annotations

import doctest
import io
import os
import re
from pathlib import Path

import caveql
from caveql.repl.session import Session

DOC = Path(__file__).resolve().parents[2] / "docs" / "tutorial.md"
BLOCK = re.compile(r"```cql\n(?P<cql>.*?)```\n\n```text\n(?P<out>.*?)```", re.DOTALL)
WIDTH = 100
MAX_ROWS = 10  # the tutorial says so; the REPL's default is 40


def run_block(session: Session, cql: str) -> str:
    session.out, session.err = io.StringIO(), io.StringIO()
    session.run_cql(cql)
    return session.out.getvalue() + session.err.getvalue()


def test_cql_blocks_print_what_the_tutorial_shows(demo_path) -> None:
    text = DOC.read_text(encoding="utf-8")
    blocks = list(BLOCK.finditer(text))
    assert len(blocks) >= 15
    session = Session(lambda: caveql.connect(path=demo_path))
    session.width = WIDTH
    session.max_rows = MAX_ROWS
    try:
        if os.environ.get("CAVEQL_REGEN_TUTORIAL"):
            out = []
            pos = 0
            for m in blocks:
                out.append(text[pos:m.start("out")])
                out.append(run_block(session, m["cql"]))
                pos = m.end("out")
            out.append(text[pos:])
            DOC.write_text("".join(out), encoding="utf-8")
            text = DOC.read_text(encoding="utf-8")
            blocks = list(BLOCK.finditer(text))
        for m in blocks:
            assert run_block(session, m["cql"]) == m["out"], (
                f"{m['cql']!r} prints something else now; if the change is intended, regenerate with "
                "CAVEQL_REGEN_TUTORIAL=1 pytest tests/api/test_tutorial.py and review the diff")
    finally:
        session.close()


def test_python_blocks(demo_path, monkeypatch) -> None:
    monkeypatch.chdir(DOC.parents[1])
    parser = doctest.DocTestParser()
    text = DOC.read_text(encoding="utf-8")
    snippets = "\n".join(re.findall(r"```pycon\n(.*?)```", text, re.DOTALL))
    test = parser.get_doctest(snippets, {"DEMO": str(demo_path)}, "tutorial", str(DOC), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.failures == 0 and runner.tries >= 8
