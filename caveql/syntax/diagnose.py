"""Syntax error messages: lark's "unexpected token, expected one of {...}" in words.

Called only by :func:`caveql.syntax.parser.parse` (the one place lark exceptions are caught).
A message says what was expected, after what, and what was found; a ``help`` line comes from
*repairs*: small edits (a keyword typo fixed, a comma inserted, a reserved word quoted, a stray
comma removed) that are kept only when the edited text really parses further than the original.

>>> from caveql.syntax import parse
>>> try:
...     parse("SELECT a, b FROM t WHER x = 1")
... except Exception as e:
...     print(e.render())
error[CQL001]: unexpected word 'WHER'
 --> line 1, column 20
  |
1 | SELECT a, b FROM t WHER x = 1
  |                    ^^^^
  = help: did you mean WHERE?
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Collection, Iterator
from typing import Any

from lark import Lark, Token
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from caveql.errors import (
    CaveqlError,
    CqlSyntaxError,
    Span,
    UnexpectedEndError,
    UnterminatedError,
    did_you_mean,
)

__all__ = ["KEYWORDS", "RESERVED", "SOFT_KEYWORDS", "diagnose"]

#: Reserved keywords: never identifiers unless quoted.
RESERVED = frozenset("""
    SELECT DISTINCT FROM AS JOIN INNER LEFT ON WHERE GROUP BY HAVING ORDER ASC DESC LIMIT OFFSET
    AT SPLIT AND OR NOT IN BETWEEN LIKE IS NULL TRUE FALSE WITHIN SHOW DESCRIBE EXPLAIN SET USE
    CASE WHEN THEN ELSE END WITH UNION INTERSECT EXCEPT ALL
""".split())
#: Keywords that are also accepted as identifiers (the grammar's ``name`` rule).
SOFT_KEYWORDS = frozenset("""
    RESOLUTION VERSION TIMESTAMP LIVE POSITIONS NULLS FIRST LAST BOX TABLES VIEWS VERSIONS
    DATASTACK ANALYZE OUTER RECURSIVE RIGHT FULL CROSS USING WINDOW QUALIFY OVER FILTER PARTITION
    ROWS RANGE GROUPS UNBOUNDED PRECEDING FOLLOWING CURRENT ROW EXCLUDE TIES NO OTHERS PIVOT
    UNPIVOT FOR INCLUDE EXISTS
""".split())
KEYWORDS = RESERVED | SOFT_KEYWORDS

_STATEMENTS = ("SELECT", "WITH", "SHOW", "DESCRIBE", "EXPLAIN", "SET", "USE")
_EXPR_START = frozenset(
    "INT DECIMAL STRING PARAM LPAR MINUS PLUS NOT TRUE FALSE NULL NAME QUOTED_NAME INT_LIST CASE".split()
)
_OPERATORS = frozenset(
    "EQ NE LT LE GT GE PLUS MINUS STAR SLASH PERCENT AND OR IN NOT BETWEEN LIKE IS TILDE NOT_TILDE "
    "WITHIN DCOLON".split()
)
_ARITH = frozenset({"PLUS", "MINUS", "STAR", "SLASH", "PERCENT"})
_PUNCT = {
    "COMMA": ",", "LPAR": "(", "RPAR": ")", "DOT": ".", "SEMI": ";", "STAR": "*", "EQ": "=",
    "NE": "!=", "LT": "<", "LE": "<=", "GT": ">", "GE": ">=", "PLUS": "+", "MINUS": "-",
    "SLASH": "/", "PERCENT": "%", "TILDE": "~", "NOT_TILDE": "!~", "DCOLON": "::", "BRACKETS": "[]",
}
_RARE = frozenset({"UNION", "INTERSECT", "EXCEPT", "DCOLON", "WINDOW", "QUALIFY", "PIVOT", "UNPIVOT"})
_LATER_THAN_FROM = frozenset({"WHERE", "GROUP", "HAVING", "ORDER", "LIMIT", "OFFSET", "AT", "SPLIT"})
_PHRASES = {"GROUP": "GROUP BY", "ORDER": "ORDER BY", "SPLIT": "SPLIT POSITIONS", "AT": "AT …"}
_WRITES = frozenset({"DROP", "INSERT", "UPDATE", "DELETE", "CREATE", "ALTER", "TRUNCATE", "REPLACE"})
_CLAUSE_ORDER = ("JOIN", "WHERE", "GROUP", "HAVING", "WINDOW", "QUALIFY", "ORDER")
_LATE = frozenset({"LIMIT", "OFFSET", "AT", "SPLIT"})
_CHAR_HINTS = {
    "&": "CQL writes AND", "|": "CQL writes OR", "`": 'quote names with double quotes: "name"',
    "[": "lists use parentheses: IN (1, 2, 3)", "]": "lists use parentheses: IN (1, 2, 3)",
    "#": "comments start with -- (to the end of the line) or /* ... */",
    "?": "parameters are written :name", "$": "parameters are written :name",
    "@": "parameters are written :name", "{": "lists use parentheses: (1, 2, 3)",
    "}": "lists use parentheses: (1, 2, 3)", "\\": "strings need no backslash escapes; write '' for a quote",
}
#: edits are tried only on inputs up to this size (each costs one more parse)
_REPAIR_LIMIT = 20_000
#: SQL that CQL does not have: what to call it, and what to do instead. Without this the parse
#: fails somewhere after it, with a repair hint that misleads (`NATURAL` read as an alias, then
#: "expected ON"; `DISTINCT ON` read as "expected an expression").
_NOT_YET = {
    "NATURAL": ("NATURAL JOIN is", "name the shared columns: JOIN t USING (a, b)"),
    "LATERAL": ("LATERAL is", "use a correlated subquery in WHERE or the select list, or join a "
                              "derived table: JOIN (SELECT ...) AS d ON ..."),
    "DISTINCT ON": ("SELECT DISTINCT ON is", "keep the first row per group with a window: "
                                             "QUALIFY row_number() OVER (PARTITION BY ... ORDER BY ...) = 1"),
    "VALUES": ("VALUES lists are", "read the rows from a file (FROM 'rows.csv') or pass a DataFrame "
                                   "as a parameter (FROM :rows)"),
    "GROUPING SETS": ("GROUPING SETS is", "run one GROUP BY per grouping and combine them with UNION ALL"),
    "ROLLUP": ("ROLLUP is", "run one GROUP BY per level and combine them with UNION ALL"),
    "CUBE": ("CUBE is", "run one GROUP BY per grouping and combine them with UNION ALL"),
    "INTERVAL": ("INTERVAL literals are", "compare timestamps with 'YYYY-MM-DD' strings"),
    ",": ("a `,` between tables (an implicit cross join) is",
          "write JOIN ... ON ..., JOIN ... USING (...), or CROSS JOIN"),
}


def _pos_span(text: str, start: int, end: int) -> Span:
    line = text.count("\n", 0, start) + 1
    column = start - (text.rfind("\n", 0, start) + 1) + 1
    return Span(start, max(start, end), line, column)


def _tok_span(tok: Token) -> Span:
    return Span(tok.start_pos, tok.end_pos, tok.line, tok.column)  # type: ignore[arg-type]


def _short(s: str, n: int = 30) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def describe_token(tok: Token | None) -> str:
    """How a token is named in a message.

    >>> describe_token(Token("FROM", "from"))
    'FROM'
    >>> describe_token(Token("NAME", "cell_type"))
    "'cell_type'"
    """
    if tok is None or tok.type == "$END":
        return "the end of the input"
    t, v = tok.type, str(tok)
    if t in SOFT_KEYWORDS:
        return f"'{v}'"
    if t in KEYWORDS:
        return v.upper()
    if t in ("NAME", "QUOTED_NAME"):
        return f"'{_short(v)}'" if t == "NAME" else _short(v)
    if t in ("INT", "DECIMAL"):
        return f"the number {_short(v)}"
    if t == "STRING":
        return f"the string {_short(v)}"
    if t == "PARAM":
        return f"the parameter {_short(v)}"
    if t == "INT_LIST":
        return f"the list {_short(v)}"
    return f"`{v}`"


def _after(prev: list[Token]) -> str:
    if not prev:
        return ""
    last = prev[-1]
    if last.type == "BY" and len(prev) > 1 and prev[-2].type in ("GROUP", "ORDER"):
        return f" after {prev[-2].upper()} BY"
    return f" after {describe_token(last)}"


def expected_words(expected: Collection[str], prev: list[Token]) -> str:
    """lark's expected terminal names in words, most useful first.

    >>> expected_words({"NAME", "QUOTED_NAME", "VERSION"}, [Token("FROM", "FROM")])
    'a table name'
    >>> expected_words({"COMMA", "RPAR"}, [])
    '`,` or `)`'
    """
    exp = set(expected)
    last = prev[-1].type if prev else None
    words: list[str] = []
    if set(_STATEMENTS) <= exp:
        words.append("a statement (SELECT, WITH, SHOW, DESCRIBE, EXPLAIN, SET or USE)")
        exp -= set(_STATEMENTS) | {"SEMI", "$END", "LPAR"}
    if {"INT", "STRING", "NAME"} <= exp:
        if "STAR" in exp:
            words += ["a column name", "`*`", "an expression"]
        else:
            words.append("an expression")
        exp -= _EXPR_START | SOFT_KEYWORDS | {"STAR", "DISTINCT"}
    elif "NAME" in exp:
        if last in ("FROM", "JOIN"):
            words.append("a table name")
            if {"STRING", "PARAM", "LPAR"} <= exp:
                words += ["a 'file'", "a :parameter", "a (subquery)"]
                exp -= {"STRING", "PARAM", "LPAR"}
        elif last == "DESCRIBE":
            words.append("a table or view name")
        elif last == "USE":
            words.append("a datastack name")
        elif last == "SET":
            words.append("a setting name (version, resolution, timestamp, datastack, ...)")
        elif last == "DOT":
            words.append("a column name or `*`" if "STAR" in exp else "a column name")
            exp.discard("STAR")
        elif _wants_type(prev):
            words.append("a type (BIGINT, DOUBLE, VARCHAR, TIMESTAMP, ...)")
            exp -= {"LPAR", "BRACKETS"}
        elif last in ("WITH", "RECURSIVE") or (last == "COMMA" and _in_with(prev)):
            words.append("a name for the query")
        elif "AS" in exp or last == "AS":
            words.append("an alias")
        else:
            words.append("a name")
        exp -= {"NAME", "QUOTED_NAME"} | SOFT_KEYWORDS
    # arithmetic, `::`, set operations and the rarer clauses are seldom the continuation meant
    # when anything else may come
    if exp - _ARITH - _RARE - {"SEMI", "$END"} or words:
        exp -= _ARITH | _RARE
    if "FROM" in exp and "COMMA" in exp:
        # after the select list FROM is what is usually missing (a SELECT without FROM is rare)
        exp -= _LATER_THAN_FROM | {"SEMI", "$END"}
    # operators are listed as one word, unless they are all that may come
    ops = bool(exp & _OPERATORS) and bool(words or exp - _OPERATORS - {"SEMI", "$END"})
    if ops:
        exp -= _OPERATORS
    if last in ("NAME", "QUOTED_NAME") and exp - {"DOT", "LPAR"}:
        exp -= {"DOT", "LPAR"}  # `t.col` and `f(x)` continuations are not what was missed
    exp.discard("INT_LIST")  # a lexer shortcut for `(1, 2, ...)`, where `(` is expected too
    if "ORDER" in exp and _clauses_written(prev) & {"ORDER", "LIMIT", "OFFSET"}:
        exp.discard("ORDER")  # the grammar takes a second one; the builder refuses it
    end = bool(exp & {"SEMI", "$END"})
    exp -= {"SEMI", "$END"}
    if {"INNER", "LEFT", "JOIN"} <= exp:
        exp -= {"INNER", "LEFT", "RIGHT", "FULL", "CROSS"}
    for name in sorted(exp, key=_order):
        if name in _PUNCT:
            words.append(f"`{_PUNCT[name]}`")
        elif name in _PHRASES:
            words.append(_PHRASES[name])
        elif name == "STRING":
            words.append("a 'string'")
        elif name in ("INT", "DECIMAL"):
            if "a number" not in words:
                words.append("a number")
        elif name == "PARAM":
            words.append("a :parameter")
        else:
            words.append(name)
    if ops:
        words.append("an operator")
    if end:
        words.append("the end of the statement")
    if not words:
        return "something else"
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " or " + words[-1]


def _same_level(toks: list[Token]) -> Iterator[Token]:
    """The tokens at the nesting level the tokens end in, last first, back to the ``(`` that
    opens that level (the tokens inside parentheses closed on the way are left out)."""
    depth = 0
    for t in reversed(toks):
        if t.type == "RPAR":
            depth += 1
        elif t.type == "LPAR":
            if depth == 0:
                return
            depth -= 1
        elif depth == 0:
            yield t


def _clauses_written(prev: list[Token]) -> set[str]:
    """The clause keywords of the SELECT the tokens end in (not those of its subqueries)."""
    seen = set()
    for t in _same_level(prev):
        if t.type in ("SELECT", "SEMI"):
            break
        seen.add(t.type)
    return seen


def _order(name: str) -> tuple[int, str]:
    rank = {"COMMA": 0, "RPAR": 1, "AS": 2, "JOIN": 3, "ON": 3, "USING": 3, "WHERE": 4, "GROUP": 5,
            "HAVING": 6, "WINDOW": 7, "QUALIFY": 8, "ORDER": 9, "LIMIT": 10, "OFFSET": 11, "AT": 12,
            "SPLIT": 13}
    return (rank.get(name, 20 if name in _PUNCT else 15), name)


Raw = Callable[[str, str], Any]


def diagnose(text: str, exc: UnexpectedInput, rule: str, raw: Raw, lark: Lark) -> CqlSyntaxError:
    """Turn a lark exception into a :class:`CqlSyntaxError` (or subclass) with span and help."""
    if isinstance(exc, UnexpectedCharacters):
        return _bad_character(text, exc.pos_in_stream)
    tok = getattr(exc, "token", None)
    at_end = tok is None or tok.type == "$END"
    pos = len(text) if at_end else tok.start_pos  # type: ignore[union-attr]
    expected = _accepted_before(lark, text, rule, pos) if len(text) <= _REPAIR_LIMIT else None
    if expected is None:
        expected = _accepted(exc)
    prev = _tokens_before(lark, text, pos)
    unsupported = _not_yet(prev, None if at_end else tok, _token_after(lark, text, pos + 1))
    if unsupported is not None:
        return unsupported
    if at_end:
        return _at_end(text, prev, expected, rule)
    assert isinstance(tok, Token)
    opens = _open_parens(prev)
    span = _tok_span(tok)
    if tok.type == "EQ" and prev and prev[-1].type == "EQ" and prev[-1].end_pos == tok.start_pos:
        return CqlSyntaxError(
            "`==` is not a CQL operator", span=_pos_span(text, prev[-1].start_pos, tok.end_pos),
            hint="compare with a single `=`", expected=sorted(expected),
        )
    # a `/*` the lexer could not read as a comment has no `*/` after it: it lexes as `/` `*`,
    # and the parse fails at one of the two (after an operand, `/` is division and the error
    # comes at the `*`); either way the input ended inside a comment (the REPL keeps reading)
    comment = _unclosed_comment(text, tok, prev)
    if comment is not None:
        return UnterminatedError("this /* comment is never closed", span=_pos_span(
            text, comment, comment + 2), hint="end it with */")
    if tok.type == "RPAR" and not opens:
        return CqlSyntaxError("this `)` has no matching `(`", span=span, expected=sorted(expected))
    message = f"expected {expected_words(expected, prev)}{_after(prev)}, found {describe_token(tok)}"
    construct = _construct_hint(tok, prev, expected)
    if construct is not None:
        message = construct[0] or message
        return CqlSyntaxError(message, span=span, hint=construct[1], expected=sorted(expected))
    hint = None
    if len(text) <= _REPAIR_LIMIT:
        fixed = _repair(text, tok, prev, expected, rule, raw, lark)
        if fixed is not None:
            fix_span, fix_message, hint = fixed
            if fix_span is not None:
                span, message = fix_span, fix_message or message
    if hint is None:
        hint = _static_hint(tok, prev, expected, opens)
    return CqlSyntaxError(message, span=span, hint=hint, expected=sorted(expected))


def _not_yet(prev: list[Token], tok: Token | None, after: Token | None) -> CqlSyntaxError | None:
    """A clear error for SQL that CQL does not support, written in the failing statement.

    Each construct is recognised by its shape (``NATURAL JOIN``, ``DISTINCT ON (``, ``VALUES (``,
    ``FROM a, b``), not by the word alone: a column may be named ``natural`` or ``values``.

    >>> from caveql.syntax import parse
    >>> parse("SELECT id FROM cells NATURAL JOIN nuclei")
    Traceback (most recent call last):
      ...
    caveql.errors.CqlSyntaxError: NATURAL JOIN is not supported in CQL (line 1, column 22); help: ...
    """
    start = max((i + 1 for i, t in enumerate(prev) if t.type == "SEMI"), default=0)
    toks = prev[start:] + [t for t in (tok, after) if t is not None]
    words = [str(t).upper() if t.type == "NAME" else "" for t in toks]
    for i, (t, w) in enumerate(zip(toks, words)):
        if tok is not None and t is after:
            break  # the lookahead token only completes a shape begun before it
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        before = toks[i - 1] if i else None
        nw = words[i + 1] if i + 1 < len(toks) else ""
        key = None
        if w == "NATURAL" and nxt is not None and nxt.type in ("JOIN", "LEFT", "INNER", "RIGHT", "FULL"):
            key = w
        elif w == "LATERAL" and before is not None and before.type in ("JOIN", "COMMA", "FROM") \
                and nxt is not None and nxt.type in ("LPAR", "NAME"):
            key = w
        elif t.type == "ON" and before is not None and before.type == "DISTINCT" and i >= 2 \
                and toks[i - 2].type == "SELECT" and nxt is not None and nxt.type == "LPAR":
            t, key = before, "DISTINCT ON"
        elif w == "VALUES" and nxt is not None and nxt.type in ("LPAR", "INT_LIST"):
            key = w
        elif w == "GROUPING" and nw == "SETS":
            key = "GROUPING SETS"
        elif w == "INTERVAL" and nxt is not None and nxt.type in ("STRING", "INT"):
            key = w
        elif t is tok and t.type == "COMMA" and _in_from(toks[:i]):
            key = ","
        if key is not None:
            what, instead = _NOT_YET[key]
            span = _tok_span(t) if key != "DISTINCT ON" else Span(
                t.start_pos, toks[i].end_pos, t.line, t.column)  # type: ignore[arg-type]
            return CqlSyntaxError(f"{what} not supported in CQL", span=span, hint=instead)
    return None


def _in_from(toks: list[Token]) -> bool:
    """Whether the tokens end inside a FROM clause's table list (a `,` there joins tables)."""
    for t in _same_level(toks):
        if t.type in ("FROM", "JOIN"):
            return True
        if t.type in ("SELECT", "WHERE", "GROUP", "HAVING", "ORDER", "WINDOW", "QUALIFY", "SEMI",
                      "LIMIT", "OFFSET", "AT", "BY"):
            return False
    return False


def _wants_type(prev: list[Token]) -> bool:
    """Whether a type name comes next: after `::`, or after AS inside CAST( / TRY_CAST(."""
    if not prev:
        return False
    if prev[-1].type == "DCOLON":
        return True
    opens = _open_parens(prev)
    if prev[-1].type != "AS" or not opens:
        return False
    i = prev.index(opens[-1])
    return i > 0 and prev[i - 1].type == "NAME" and str(prev[i - 1]).upper() in ("CAST", "TRY_CAST")


def _in_with(prev: list[Token]) -> bool:
    """Whether the tokens end in a WITH's list of queries (between WITH and the main SELECT)."""
    for t in _same_level(prev):
        if t.type == "WITH":
            return True
        if t.type in ("SELECT", "SEMI"):
            return False
    return False


def _open_case(prev: list[Token]) -> Token | None:
    """The innermost CASE not yet closed by its END."""
    stack: list[Token] = []
    for t in prev:
        if t.type == "CASE":
            stack.append(t)
        elif t.type == "END" and stack:
            stack.pop()
    return stack[-1] if stack else None


def _construct_hint(tok: Token, prev: list[Token], expected: set[str]) -> tuple[str | None, str] | None:
    """(message or None, hint) for an error inside one of the larger constructs: a CASE without
    END, a WITH query without parentheses, a cast without its type."""
    last = prev[-1].type if prev else None
    if "END" in expected and tok.type != "END":
        case = _open_case(prev)
        if case is not None:
            return (f"expected END to close the CASE at line {case.line}, column {case.column}, "
                    f"found {describe_token(tok)}",
                    "a CASE expression is CASE WHEN condition THEN value ... [ELSE value] END")
    if last == "AS" and expected == {"LPAR"} and _in_with(prev[:-1]):
        return (None, "the query of a WITH goes in parentheses: name AS (SELECT ...)")
    if _wants_type(prev):
        return (f"expected a type after {describe_token(prev[-1])}, found {describe_token(tok)}",
                "for example CAST(x AS BIGINT), x::DOUBLE, TRY_CAST(x AS VARCHAR)")
    return None


def _unclosed_comment(text: str, tok: Token, prev: list[Token]) -> int | None:
    """Where the unclosed ``/*`` the parse failed on starts, if it failed on one."""
    start: int = tok.start_pos  # type: ignore[assignment]
    if tok.type == "SLASH" and text.startswith("/*", start):
        return start
    if tok.type == "STAR" and prev and prev[-1].type == "SLASH" and prev[-1].end_pos == start:
        slash: int = prev[-1].start_pos  # type: ignore[assignment]
        if text.startswith("/*", slash):
            return slash
    return None


def _accepted_before(lark: Lark, text: str, rule: str, pos: int) -> set[str] | None:
    """The exact terminals acceptable at ``pos``: replay the parse up to the offending token.

    LALR may reduce on a merged lookahead before noticing the error, so the state lark reports
    can be past where the user's thought went (after `'BC' AN`, AND is what was meant, but the
    reported state is already after the whole WHERE clause)."""
    try:
        ip = lark.parse_interactive(text, start=rule)
        for t in ip.iter_parse():
            if t.start_pos >= pos:  # type: ignore[operator]
                break
        return set(ip.accepts())
    except Exception:  # any trouble replaying: fall back to what lark reported
        return None


def _accepted(exc: UnexpectedInput) -> set[str]:
    """The terminals that could really come next: lark's ``expected`` is the LALR state's
    lookahead set, which merged states can inflate; the interactive parser checks each one."""
    ip = getattr(exc, "interactive_parser", None)
    if ip is not None:
        try:
            return set(ip.accepts())
        except Exception:  # the builder may object to a simulated reduction; fall back
            pass
    return set(getattr(exc, "expected", ()) or ())


def _bad_character(text: str, pos: int) -> CqlSyntaxError:
    ch = text[pos]
    rest_of_line = text.find("\n", pos)
    to_eol = _pos_span(text, pos, len(text) if rest_of_line < 0 else rest_of_line)
    one = _pos_span(text, pos, pos + 1)
    if ch == "'":
        return UnterminatedError("this string is never closed: a ' is missing", span=to_eol,
                                 hint="write '' for a quote inside a string")
    if ch == '"':
        return UnterminatedError('this quoted name is never closed: a " is missing', span=to_eol)
    if text.startswith("/*", pos):
        return UnterminatedError("this /* comment is never closed", span=_pos_span(text, pos, pos + 2),
                                 hint="end it with */")
    if ch == ":":
        return CqlSyntaxError("expected a parameter name after `:`", span=one,
                              hint="parameters are written :name (letters, digits and _)")
    if ch == "!":
        return CqlSyntaxError("`!` must be followed by `=` (not equal) or `~` (no regex match)", span=one)
    if ch.isspace():
        return CqlSyntaxError(f"unexpected whitespace character {ch!r}", span=one)
    if not ch.isascii() and ch.isalnum():
        return CqlSyntaxError(
            f"unexpected character {ch!r}", span=one,
            hint='names are ASCII letters, digits and _; quote any other name: "name"',
        )
    return CqlSyntaxError(f"unexpected character {ch!r}", span=one, hint=_CHAR_HINTS.get(ch))


def _tokens_before(lark: Lark, text: str, pos: int) -> list[Token]:
    out: list[Token] = []
    try:
        for t in lark.lex(text):
            if t.start_pos >= pos:  # type: ignore[operator]
                break
            out.append(t)
    except UnexpectedInput:
        pass
    return out


def _open_parens(prev: list[Token]) -> list[Token]:
    stack: list[Token] = []
    for t in prev:
        if t.type == "LPAR":
            stack.append(t)
        elif t.type == "RPAR" and stack:
            stack.pop()
    return stack


def _at_end(text: str, prev: list[Token], expected: set[str], rule: str) -> CqlSyntaxError:
    opens = _open_parens(prev)
    if opens:
        o = opens[-1]
        return UnterminatedError(
            "this `(` is never closed", span=_tok_span(o), hint="add the missing `)`",
            expected=sorted(expected),
        )
    end = prev[-1].end_pos if prev else len(text)
    span = _pos_span(text, end, end)  # type: ignore[arg-type]
    if not prev:
        what = "an expression" if rule == "single_expression" else expected_words(expected, prev)
        return UnexpectedEndError(f"expected {what}, found the end of the input", span=span,
                                  expected=sorted(expected))
    return UnexpectedEndError(
        f"expected {expected_words(expected, prev)}{_after(prev)}, found the end of the input",
        span=span, expected=sorted(expected),
    )


def _progress(text: str, rule: str, raw: Raw) -> int:
    """How far ``text`` parses: its length + 1 when it parses, else the error offset."""
    try:
        raw(text, rule)
    except UnexpectedToken as e:
        # at the end of the input the edit was accepted but nothing after it was tested
        return len(text) - 1 if e.token.type == "$END" else e.token.start_pos  # type: ignore[return-value]
    except UnexpectedCharacters as e:
        return e.pos_in_stream
    except CaveqlError as e:  # a check after a successful reduction: the syntax got that far
        return e.span.end if e.span is not None else len(text)
    except UnexpectedInput:
        return 0
    except RecursionError:
        return 0
    return len(text) + 1


_Fix = tuple[Span | None, str | None, str]


def _repair(text: str, tok: Token, prev: list[Token], expected: set[str], rule: str,
            raw: Raw, raw_lark: Lark) -> _Fix | None:
    """The first small edit that lets the parse get past the offending token, as (span, message, hint)."""
    start, end = tok.start_pos, tok.end_pos
    assert start is not None and end is not None
    # an edit counts when the parse then gets past the offending token *and* the one after it
    nxt = _token_after(raw_lark, text, end)
    goal = len(text) + 1 if nxt is None else nxt.end_pos
    candidates: list[tuple[str, int, _Fix]] = []  # (new text, offset it must get past, fix)

    def replace(t: Token, new: str, fix: _Fix) -> None:
        s, e = t.start_pos, t.end_pos
        assert s is not None and e is not None
        candidates.append((text[:s] + new + text[e:], goal + len(new) - (e - s), fix))

    def insert(new: str, fix: _Fix) -> None:
        candidates.append((text[:start] + new + text[start:], goal + len(new), fix))

    # soft keywords in `expected` are there as names, not as keywords anyone meant
    exp_kw = sorted(expected & (RESERVED if "NAME" in expected else KEYWORDS))
    word = str(tok).upper()
    if len(word) >= 2 and (tok.type == "NAME" or (tok.type in KEYWORDS and tok.type not in expected)):
        phrases = [_PHRASES[k] for k in exp_kw if k in ("GROUP", "ORDER", "SPLIT")]
        for kw in did_you_mean(word, [k for k in exp_kw if k != word] + phrases):
            replace(tok, kw, (None, None, f"did you mean {kw}?"))
    if prev and prev[-1].type == "NAME" and len(prev[-1]) >= 2:
        p = prev[-1]
        # the previous word parsed as a name: only a close likeness makes it a likely typo
        for kw in _close(str(p).upper(), sorted(KEYWORDS) + ["GROUP BY", "ORDER BY"]):
            replace(p, kw, (_tok_span(p), f"unexpected word '{_short(str(p))}'", f"did you mean {kw}?"))
    # the next two must make the whole text parse: they are guesses about intent
    if prev and prev[-1].type == "COMMA" and tok.type in KEYWORDS | {"RPAR"}:
        p = prev[-1]
        new = text[: p.start_pos] + " " + text[p.end_pos:]  # type: ignore[index]
        candidates.append((new, len(new) + 1, (None, None, f"remove the `,` before {describe_token(tok)}")))
    if "COMMA" in expected and (tok.type in _EXPR_START or tok.type == "STAR") and prev:
        insert(", ", (None, None, f"a `,` is missing before {describe_token(tok)}?"))
    if tok.type in RESERVED and "NAME" in expected and tok.type not in _STATEMENTS:
        quoted = f'"{tok}"'
        new = text[:start] + quoted + text[end:]
        candidates.append((new, len(new) + 1, (None, None,
                           f"{tok.upper()} is a keyword; write {quoted} to use it as a name")))
    if "SEMI" in expected and tok.type in _STATEMENTS:
        insert("; ", (None, None, f"a `;` is missing before {tok.upper()}?"))
    if len(exp_kw) == 1 and exp_kw[0] in ("BY", "ON", "AND", "NULL", "POSITIONS"):
        kw = exp_kw[0]
        insert(kw + " ", (None, None, f"{kw} is missing before {describe_token(tok)}?"))
    for new_text, must_pass, fix in candidates:
        if _progress(new_text, rule, raw) >= must_pass:
            return fix
    return None


def _token_after(lark: Lark, text: str, pos: int) -> Token | None:
    try:
        for t in lark.lex(text):
            if t.start_pos >= pos:  # type: ignore[operator]
                return t
    except UnexpectedInput:
        pass
    return None


def _close(word: str, choices: list[str]) -> list[str]:
    """Keywords that look very much like ``word`` (FORM -> FROM, WHER -> WHERE, AN -> AND)."""
    return [c for c in did_you_mean(word, choices)
            if difflib.SequenceMatcher(None, word.lower(), c.lower()).ratio() >= 0.75]


def _static_hint(tok: Token, prev: list[Token], expected: set[str], opens: list[Token]) -> str | None:
    if tok.type in _CLAUSE_ORDER:
        depth, seen = 0, []
        for t in reversed(prev):  # the clauses already written in this SELECT
            if t.type == "RPAR":
                depth += 1
            elif t.type == "LPAR":
                if depth == 0:
                    break
                depth -= 1
            elif depth == 0 and t.type in ("SELECT", "SEMI"):
                break
            elif depth == 0 and t.type in (*_CLAUSE_ORDER, *_LATE):
                seen.append(t.type)
        later = [s for s in seen if s in _LATE or (
            s in _CLAUSE_ORDER and _CLAUSE_ORDER.index(s) > _CLAUSE_ORDER.index(tok.type))]
        if later:
            return ("clauses go in this order: FROM, JOIN, WHERE, GROUP BY, HAVING, WINDOW, QUALIFY, "
                    "ORDER BY, then LIMIT, OFFSET and the CAVE clauses (AT ..., SPLIT POSITIONS)")
    if tok.type == "COMMA" and len(prev) >= 2 and prev[-2].type == "LIMIT":
        return "CQL writes LIMIT n OFFSET m"
    if tok.type == "NAME" and str(tok).upper() in _WRITES and not prev:
        return "CQL only reads data: SELECT, SHOW, DESCRIBE, EXPLAIN, SET and USE"
    if tok.type == "RPAR" and prev and prev[-1].type == "LPAR" and len(prev) > 1 and prev[-2].type == "IN":
        return "an IN list needs at least one value: IN (1, 2, 3)"
    if tok.type == "OR" and "AND" in expected and any(t.type == "BETWEEN" for t in prev[-4:]):
        return "BETWEEN takes its bounds as: x BETWEEN low AND high"
    if "RPAR" in expected and opens:
        o = opens[-1]
        return f"close the `(` opened at line {o.line}, column {o.column}"
    if tok.type in ("NAME", "QUOTED_NAME") and expected <= {"COMMA", "RPAR"}:
        return "a `,` is missing?"
    return None
