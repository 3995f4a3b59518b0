"""Constant folding of the identity functions, before analysis.

A call whose arguments are all constants (literals, ``:params``, ``'...'::timestamp``) is
evaluated once through the backend and replaced by its value, so the planner sees a literal:
``WHERE pt_root_id = NUCLEUS_ROOT(1234, 343)`` becomes an equality and ``WHERE post_pt_root_id
IN LATEST_ROOTS(905)`` an IN list, both pushed to the service. Each folded call leaves a note
for EXPLAIN (``LATEST_ROOTS(905) → [1005, 2001]``). A call over columns that leaves ``at`` out
gets the statement's pinned "now" as an explicit argument, so every call of one statement,
folded or run in the local step, sees the same instant. A list-valued call is folded only as
an IN target (elsewhere it runs in the local step); a timestamp-valued one is not folded.

>>> import tempfile
>>> from caveql.backends.local import LocalBackend
>>> from caveql.datastack.tiny import build_tiny
>>> from caveql.syntax import parse, print_ast
>>> b = LocalBackend(build_tiny(tempfile.mkdtemp()))
>>> stmt = parse("SELECT * FROM nuclei WHERE pt_root_id IN LATEST_ROOTS(905)").statements[0]
>>> out, notes = fold(stmt, b, {})
>>> print_ast(out), notes
('SELECT * FROM nuclei WHERE pt_root_id IN (1005, 2001)', ('LATEST_ROOTS(905) → [1005, 2001]',))
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, replace
from datetime import UTC, date, datetime
from typing import Any

from caveql.analyze import parse_timestamp
from caveql.analyze.resolve import constant_value
from caveql.backends.base import Backend
from caveql.errors import CaveqlError
from caveql.identity.resolve import IDENTITY_FUNCTIONS, Resolver, check_graph
from caveql.lru import LRU
from caveql.syntax import ast
from caveql.syntax.printer import print_ast

__all__ = ["fold", "mentions_identity"]

_NO_AT = ("ROOT_CREATED", "ROOT_SUPERSEDED")
_AT_REQUIRED = ("PAST_IDS",)
_LISTS = ("LATEST_ROOTS", "PAST_IDS")
_NOT_CONSTANT = object()


def _children(node: Any) -> Any:
    if isinstance(node, tuple):
        for x in node:
            yield from _children(x)
    elif isinstance(node, ast.Node):
        yield node
        for f in fields(node):
            if f.name != "span":
                yield from _children(getattr(node, f.name))


def _identity_call(node: Any) -> bool:
    return isinstance(node, ast.FuncCall) and node.name.upper() in IDENTITY_FUNCTIONS \
        and not node.star and not node.distinct and node.filter is None


# answers of mentions_identity by the tree's identity (the tree held, so its id is not reused):
# the parser hands the same tree for the same text, and the walk costs ~0.1 ms a statement
_SEEN: LRU[tuple[Any, bool]] = LRU(256)


def mentions_identity(stmt: ast.Node) -> bool:
    """Whether the statement calls an identity function anywhere.

    >>> from caveql.syntax import parse
    >>> mentions_identity(parse("SELECT IS_LATEST(1)").statements[0])
    True
    """
    hit = _SEEN.get(id(stmt))
    if hit is not None and hit[0] is stmt:
        return hit[1]
    found = any(_identity_call(n) for n in _children(stmt))
    _SEEN.put(id(stmt), (stmt, found))
    return found


def fold(stmt: Any, backend: Backend, params: Mapping[str, Any], now: datetime | None = None
         ) -> tuple[Any, tuple[str, ...]]:
    """``stmt`` with its constant identity calls replaced by their values, and the notes saying
    what each became (see the module docstring). ``now`` pins "now" (default: the clock)."""
    if not mentions_identity(stmt):
        return stmt, ()
    folder = _Folder(Resolver(backend, now), backend, params)
    return folder.visit(stmt), tuple(folder.notes)


class _Folder:
    def __init__(self, resolver: Resolver, backend: Backend, params: Mapping[str, Any]) -> None:
        self.r = resolver
        self.backend = backend
        self.params = params
        self.notes: list[str] = []
        self.pinned = ast.Cast(ast.String(resolver.now.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")),
                               ast.TypeName("TIMESTAMP"))

    def visit(self, node: Any) -> Any:
        if isinstance(node, tuple):
            out = tuple(self.visit(x) for x in node)
            return node if all(a is b for a, b in zip(out, node, strict=True)) else out
        if not isinstance(node, ast.Node):
            return node
        changed = {}
        for f in fields(node):
            if f.name == "span":
                continue
            v = getattr(node, f.name)
            nv = self.visit(v)
            if nv is not v:
                changed[f.name] = nv
        if isinstance(node, ast.SelectItem) and node.alias is None and _identity_call(node.expr) \
                and "expr" in changed and not isinstance(changed["expr"], ast.FuncCall):
            changed["alias"] = node.expr.name.lower()  # a folded item keeps the call's column name
        if changed:
            node = replace(node, **changed)
        if isinstance(node, ast.In) and _identity_call(node.target):
            return self._in(node)
        if _identity_call(node):
            return self._call(node)
        return node

    def _in(self, node: ast.In) -> ast.Node:
        call = node.target
        assert isinstance(call, ast.FuncCall)
        value = self._evaluate(call)
        if value is _NOT_CONSTANT or not isinstance(value, list):
            return node  # (NULL or not constant: the local step's list_contains decides)
        span = call.span
        items = tuple(ast.Integer(int(v), span=span) for v in value)
        return replace(node, target=ast.ListExpr(items, span=span))

    def _call(self, call: ast.FuncCall) -> ast.Node:
        name = call.name.upper()
        if name in _LISTS or name in _NO_AT:
            # not folded here (a list outside IN, a timestamp), but evaluated when constant: its
            # errors (a never-a-root id) then point at the call
            self._evaluate(call, note=False)
            value = _NOT_CONSTANT
        else:
            value = self._evaluate(call)
        if value is _NOT_CONSTANT:
            if name not in _NO_AT and name not in _AT_REQUIRED and len(call.args) == 1 \
                    and self._constant(call.args[0]) is _NOT_CONSTANT:
                return replace(call, args=(*call.args, self.pinned))  # now, pinned for the statement
            return call
        span = call.span
        if value is None:
            return ast.Null(span=span)
        if isinstance(value, bool):
            return ast.Boolean(value, span=span)
        return ast.Integer(int(value), span=span)

    def _constant(self, e: ast.Node) -> Any:
        if isinstance(e, ast.Cast) and not e.type.args and not e.type.array \
                and e.type.name in ("TIMESTAMP", "DATETIME", "DATE"):
            inner = self._constant(e.expr)
            if inner is _NOT_CONSTANT or inner is None:
                return inner
            return self._instant(inner, e.span)
        try:
            return constant_value(e, self.params)
        except ValueError:
            return _NOT_CONSTANT

    def _instant(self, v: Any, span: Any) -> Any:
        if isinstance(v, datetime):
            return v.astimezone(UTC) if v.tzinfo else v.replace(tzinfo=UTC)
        if isinstance(v, date):
            return datetime(v.year, v.month, v.day, tzinfo=UTC)
        if isinstance(v, str):
            return parse_timestamp(v, span).replace(tzinfo=UTC)
        return _NOT_CONSTANT

    def _evaluate(self, call: ast.FuncCall, note: bool = True) -> Any:
        """The call's value when its arguments are constants of the right kinds, else
        ``_NOT_CONSTANT`` (analysis then types it, or says what is wrong)."""
        name = call.name.upper()
        try:
            check_graph(name, self.backend)
        except CaveqlError as err:
            err.span = err.span or call.span
            raise
        n = len(call.args)
        if n not in ((2,) if name in _AT_REQUIRED else (1,) if name in _NO_AT else (1, 2)):
            return _NOT_CONSTANT
        value = self._constant(call.args[0])
        if value is _NOT_CONSTANT or not (value is None or type(value) is int):
            return _NOT_CONSTANT
        at: Any = None
        if n == 2:
            at = self._constant(call.args[1])
            if at is None:
                return None  # NULL instant: NULL
            if isinstance(at, (str, datetime, date)):
                at = self._instant(at, call.args[1].span)
            elif type(at) is not int:
                return _NOT_CONSTANT
        if value is None:
            return None
        try:
            (result,) = self.r.evaluate(name, [value], [at])
        except CaveqlError as err:
            err.span = err.span or call.span
            raise
        if not note:
            return result
        shown = "NULL" if result is None else str(result).replace("True", "true").replace("False", "false")
        self.notes.append(f"{print_ast(call)} → {shown}")
        return result

