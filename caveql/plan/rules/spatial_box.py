"""Rule: WITHIN BOX and ranges on ``P_x/P_y/P_z`` become one ``filter_spatial_dict`` box.

Corners are in the statement's resolution R (AT RESOLUTION, else the table's
voxels v). The backend reports a stored voxel coordinate s as
``trunc(s * v/R)``; a point matches iff that value lies in the (inclusive) box.
Since ``trunc(s * r)`` is monotone in s, the matching s form an interval found
exactly with rational arithmetic. Where the ratio is not exactly representable,
or the box is a single voxel thick (the service needs min < max), the box is
widened by one voxel and the conjuncts are re-checked locally. Open axes use the
int32 extremes.

>>> stored_interval(700000, 800000, 4.0, 1.0)
(175000, 200000, True)
>>> stored_interval(5, 5, 4.0, 1.0)
(2, 1, True)
"""

from __future__ import annotations

import math
from dataclasses import replace
from decimal import Decimal
from fractions import Fraction
from typing import Any

from caveql.analyze.catalog import Catalog
from caveql.backends.base import Capabilities
from caveql.plan.logical import Box, Call, Col, Expr, Filter, Lit, Query, columns_of

__all__ = ["INT32", "spatial_box", "stored_interval"]

INT32 = (-(2**31), 2**31 - 1)


def _trunc(x: Fraction) -> int:
    return math.trunc(x)


def stored_interval(lo: Any, hi: Any, voxel: float, res: float | None) -> tuple[int, int, bool]:
    """Stored-voxel ``(s_lo, s_hi, exact)`` of the points whose coordinate at ``res`` is in [lo, hi]."""
    r = Fraction(voxel) / Fraction(res) if res else Fraction(1)
    exact = Fraction(float(r)) == r
    flo = math.ceil(Fraction(lo)) if lo is not None else None
    fhi = math.floor(Fraction(hi)) if hi is not None else None
    if flo is None:
        s_lo = INT32[0]
    else:
        s = math.floor(Fraction(flo) / r) - 2
        while _trunc(s * r) < flo:
            s += 1
        s_lo = s
    if fhi is None:
        s_hi = INT32[1]
    else:
        s = math.ceil(Fraction(fhi) / r) + 2
        while _trunc(s * r) > fhi:
            s -= 1
        s_hi = s
    return max(s_lo, INT32[0]), min(s_hi, INT32[1]), exact


def _num(v: Any) -> Any:
    return Fraction(v) if isinstance(v, (int, Decimal)) else Fraction(float(v))


def _bounds(e: Expr, positions: set[tuple[str, str]]) -> tuple[str, str, list[tuple[int, Any, Any]]] | None:
    """``(alias, position, [(axis, lo, hi)])`` if ``e`` constrains one position's axes."""
    if isinstance(e, Box):
        axes = [(i, _num(e.low[i]), _num(e.high[i])) for i in range(3)]
        return e.col.source, e.col.name, axes
    if isinstance(e, Call) and e.op in ("<", "<=", ">", ">=", "=", "BETWEEN") and not e.negated:
        col = e.args[0]
        if not isinstance(col, Col) or (col.source, col.name[:-2]) not in positions:
            return None
        if not all(isinstance(a, Lit) and a.type in ("int", "float") and a.value is not None
                   for a in e.args[1:]):
            return None
        axis = "xyz".index(col.name[-1])
        vals = [_num(a.value) for a in e.args[1:]]  # type: ignore[union-attr]
        # coordinates are integers: strict bounds tighten to the next integer
        lo = hi = None
        if e.op == "BETWEEN":
            lo, hi = vals
        elif e.op == ">=":
            lo = vals[0]
        elif e.op == ">":
            lo = math.floor(vals[0]) + 1
        elif e.op == "<=":
            hi = vals[0]
        elif e.op == "<":
            hi = math.ceil(vals[0]) - 1
        else:
            lo = hi = vals[0]
        return col.source, col.name[:-2], [(axis, lo, hi)]
    return None


def spatial_box(plan: Query, *, catalog: Catalog, capabilities: Capabilities) -> Query:
    """Lower boxes and component ranges into one spatial filter per position column."""
    subs = tuple(spatial_box(s, catalog=catalog, capabilities=capabilities) for s in plan.subqueries)
    if "spatial" not in capabilities.filters:
        return replace(plan, subqueries=subs)
    scans = {s.alias: s for s in plan.scans}
    positions: set[tuple[str, str]] = set()
    for s in plan.scans:
        for c in catalog.source(s.table).columns:
            if c.type == "position":
                positions.add((s.alias, c.name))
    groups: dict[tuple[str, str], list[tuple[Expr, list[tuple[int, Any, Any]]]]] = {}
    keep: list[Expr] = []
    for w in plan.where:
        b = _bounds(w, positions)
        if b is None or scans[b[0]].nullable or any(
                f.kind == "spatial" and f.column == catalog.source(scans[b[0]].table).column(b[1]).owner_column
                for f in scans[b[0]].filters):
            keep.append(w)
            continue
        groups.setdefault((b[0], b[1]), []).append((w, b[2]))
    for (alias, pos), items in groups.items():
        scan = scans[alias]
        info = catalog.source(scan.table).column(pos)
        assert info is not None
        lo: list[Any] = [None, None, None]
        hi: list[Any] = [None, None, None]
        for _w, axes in items:
            for axis, a, b in axes:
                if a is not None:
                    lo[axis] = a if lo[axis] is None else max(lo[axis], a)
                if b is not None:
                    hi[axis] = b if hi[axis] is None else min(hi[axis], b)
        res = plan.resolution
        box_lo, box_hi, exact = [], [], True
        empty = False
        for i in range(3):
            s_lo, s_hi, ex = stored_interval(lo[i], hi[i], scan.voxel_resolution[i], res[i] if res else None)
            exact = exact and ex
            if not ex:
                s_lo, s_hi = max(s_lo - 1, INT32[0]), min(s_hi + 1, INT32[1])
            if s_lo > s_hi:
                empty = True
            elif s_lo == s_hi:  # the service needs min < max
                exact = False
                s_hi = s_lo + 1
            box_lo.append(s_lo)
            box_hi.append(s_hi)
        origin = items[0][0]
        if empty:
            # no point can match: ask for no rows rather than a box the service rejects
            idc = catalog.source(scan.table).column("id")
            if idc is None or "in" not in capabilities.filters:
                keep.extend(w for w, _ in items)
                continue
            f = Filter("in", idc.owner, idc.owner_column, (), origin=origin)
            exact = True
        else:
            f = Filter("spatial", info.owner, info.owner_column, (tuple(box_lo), tuple(box_hi)),
                       origin=origin)
        scans[alias] = replace(scan, filters=scan.filters + (f,))
        if not exact:
            keep.extend(w for w, _ in items)
    return replace(plan, scans=tuple(scans[s.alias] for s in plan.scans), where=tuple(keep),
                   subqueries=subs)


__all__ += ["columns_of"]
