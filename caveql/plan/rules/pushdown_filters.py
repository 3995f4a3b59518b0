"""Rule: push every WHERE conjunct the service evaluates exactly into its scan.

Pushed (when the backend's ``Capabilities.filters`` has the kind): ``col = v``,
``col IN (...)``, ``< <= > >=``, ``BETWEEN`` (as ``greater_equal`` + ``less_equal``),
``col ~ 're'`` on strings, ``col IS NULL`` (as ``equal`` to null). Kept local:
``!=`` and ``NOT IN`` (the service drops exclusion filters), ``= NULL`` (never
true in SQL, but the service reads it as IS NULL), comparisons between columns,
timestamps, anything on the null-extended side of a LEFT JOIN, and a second
conjunct of the same kind on the same column (the body holds one). A filter on a
merged reference table is keyed by the table that owns the column. A comparison
with a float32 column (its number already rounded by the ``float32_compare`` rule)
is pushed as the range of doubles that round into it (:mod:`.float32`).

>>> from caveql.plan.rules.pushdown_filters import filter_for
>>> from caveql.logical import Call, Col, Lit
>>> filter_for(Call(">=", (Col("s", "size", "float"), Lit(5, "int")), "bool"))
[('greater_equal', 'size', 5)]
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

from caveql.analyze.catalog import Catalog
from caveql.backends.base import Capabilities
from caveql.logical import Call, Col, Expr, Filter, InList, Lit, Query, Scan
from caveql.plan.rules.float32 import edge_filters

__all__ = ["filter_for", "pushdown_filters"]

_KIND = {"=": "equal", "<": "less", "<=": "less_equal", ">": "greater", ">=": "greater_equal"}
_I64 = (-(2**63), 2**63 - 1)


def _sendable(v: Any) -> bool:
    if v is None or isinstance(v, (bool, str)):
        return v is not None
    if isinstance(v, int):
        return _I64[0] <= v <= _I64[1]
    if isinstance(v, (float, Decimal)):
        return v == v and abs(float(v)) != float("inf")
    return False


def _json(v: Any) -> Any:
    if isinstance(v, Decimal):
        return int(v) if v == v.to_integral_value() else float(v)
    return v


def filter_for(e: Expr) -> list[tuple[str, str, Any]]:
    """``[(kind, column, value)]`` that evaluate conjunct ``e`` exactly, or ``[]``."""
    if isinstance(e, Call) and e.op in _KIND and isinstance(e.args[0], Col) and isinstance(e.args[1], Lit):
        col, lit = e.args
        if col.type in ("position", "timestamp") or not _sendable(lit.value):
            return []
        if lit.type == "float32":  # compared in float32: the doubles that round into the answer
            return [(k, col.name, v) for k, v in edge_filters(e.op, lit.value)]
        if col.type == "string" and e.op != "=":
            return []  # collations differ between the service and local engines
        if col.type == "bool" and e.op != "=":
            return []
        if col.type in ("int", "float") and lit.type not in ("int", "float"):
            return []
        return [(_KIND[e.op], col.name, _json(lit.value))]
    if isinstance(e, InList) and not e.negated and isinstance(e.expr, Col):
        col = e.expr
        if col.type in ("position", "timestamp", "float"):
            return []
        vals = [v for v in e.values if v is not None]
        if not all(_sendable(v) for v in vals):
            return []
        if col.type == "int" and not all(isinstance(v, int) and not isinstance(v, bool) for v in vals):
            return []
        if col.type == "string" and not all(isinstance(v, str) for v in vals):
            return []
        return [("in", col.name, tuple(dict.fromkeys(vals)))]
    if isinstance(e, Call) and e.op == "BETWEEN" and not e.negated and isinstance(e.args[0], Col):
        col, lo, hi = e.args
        if (isinstance(lo, Lit) and isinstance(hi, Lit) and lo.type == hi.type == "float32"
                and _sendable(lo.value) and _sendable(hi.value)):
            return [(k, col.name, v) for k, v in edge_filters("BETWEEN", lo.value, hi.value)]
        if (col.type in ("int", "float") and isinstance(lo, Lit) and isinstance(hi, Lit)
                and lo.type in ("int", "float") and hi.type in ("int", "float")
                and _sendable(lo.value) and _sendable(hi.value)):
            return [("greater_equal", col.name, _json(lo.value)), ("less_equal", col.name, _json(hi.value))]
        return []
    if isinstance(e, Call) and e.op == "REGEX" and not e.negated and isinstance(e.args[0], Col):
        col, pat = e.args
        if col.type == "string" and isinstance(pat, Lit) and isinstance(pat.value, str):
            return [("regex", col.name, pat.value)]
        return []
    if isinstance(e, Call) and e.op == "IS NULL" and not e.negated and isinstance(e.args[0], Col):
        col = e.args[0]
        if col.type == "position":
            return []
        return [("equal", col.name, None)]
    return []


def _owner(catalog: Catalog, scan: Scan, name: str) -> tuple[str, str] | None:
    info = catalog.source(scan.table)
    c = info.column(name)
    if c is None:
        return None
    base = info.column(name[:-2]) if name[-2:] in ("_x", "_y", "_z") else None
    if base is not None and base.type == "position":
        return None  # a position component is not a service column
    return c.owner, c.owner_column


def pushdown_filters(plan: Query, *, catalog: Catalog, capabilities: Capabilities) -> Query:
    """Move the pushable WHERE conjuncts into their scans' filters (see the module docstring)."""
    subs = tuple(pushdown_filters(s, catalog=catalog, capabilities=capabilities)
                 for s in plan.subqueries)
    scans = {s.alias: s for s in plan.scans}
    taken: dict[str, set[tuple[str, str, str]]] = {
        a: {(f.kind, f.table, f.column) for f in s.filters} for a, s in scans.items()}
    keep: list[Expr] = []
    for w in plan.where:
        cols = {c.source for c in _cols(w)}
        if len(cols) != 1 or next(iter(cols)) not in scans:  # (a derived or local source's)
            keep.append(w)
            continue
        alias = next(iter(cols))
        scan = scans[alias]
        wanted = filter_for(w)
        if not wanted or scan.nullable:
            keep.append(w)
            continue
        new: list[Filter] = []
        for kind, name, value in wanted:
            owner = _owner(catalog, scan, name)
            if owner is None or kind not in capabilities.filters:
                new = []
                break
            key = (kind, owner[0], owner[1])
            if key in taken[alias] or any((f.kind, f.table, f.column) == key for f in new):
                new = []
                break
            new.append(Filter(kind, owner[0], owner[1], value, origin=w))
        if len(new) != len(wanted):
            keep.append(w)
            continue
        for f in new:
            taken[alias].add((f.kind, f.table, f.column))
        scans[alias] = replace(scan, filters=scan.filters + tuple(new))
    return replace(plan, scans=tuple(scans[s.alias] for s in plan.scans), where=tuple(keep),
                   subqueries=subs)


def _cols(e: Expr) -> list[Col]:
    from caveql.logical import columns_of
    return columns_of(e)
