"""Rule: WITHIN BOX and ranges on ``P_x/P_y/P_z`` become one ``filter_spatial_dict`` box.

Corners are in the statement's resolution R (AT RESOLUTION, else the table's
voxels v). A stored voxel coordinate s is ``s * v/R`` at R: a whole number where
the ratio ``v/R`` is whole (the service scales it), else a Float64 the engine
computes (caveql.analyze.resolution). A point matches iff that value lies in the
box, so the matching s form an interval, found exactly with rational arithmetic
(strict bounds tighten to the next whole value on a whole-ratio axis). Where the
ratio is not whole (the float may round onto a bound), or the box is a single
voxel thick (the service needs min < max), the box is widened by one voxel and the
conjuncts are re-checked locally. Open axes use the int32 extremes.

>>> stored_interval(700000, 800000, 4.0, 1.0)
(175000, 200000, True)
>>> stored_interval(5, 5, 4.0, 1.0)
(2, 1, True)
>>> stored_interval(100, 300, 4.0, 3.0)  # s * 4/3 in [100, 300]
(75, 225, False)
"""

from __future__ import annotations

import math
from dataclasses import replace
from decimal import Decimal
from fractions import Fraction
from typing import Any

from caveql.analyze.catalog import Catalog
from caveql.analyze.resolution import owner_voxels, ratio
from caveql.backends.base import Capabilities
from caveql.logical import Box, Call, Col, Expr, Filter, Lit, Query, columns_of

__all__ = ["INT32", "spatial_box", "stored_interval"]

INT32 = (-(2**31), 2**31 - 1)


def stored_interval(lo: Any, hi: Any, voxel: float, res: float | None, *,
                    lo_strict: bool = False, hi_strict: bool = False) -> tuple[int, int, bool]:
    """Stored-voxel ``(s_lo, s_hi, exact)`` of the points whose coordinate ``s * voxel/res`` is in
    [lo, hi] (``lo_strict``/``hi_strict``: an open end; ``None``: unbounded). ``exact`` False:
    widen by a voxel and re-check locally (the ratio is not whole: the local value is a float)."""
    r = ratio(voxel, res)
    whole = r.denominator == 1
    flo = Fraction(lo) if lo is not None else None
    fhi = Fraction(hi) if hi is not None else None
    if whole:  # the coordinates are whole numbers: bounds tighten to them
        if flo is not None:
            flo = Fraction(math.floor(flo) + 1 if lo_strict else math.ceil(flo))
        if fhi is not None:
            fhi = Fraction(math.ceil(fhi) - 1 if hi_strict else math.floor(fhi))
        lo_strict = hi_strict = False
    if flo is None:
        s_lo = INT32[0]
    else:
        q = flo / r
        s_lo = math.floor(q) + 1 if lo_strict else math.ceil(q)
    if fhi is None:
        s_hi = INT32[1]
    else:
        q = fhi / r
        s_hi = math.ceil(q) - 1 if hi_strict else math.floor(q)
    return max(s_lo, INT32[0]), min(s_hi, INT32[1]), whole


def _num(v: Any) -> Any:
    return Fraction(v) if isinstance(v, (int, Decimal)) else Fraction(float(v))


Bound = tuple[Any, bool]  # (value, strict)


def _bounds(e: Expr, positions: set[tuple[str, str]]
            ) -> tuple[str, str, list[tuple[int, Bound | None, Bound | None]]] | None:
    """``(alias, position, [(axis, lo, hi)])`` if ``e`` constrains one position's axes."""
    if isinstance(e, Box):
        axes: list[tuple[int, Bound | None, Bound | None]] = [
            (i, (_num(e.low[i]), False), (_num(e.high[i]), False)) for i in range(3)]
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
        lo: Bound | None = None
        hi: Bound | None = None
        if e.op == "BETWEEN":
            lo, hi = (vals[0], False), (vals[1], False)
        elif e.op in (">=", ">"):
            lo = (vals[0], e.op == ">")
        elif e.op in ("<=", "<"):
            hi = (vals[0], e.op == "<")
        else:
            lo = hi = (vals[0], False)
        return col.source, col.name[:-2], [(axis, lo, hi)]
    return None


def _tighter(a: Bound | None, b: Bound | None, upper: bool) -> Bound | None:
    """The tighter of two bounds on one axis (at equal values an open end is tighter)."""
    if a is None or b is None:
        return a if b is None else b
    if a[0] != b[0]:
        return (min if upper else max)(a, b, key=lambda x: x[0])
    return (a[0], a[1] or b[1])


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
        if b is None or b[0] not in scans or scans[b[0]].nullable or any(
                f.kind == "spatial" and f.column == catalog.source(scans[b[0]].table).column(b[1]).owner_column
                for f in scans[b[0]].filters):
            keep.append(w)
            continue
        groups.setdefault((b[0], b[1]), []).append((w, b[2]))
    for (alias, pos), items in groups.items():
        scan = scans[alias]
        info = catalog.source(scan.table).column(pos)
        assert info is not None
        lo: list[Bound | None] = [None, None, None]
        hi: list[Bound | None] = [None, None, None]
        for _w, axes in items:
            for axis, a, b in axes:
                lo[axis] = _tighter(lo[axis], a, upper=False)
                hi[axis] = _tighter(hi[axis], b, upper=True)
        res = plan.resolution
        voxel = owner_voxels(catalog.source(scan.table), info.owner)
        box_lo, box_hi, exact = [], [], True
        empty = False
        for i in range(3):
            lb, hb = lo[i], hi[i]
            s_lo, s_hi, ex = stored_interval(
                lb[0] if lb else None, hb[0] if hb else None, voxel[i], res[i] if res else None,
                lo_strict=bool(lb and lb[1]), hi_strict=bool(hb and hb[1]))
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
