"""Positions at a statement's resolution: which scalings are exact, and what a position's axes are.

The service scales a stored voxel coordinate ``s`` to a ``desired_resolution`` R as
``trunc(s * v/R)`` into an Int32 (``v`` the table's voxel resolution): exact when the
ratio ``v/R`` is a whole number, silently truncated otherwise (``AT RESOLUTION 3,3,3``
on 4 nm voxels turns 76437.33 into 76437). CQL never loses precision silently, so:

- an axis whose ratio is a whole number is scaled by the service, an Int32 as before;
- otherwise the call asks for the positions in the table's own voxels and the engine
  scales them itself: ``s * v / R`` as a Float64 (an axis with a whole ratio stays Int32).

Ratios are taken from the numbers as written (``0.1`` is one tenth), so ``AT RESOLUTION
0.5, 0.5, 0.5`` on 4 nm voxels (ratio 8) is exact.

>>> ratio(4.0, 3.0), ratio(4.0, 0.5), ratio(40.0, None)
(Fraction(4, 3), Fraction(8, 1), Fraction(1, 1))
>>> exact_axes((4.0, 4.0, 40.0), (8.0, 8.0, 40.0))
(False, False, True)
>>> common_resolution([(4.0, 4.0, 40.0), (6.0, 4.0, 45.0)])
(2.0, 4.0, 5.0)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from fractions import Fraction

from caveql.analyze.catalog import ColumnInfo, SourceInfo

__all__ = ["column_type", "common_resolution", "component_axis", "exact_axes", "owner_voxels", "ratio",
           "scaled_by_service"]

Res3 = tuple[float, float, float]


def _frac(x: float) -> Fraction:
    """A resolution as the number it was written as (``repr`` is the shortest round trip)."""
    return Fraction(repr(float(x)))


def ratio(voxel: float, res: float | None) -> Fraction:
    """``voxel / res`` exactly (``res`` None: the table's own voxels, ratio 1)."""
    if res is None:
        return Fraction(1)
    return _frac(voxel) / _frac(res)


def exact_axes(voxel: Sequence[float], res: Sequence[float] | None) -> tuple[bool, bool, bool]:
    """Per axis, whether scaling from ``voxel`` to ``res`` gives whole numbers (a whole ratio)."""
    if res is None:
        return (True, True, True)
    x, y, z = (ratio(v, r).denominator == 1 for v, r in zip(voxel, res, strict=True))
    return (x, y, z)


def scaled_by_service(voxels: Iterable[Sequence[float]], res: Sequence[float] | None) -> bool:
    """Whether the service scales positions of tables with these voxel resolutions to ``res``
    exactly (every ratio of every axis a whole number)."""
    return all(all(exact_axes(v, res)) for v in voxels)


def common_resolution(voxels: Sequence[Sequence[float]]) -> Res3:
    """Per axis, the largest resolution every ``voxels`` entry is a whole multiple of (their
    rational gcd): asking for it, the service scales each table's positions exactly."""
    out = []
    for axis in range(3):
        g = Fraction(0)
        for v in voxels:
            f = _frac(v[axis])
            g = Fraction(math.gcd(g.numerator * f.denominator, f.numerator * g.denominator),
                         g.denominator * f.denominator)
        out.append(float(g))
    return (out[0], out[1], out[2])


def component_axis(name: str) -> int | None:
    """The axis (0, 1, 2) a component name ends with (``pt_position_y`` -> 1), else None.

    >>> component_axis("pt_position_z"), component_axis("pt_root_id")
    (2, None)
    """
    if len(name) > 2 and name[-2] == "_" and name[-1] in "xyz":
        return "xyz".index(name[-1])
    return None


def owner_voxels(info: SourceInfo, owner: str) -> Res3:
    """The voxel resolution of the service table ``owner`` behind a source (a merged reference
    table's own columns are in the reference table's voxels, the others in its target's)."""
    if info.kind == "reference" and owner == info.name:
        meta = info.metadata
        if meta.get("voxel_resolution") is not None:
            x, y, z = meta["voxel_resolution"]
        else:
            x, y, z = (meta.get(f"voxel_resolution_{a}") or 1.0 for a in "xyz")
        return (float(x), float(y), float(z))
    return info.voxel_resolution


def column_type(info: SourceInfo, c: ColumnInfo, res: Sequence[float] | None) -> str:
    """The CQL type of column ``c`` of ``info`` in a statement at resolution ``res``: a position
    component whose axis does not scale to whole numbers is a ``float``, else the catalog's type."""
    axis = component_axis(c.name)
    if res is None or c.type != "int" or axis is None:
        return c.type
    base = info.column(c.name[:-2])
    if base is None or base.type != "position":
        return c.type
    return "int" if exact_axes(owner_voxels(info, base.owner), res)[axis] else "float"
