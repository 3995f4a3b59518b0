"""The CQL parser: lark configuration, the entry point, and the one place lark's exceptions
become :class:`~caveql.errors.CqlSyntaxError` subclasses.

The grammar is ``caveql/grammar/caveql.lark`` (package data), compiled into LALR tables that lark
caches in the user's cache folder (``<platformdirs.user_cache_dir("caveql")>/grammar``, private):
never in the installed package, which may be read-only, and not in the shared temp folder,
where another user could plant the pickle lark loads. AST nodes are built during the parse by
:class:`~caveql.syntax.builder.Builder`.

>>> parse("select 1 from t").statements[0].items[0].expr
Integer(value=1)
>>> parse("SELECT cel_type FORM t")
Traceback (most recent call last):
  ...
caveql.errors.CqlSyntaxError: unexpected word 'FORM' (line 1, column 17); help: did you mean FROM?
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any, Literal

from lark import Lark, Token
from lark.exceptions import UnexpectedInput, VisitError

from caveql.errors import CaveqlError, CqlSyntaxError, Span
from caveql.lru import LRU
from caveql.syntax.builder import MAX_DEPTH, Builder

__all__ = ["MEMO_MAX_TEXT", "START_RULES", "needs_more_input", "parse", "tokens"]

#: The public start names and the grammar rule each one maps to.
START_RULES = {"script": "script", "statement": "single_statement", "expression": "single_expression"}

_local = threading.local()

# Parsed texts, newest last: a notebook's loop or a benchmark runs the same text again and again,
# and lark takes ~0.5 ms for a one-line SELECT (a tenth of a small archive query). AST nodes are
# frozen, so one tree serves every caller. Long texts (scripts) are not kept.
_MEMO: LRU[Any] = LRU(256)
MEMO_MAX_TEXT = 16_384  # longer texts (scripts, lists of thousands of ids) are parsed each time


class _Parser:
    """A lark LALR parser with its own builder (builders keep per-parse state: one per thread)."""

    def __init__(self) -> None:
        self.builder = Builder()
        self.lark = Lark.open_from_package(
            "caveql.grammar", "caveql.lark", ("",),
            parser="lalr", lexer="basic", start=list(START_RULES.values()),
            keep_all_tokens=True, propagate_positions=False, maybe_placeholders=False,
            transformer=self.builder, cache=_cache_file(),
        )

    def raw(self, text: str, rule: str) -> Any:
        """Parse, letting lark's and the builder's exceptions through (used by diagnostics)."""
        self.builder.reset()
        try:
            return self.lark.parse(text, start=rule)
        finally:
            self.builder.reset()


def _cache_file() -> str | bool:
    """Where lark keeps the compiled tables; ``False`` (compile each time) if nowhere is writable.

    Lark checks the grammar's hash stored in the file, so one name per lark version suffices."""
    import lark
    import platformdirs

    folder = os.path.join(platformdirs.user_cache_dir("caveql"), "grammar")
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        if not os.access(folder, os.W_OK):
            return False
    except OSError:
        return False
    return os.path.join(folder, f"grammar-lark{lark.__version__}-py{sys.version_info[0]}{sys.version_info[1]}.cache")


def _parser() -> _Parser:
    p = getattr(_local, "parser", None)
    if p is None:
        p = _local.parser = _Parser()
    return p


Start = Literal["script", "statement", "expression"]


def parse(text: str, start: Start = "script") -> Any:
    """Parse CQL text into its AST.

    ``start`` is ``"script"`` (one or more ``;``-separated statements -> :class:`~caveql.syntax.ast.Script`),
    ``"statement"`` (exactly one, a trailing ``;`` allowed) or ``"expression"``.
    Every failure is a :class:`~caveql.errors.CqlSyntaxError` (or subclass) carrying the span,
    what was expected, and the source (so ``err.render()`` shows the line and a caret).
    A leading byte-order mark (U+FEFF) is read as blank space.

    >>> parse("SELECT * FROM t WHERE id IN (1, 2)", start="statement").where
    In(expr=Column(name='id', table=None), target=ListExpr(items=(Integer(value=1), Integer(value=2))), negated=False)
    >>> parse("x = :root_id", start="expression").right
    Param(name='root_id')
    """
    if start not in START_RULES:
        raise ValueError(f"start must be one of {sorted(START_RULES)}, not {start!r}")
    if not isinstance(text, str):
        raise TypeError(f"parse() takes a str, not {type(text).__name__}")
    if len(text) > MEMO_MAX_TEXT:
        return _parse(text, start)
    return _MEMO.get_or_make((start, text), lambda: _parse(text, start))


def _parse(text: str, start: Start) -> Any:
    p = _parser()
    # a leading byte-order mark (a file saved by a Windows editor, read as plain UTF-8) is blank
    # space; replaced one for one, so every offset, line and column stays that of ``text``
    lexed = " " + text[1:] if text.startswith("\ufeff") else text
    try:
        return p.raw(lexed, START_RULES[start])
    except CaveqlError as exc:
        raise exc.with_source(text) from None
    except VisitError as exc:  # not raised by the inline builder today; kept as the contract says
        if isinstance(exc.orig_exc, CaveqlError):
            raise exc.orig_exc.with_source(text) from None
        raise CqlSyntaxError(f"internal parser error: {exc.orig_exc}").with_source(text) from exc
    except UnexpectedInput as exc:
        from caveql.syntax.diagnose import diagnose

        raise diagnose(lexed, exc, START_RULES[start], p.raw, p.lark).with_source(text) from exc
    except RecursionError:
        raise CqlSyntaxError(
            f"input nested too deeply to parse (more than {MAX_DEPTH} levels)",
            span=Span(0, 0, 1, 1),
        ).with_source(text) from None


def needs_more_input(text: str, start: Start = "script") -> bool:
    """Whether ``text`` is an incomplete statement a REPL should keep reading.

    True when the input ends inside a statement, a string, a quoted name, a block comment or
    parentheses; False when it parses or has an error before its end.

    >>> needs_more_input("SELECT * FROM t WHERE")
    True
    >>> needs_more_input("SELECT * FROM t WHERE x = 'abc")
    True
    >>> needs_more_input("SELECT * FROM t;")
    False
    >>> needs_more_input("SELECT * FORM t")
    False
    """
    from caveql.errors import UnexpectedEndError, UnterminatedError

    try:
        parse(text, start)
    except (UnexpectedEndError, UnterminatedError):
        # an unclosed string, quoted name or comment runs to the end of the input by
        # construction, and an unclosed `(` is only reported at the end of the input
        return True
    except CaveqlError:
        return False
    return False


def tokens(text: str) -> list[Token]:
    """The tokens of ``text`` (comments and whitespace dropped); raises on a lexical error.

    >>> [t.type for t in tokens("select a from t")]
    ['SELECT', 'NAME', 'FROM', 'NAME']
    """
    try:
        return list(_parser().lark.lex(text))
    except UnexpectedInput as exc:
        from caveql.syntax.diagnose import diagnose

        p = _parser()
        raise diagnose(text, exc, "script", p.raw, p.lark).with_source(text) from exc

