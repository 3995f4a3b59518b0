"""The parse-time transformer: lark reductions -> AST nodes (one method per grammar rule).

It runs inline in lark's LALR loop (``Lark(transformer=...)``), so no parse tree is ever
built and nothing here recurses: a 100,000-item IN list or 100,000 nested parentheses cost
no Python stack. Every method receives *all* tokens of its rule (``keep_all_tokens``), which
is how spans are computed without lark's ``meta``.

Checks that need no catalog live here and raise :class:`~caveql.errors.CqlSyntaxError`
subclasses with the offending span: integer range, literal kinds of LIMIT / AT clauses,
duplicate clauses, BOX corners, and a nesting limit (:data:`MAX_DEPTH`) so later stages,
which do recurse, never meet a tree deep enough for a ``RecursionError``. Number literals
must be finite doubles (no overflow to infinity, no underflow to 0) and LIMIT / OFFSET /
AT VERSION at most 2^63-1: what DuckDB and the service accept.

Each statement built checks the current cancel token (:mod:`caveql.cancel`): a call cancelled
while a long script is parsed stops within a statement.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from lark import Token

from caveql.cancel import check as _cancelled
from caveql.errors import CqlSyntaxError, InvalidLiteralError, Span
from caveql.syntax import ast as A

__all__ = ["DOUBLE_MAX", "FILE_FUNCTIONS", "INT64_MAX", "MAX_DEPTH", "Builder", "UINT64_MAX"]

from caveql.syntax.build_common import (  # noqa: F401 - the limits are part of this module's API
    _DIGITS,
    _TYPE_WORD,
    DOUBLE_MAX,
    FILE_FUNCTIONS,
    INT32_MAX,
    INT64_MAX,
    MAX_DEPTH,
    TAIL_CLAUSES,
    UINT64_MAX,
    _alias,
    _check_double,
    _count,
    _cov,
    _cover,
    _drop_tokens,
    _first_last,
    _nodes_in,
    _OPS,
    _Part,
    _short,
    _sp,
    _split_ints,
    _tspan,
    _unquote,
    _word,
)
from caveql.syntax.build_sources import SourceRules


class Builder(SourceRules):
    """Callbacks for lark, named after the grammar's rules and aliases.

    One instance per parser; :meth:`reset` before each parse (it keeps the depth table).

    >>> from caveql.syntax import parse
    >>> parse("a + 1", start="expression")
    Binary(op='+', left=Column(name='a', table=None), right=Integer(value=1))
    """

    def __init__(self) -> None:
        # depth of every expression node deeper than 1, keyed by id (nodes outlive the parse)
        self._depth: dict[int, int] = {}
        # queries written in parentheses, and where the ORDER BY / LIMIT / OFFSET of a SELECT
        # start: keyed by id, with the node itself kept so an id is never reused mid-parse
        self._parens: dict[int, tuple[Any, Span | None]] = {}
        self._tails: dict[int, tuple[Any, Span | None, str]] = {}
        self._keep: list[Any] = []  # nodes replaced by a copy: alive until reset (ids stay unique)
        # `(query) ORDER BY ...` whose query has its own: (query, clauses, first clause) by id
        self._pending: dict[int, tuple[Any, dict[str, Any], _Part]] = {}

    def reset(self) -> None:
        self._depth.clear()
        self._parens.clear()
        self._tails.clear()
        self._keep.clear()
        self._pending.clear()

    def _deep(self, node: Any, *children: Any) -> Any:
        get = self._depth.get
        d = 1 + max((get(id(c), 1) for c in children if c is not None), default=0)
        if d > MAX_DEPTH:
            query = isinstance(node, (A.Select, A.SetOp, A.With, A.Join, A.Derived, A.Pivot, A.Unpivot))
            raise CqlSyntaxError(
                f"{'query' if query else 'expression'} nested too deeply (more than {MAX_DEPTH} levels)",
                # point at where the expression starts: underlining all of it can be megabytes
                span=Span(node.span.start, node.span.start + 1, node.span.line, node.span.column),
                hint=("split it up into several statements, or a WITH of smaller steps" if query else
                      "split it up; long OR chains of equalities are better written as x IN (...)"),
            )
        if d > 1:
            self._depth[id(node)] = d
        return node

    def _is_paren(self, q: Any) -> bool:
        hit = self._parens.get(id(q))
        return hit is not None and hit[0] is q

    def _replaced(self, old: Any, new: Any) -> Any:
        """``new`` (a copy of ``old``) keeps ``old``'s depth; ``old`` stays alive (ids stay unique)."""
        self._keep.append(old)
        d = self._depth.get(id(old))
        if d is not None:
            self._depth[id(new)] = d
        return new

    # ------------------------------------------------------------------ start rules
    def script(self, c: list[Any]) -> A.Script:
        self._no_pending()
        stmts = tuple(self._whole(x) for x in _drop_tokens(c))
        return A.Script(stmts, span=_cover(stmts[0], stmts[-1]))

    def single_statement(self, c: list[Any]) -> A.Node:
        self._no_pending()
        return self._whole(c[0])

    def _whole(self, stmt: Any) -> Any:
        """A statement written in parentheses spans them (the formatter cuts statements by span)."""
        if self._is_paren(stmt):
            return replace(stmt, span=self._paren_span(stmt))
        return stmt

    def single_expression(self, c: list[Any]) -> A.Node:
        self._no_pending()
        return c[0]

    # ------------------------------------------------------------------ queries
    def paren_query(self, c: list[Any]) -> Any:
        q = c[1]
        self._parens[id(q)] = (q, _cov(c))
        return q

    def _paren_span(self, q: Any) -> Span | None:
        hit = self._parens.get(id(q))
        return hit[1] if hit is not None and hit[0] is q else _sp(q)

    def with_query(self, c: list[Any]) -> A.With:
        _cancelled()
        recursive = isinstance(c[1], Token) and c[1].type == "RECURSIVE"
        ctes = tuple(x for x in c[1:-1] if isinstance(x, A.Cte))
        seen: set[str] = set()
        for cte in ctes:
            if cte.name in seen:
                raise CqlSyntaxError(f"WITH defines {cte.name!r} twice", span=cte.span,
                                     hint="give each common table expression its own name")
            seen.add(cte.name)
        node = A.With(ctes, c[-1], recursive, span=_cover(c[0], self._paren_span(c[-1])))
        return self._deep(node, *ctes, c[-1])

    def cte(self, c: list[Any]) -> A.Cte:
        columns = c[1].value if isinstance(c[1], _Part) else ()
        node = A.Cte(c[0].value, c[-1], columns, span=_cover(c[0], self._paren_span(c[-1])))
        return self._deep(node, c[-1])

    def _tail_of(self, q: Any) -> tuple[Span | None, str] | None:
        """Where the ORDER BY / LIMIT / OFFSET of an unparenthesised branch start, if it has any."""
        if not isinstance(q, (A.Select, A.SetOp)) or self._is_paren(q):
            return None
        if not (q.order_by or q.limit is not None or q.offset is not None):
            return None
        hit = self._tails.get(id(q))
        if hit is not None and hit[0] is q:
            return hit[1], hit[2]
        first = q.order_by[0] if q.order_by else q.limit if q.limit is not None else q.offset
        return _sp(first), "ORDER BY" if q.order_by else "LIMIT" if q.limit is not None else "OFFSET"

    def set_op(self, c: list[Any]) -> A.SetOp:
        _cancelled()
        left, op, right = c[0], c[1].type, c[-1]
        bad = self._tail_of(left)
        if id(left) in self._pending:
            self._no_pending()  # `(SELECT ... LIMIT 1) LIMIT 2 UNION ...`: the clauses have no query
        if bad is not None:
            raise CqlSyntaxError(
                f"{bad[1]} inside a set operation: put the branch before {op} in parentheses",
                span=bad[0],
                hint=f"ORDER BY, LIMIT and OFFSET after the last branch apply to the whole {op}; "
                     f"to sort or limit one branch, write (SELECT ... {bad[1]} ...) {op} SELECT ...",
            )
        tail: dict[str, Any] = {}
        moved = self._tail_of(right)
        pending = self._pending.pop(id(right), None)
        if pending is not None:
            # `... UNION (SELECT ... LIMIT 1) ORDER BY x`: the ORDER BY is the whole UNION's
            tail, moved = pending[1], (pending[2].span, _word(pending[2]))
        elif moved is not None:
            # written after the last branch: they belong to the whole set operation
            tail = {"order_by": right.order_by, "limit": right.limit, "offset": right.offset}
            right = self._replaced(right, replace(right, order_by=(), limit=None, offset=None))
        node = A.SetOp(op, left, right, all=len(c) == 4,
                       span=_cover(self._paren_span(left), self._paren_span(c[-1])), **tail)
        if moved is not None:
            self._tails[id(node)] = (node, *moved)
        return self._deep(node, left, right, *tail.get("order_by", ()), tail.get("limit"),
                          tail.get("offset"))

    def paren_tail(self, c: list[Any]) -> Any:
        """``(query) ORDER BY ... LIMIT ...``: the clauses become the query's own when it has none;
        otherwise they stay pending, for a set operation to take (``... UNION (SELECT ... LIMIT 1)
        ORDER BY x`` sorts the whole), and are an error if none does."""
        q = c[0]
        parts = [x for x in c[1:] if isinstance(x, _Part)]
        kw: dict[str, Any] = {}
        for x in parts:
            if x.kind in kw:
                raise CqlSyntaxError(f"{TAIL_CLAUSES[x.kind]} given twice", span=x.span,
                                     hint="LIMIT and OFFSET may appear once per query")
            kw[x.kind] = x.value
        if isinstance(q, A.With) or q.order_by or q.limit is not None or q.offset is not None:
            self._pending[id(q)] = (q, kw, parts[0])
            return q
        node = self._replaced(q, replace(q, span=_cov(c), **kw))
        self._tails[id(node)] = (node, parts[0].span, _word(parts[0]))
        return self._deep(node, q, *kw.get("order_by", ()), kw.get("limit"), kw.get("offset"))

    def _no_pending(self) -> None:
        for q, _kw, part in self._pending.values():
            if isinstance(q, A.With):
                raise CqlSyntaxError(
                    f"{_word(part)} after a WITH query in parentheses", span=part.span,
                    hint="write it inside, after the query's last SELECT: "
                         f"WITH ... SELECT ... {_word(part)} ...",
                )
            what = next(
                w for w, v in (("ORDER BY", q.order_by), ("LIMIT", q.limit), ("OFFSET", q.offset))
                if v not in ((), None))
            raise CqlSyntaxError(
                f"this query in parentheses already has its own {what}", span=part.span,
                hint=f"to apply {_word(part)} to its result, select from it: "
                     f"SELECT * FROM (...) AS t {_word(part)} ...",
            )

    # ------------------------------------------------------------------ SELECT
    def select(self, c: list[Any]) -> A.Select:
        _cancelled()  # each statement of a long script: a cancelled call stops parsing it
        kw: dict[str, Any] = {"source": None}
        seen: dict[str, _Part] = {}
        tail_start: _Part | None = None
        for x in c:
            if isinstance(x, _Part):
                if x.kind in TAIL_CLAUSES:
                    if x.kind in seen:
                        raise CqlSyntaxError(
                            f"{TAIL_CLAUSES[x.kind]} given twice", span=x.span,
                            hint="ORDER BY, LIMIT, OFFSET and each CAVE clause may appear once per SELECT",
                        )
                    seen[x.kind] = x
                if x.kind in ("order_by", "limit", "offset") and tail_start is None:
                    tail_start = x
                if x.kind == "order_by" and tail_start is not x:
                    raise CqlSyntaxError(
                        f"ORDER BY after {TAIL_CLAUSES[tail_start.kind]}", span=x.span,
                        hint="ORDER BY comes before LIMIT and OFFSET",
                    )
                if x.kind == "from":
                    kw["source"], kw["joins"] = x.value
                else:
                    kw[x.kind] = x.value
        cave = A.CaveClauses(
            resolution=kw.pop("resolution", None), version=kw.pop("version", None),
            timestamp=kw.pop("timestamp", None), live=kw.pop("live", False),
            split_positions=kw.pop("split", False),
            span=_cover(*_first_last([seen[k] for k in TAIL_CLAUSES if k in seen and k not in
                                       ("order_by", "limit", "offset")])),
        )
        node = A.Select(items=kw.pop("items"), source=kw.pop("source"), cave=cave, span=_cov(c), **kw)
        if tail_start is not None:
            self._tails[id(node)] = (node, tail_start.span, _word(tail_start))
        return self._deep(node, *_nodes_in(x.value if isinstance(x, _Part) else x
                                           for x in c if not isinstance(x, Token)))

    def distinct(self, c: list[Any]) -> _Part:
        return _Part("distinct", True, _sp(c[0]))

    def select_list(self, c: list[Any]) -> _Part:
        return _Part("items", _drop_tokens(c), _cov(c))

    def item_plain(self, c: list[Any]) -> A.SelectItem:
        return self._deep(A.SelectItem(c[0], span=_sp(c[0])), c[0])

    def item_as(self, c: list[Any]) -> A.SelectItem:
        return self._deep(A.SelectItem(c[0], c[2].value, span=_cov(c)), c[0])

    def item_implicit(self, c: list[Any]) -> A.SelectItem:
        return self._deep(A.SelectItem(c[0], c[1].value, span=_cov(c)), c[0])

    def item_star(self, c: list[Any]) -> A.SelectItem:
        return A.SelectItem(A.Star(span=_sp(c[0])), span=_sp(c[0]))

    def item_table_star(self, c: list[Any]) -> A.SelectItem:
        return A.SelectItem(A.Star(c[0].value, span=_cov(c)), span=_cov(c))

    def implicit_alias(self, c: list[Any]) -> _Part:
        return self.name(c)

    def alias_as(self, c: list[Any]) -> _Part:
        return _Part("alias", c[1].value, _cov(c))

    def alias_implicit(self, c: list[Any]) -> _Part:
        return _Part("alias", c[0].value, _cov(c))

    def column_names(self, c: list[Any]) -> _Part:
        return _Part("columns", tuple(x.value for x in c if isinstance(x, _Part)), _cov(c))

    def from_clause(self, c: list[Any]) -> _Part:
        return _Part("from", (c[1], tuple(c[2:])), _cov(c))

    def where(self, c: list[Any]) -> _Part:
        return _Part("where", c[1], _cov(c))

    def group_by(self, c: list[Any]) -> _Part:
        return _Part("group_by", _drop_tokens(c[2:]), _cov(c))

    def having(self, c: list[Any]) -> _Part:
        return _Part("having", c[1], _cov(c))

    def group_by_all(self, c: list[Any]) -> _Part:
        return _Part("group_by_all", True, _cov(c))

    def window_clause(self, c: list[Any]) -> _Part:
        defs = _drop_tokens(c[1:])
        seen: set[str] = set()
        for name, spec in defs:
            if name in seen:
                raise CqlSyntaxError(f"window {name!r} is defined twice", span=spec.span,
                                     hint="each WINDOW name may be defined once")
            seen.add(name)
        return _Part("windows", defs, _cov(c))

    def window_def(self, c: list[Any]) -> tuple[str, A.WindowSpec]:
        return (c[0].value, self._window_spec(c[3] if len(c) == 5 else None, _cover(c[2], c[-1])))

    def qualify(self, c: list[Any]) -> _Part:
        return _Part("qualify", c[1], _cov(c))

    def order_by(self, c: list[Any]) -> _Part:
        return _Part("order_by", _drop_tokens(c[2:]), _cov(c))

    def order_item(self, c: list[Any]) -> A.OrderItem:
        desc, nulls = False, None
        for x in c[1:]:
            if x.kind == "direction":
                desc = x.value
            else:
                nulls = x.value
        return self._deep(A.OrderItem(c[0], desc, nulls, span=_cov(c)), c[0])

    def direction(self, c: list[Any]) -> _Part:
        return _Part("direction", c[0].type == "DESC", _sp(c[0]))

    def nulls(self, c: list[Any]) -> _Part:
        return _Part("nulls", c[1].type, _cov(c))

    def limit(self, c: list[Any]) -> _Part:
        return _Part("limit", _count(c[1], "LIMIT"), _cov(c))

    def offset(self, c: list[Any]) -> _Part:
        return _Part("offset", _count(c[1], "OFFSET"), _cov(c))

    def at_resolution(self, c: list[Any]) -> _Part:
        values = _drop_tokens(c[2:])
        if len(values) == 1 and isinstance(values[0], A.ListExpr):
            values = values[0].items
        if len(values) != 3:
            raise CqlSyntaxError(
                f"AT RESOLUTION takes three numbers (x, y, z), got {len(values)}", span=_cov(c),
                hint="nanometres per unit along x, y and z, e.g. AT RESOLUTION 4, 4, 40",
            )
        for v in values:
            if not (isinstance(v, A.Param) or (isinstance(v, (A.Integer, A.Float)) and v.value > 0)):
                raise InvalidLiteralError(
                    "a resolution is a positive number or a :parameter", span=v.span,
                    hint="nanometres per unit, e.g. AT RESOLUTION 4, 4, 40",
                )
        return _Part("resolution", tuple(values), _cov(c))

    def at_version(self, c: list[Any]) -> _Part:
        return _Part("version", _count(c[2], "AT VERSION"), _cov(c))

    def at_timestamp(self, c: list[Any]) -> _Part:
        v = c[2]
        if isinstance(v, A.String):
            try:
                datetime.fromisoformat(v.value.replace("Z", "+00:00"))
            except ValueError:
                raise InvalidLiteralError(
                    f"'{v.value}' is not an ISO-8601 timestamp", span=v.span,
                    hint="for example AT TIMESTAMP '2023-04-20T12:00:00Z'",
                ) from None
        elif not isinstance(v, A.Param):
            raise InvalidLiteralError(
                "AT TIMESTAMP takes a 'string' (ISO-8601) or a :parameter", span=v.span,
                hint="for example AT TIMESTAMP '2023-04-20T12:00:00Z'",
            )
        return _Part("timestamp", v, _cov(c))

    def at_live(self, c: list[Any]) -> _Part:
        return _Part("live", True, _cov(c))

    def split_positions(self, c: list[Any]) -> _Part:
        return _Part("split", True, _cov(c))

    # ------------------------------------------------------------------ other statements
    def show_tables(self, c: list[Any]) -> A.Show:
        _cancelled()
        return A.Show("TABLES", _unquote(c[3], "'") if len(c) > 2 else None, span=_cov(c))

    def show_views(self, c: list[Any]) -> A.Show:
        _cancelled()
        return A.Show("VIEWS", _unquote(c[3], "'") if len(c) > 2 else None, span=_cov(c))

    def show_versions(self, c: list[Any]) -> A.Show:
        _cancelled()
        return A.Show("VERSIONS", span=_cov(c))

    def show_datastack(self, c: list[Any]) -> A.Show:
        _cancelled()
        return A.Show("DATASTACK", span=_cov(c))

    def describe(self, c: list[Any]) -> A.Describe:
        _cancelled()
        return A.Describe(c[1].value, span=_cov(c))

    def explain(self, c: list[Any]) -> A.Explain:
        return A.Explain(c[-1], analyze=len(c) == 3, span=_cover(c[0], self._paren_span(c[-1])))

    def set_stmt(self, c: list[Any]) -> A.Set:
        _cancelled()
        values = _drop_tokens(c[3:])
        value = values[0] if len(values) == 1 else A.ListExpr(values, span=_cover(values[0], values[-1]))
        return self._deep(A.Set(c[1].value.lower(), value, span=_cov(c)), *values)

    def use_stmt(self, c: list[Any]) -> A.Use:
        _cancelled()
        return A.Use(c[1].value, span=_cov(c))

    # ------------------------------------------------------------------ expressions
    def binary(self, c: list[Any]) -> A.Binary:
        left, op, right = c
        return self._deep(A.Binary(_OPS[op.type], left, right, span=_cov(c)), left, right)

    def unary(self, c: list[Any]) -> A.Node:
        op, operand = c
        span = _cov(c)
        if op.type == "MINUS":
            # fold `-5` into a literal so `-5` prints and re-parses as the same node
            if isinstance(operand, A.Integer):
                return A.Integer(-operand.value, span=span)
            if isinstance(operand, A.Float):
                return A.Float(operand.value.copy_negate(), span=span)  # exact, no context rounding
            return self._deep(A.Unary("-", operand, span=span), operand)
        if op.type == "NOT" and isinstance(operand, A.Exists) and not operand.negated:
            # `NOT EXISTS (...)` is one node, as `-5` is one literal
            return self._replaced(operand, A.Exists(operand.query, True, span=span))
        return self._deep(A.Unary("NOT" if op.type == "NOT" else "+", operand, span=span), operand)

    def in_expr(self, c: list[Any]) -> A.In:
        negated = c[1].type == "NOT"
        return self._deep(A.In(c[0], c[-1], negated, span=_cov(c)), c[0], c[-1])

    def in_list(self, c: list[Any]) -> A.ListExpr:
        items = _drop_tokens(c)
        return self._deep(A.ListExpr(items, span=_cov(c)), *items)

    def in_subquery(self, c: list[Any]) -> A.Subquery:
        return self.subquery(c)

    def in_param(self, c: list[Any]) -> A.Param:
        return self.param(c)

    def in_call(self, c: list[Any]) -> A.FuncCall:
        return c[0]  # x IN LATEST_ROOTS(...): a list-valued call

    def between(self, c: list[Any]) -> A.Between:
        negated = c[1].type == "NOT"
        e, low, high = c[0], c[-3], c[-1]
        return self._deep(A.Between(e, low, high, negated, span=_cov(c)), e, low, high)

    def like(self, c: list[Any]) -> A.Like:
        negated = c[1].type == "NOT"
        return self._deep(A.Like(c[0], c[-1], negated, span=_cov(c)), c[0], c[-1])

    def regex(self, c: list[Any]) -> A.Regex:
        negated = c[1].type == "NOT_TILDE"
        return self._deep(A.Regex(c[0], c[2], negated, span=_cov(c)), c[0], c[2])

    def is_null(self, c: list[Any]) -> A.IsNull:
        negated = len(c) == 4
        return self._deep(A.IsNull(c[0], negated, span=_cov(c)), c[0])

    def within_box(self, c: list[Any]) -> A.WithinBox:
        corners = []
        for corner in (c[4], c[6]):
            if not (isinstance(corner, A.ListExpr) and len(corner.items) == 3):
                raise CqlSyntaxError(
                    "a BOX corner is a point (x, y, z)", span=corner.span,
                    hint="WITHIN BOX((x0, y0, z0), (x1, y1, z1))",
                )
            corners.append(corner.items)
        node = A.WithinBox(c[0], corners[0], corners[1], span=_cov(c))
        return self._deep(node, c[0], c[4], c[6])

    def subquery(self, c: list[Any]) -> A.Subquery:
        q = c[0]
        return self._deep(A.Subquery(q, span=self._paren_span(q)), q)

    def exists(self, c: list[Any]) -> A.Exists:
        q = c[1]
        return self._deep(A.Exists(q, span=_cover(c[0], self._paren_span(q))), q)

    def case_searched(self, c: list[Any]) -> A.Case:
        return self._case(None, c)

    def case_simple(self, c: list[Any]) -> A.Case:
        return self._case(c[1], c)

    def _case(self, operand: Any, c: list[Any]) -> A.Case:
        whens = tuple(x.value for x in c if isinstance(x, _Part))
        else_ = c[-2] if isinstance(c[-3], Token) and c[-3].type == "ELSE" else None
        node = A.Case(operand, whens, else_, span=_cov(c))
        return self._deep(node, operand, else_, *(e for pair in whens for e in pair))

    def when_then(self, c: list[Any]) -> _Part:
        return _Part("when", (c[1], c[3]), _cov(c))

    def cast_call(self, c: list[Any]) -> A.Cast:
        word = str(c[0]).upper()
        if word not in ("CAST", "TRY_CAST"):
            raise CqlSyntaxError(
                f"`AS` inside {str(c[0])}(...): only CAST and TRY_CAST take `expression AS type`",
                span=_tspan(c[3]), hint="function arguments are separated by `,`",
            )
        node = A.Cast(c[2], c[4], try_=word == "TRY_CAST", span=_cov(c))
        return self._deep(node, c[2])

    def shorthand_cast(self, c: list[Any]) -> A.Cast:
        return self._deep(A.Cast(c[0], c[2], shorthand=True, span=_cov(c)), c[0])

    def type_name(self, c: list[Any]) -> A.TypeName:
        word = c[0]
        if not _TYPE_WORD.match(word.value):
            raise CqlSyntaxError(f"{word.value!r} is not a type name", span=word.span,
                                 hint="a type is a word such as BIGINT, DOUBLE, VARCHAR or TIMESTAMP")
        args = next((x.value for x in c[1:] if isinstance(x, _Part)), ())
        array = sum(1 for x in c if isinstance(x, Token) and x.type == "BRACKETS")
        return A.TypeName(word.value.upper(), args, array, span=_cov(c))

    def type_args(self, c: list[Any]) -> _Part:
        ints = _split_ints(c[0]) if len(c) == 1 else [self.integer([c[1]])]
        for i in ints:
            if i.value > INT32_MAX:
                raise InvalidLiteralError(f"type argument {i.value} is out of range", span=i.span)
        return _Part("type_args", tuple(i.value for i in ints), _cov(c))

    # ------------------------------------------------------------------ windows
    def window_call(self, c: list[Any]) -> A.WindowCall:
        func, window = c[0], c[-1]
        filter_ = c[4] if len(c) > 3 else None
        w = window.value if isinstance(window, _Part) else window
        node = A.WindowCall(func, w, filter_, span=_cov(c))
        return self._deep(node, func, filter_, window if isinstance(window, A.WindowSpec) else None)

    def filter_call(self, c: list[Any]) -> A.Node:
        # an aggregate's FILTER (WHERE c): analysis refuses it on a function that is not one
        func, cond = c[0], c[4]
        node = replace(func, filter=cond, span=_cov(c))
        return self._deep(node, func, cond)

    def window_named(self, c: list[Any]) -> _Part:
        return c[0]

    def window_inline(self, c: list[Any]) -> A.WindowSpec:
        return self._window_spec(c[1], _cov(c))

    def window_name(self, c: list[Any]) -> _Part:
        return self.name(c)

    def window_spec(self, c: list[Any]) -> _Part:
        kw: dict[str, Any] = {}
        for x in c:
            if isinstance(x, A.Frame):
                kw["frame"] = x
            elif x.kind == "name":
                kw["base"] = x.value
            else:
                kw[x.kind] = x.value
        return _Part("window_spec", kw, None)

    def _window_spec(self, part: Any, span: Span | None) -> A.WindowSpec:
        # an empty `OVER ()` has no window_spec children: lark hands over an empty part or a token
        kw = part.value if isinstance(part, _Part) and part.kind == "window_spec" else {}
        node = A.WindowSpec(kw.get("base"), kw.get("partition_by", ()), kw.get("order_by", ()),
                            kw.get("frame"), span=span)
        return self._deep(node, *node.partition_by, *node.order_by, node.frame)

    def partition_by(self, c: list[Any]) -> _Part:
        return _Part("partition_by", _drop_tokens(c[2:]), _cov(c))

    def frame(self, c: list[Any]) -> A.Frame:
        unit = c[0].type
        bounds = [x for x in c if isinstance(x, A.FrameBound)]
        exclude = next((x.value for x in c if isinstance(x, _Part)), None)
        start, end = bounds[0], bounds[1] if len(bounds) == 2 else None
        node = A.Frame(unit, start, end, exclude, span=_cov(c))
        return self._deep(node, start, end)

    def bound_unbounded(self, c: list[Any]) -> A.FrameBound:
        return A.FrameBound(f"UNBOUNDED {c[1].type}", span=_cov(c))

    def bound_current(self, c: list[Any]) -> A.FrameBound:
        return A.FrameBound("CURRENT ROW", span=_cov(c))

    def bound_offset(self, c: list[Any]) -> A.FrameBound:
        return self._deep(A.FrameBound(c[1].type, c[0], span=_cov(c)), c[0])

    def frame_exclude(self, c: list[Any]) -> _Part:
        return _Part("exclude", " ".join(t.type for t in c[1:]), _cov(c))

    def integer(self, c: list[Any]) -> A.Integer:
        tok = c[0]
        # check the length first: int() refuses strings over 4,300 digits with a ValueError
        if len(tok) > 20 or int(tok) > UINT64_MAX:
            raise InvalidLiteralError(
                f"integer literal {_short(tok)} is out of range (the largest is {UINT64_MAX}, 2^64-1)",
                span=_tspan(tok),
            )
        return A.Integer(int(tok), span=_tspan(tok))

    def decimal(self, c: list[Any]) -> A.Float:
        tok = c[0]
        try:
            value = Decimal(str(tok))
        except InvalidOperation:  # the DECIMAL terminal only matches valid numbers; belt and braces
            raise InvalidLiteralError(f"bad number {_short(tok)}", span=_tspan(tok)) from None
        _check_double(value, str(tok), _tspan(tok))
        return A.Float(value, span=_tspan(tok))

    def string(self, c: list[Any]) -> A.String:
        return A.String(_unquote(c[0], "'"), span=_tspan(c[0]))

    def true(self, c: list[Any]) -> A.Boolean:
        return A.Boolean(True, span=_tspan(c[0]))

    def false(self, c: list[Any]) -> A.Boolean:
        return A.Boolean(False, span=_tspan(c[0]))

    def null(self, c: list[Any]) -> A.Null:
        return A.Null(span=_tspan(c[0]))

    def param(self, c: list[Any]) -> A.Param:
        return A.Param(str(c[0])[1:], span=_tspan(c[0]))

    def column(self, c: list[Any]) -> A.Column:
        if len(c) == 3:
            return A.Column(c[2].value, c[0].value, span=_cov(c))
        return A.Column(c[0].value, span=_cov(c))

    def call(self, c: list[Any]) -> A.FuncCall:
        distinct = len(c) > 2 and isinstance(c[2], Token) and c[2].type == "DISTINCT"
        args = _drop_tokens(c[2:])
        node = A.FuncCall(str(c[0]).upper(), args, distinct, span=_cov(c))
        return self._deep(node, *args)

    def call_star(self, c: list[Any]) -> A.FuncCall:
        return A.FuncCall(str(c[0]).upper(), star=True, span=_cov(c))

    def int_list(self, c: list[Any]) -> A.ListExpr:
        tok = c[0]
        return A.ListExpr(tuple(_split_ints(tok)), span=_tspan(tok))

    def call_int_list(self, c: list[Any]) -> A.FuncCall:
        args = tuple(_split_ints(c[1]))
        return A.FuncCall(str(c[0]).upper(), args, span=_cov(c))

    def paren(self, c: list[Any]) -> A.Node:
        return c[1]

    def list_expr(self, c: list[Any]) -> A.ListExpr:
        return self.in_list(c)

    def name(self, c: list[Any]) -> _Part:
        tok = c[0]
        if tok.type == "QUOTED_NAME":
            value = _unquote(tok, '"')
            if not value:
                raise InvalidLiteralError("empty quoted identifier \"\"", span=_tspan(tok))
            return _Part("name", value, _tspan(tok))
        return _Part("name", str(tok), _tspan(tok))
