"""AST -> canonical CQL text, and ``format_cql`` (the formatter behind ``caveql fmt``).

Canonical form: keywords upper-case, one space around binary operators, ``AS`` before every
alias, identifiers quoted only when needed, the fewest parentheses that keep the tree, the
tail clauses in the order LIMIT, OFFSET, AT RESOLUTION, AT VERSION, AT TIMESTAMP, AT LIVE,
SPLIT POSITIONS. A statement that fits in :data:`WIDTH` columns stays on one line; a longer
one gets a line per clause (pgFormatter / sqlfluff style), a long select list one item per
line, and a long WHERE / HAVING one line per top-level ``AND``.

``parse(print_ast(a)) == a`` for every AST the parser can produce (spans aside), hence
``format_cql`` is idempotent.

>>> print(format_cql("select a,b from t where x=1 and y<>2 limit 5 at version 3"))
SELECT a, b FROM t WHERE x = 1 AND y != 2 LIMIT 5 AT VERSION 3;
<BLANKLINE>
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from decimal import Decimal

from caveql.errors import CqlSyntaxError
from caveql.syntax import ast as A
from caveql.syntax.diagnose import KEYWORDS, RESERVED
from caveql.syntax.parser import parse

__all__ = ["WIDTH", "format_cql", "print_ast", "quote_ident"]

#: Statements longer than this many characters are laid out one clause per line.
WIDTH = 80
_INDENT = "  "
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

# binding strength, loosest first (the grammar's precedence levels)
_PREC = {"OR": 1, "AND": 2, "NOT": 3, "PRED": 4, "+": 5, "-": 5, "*": 6, "/": 6, "%": 6,
         "UNARY": 7, "CAST": 8, "ATOM": 9}
_CMP = frozenset({"=", "!=", "<", "<=", ">", ">="})


def quote_ident(name: str, *, soft: bool = False) -> str:
    """An identifier as CQL source: bare when it can be, else ``"quoted"``.

    With ``soft`` a soft keyword is quoted too: where only a plain name may stand (an alias
    without AS, a window name).

    >>> quote_ident("cell_type"), quote_ident("order"), quote_ident("Weird name")
    ('cell_type', '"order"', '"Weird name"')
    >>> quote_ident("rows"), quote_ident("rows", soft=True)
    ('rows', '"rows"')
    """
    if _PLAIN.match(name) and name.upper() not in (KEYWORDS if soft else RESERVED):
        return name
    return '"' + name.replace('"', '""') + '"'


def _string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _decimal(value: Decimal) -> str:
    s = str(value)
    if "E" not in s and "." not in s:
        s += ".0"  # keep it a decimal literal: `2` would come back as an Integer
    return s


def _prec(e: A.Node) -> int:
    if isinstance(e, A.Binary):
        if e.op in _CMP:
            return _PREC["PRED"]
        return _PREC[e.op]
    if isinstance(e, A.Unary):
        return _PREC["NOT"] if e.op == "NOT" else _PREC["UNARY"]
    if isinstance(e, A.Exists) and e.negated:
        return _PREC["NOT"]
    if isinstance(e, A.Cast) and e.shorthand:
        return _PREC["CAST"]
    if isinstance(e, (A.In, A.Between, A.Like, A.Regex, A.IsNull, A.WithinBox)):
        return _PREC["PRED"]
    if isinstance(e, (A.Integer, A.Float)) and e.value < 0:
        return _PREC["UNARY"]  # printed with a leading minus
    return _PREC["ATOM"]


def expr_sql(e: A.Node, min_prec: int = 0) -> str:
    """An expression as text, parenthesised if it binds looser than ``min_prec``.

    >>> expr_sql(A.Binary("*", A.Binary("+", A.Column("a"), A.Integer(1)), A.Integer(-2)))
    '(a + 1) * -2'
    """
    text = _expr(e)
    return f"({text})" if _prec(e) < min_prec else text


def _expr(e: A.Node) -> str:  # noqa: C901 - one branch per node type reads best
    if isinstance(e, A.Column):
        return quote_ident(e.name) if e.table is None else f"{quote_ident(e.table)}.{quote_ident(e.name)}"
    if isinstance(e, A.Integer):
        return str(e.value)
    if isinstance(e, A.Float):
        return _decimal(e.value)
    if isinstance(e, A.String):
        return _string(e.value)
    if isinstance(e, A.Boolean):
        return "TRUE" if e.value else "FALSE"
    if isinstance(e, A.Null):
        return "NULL"
    if isinstance(e, A.Param):
        return f":{e.name}"
    if isinstance(e, A.Star):
        return "*" if e.table is None else f"{quote_ident(e.table)}.*"
    if isinstance(e, A.Binary):
        p = _prec(e)
        if p == _PREC["PRED"]:  # comparisons do not chain: both sides are arithmetic
            return f"{expr_sql(e.left, 5)} {e.op} {expr_sql(e.right, 5)}"
        # left-associative: a right operand of equal strength keeps its parentheses
        return f"{expr_sql(e.left, p)} {e.op} {expr_sql(e.right, p + 1)}"
    if isinstance(e, A.Unary):
        if e.op == "NOT":
            return f"NOT {expr_sql(e.operand, _PREC['NOT'])}"
        inner = expr_sql(e.operand, _PREC["UNARY"])
        if inner.startswith(("-", "+")):
            inner = f"({inner})"  # `--` would start a comment
        return f"{e.op}{inner}"
    if isinstance(e, A.ListExpr):
        return "(" + ", ".join(_expr(i) for i in e.items) + ")"
    if isinstance(e, A.Subquery):
        return _subquery(e.select)
    if isinstance(e, A.In):
        target = e.target
        t = _expr(target)  # a ListExpr (even of one item) prints in parentheses
        return f"{expr_sql(e.expr, 5)} {'NOT IN' if e.negated else 'IN'} {t}"
    if isinstance(e, A.Between):
        kw = "NOT BETWEEN" if e.negated else "BETWEEN"
        return f"{expr_sql(e.expr, 5)} {kw} {expr_sql(e.low, 5)} AND {expr_sql(e.high, 5)}"
    if isinstance(e, A.Like):
        return f"{expr_sql(e.expr, 5)} {'NOT LIKE' if e.negated else 'LIKE'} {expr_sql(e.pattern, 5)}"
    if isinstance(e, A.Regex):
        return f"{expr_sql(e.expr, 5)} {'!~' if e.negated else '~'} {expr_sql(e.pattern, 5)}"
    if isinstance(e, A.IsNull):
        return f"{expr_sql(e.expr, 5)} IS {'NOT NULL' if e.negated else 'NULL'}"
    if isinstance(e, A.WithinBox):
        lo = ", ".join(_expr(v) for v in e.low)
        hi = ", ".join(_expr(v) for v in e.high)
        return f"{expr_sql(e.expr, 5)} WITHIN BOX(({lo}), ({hi}))"
    if isinstance(e, A.FuncCall):
        filt = f" FILTER (WHERE {_expr(e.filter)})" if e.filter is not None else ""
        if e.star:
            return f"{e.name}(*){filt}"
        args = ", ".join(_expr(a) for a in e.args)
        return f"{e.name}({'DISTINCT ' if e.distinct else ''}{args}){filt}"
    if isinstance(e, A.Case):
        parts = ["CASE"] + ([_expr(e.operand)] if e.operand is not None else [])
        parts += [f"WHEN {_expr(w)} THEN {_expr(t)}" for w, t in e.whens]
        if e.else_ is not None:
            parts.append(f"ELSE {_expr(e.else_)}")
        return " ".join(parts + ["END"])
    if isinstance(e, A.Cast):
        if e.shorthand:
            return f"{expr_sql(e.expr, _PREC['CAST'])}::{_type(e.type)}"
        return f"{'TRY_CAST' if e.try_ else 'CAST'}({_expr(e.expr)} AS {_type(e.type)})"
    if isinstance(e, A.Exists):
        return f"{'NOT EXISTS' if e.negated else 'EXISTS'} {_subquery(e.query)}"
    if isinstance(e, A.WindowCall):
        text = _expr(e.func)
        if e.filter is not None:
            text += f" FILTER (WHERE {_expr(e.filter)})"
        w = e.window
        return f"{text} OVER " + (quote_ident(w, soft=True) if isinstance(w, str) else f"({_window(w)})")
    raise TypeError(f"not an expression node: {type(e).__name__}")


def _type(t: A.TypeName) -> str:
    args = f"({', '.join(str(a) for a in t.args)})" if t.args else ""
    return f"{t.name}{args}{'[]' * t.array}"


def _window(w: A.WindowSpec) -> str:
    """The inside of a window's parentheses."""
    parts = []
    if w.base is not None:
        parts.append(quote_ident(w.base, soft=True))
    if w.partition_by:
        parts.append("PARTITION BY " + ", ".join(_expr(e) for e in w.partition_by))
    if w.order_by:
        parts.append("ORDER BY " + ", ".join(_order_item(o) for o in w.order_by))
    if w.frame is not None:
        f = w.frame
        text = f.unit + (f" BETWEEN {_bound(f.start)} AND {_bound(f.end)}" if f.end is not None
                         else f" {_bound(f.start)}")
        if f.exclude is not None:
            text += f" EXCLUDE {f.exclude}"
        parts.append(text)
    return " ".join(parts)


def _bound(b: A.FrameBound) -> str:
    if b.offset is None:
        return b.kind
    o = b.offset
    plain = isinstance(o, A.Param) or (isinstance(o, (A.Integer, A.Float)) and o.value >= 0)
    return f"{_expr(o) if plain else '(' + _expr(o) + ')'} {b.kind}"


# ------------------------------------------------------------------ statements


def _item(i: A.SelectItem) -> str:
    text = _expr(i.expr)
    return text if i.alias is None else f"{text} AS {quote_ident(i.alias)}"


def _alias(alias: str | None) -> str:
    return "" if alias is None else f" AS {quote_ident(alias)}"


def _table(t: A.Node) -> str:
    """A table source as text."""
    if isinstance(t, A.TableRef):
        return quote_ident(t.name) + _alias(t.alias)
    if isinstance(t, A.FileRef):
        if t.function is None:
            return _string(t.path) + _alias(t.alias)
        args = [_string(t.path)] + [f"{quote_ident(k)} = {_expr(v)}" for k, v in t.options]
        return f"{t.function}({', '.join(args)}){_alias(t.alias)}"
    if isinstance(t, A.ParamTable):
        return f":{t.name}{_alias(t.alias)}"
    if isinstance(t, A.Derived):
        cols = f" ({', '.join(quote_ident(c) for c in t.columns)})" if t.columns else ""
        return f"{_subquery(t.query)}{_alias(t.alias)}{cols}"
    if isinstance(t, A.Pivot):
        aggs = ", ".join(_item(i) for i in t.aggregates)
        values = ", ".join(_expr(v.value) + _alias(v.alias) for v in t.values)
        return (f"{_table(t.source)} PIVOT ({aggs} FOR {_expr(t.column)} IN ({values}))"
                f"{_alias(t.alias)}")
    if isinstance(t, A.Unpivot):
        cols = ", ".join(_expr(c) + _alias(a) for c, a in t.columns)
        nulls = " INCLUDE NULLS" if t.include_nulls else ""
        return (f"{_table(t.source)} UNPIVOT{nulls} ({quote_ident(t.value_name)} FOR "
                f"{quote_ident(t.name_name)} IN ({cols})){_alias(t.alias)}")
    raise TypeError(f"not a table source: {type(t).__name__}")


def _join(j: A.Join) -> tuple[str, str]:
    if j.kind == "CROSS":
        return "CROSS JOIN", _table(j.source)
    kw = "JOIN" if j.kind == "INNER" else f"{j.kind} JOIN"
    if j.on is None:
        return kw, f"{_table(j.source)} USING ({', '.join(quote_ident(c) for c in j.using)})"
    return kw, f"{_table(j.source)} ON {_expr(j.on)}"


def _order_item(o: A.OrderItem) -> str:
    text = _expr(o.expr)
    if o.descending:
        text += " DESC"
    if o.nulls:
        text += f" NULLS {o.nulls}"
    return text


def _conjuncts(e: A.Node) -> list[A.Node]:
    """The top-level AND terms of a left-nested chain (a right-nested AND stays one term)."""
    out: list[A.Node] = []
    while isinstance(e, A.Binary) and e.op == "AND":
        out.append(e.right)
        e = e.left
    out.append(e)
    out.reverse()
    return out


def _clauses(s: A.Select) -> list[tuple[str, str, list[str]]]:
    """(keyword, one-line body, body pieces for a broken layout) per clause, in order."""
    out: list[tuple[str, str, list[str]]] = []
    items = [_item(i) for i in s.items]
    out.append(("SELECT DISTINCT" if s.distinct else "SELECT", ", ".join(items), items))
    if s.source is not None:
        out.append(("FROM", _table(s.source), []))
    for j in s.joins:
        kw, body = _join(j)
        out.append((kw, body, []))
    if s.where is not None:
        terms = _conjuncts(s.where)
        out.append(("WHERE", _expr(s.where), [expr_sql(t, _PREC["AND"] + 1) for t in terms]))
    if s.group_by_all:
        out.append(("GROUP BY ALL", "", []))
    elif s.group_by:
        g = [_expr(e) for e in s.group_by]
        out.append(("GROUP BY", ", ".join(g), g))
    if s.having is not None:
        terms = _conjuncts(s.having)
        out.append(("HAVING", _expr(s.having), [expr_sql(t, _PREC["AND"] + 1) for t in terms]))
    if s.windows:
        w = [f"{quote_ident(name, soft=True)} AS ({_window(spec)})" for name, spec in s.windows]
        out.append(("WINDOW", ", ".join(w), w))
    if s.qualify is not None:
        terms = _conjuncts(s.qualify)
        out.append(("QUALIFY", _expr(s.qualify), [expr_sql(t, _PREC["AND"] + 1) for t in terms]))
    if s.order_by:
        o = [_order_item(i) for i in s.order_by]
        out.append(("ORDER BY", ", ".join(o), o))
    if s.limit is not None:
        out.append(("LIMIT", _expr(s.limit), []))
    if s.offset is not None:
        out.append(("OFFSET", _expr(s.offset), []))
    c = s.cave
    if c.resolution is not None:
        out.append(("AT RESOLUTION", ", ".join(_expr(v) for v in c.resolution), []))
    if c.version is not None:
        out.append(("AT VERSION", _expr(c.version), []))
    if c.timestamp is not None:
        out.append(("AT TIMESTAMP", _expr(c.timestamp), []))
    if c.live:
        out.append(("AT LIVE", "", []))
    if c.split_positions:
        out.append(("SPLIT POSITIONS", "", []))
    return out


def _line(kw: str, body: str) -> str:
    return f"{kw} {body}" if body else kw


# Set while a too-long clause is re-rendered: subqueries in it may then take several lines.
# (A ContextVar, so printing in several threads at once stays correct.)
_BREAK = ContextVar("caveql_printer_break", default=0)


def _subquery(q: A.Node) -> str:
    """A query in parentheses (a subquery, a derived table, a CTE's body)."""
    width = _BREAK.get()
    token = _BREAK.set(0)
    try:
        inline = _query_inline(q)
        # a literal with a line break inside must not be re-indented: keep such a subquery inline
        if not width or len(inline) + 2 <= width // 2 or "\n" in inline:
            return f"({inline})"
        body = _query(q, width - 4)
    finally:
        _BREAK.reset(token)
    return "(\n" + "\n".join(f"{_INDENT * 2}{line}" for line in body.split("\n")) + f"\n{_INDENT})"


# set operations: INTERSECT binds tighter than UNION and EXCEPT
_SET_PREC = {"UNION": 1, "EXCEPT": 1, "INTERSECT": 2}


def _has_tail(q: A.Node) -> bool:
    return isinstance(q, (A.Select, A.SetOp)) and bool(q.order_by or q.limit is not None
                                                       or q.offset is not None)


def _branches(q: A.SetOp) -> tuple[bool, bool]:
    """Whether the left and the right branch of ``q`` need parentheses."""
    p = _SET_PREC[q.op]
    left, right = q.left, q.right
    lp = isinstance(left, A.With) or _has_tail(left) or (
        isinstance(left, A.SetOp) and _SET_PREC[left.op] < p)
    rp = isinstance(right, A.With) or _has_tail(right) or (
        isinstance(right, A.SetOp) and _SET_PREC[right.op] <= p)
    return lp, rp


def _set_tail(q: A.SetOp) -> list[str]:
    out = []
    if q.order_by:
        out.append("ORDER BY " + ", ".join(_order_item(o) for o in q.order_by))
    if q.limit is not None:
        out.append(f"LIMIT {_expr(q.limit)}")
    if q.offset is not None:
        out.append(f"OFFSET {_expr(q.offset)}")
    return out


def _ctes(w: A.With) -> list[str]:
    out = []
    for c in w.ctes:
        cols = f" ({', '.join(quote_ident(n) for n in c.columns)})" if c.columns else ""
        out.append(f"{quote_ident(c.name)}{cols} AS")
    return out


def _query_inline(q: A.Node) -> str:
    """Any query on one line."""
    if isinstance(q, A.Select):
        return _select_inline(q)
    if isinstance(q, A.SetOp):
        lp, rp = _branches(q)
        left, right = _query_inline(q.left), _query_inline(q.right)
        op = q.op + (" ALL" if q.all else "")
        return " ".join([f"({left})" if lp else left, op, f"({right})" if rp else right, *_set_tail(q)])
    if isinstance(q, A.With):
        heads = _ctes(q)
        ctes = ", ".join(f"{h} ({_query_inline(c.query)})" for h, c in zip(heads, q.ctes))
        body = _query_inline(q.body)
        if isinstance(q.body, A.With):
            body = f"({body})"  # a WITH's body is a SELECT or set operation: another WITH in parentheses
        return f"WITH {'RECURSIVE ' if q.recursive else ''}{ctes} {body}"
    raise TypeError(f"not a query: {type(q).__name__}")


def _block(q: A.Node, width: int, parens: bool) -> list[str]:
    """A query's lines, in parentheses (the inside indented) when ``parens``."""
    if not parens:
        return _query(q, width).split("\n")
    inline = _query_inline(q)
    if len(inline) + 2 <= width or "\n" in inline:
        return [f"({inline})"]
    return ["("] + [_INDENT + line for line in _query(q, width - len(_INDENT)).split("\n")] + [")"]


def _query(q: A.Node, width: int) -> str:
    """Any query, on one line when it fits in ``width``, else a line per clause and branch."""
    if isinstance(q, A.Select):
        return _select(q, width)
    inline = _query_inline(q)
    if len(inline) <= width or "\n" in inline:
        return inline
    lines: list[str] = []
    if isinstance(q, A.SetOp):
        lp, rp = _branches(q)
        lines += _block(q.left, width, lp)
        lines.append(q.op + (" ALL" if q.all else ""))
        lines += _block(q.right, width, rp)
        lines += _set_tail(q)
        return "\n".join(lines)
    assert isinstance(q, A.With)
    heads = _ctes(q)
    for i, (h, c) in enumerate(zip(heads, q.ctes)):
        block = _block(c.query, width, True)
        first = ("WITH " + ("RECURSIVE " if q.recursive else "")) if i == 0 else ""
        sep = "," if i < len(q.ctes) - 1 else ""
        if len(block) == 1:
            lines.append(f"{first}{h} {block[0]}{sep}")
        else:
            lines.append(f"{first}{h} {block[0]}")
            lines += block[1:-1]
            lines.append(block[-1] + sep)
    lines += _block(q.body, width, isinstance(q.body, A.With))
    return "\n".join(lines)


def _select_inline(s: A.Select) -> str:
    return " ".join(_line(kw, body) for kw, body, _ in _clauses(s))


def _select(s: A.Select, width: int) -> str:
    clauses = _clauses(s)
    one = " ".join(_line(kw, body) for kw, body, _ in clauses)
    if len(one) <= width and "\n" not in one:
        return one
    token = _BREAK.set(width)
    try:
        broken = _clauses(s)  # the same clauses with long subqueries laid out over lines
    finally:
        _BREAK.reset(token)
    lines: list[str] = []
    for (kw, body, pieces), (_, wide_body, wide_pieces) in zip(clauses, broken):
        line = _line(kw, body)
        if len(line) > width:
            body, pieces = wide_body, wide_pieces
            line = _line(kw, body)
        if len(line) <= width or len(pieces) < 2:
            lines.append(line)
        elif kw in ("WHERE", "HAVING", "QUALIFY"):
            lines.append(f"{kw} {pieces[0]}")
            lines += [f"{_INDENT}AND {p}" for p in pieces[1:]]
        else:
            lines.append(kw)
            lines += [f"{_INDENT}{p}," for p in pieces[:-1]] + [f"{_INDENT}{pieces[-1]}"]
    return "\n".join(lines)


def _statement(st: A.Node, width: int) -> str:
    if isinstance(st, (A.Select, A.SetOp, A.With)):
        return _query(st, width)
    if isinstance(st, A.Show):
        return f"SHOW {st.what}" + (f" LIKE {_string(st.like)}" if st.like is not None else "")
    if isinstance(st, A.Describe):
        return f"DESCRIBE {quote_ident(st.name)}"
    if isinstance(st, A.Explain):
        head = "EXPLAIN ANALYZE" if st.analyze else "EXPLAIN"
        return f"{head} {_query(st.statement, width - len(head) - 1)}"
    if isinstance(st, A.Set):
        return f"SET {quote_ident(st.name)} = {_expr(st.value)}"
    if isinstance(st, A.Use):
        return f"USE {quote_ident(st.name)}"
    raise TypeError(f"not a statement node: {type(st).__name__}")


def _script(statements: list[str]) -> str:
    out = []
    for i, text in enumerate(statements):
        if i and ("\n" in text or "\n" in statements[i - 1]):
            out.append("")  # a blank line around multi-line statements
        out.append(text + ";")
    return "\n".join(out) + "\n"


def print_ast(node: A.Node, *, width: int = WIDTH) -> str:
    """Canonical CQL for a node: a script (``;``-terminated lines), a statement or an expression.

    >>> print_ast(A.Binary("AND", A.Column("a"), A.Binary("OR", A.Column("b"), A.Column("c"))))
    'a AND (b OR c)'
    >>> print_ast(parse("show tables like 'syn%'", start="statement"))
    "SHOW TABLES LIKE 'syn%'"
    """
    try:
        if isinstance(node, A.Script):
            return _script([_statement(s, width) for s in node.statements])
        if isinstance(node, (A.Select, A.SetOp, A.With, A.Show, A.Describe, A.Explain, A.Set, A.Use)):
            return _statement(node, width)
        return _expr(node)
    except RecursionError:
        raise CqlSyntaxError("the tree is nested too deeply to print") from None


# ------------------------------------------------------------------ formatting source text

# comments, with strings and quoted names skipped so a `--` inside them is not a comment
_SCAN = re.compile(r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|/\*[\s\S]*?\*/|[^'"/-]+|[\s\S]""")


_CODE = re.compile(r"[ \t\r\n\f]+")


def _without(text: str, spans: list[tuple[int, int]]) -> str:
    out, last = [], 0
    for s, e in spans:
        out.append(text[last:s])
        last = e
    out.append(text[last:])
    return "".join(out)


def _comments(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in _SCAN.finditer(text) if m.group().startswith(("--", "/*"))]


def format_cql(text: str, *, width: int = WIDTH) -> str:
    """Reformat a CQL script canonically, keeping its comments.

    Comments between statements stay where they are (one that follows a statement on its
    line stays on that line). A statement with a comment *inside* it is kept as written —
    the formatter never drops text. Raises :class:`~caveql.errors.CqlSyntaxError` if the text
    does not parse.

    >>> print(format_cql("-- cells\\nselect * from cells; -- all of them\\nshow tables"), end="")
    -- cells
    SELECT * FROM cells; -- all of them
    SHOW TABLES;
    """
    comments = _comments(text)
    if not _CODE.sub("", _without(text, comments)).strip():
        # nothing but comments and blank space (a header-only .cql file): keep the comments
        return "".join(text[s:e].rstrip() + "\n" for s, e in comments)
    script = parse(text)
    out: list[str] = []
    ci = 0
    prev_end = 0
    prev_multiline = False
    for st in script.statements:
        assert st.span is not None
        lead: list[str] = []
        while ci < len(comments) and comments[ci][0] < st.span.start:
            s, e = comments[ci]
            body = text[s:e].rstrip()
            on_prev_line = out and "\n" not in text[prev_end:s] and prev_end > 0
            if on_prev_line:
                out[-1] += " " + body
            else:
                lead.append(body)
            ci += 1
        inside = [c for c in comments[ci:] if c[0] < st.span.end]
        if inside:
            printed = text[st.span.start:st.span.end].strip()
            ci += len(inside)
        else:
            printed = _statement(st, width)
        multiline = "\n" in printed
        if out and (multiline or prev_multiline):
            out.append("")
        out += lead
        out.append(printed + ";")
        prev_end = _statement_end(text, st.span.end)
        prev_multiline = multiline
    for s, e in comments[ci:]:
        body = text[s:e].rstrip()
        if out and "\n" not in text[prev_end:s]:
            out[-1] += " " + body
        else:
            out.append(body)
    return "\n".join(out) + "\n"


def _statement_end(text: str, end: int) -> int:
    """Just past the `;` (and spaces) that ends a statement, if any."""
    m = re.compile(r"[ \t]*;?").match(text, end)
    return m.end() if m else end
