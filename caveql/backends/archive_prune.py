"""Which files of an archive copy may hold a request's rows: tests on the Delta log's statistics.

Each filter of a request becomes a predicate on an add action's flattened statistics
(``min.<col>``, ``max.<col>``, ``null_count.<col>``, ``num_records``): equality and IN on a column
against its range, bounds, and a box against the copy's Morton code range (the exporter's
``morton_encode_3d``) and its decoded ``_x/_y/_z`` ranges. A file whose statistics are missing or
inexact (timestamps cut to milliseconds, long strings cut to a prefix) is kept.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Collection
from typing import Any

__all__ = ["file_test", "morton_encode"]

_MORTON_MAX = (1 << 21) - 1  # the exporter's Morton code keeps 21 bits per axis


def morton_encode(x: int, y: int, z: int) -> int:
    """The exporter's ``morton_encode_3d`` for one point (bits interleaved x, y, z).

    >>> morton_encode(1, 0, 0), morton_encode(0, 1, 0), morton_encode(0, 0, 1), morton_encode(1, 1, 1)
    (1, 2, 4, 7)
    """
    out = 0
    for bit in range(21):
        out |= (((x >> bit) & 1) << (3 * bit)) | (((y >> bit) & 1) << (3 * bit + 1)) \
            | (((z >> bit) & 1) << (3 * bit + 2))
    return out


def _scalar(v: Any) -> Any:
    item = getattr(v, "item", None)
    return item() if item is not None and type(v).__module__ == "numpy" else v


def _overlaps(f: dict[str, Any], col: str, lo: Any, hi: Any) -> bool:
    """Whether ``[lo, hi]`` (``None``: unbounded) meets the file's ``[min, max]`` of ``col``."""
    fmin, fmax = f.get(f"min.{col}"), f.get(f"max.{col}")
    try:
        if fmin is None or fmax is None:
            # no statistics (keep the file), or only nulls (no value matches a bound or a box)
            nulls, rows = f.get(f"null_count.{col}"), f.get("num_records")
            return not (nulls is not None and rows is not None and nulls == rows)
        if not _exact_stats(fmin) or not _exact_stats(fmax):
            return True
        if isinstance(fmin, float) or isinstance(fmax, float):
            if math.isnan(fmin) or math.isnan(fmax):
                return True
            # float32 statistics are written as short decimals: widen them past the rounding
            fmin, fmax = float(fmin), float(fmax)
            fmin, fmax = fmin - abs(fmin) * 1e-6 - 1e-300, fmax + abs(fmax) * 1e-6 + 1e-300
        return (hi is None or fmin <= hi) and (lo is None or fmax >= lo)
    except TypeError:
        return True  # incomparable values: cannot prune


def _exact_stats(v: Any) -> bool:
    """Whether a Delta statistic bounds its column exactly enough to prune with: integers and
    (widened) floats; not timestamps (statistics are cut to milliseconds) nor long strings (cut
    to a prefix)."""
    if isinstance(v, bool):
        return True
    if isinstance(v, str):
        return len(v) < 32
    return isinstance(v, int | float)


def file_test(kind: str, col: str, value: Any, stored: Collection[str]) -> Any:
    """A predicate on a Delta add action (its flattened statistics), or ``None`` when the filter
    cannot prune files; ``stored``: the columns the copy's files hold.

    >>> test = file_test("equal", "pt_root_id", 5, {"pt_root_id"})
    >>> test({"min.pt_root_id": 1, "max.pt_root_id": 4}), test({"min.pt_root_id": 5, "max.pt_root_id": 9})
    (False, True)
    """
    if kind == "spatial":
        try:
            (lo, hi) = value
            lo = [float(_scalar(v)) for v in lo]
            hi = [float(_scalar(v)) for v in hi]
        except (TypeError, ValueError):
            return None  # the query builder reports the bad box
        if len(lo) != 3 or len(hi) != 3:
            return None
        axes = [(f"{col}_{a}", lo[i], hi[i]) for i, a in enumerate("xyz") if f"{col}_{a}" in stored]
        morton = None
        if f"{col}_morton" in stored and all(v >= 0 for v in lo) and all(v <= _MORTON_MAX for v in hi):
            # Morton codes grow with each coordinate, so a box's points lie between its corners' codes
            a = [math.ceil(v) for v in lo]
            b = [math.floor(v) for v in hi]
            morton = (morton_encode(*a), morton_encode(*b))
        if not axes and morton is None:
            return None

        def test_box(f: dict[str, Any]) -> bool:
            if morton is not None and not _overlaps(f, f"{col}_morton", *morton):
                return False
            return all(_overlaps(f, c, lo_, hi_) for c, lo_, hi_ in axes)
        return test_box
    if col not in stored:
        return None
    if kind == "equal":
        v = _scalar(value)
        if v is None or isinstance(v, bool) or not isinstance(v, int | float | str):
            return None
        return lambda f: _overlaps(f, col, v, v)
    if kind == "in":
        if hasattr(value, "tolist") and not isinstance(value, str):
            value = value.tolist()
        if isinstance(value, (str, bytes, dict)) or not isinstance(value, list | tuple | set | frozenset):
            return None
        vals = [_scalar(v) for v in value]
        if not vals:
            return lambda f: False
        if not all(isinstance(v, int | float | str) and not isinstance(v, bool) for v in vals):
            return None
        try:
            ordered = sorted(vals)
        except TypeError:
            return None

        def test_in(f: dict[str, Any]) -> bool:
            fmin, fmax = f.get(f"min.{col}"), f.get(f"max.{col}")
            if fmin is None or fmax is None or isinstance(fmin, float) or isinstance(fmax, float) \
                    or not (_exact_stats(fmin) and _exact_stats(fmax)):
                return _overlaps(f, col, ordered[0], ordered[-1])
            try:
                i = bisect.bisect_left(ordered, fmin)
                return i < len(ordered) and ordered[i] <= fmax
            except TypeError:
                return True
        return test_in
    v = _scalar(value)
    if v is None or isinstance(v, bool) or not isinstance(v, int | float | str):
        return None
    strict = kind in ("greater", "less")  # a file whose max is the bound has no row above it

    def test_bound(f: dict[str, Any]) -> bool:
        if kind in ("greater", "greater_equal"):
            edge = f.get(f"max.{col}")
            return _overlaps(f, col, v, None) and not (strict and isinstance(edge, int) and edge == v)
        edge = f.get(f"min.{col}")
        return _overlaps(f, col, None, v) and not (strict and isinstance(edge, int) and edge == v)
    return test_bound
