"""Completion for the REPL: pure functions of (text, cursor, catalog).

:func:`suggest` decides what may come at the cursor from the CQL grammar itself
(lark's interactive LALR parser: ``parse_interactive(...).accepts()`` gives the
terminals valid there) and fills names from a :class:`CompletionCatalog`:

- keywords the grammar accepts (in the case the user types);
- tables and views after ``FROM``/``JOIN``/``DESCRIBE``;
- columns scoped to the statement's tables and aliases (the whole statement,
  also what follows the cursor), ``P_x/P_y/P_z`` for each position column,
  ``alias.column`` after ``alias.``; functions where an expression may start;
- string values (cell types, ...) inside a quote after ``column =``/``IN (``;
- ``:variables``; backslash commands and their arguments.

Matching is fuzzy (prefix, then substring, then subsequence), ranked by match
kind, then how often the name was used (``usage``), then length.

>>> cat = CompletionCatalog(tables=["synapses_pni_2", "nucleus_detection_v0"],
...     columns={"nucleus_detection_v0": [("id", "int"), ("pt_position", "position")]})
>>> [c.text for c in suggest("SELECT * FROM nuc", 17, cat)]
['nucleus_detection_v0']
>>> [c.text for c in suggest("SELECT pt_ FROM nucleus_detection_v0", 10, cat)][:4]
['pt_position', 'pt_position_x', 'pt_position_y', 'pt_position_z']
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from caveql.syntax.diagnose import SOFT_KEYWORDS

__all__ = ["Completion", "CompletionCatalog", "fuzzy_rank", "suggest"]

SETTINGS = ("version", "resolution", "timestamp", "datastack", "live")


@dataclass(frozen=True)
class Completion:
    """One suggestion: replace the ``start`` characters before the cursor with ``text``."""

    text: str
    start: int  # <= 0: offset from the cursor where the replaced word begins
    kind: str  # keyword, table, view, column, alias, function, value, variable, command, file, ...
    meta: str = ""


@dataclass
class CompletionCatalog:
    """What completion knows about the datastack (a snapshot; cheap to read).

    ``columns`` maps a table to ``[(column, type)]``; it may be filled lazily by
    ``load_columns`` (called once per table on first need). ``values`` maps
    ``(table, column)`` to distinct strings, or ``load_values`` fetches them.
    """

    tables: Sequence[str] = ()
    views: Sequence[str] = ()
    columns: dict[str, Sequence[tuple[str, str]]] = field(default_factory=dict)
    values: dict[tuple[str, str], Sequence[str]] = field(default_factory=dict)
    variables: Sequence[str] = ()
    datastacks: Sequence[str] = ()
    usage: dict[str, int] = field(default_factory=dict)
    load_columns: Callable[[str], Sequence[tuple[str, str]]] | None = None
    load_values: Callable[[str, str], Sequence[str]] | None = None

    def columns_of(self, table: str) -> Sequence[tuple[str, str]]:
        """Columns of ``table`` (loading them if a loader is set); unknown table: none."""
        cols = self.columns.get(table)
        if cols is None and self.load_columns is not None and (table in self.tables or table in self.views):
            try:
                cols = list(self.load_columns(table))
            except Exception:  # noqa: BLE001 - completion never fails the prompt
                cols = []
            self.columns[table] = cols
        return cols or ()

    def values_of(self, table: str, column: str) -> Sequence[str]:
        """Distinct string values of ``table.column``."""
        key = (table, column)
        vals = self.values.get(key)
        if vals is None and self.load_values is not None:
            try:
                vals = [v for v in self.load_values(table, column) if v is not None]
            except Exception:  # noqa: BLE001
                vals = []
            self.values[key] = vals
        return vals or ()


# -- fuzzy matching -------------------------------------------------------------------------------
def fuzzy_rank(word: str, candidates: Iterable[str], usage: Mapping[str, int] | None = None) -> list[str]:
    """Candidates matching ``word``: prefix, then substring, then subsequence matches.

    >>> fuzzy_rank("nd", ["nucleus_detection_v0", "and", "ndx", "synapses"])
    ['ndx', 'and', 'nucleus_detection_v0']
    >>> fuzzy_rank("", ["b", "a"])
    ['b', 'a']
    """
    low = word.lower()
    usage = usage or {}
    scored = []
    pattern = re.compile(".*?".join(re.escape(c) for c in low)) if low else None
    for index, cand in enumerate(dict.fromkeys(candidates)):
        c = cand.lower()
        if not low:
            kind, pos = 0, 0
        elif c.startswith(low):
            kind, pos = 0, 0
        elif low in c:
            kind, pos = 1, c.index(low)
        else:
            assert pattern is not None
            m = pattern.search(c)
            if m is None:
                continue
            kind, pos = 2, m.end() - m.start()
        # ties keep the caller's order (catalog order of tables and columns)
        scored.append((kind, -usage.get(cand, 0), pos, len(cand) if low else 0, index, cand))
    scored.sort()
    return [s[-1] for s in scored]


# -- the grammar ----------------------------------------------------------------------------------
_lark_lock = threading.Lock()
_lark: Any = None


def _grammar() -> Any:
    """A tree-less LALR parser over the same grammar file (no AST building: just accepts())."""
    global _lark
    with _lark_lock:
        if _lark is None:
            from lark import Lark

            _lark = Lark.open_from_package("caveql.grammar", "caveql.lark", ("",), parser="lalr",
                                           lexer="basic", start="script", cache=True)
        return _lark


# keywords that are also identifiers (the grammar's `name`)
_SOFT = SOFT_KEYWORDS
_NOT_KEYWORDS = {"NAME", "QUOTED_NAME", "STRING", "INT", "DECIMAL", "PARAM", "$END",
                 "INT_LIST"}  # INT_LIST: the lexer's one-token `(1, 2, ...)` (H1)
_PUNCT = {"SEMI": ";", "COMMA": ",", "DOT": ".", "LPAR": "(", "RPAR": ")", "STAR": "*", "SLASH": "/",
          "PERCENT": "%", "PLUS": "+", "MINUS": "-", "EQ": "=", "NE": "!=", "LT": "<", "LE": "<=",
          "GT": ">", "GE": ">=", "TILDE": "~", "NOT_TILDE": "!~"}


def _functions() -> tuple[str, ...]:
    from caveql.repl.lexer import FUNCTIONS

    return FUNCTIONS


def _accepts(tokens: list[Any]) -> set[str] | None:
    """Terminals the grammar accepts after ``tokens`` (``None``: the prefix does not parse)."""
    from lark.exceptions import UnexpectedInput

    parser = _grammar()
    try:
        ip = parser.parse_interactive("", start="script")
        for tok in tokens:
            ip.feed_token(tok)
        return set(ip.accepts())
    except UnexpectedInput:
        return None


# -- scanning the text ----------------------------------------------------------------------------
@dataclass
class _Scan:
    statement_start: int  # where the statement holding the cursor begins
    statement_end: int
    in_string: int | None  # offset of the opening quote if the cursor is inside a '...'
    in_comment: bool
    in_qname: int | None = None  # offset of the opening quote if inside a "quoted name"


def _scan(text: str, cursor: int) -> _Scan:
    """One pass over the text: statement bounds around the cursor, string/comment state."""
    i, n = 0, len(text)
    start = 0
    state = "code"
    quote_at: int | None = None
    at_cursor: tuple[str, int | None] | None = None
    end = n
    while i < n:
        if i == cursor and at_cursor is None:
            at_cursor = (state, quote_at)
        ch = text[i]
        if state == "code":
            if ch == "'":
                state, quote_at = "string", i
            elif ch == '"':
                state, quote_at = "qname", i
            elif text.startswith("--", i):
                state = "line"
            elif text.startswith("/*", i):
                state = "block"
                i += 1
            elif ch == ";":
                if i < cursor:
                    start = i + 1
                elif at_cursor is not None:
                    end = i
                    break
        elif state == "string" and ch == "'":
            state = "code"  # '' re-enters at the next quote: the pair is an escape
        elif state == "qname" and ch == '"':
            state = "code"
        elif state == "line" and ch == "\n":
            state = "code"
        elif state == "block" and text.startswith("*/", i):
            state = "code"
            i += 1
        i += 1
    if at_cursor is None:
        at_cursor = (state, quote_at)
    st, q = at_cursor
    return _Scan(start, end, q if st == "string" else None, st in ("line", "block"),
                 q if st == "qname" else None)


def _lex(text: str) -> list[Any] | None:
    from lark.exceptions import UnexpectedInput

    try:
        return list(_grammar().lex(text))
    except UnexpectedInput:
        return None


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*$")


def _scope(tokens: Sequence[Any]) -> dict[str, str]:
    """``{alias or table: table}`` for the statement's FROM/JOIN sources (also subqueries')."""
    out: dict[str, str] = {}
    names = ("NAME", "QUOTED_NAME", *_SOFT)
    for i, tok in enumerate(tokens):
        if tok.type not in ("FROM", "JOIN") or i + 1 >= len(tokens) or tokens[i + 1].type not in names:
            continue
        table = _unquote(str(tokens[i + 1]))
        out.setdefault(table, table)
        j = i + 2
        if j < len(tokens) and tokens[j].type == "AS":
            j += 1
        if j < len(tokens) and tokens[j].type in ("NAME", "QUOTED_NAME"):
            out[_unquote(str(tokens[j]))] = table
    return out


def _unquote(name: str) -> str:
    if len(name) >= 2 and name[0] == name[-1] == '"':
        return name[1:-1].replace('""', '"')
    return name


def _case(word: str, keyword: str) -> str:
    return keyword.lower() if word and word.islower() else keyword


def _expand(cols: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    out = []
    for name, typ in cols:
        out.append((name, typ))
        if typ == "position":
            out.extend((f"{name}_{a}", "int") for a in "xyz")
    return out


# -- the entry point ------------------------------------------------------------------------------
def suggest(text: str, cursor: int, catalog: CompletionCatalog, *, limit: int = 200) -> list[Completion]:
    """Completions at ``cursor`` in ``text`` (best first).

    >>> cat = CompletionCatalog(tables=["t"], columns={"t": [("cell_type", "string")]},
    ...                         values={("t", "cell_type"): ["BC", "MC", "23P"]})
    >>> [c.text for c in suggest("SELECT * FROM t WHERE cell_type = 'B", 36, cat)]
    ["BC'"]
    >>> [c.text for c in suggest("sel", 3, cat)]
    ['select']
    """
    cursor = max(0, min(cursor, len(text)))
    before = text[:cursor]
    if before.lstrip().startswith("\\") and "\n" not in before.strip():
        return _command_completions(before.lstrip(), catalog)[:limit]
    scan = _scan(text, cursor)
    if scan.in_comment:
        return []
    if scan.in_string is not None:
        return _value_completions(text, scan, cursor, catalog)[:limit]
    stmt_before = text[scan.statement_start:cursor]
    star = re.search(r"(?:\bSELECT\s+(?:DISTINCT\s+)?|,\s*)(?:([A-Za-z_][A-Za-z0-9_]*)\.)?\*$",
                     stmt_before, re.IGNORECASE)
    if star:  # Tab after `*` / `alias.*`: the column list it stands for (pgcli's expansion)
        width = len(star.group(1)) + 2 if star.group(1) else 1  # replaces "*" or "alias.*"
        return _star_expansion(text, scan, star.group(1), width, catalog)[:limit]
    m = re.search(r":[A-Za-z_][A-Za-z0-9_]*$|:$", stmt_before)
    if m:
        word = m.group()[1:]
        return [Completion(":" + v, -len(m.group()), "variable")
                for v in fuzzy_rank(word, catalog.variables)][:limit]
    if scan.in_qname is not None:
        word = text[scan.in_qname:cursor]
    else:
        wm = _WORD.search(stmt_before)
        word = wm.group() if wm else ""
    if word and word[0].isdigit():
        return []
    head = stmt_before[: len(stmt_before) - len(word)]
    tokens = _lex(head)
    whole = _lex(text[scan.statement_start:scan.statement_end].rstrip()) or tokens or []
    scope = _scope(whole)
    if tokens is None:
        return []
    accepted = _accepts(tokens)
    if accepted is None:
        return []
    return _rank(word, _candidates(word, tokens, accepted, scope, catalog), catalog)[:limit]


def _candidates(word: str, tokens: list[Any], accepted: set[str], scope: dict[str, str],
                catalog: CompletionCatalog) -> list[Completion]:
    prev = tokens[-1].type if tokens else None
    out: list[Completion] = []
    name_ok = "NAME" in accepted
    if prev == "DOT" and len(tokens) >= 2 and tokens[-2].type in ("NAME", "QUOTED_NAME", *_SOFT):
        table = scope.get(_unquote(str(tokens[-2])), _unquote(str(tokens[-2])))
        for col, typ in _expand(catalog.columns_of(table)):
            out.append(Completion(col, -len(word), "column", f"{typ} · {table}"))
        return out
    for term in sorted(accepted):
        if term in _NOT_KEYWORDS or term in _PUNCT:
            continue
        if name_ok and term in _SOFT and _SOFT <= accepted and prev not in (
                "AT", "SPLIT", "SHOW", "NULLS", "EXPLAIN"):
            continue  # accepted only as an identifier here (where every soft keyword is)
        out.append(Completion(_case(word, term), -len(word), "keyword"))
    if not name_ok:
        return out
    if prev in ("FROM", "JOIN", "DESCRIBE"):
        out.extend(Completion(t, -len(word), "table") for t in catalog.tables)
        out.extend(Completion(v, -len(word), "view") for v in catalog.views)
        return out
    if prev == "ON":
        out.extend(Completion(c, -len(word), "join", "join condition")
                   for c in _join_conditions(tokens, scope, catalog))
    if prev == "SET":
        return [c for c in out if c.kind != "keyword"] + [
            Completion(s, -len(word), "setting") for s in SETTINGS]
    if prev == "USE":
        return [Completion(d, -len(word), "datastack") for d in catalog.datastacks]
    if prev in ("AS",) or (prev in ("NAME", "QUOTED_NAME", "RPAR") and "AS" in accepted and not _in_expr(tokens)):
        return out  # an alias is being typed: nothing to suggest but keywords
    seen: dict[str, list[str]] = {}
    for alias, table in scope.items():
        for col, _typ in _expand(catalog.columns_of(table)):
            seen.setdefault(col, [])
            if alias not in seen[col]:
                seen[col].append(alias)
    tables_with_alias = {t for a, t in scope.items() if a != t}
    for col, owners in seen.items():
        owners = [a for a in owners if not (a in tables_with_alias and a == scope[a])] or owners
        meta = ", ".join(owners)
        if len(owners) == 1 or len({scope[a] for a in owners}) == 1:
            out.append(Completion(col, -len(word), "column", meta))
        else:
            out.extend(Completion(f"{a}.{col}", -len(word), "column", scope[a]) for a in owners)
    out.extend(Completion(a, -len(word), "alias", t) for a, t in scope.items() if a != t)
    out.extend(Completion(_case(word, f) + "(", -len(word), "function") for f in _functions())
    return out


def _join_conditions(tokens: list[Any], scope: dict[str, str], catalog: CompletionCatalog) -> list[str]:
    """``a.x = b.y`` for the table just joined and each earlier one, where both are root ids
    (a synapse end onto a cell table's ``pt_root_id``: the joins CAVE questions are made of).

    >>> cat = CompletionCatalog(tables=["syn", "ct"], columns={"syn": [("pre_pt_root_id", "int")],
    ...                         "ct": [("pt_root_id", "int"), ("target_id", "int")]})
    >>> from caveql.repl.completion import _lex, _scope
    >>> toks = _lex("SELECT * FROM syn s JOIN ct c ON")
    >>> _join_conditions(toks, _scope(toks), cat)
    ['s.pre_pt_root_id = c.pt_root_id']
    """
    names = ("NAME", "QUOTED_NAME", *_SOFT)
    joins = [i for i, t in enumerate(tokens) if t.type == "JOIN"]
    if not joins or joins[-1] + 1 >= len(tokens) or tokens[joins[-1] + 1].type not in names:
        return []
    i = joins[-1] + 1
    table = _unquote(str(tokens[i]))
    j = i + 1 + (1 if i + 1 < len(tokens) and tokens[i + 1].type == "AS" else 0)
    new = _unquote(str(tokens[j])) if j < len(tokens) and tokens[j].type in ("NAME", "QUOTED_NAME") else table
    mine = [c for c, _t in catalog.columns_of(table)]
    out = []
    for alias, other in scope.items():
        if alias == new or (alias == other and other in scope.values() and any(
                a != o and o == other for a, o in scope.items())):
            continue  # the joined table itself; a table name shadowed by its alias
        for x, _t in catalog.columns_of(other):
            for y in mine:
                if x.endswith("pt_root_id") and y.endswith("pt_root_id"):
                    out.append(f"{alias}.{x} = {new}.{y}")
    return out


def _star_expansion(text: str, scan: _Scan, alias: str | None, width: int,
                    catalog: CompletionCatalog) -> list[Completion]:
    """``*`` -> every column of the statement's sources, in catalog order (qualified when there
    are several sources); ``a.*`` -> the columns of ``a``."""
    tokens = _lex(text[scan.statement_start:scan.statement_end]) or []
    scope = _scope(tokens)
    if alias is not None:
        table = scope.get(alias)
        if table is None:
            return []
        cols = [f"{alias}.{c}" for c, _t in catalog.columns_of(table)]
    else:
        aliases = {a: t for a, t in scope.items() if a != t or list(scope.values()).count(t) == 1}
        many = len(aliases) > 1
        cols = [f"{a}.{c}" if many else c for a, t in aliases.items() for c, _t in catalog.columns_of(t)]
    if not cols:
        return []
    return [Completion(", ".join(cols), -width, "expansion", f"{len(cols)} columns")]


def _in_expr(tokens: list[Any]) -> bool:
    """Whether the last clause keyword is one that takes expressions (not FROM/JOIN)."""
    for tok in reversed(tokens):
        if tok.type in ("FROM", "JOIN"):
            return False
        if tok.type in ("SELECT", "WHERE", "ON", "BY", "HAVING", "AND", "OR", "COMMA", "LPAR"):
            return True
    return True


def _rank(word: str, cands: list[Completion], catalog: CompletionCatalog) -> list[Completion]:
    by_text: dict[str, Completion] = {}
    for c in cands:
        by_text.setdefault(c.text, c)
    bare = word.strip('"')
    order = fuzzy_rank(bare, list(by_text), catalog.usage)
    # names before keywords when both match equally well (pgcli puts keywords last)
    kinds = {"join": -1, "column": 0, "alias": 1, "table": 0, "view": 0, "value": 0, "variable": 0, "setting": 0,
             "datastack": 0, "function": 2, "keyword": 3}
    low = bare.lower()

    def key(t: str) -> tuple[int, int]:
        c = t.lower()
        tier = 0 if c.startswith(low) else 1
        return (tier, kinds.get(by_text[t].kind, 1))

    order = sorted(order, key=key)  # stable: keeps the fuzzy order inside each tier and kind
    return [by_text[t] for t in order]


def _value_completions(text: str, scan: _Scan, cursor: int, catalog: CompletionCatalog) -> list[Completion]:
    assert scan.in_string is not None
    quote = scan.in_string
    prefix = text[quote + 1:cursor]
    before = text[scan.statement_start:quote]
    m = re.search(r'((?:[A-Za-z_][A-Za-z0-9_]*|"[^"]*")\.)?([A-Za-z_][A-Za-z0-9_]*|"[^"]*")\s*'
                  r"(?:=|!=|<>|~|(?:NOT\s+)?LIKE|(?:NOT\s+)?IN\s*\((?:\s*'(?:[^']|'')*'\s*,)*)\s*$",
                  before, re.IGNORECASE)
    if m is None:
        return []
    alias = _unquote(m.group(1)[:-1]) if m.group(1) else None
    column = _unquote(m.group(2))
    tokens = _lex(text[scan.statement_start:scan.statement_end].replace("'", " ")) or []
    scope = _scope(tokens)
    tables = [scope[alias]] if alias and alias in scope else list(dict.fromkeys(scope.values()))
    values: list[str] = []
    for table in tables:
        if any(c == column for c, _ in catalog.columns_of(table)) or table in (scope.get(alias or ""),):
            values.extend(catalog.values_of(table, column))
    return [Completion(v.replace("'", "''") + "'", -len(prefix), "value", column)
            for v in fuzzy_rank(prefix, values, catalog.usage)]


def _command_completions(line: str, catalog: CompletionCatalog) -> list[Completion]:
    from caveql.repl.commands import REGISTRY, find

    name, sep, arg = line.partition(" ")
    if not sep:
        names = list(REGISTRY)
        return [Completion(n, -len(name), "command", REGISTRY[n].help)
                for n in fuzzy_rank(name[1:], [n[1:] for n in names])
                for n in ["\\" + n]]
    try:
        cmd = find(name)
    except Exception:  # noqa: BLE001 - unknown command: nothing to complete
        return []
    word = arg.split(" ")[-1]
    if cmd.arg == "table":
        return [Completion(t, -len(word), "table") for t in fuzzy_rank(word, [*catalog.tables, *catalog.views])]
    if cmd.arg == "format":
        from caveql.repl.formatting import FORMATS

        return [Completion(f, -len(word), "format") for f in fuzzy_rank(word, FORMATS)]
    if cmd.arg in ("onoff", "expanded"):
        opts = ["on", "off"] + (["auto"] if cmd.arg == "expanded" else [])
        return [Completion(o, -len(word), "option") for o in fuzzy_rank(word, opts)]
    if cmd.arg == "variable":
        return [Completion(v, -len(word), "variable") for v in fuzzy_rank(word, catalog.variables)]
    if cmd.arg == "file":
        return _file_completions(word)
    return []


def _file_completions(word: str) -> list[Completion]:
    path = os.path.expanduser(word)
    folder, stem = os.path.split(path)
    try:
        entries = sorted(os.listdir(folder or "."))
    except OSError:
        return []
    out = []
    for e in entries:
        if e.startswith(stem) and (stem.startswith(".") or not e.startswith(".")):
            full = os.path.join(folder, e)
            shown = os.path.join(os.path.split(word)[0], e)
            out.append(Completion(shown + ("/" if os.path.isdir(full) else ""), -len(word), "file"))
    return out
