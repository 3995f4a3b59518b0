"""The interactive shell: prompt_toolkit set-up around a :class:`~caveql.repl.session.Session`.

What the prompt does, and where it comes from:

- highlighting by :class:`~caveql.repl.lexer.CqlLexer`;
- completion by :func:`~caveql.repl.completion.suggest` (grammar + catalog), the
  catalog loaded on a background thread so the prompt appears at once;
- multi-line input: Enter runs the text when it ends with ``;`` and the parser
  says it is complete (a ``;`` inside a string does not count), or when it is a
  backslash command; Esc-Enter (Alt-Enter) runs it anyway; pasted text never runs
  by itself;
- history per datastack (Ctrl-R searches it), suggestions from history;
- after an error with a position, the input comes back with the cursor on it;
- Ctrl-C cancels a running query (the REPL stays), Ctrl-C at the prompt clears
  the input, Ctrl-D quits; F4 switches vi/emacs; F3 toggles ``\\timing``.

>>> callable(run_repl)
True
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from caveql.repl.completion import CompletionCatalog, suggest
from caveql.repl.session import Session, is_command

if TYPE_CHECKING:
    from prompt_toolkit.completion import CompleteEvent, Completion
    from prompt_toolkit.document import Document

__all__ = ["CqlCompleter", "history_path", "input_is_complete", "run_repl"]



def input_is_complete(text: str) -> bool:
    """Whether Enter should run ``text`` (see the module docstring).

    >>> input_is_complete("\\\\dt"), input_is_complete("SELECT 1 FROM t"), input_is_complete("SELECT 1 FROM t;")
    (True, False, True)
    >>> input_is_complete("SELECT * FROM t WHERE x = 'a;")
    False
    """
    stripped = text.strip()
    if not stripped:
        return True
    if is_command(stripped):
        return True
    if not stripped.endswith(";"):
        return False
    from caveql.syntax.parser import needs_more_input

    return not needs_more_input(stripped)


def history_path(datastack: str) -> str:
    """The history file of a datastack (one per datastack, in the user state folder)."""
    import platformdirs

    base = os.environ.get("CAVEQL_HISTORY_DIR") or os.path.join(
        platformdirs.user_state_dir("caveql", appauthor=False), "history")
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", datastack or "default")
    return os.path.join(base, f"{safe}.history")


class CqlCompleter:
    """prompt_toolkit completer over :func:`suggest` and a live :class:`CompletionCatalog`."""

    def __init__(self, catalog: CompletionCatalog) -> None:
        self.catalog = catalog

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterable[Completion]:
        from prompt_toolkit.completion import Completion

        for c in suggest(document.text, document.cursor_position, self.catalog, limit=300):
            yield Completion(c.text, start_position=c.start, display_meta=c.meta or c.kind)

    async def get_completions_async(self, document: Document, complete_event: CompleteEvent) -> Any:
        for c in self.get_completions(document, complete_event):
            yield c


def _as_completer(obj: CqlCompleter) -> Any:
    from prompt_toolkit.completion import Completer

    class _Adapter(Completer):
        def get_completions(self, document: Any, complete_event: Any) -> Iterable[Any]:
            return obj.get_completions(document, complete_event)

    return _Adapter()


class _CatalogLoader:
    """Opens the connection and fills the completion catalog on a background thread."""

    def __init__(self, session: Session, catalog: CompletionCatalog) -> None:
        self.session = session
        self.catalog = catalog
        self.status = "connecting…"
        self._thread: threading.Thread | None = None
        self.on_change: Any = None  # redraws the prompt (toolbar, prompt text) when loading ends

    def start(self) -> None:
        self._thread = threading.Thread(target=self._load, name="caveql-catalog", daemon=True)
        self._thread.start()

    def _load(self) -> None:
        try:
            self.refresh()
        except Exception as exc:  # noqa: BLE001 - shown in the toolbar; queries report it properly
            self.status = f"catalog unavailable: {getattr(exc, 'message', exc)}"
        finally:
            self.session.catalog_ready.set()
            if self.on_change is not None:
                self.on_change()

    def refresh(self) -> None:
        conn = self.session.connection
        cat = conn.engine.catalog()
        self.catalog.tables = list(cat.tables())
        try:
            self.catalog.views = list(cat.views())
        except Exception:  # noqa: BLE001 - a backend without views
            self.catalog.views = []
        self.catalog.columns = {}
        self.catalog.values = {}
        self.catalog.load_columns = cat.columns
        self.catalog.load_values = self.session.unique_values
        self.status = ""


def _toolbar(session: Session, loader: _CatalogLoader, state: dict[str, Any]) -> Any:
    def text() -> str:
        parts = []
        if session.connected:
            with contextlib.suppress(Exception):  # the toolbar must always render (closing...)
                name, host = session.where()
                v = session.connection.version
                parts.append(name + (f" @ {host}" if host else "") + (f" v{v}" if v is not None else ""))
        if loader.status:
            parts.append(loader.status)
        parts.append(f"[F4] {'vi' if state['vi'] else 'emacs'}")
        parts.append(f"[F3] timing {'on' if session.timing else 'off'}")
        parts.append(f"format {session.format}")
        parts.append("Esc-Enter runs; \\? help")
        return "  ".join(parts)

    return text


def _bindings(session: Session, state: dict[str, Any]) -> Any:
    from prompt_toolkit.filters import has_focus, is_searching
    from prompt_toolkit.key_binding import KeyBindings

    kb = KeyBindings()

    # Ctrl-R search keeps its own Enter (accept the found line)
    @kb.add("enter", filter=~is_searching & has_focus("DEFAULT_BUFFER"))
    def _enter(event: Any) -> None:
        buf = event.current_buffer
        if buf.complete_state is not None and buf.complete_state.current_completion is not None:
            buf.apply_completion(buf.complete_state.current_completion)
            return
        if input_is_complete(buf.text):
            buf.validate_and_handle()
        else:
            buf.insert_text("\n")

    @kb.add("escape", "enter")
    def _force(event: Any) -> None:
        event.current_buffer.validate_and_handle()

    @kb.add("f3")
    def _timing(event: Any) -> None:
        session.timing = not session.timing

    @kb.add("f4")
    def _mode(event: Any) -> None:
        from prompt_toolkit.enums import EditingMode

        state["vi"] = not state["vi"]
        event.app.editing_mode = EditingMode.VI if state["vi"] else EditingMode.EMACS

    return kb


def run_repl(session: Session, *, input: Any = None, output: Any = None,
             history: str | None = None) -> int:
    """Run the REPL until ``\\q`` or Ctrl-D; returns the exit code (0).

    ``input``/``output`` are prompt_toolkit objects (tests pass a pipe input and
    ``DummyOutput``); ``history`` overrides the history file.
    """
    from prompt_toolkit import PromptSession
    from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
    from prompt_toolkit.document import Document
    from prompt_toolkit.history import FileHistory, InMemoryHistory
    from prompt_toolkit.lexers import PygmentsLexer
    from prompt_toolkit.styles import style_from_pygments_cls

    from caveql.repl.lexer import CqlLexer

    config = getattr(session, "config", None)
    catalog = CompletionCatalog(variables=list(session.variables))
    loader = _CatalogLoader(session, catalog)
    name = getattr(session, "history_name", None) or (config.datastack if config and config.datastack else "default")
    hist: Any
    if history == "" or (config is not None and not config.history):
        hist = InMemoryHistory()
    else:
        path = history or history_path(name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        hist = FileHistory(path)
        session.history_file = path
    state: dict[str, Any] = {"vi": bool(config and config.editing_mode == "vi")}
    style = None
    if config is not None and config.syntax_style != "default":
        from pygments.styles import get_style_by_name
        from pygments.util import ClassNotFound

        try:
            style = style_from_pygments_cls(get_style_by_name(config.syntax_style))
        except ClassNotFound:
            session.info(f"config: unknown syntax_style {config.syntax_style!r}; using the default")
    prompt = PromptSession(
        history=hist, lexer=PygmentsLexer(CqlLexer), completer=_as_completer(CqlCompleter(catalog)),
        complete_while_typing=False, auto_suggest=AutoSuggestFromHistory(), multiline=True,
        vi_mode=state["vi"], enable_history_search=False, search_ignore_case=True,
        bottom_toolbar=_toolbar(session, loader, state), style=style, input=input, output=output,
        prompt_continuation=lambda width, line, soft: "-> ".rjust(width),
        mouse_support=False, enable_open_in_editor=True,
    )
    prompt.key_bindings = _bindings(session, state)
    loader.on_change = lambda: prompt.app.invalidate()  # thread-safe in prompt_toolkit

    def start_loading() -> None:
        # after the first prompt is drawn: the loader imports the engine (pandas, DuckDB) and would
        # otherwise compete with the first draw for the GIL
        if not started:
            started.append(True)
            import asyncio

            asyncio.get_running_loop().call_later(0.05, loader.start)

    started: list[bool] = []
    session.info("caveql — CQL for CAVE connectomes. \\? for help, \\q to quit; end statements with ';'.")
    default: Any = ""
    while not session.quit:
        if session.next_input is not None:
            default, session.next_input = session.next_input, None
        try:
            text = prompt.prompt(_prompt_text(session), default=default, pre_run=start_loading)
        except KeyboardInterrupt:
            default = ""
            continue
        except EOFError:
            break
        default = ""
        if not text.strip():
            continue
        _count_usage(text, catalog)
        session.last_error = None
        ok = session.run(text, cancellable=True)
        catalog.variables = list(session.variables)
        if not ok and session.last_error is not None and session.last_error.span is not None \
                and session.last_error.source == text:
            span = session.last_error.span
            default = Document(text, cursor_position=min(span.start, len(text)))
        elif ok and not is_command(text) and re.match(r"\s*(SET|USE)\b", text, re.IGNORECASE):
            threading.Thread(target=loader._load, daemon=True).start()  # the catalog changed
    session.close()
    return 0


_WORDS = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _count_usage(text: str, catalog: CompletionCatalog) -> None:
    """Names the user types often rank first in completion (pgcli's prevalence ranking).

    >>> cat = CompletionCatalog()
    >>> _count_usage("SELECT cell_type FROM t WHERE cell_type = :ids", cat)
    >>> cat.usage["cell_type"], cat.usage["ids"], "SELECT" in cat.usage
    (2, 1, False)
    """
    from caveql.repl.lexer import KEYWORDS

    for word in _WORDS.findall(text):
        if word.upper() not in KEYWORDS:
            catalog.usage[word] = catalog.usage.get(word, 0) + 1


def _prompt_text(session: Session) -> str:
    if session.connected:
        try:
            return f"{session.where()[0]}> "
        except Exception:  # noqa: BLE001 - the prompt must always render
            return "caveql> "
    return "caveql> "  # until connected (the toolbar says "connecting…")
