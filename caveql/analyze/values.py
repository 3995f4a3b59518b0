"""Notices for a string test that cannot match: ``WHERE cell_type = 'bc'`` when the column's
values are ``BC``, ``MC``, ... — the query is right to return no rows, but a person wants to
know why, and what was probably meant.

The catalog knows the distinct values of a table's string columns (the service's
``unique_string_values``; a local datastack computes them). An equality or ``IN`` on such a column
none of whose values is one of them gets a notice naming the close values (case-insensitive
first, then by likeness). It is a notice, not an error: the answer is still computed as asked.
The engine asks for notices only when a SELECT returned no rows, so the values are fetched only
then; anything that goes wrong fetching them gives no notice rather than an error.

>>> import tempfile
>>> from caveql.analyze.catalog import Catalog
>>> from caveql.backends.local import LocalBackend
>>> from caveql.datastack.tiny import build_tiny
>>> from caveql.syntax import parse
>>> backend = LocalBackend(build_tiny(tempfile.mkdtemp()))
>>> cat = Catalog(backend, max(backend.versions()))
>>> value_notices(parse("SELECT id FROM cells WHERE cell_type = 'bc'", start="statement"), cat, {})
["cells.cell_type has no value 'bc' (line 1, column 40); did you mean 'BC'?"]
>>> backend.close()
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from caveql.analyze.catalog import Catalog
from caveql.errors import CaveqlError, Span, did_you_mean
from caveql.syntax import ast

__all__ = ["value_notices"]

#: at most this many values are listed when none is close
_LISTED = 8


def value_notices(select: ast.QueryExpr, catalog: Catalog, params: Mapping[str, Any]) -> list[str]:
    """Notices for the string equalities / ``IN`` lists of ``select`` (and of its ``IN``
    subqueries) that match none of their column's known values (see the module docstring)."""
    notices: list[str] = []
    known: dict[tuple[str, str], set[str] | None] = {}
    for sel in _selects(select):
        refs = [sel.source, *(j.source for j in sel.joins)]
        sources = {(ref.alias or ref.name): ref.name for ref in refs if isinstance(ref, ast.TableRef)}
        only_tables = len(sources) == len(refs)
        for column, values, span in _string_tests(sel.where, params):
            if column.table is None and not only_tables:
                continue  # the column may be a derived table's or a file's: not ours to judge
            found = _values(catalog, sources, column, known)
            if found is None:
                continue
            table, values_of = found
            if not values_of or any(v in values_of for v in values):
                continue
            close: list[str] = []
            for v in values:
                close += [c for c in did_you_mean(v, values_of) if c not in close]
            quoted = " or ".join(_quote(v) for v in values[:_LISTED])
            where = f" (line {span.line}, column {span.column})" if span is not None else ""
            if close:
                tail = "did you mean " + " or ".join(_quote(c) for c in close) + "?"
            else:
                shown = sorted(values_of)[:_LISTED]
                tail = "its values are " + ", ".join(_quote(c) for c in shown) + (
                    f" ({len(values_of):,} in all)" if len(values_of) > len(shown) else "")
            notices.append(f"{table}.{column.name} has no value {quoted}{where}; {tail}")
    return notices


def _selects(query: ast.QueryExpr) -> Iterator[ast.Select]:
    """Every SELECT block of ``query``, outermost first: set-operation branches, CTEs, derived
    tables (also under PIVOT/UNPIVOT) and the subqueries of WHERE (``IN``, ``EXISTS``, scalar)."""
    stack: list[ast.Node] = [query]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.With):
            stack += [node.body, *(c.query for c in reversed(node.ctes))]
        elif isinstance(node, ast.SetOp):
            stack += [node.right, node.left]
        elif isinstance(node, (ast.Pivot, ast.Unpivot)):
            stack.append(node.source)
        elif isinstance(node, ast.Derived):
            stack.append(node.query)
        elif isinstance(node, ast.Select):
            yield node
            stack += [j.source for j in reversed(node.joins)]
            if node.source is not None:
                stack.append(node.source)
            for cond in _conditions(node.where):
                if isinstance(cond, ast.In) and isinstance(cond.target, ast.Subquery):
                    stack.append(cond.target.select)
                elif isinstance(cond, ast.Exists):
                    stack.append(cond.query)


def _conditions(e: ast.Node | None) -> Iterator[ast.Node]:
    """The tests under ``AND`` / ``OR`` (not under ``NOT``: a negated test is meant to miss)."""
    stack = [e] if e is not None else []
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Binary) and node.op.upper() in ("AND", "OR"):
            stack += [node.right, node.left]
        else:
            yield node


def _string_tests(where: ast.Node | None, params: Mapping[str, Any]
                  ) -> Iterator[tuple[ast.Column, list[str], Span | None]]:
    """``(column, string values, span of the values)`` for ``col = 'x'``, ``'x' = col``,
    ``col IN ('x', 'y')`` and their ``:param`` forms."""
    for node in _conditions(where):
        if isinstance(node, ast.Binary) and node.op == "=":
            for col, other in ((node.left, node.right), (node.right, node.left)):
                values = _strings(other, params)
                if isinstance(col, ast.Column) and values:
                    yield col, values, other.span
        elif isinstance(node, ast.In) and not node.negated and isinstance(node.expr, ast.Column):
            items = node.target.items if isinstance(node.target, ast.ListExpr) else (node.target,)
            values = [v for item in items for v in _strings(item, params)]
            if values and len(values) == len(items) or isinstance(node.target, ast.Param) and values:
                yield node.expr, values, node.target.span


def _strings(e: ast.Node, params: Mapping[str, Any]) -> list[str]:
    if isinstance(e, ast.String):
        return [e.value]
    if isinstance(e, ast.Param):
        v = params.get(e.name)
        if isinstance(v, str):
            return [v]
        if isinstance(v, (list, tuple)) and v and all(isinstance(x, str) for x in v):
            return list(v)
    return []


def _values(catalog: Catalog, sources: Mapping[str, str], column: ast.Column,
            known: dict[tuple[str, str], set[str] | None]) -> tuple[str, set[str]] | None:
    """``(table, its known values)`` of a string column, or None (not a string column, unknown)."""
    tables = [sources[column.table]] if column.table in sources else (
        list(sources.values()) if column.table is None else [])
    for table in tables:
        try:
            info = catalog.source(table)
        except CaveqlError:
            continue
        col = info.column(column.name)
        if col is None:
            continue
        if col.type != "string":
            return None
        key = (col.owner, col.owner_column)
        if key not in known:
            try:
                found = catalog.backend.unique_string_values(col.owner).get(col.owner_column)
            except CaveqlError:
                found = None
            known[key] = {v for v in found if isinstance(v, str)} if found else None
        values = known[key]
        return None if values is None else (table, values)
    return None


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
