"""Comparing caveql's frames with the oracle's rows: exact ids, sensible dtypes.

The oracle returns plain Python rows (DuckDB ``fetchall``: ints stay ints, HUGEINT
sums too); caveql returns a pandas DataFrame. Both are brought to *canonical
rows*: tuples of ``None`` (any null, NaN, NaT), ``int``, ``float``, ``str``,
``bool``, ``pandas.Timestamp`` or tuples of those (positions). Integers are never
routed through float: an engine column of float dtype where the oracle has an
integer column is a mismatch of its own ("ids through float").

>>> import pandas as pd
>>> frame = pd.DataFrame({"id": pd.array([2, 1], dtype="Int64"), "v": [0.5, None]})
>>> canonical_frame(frame)
[(2, 0.5), (1, None)]
>>> diff = compare(frame, ["id", "v"], ["BIGINT", "DOUBLE"], [(1, None), (2, 0.5)], mode="set")
>>> diff is None
True
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["canonical", "canonical_frame", "canonical_rows", "compare", "missing_from", "rows_diff", "shape_diff",
           "INTEGER_TYPES"]

#: DuckDB type names whose values are integers (ids, counts, int32 positions).
INTEGER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                 "UINTEGER", "UBIGINT", "UHUGEINT")

_FLOAT_TOL = 1e-6  # float32 columns summed in different orders agree to ~1e-7 relative


def canonical(value: Any) -> Any:
    """One value in canonical form (see the module docstring).

    >>> canonical(np.int64(864691135808473885))
    864691135808473885
    >>> canonical([np.int32(1), 2, 3])
    (1, 2, 3)
    >>> canonical(float("nan")) is None and canonical(pd.NA) is None
    True
    """
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, str):
        return value
    if isinstance(value, (pd.Timestamp, dt.datetime, np.datetime64)):
        ts = pd.Timestamp(value)
        return None if pd.isna(ts) else ts.tz_localize(None) if ts.tzinfo else ts
    if isinstance(value, dict):  # a DuckDB struct
        return tuple(canonical(v) for v in value.values())
    if isinstance(value, (list, tuple, np.ndarray)):
        items = tuple(canonical(v) for v in value)
        # a position whose three components are all null is a null position
        return None if items and all(v is None for v in items) else items
    return value


def canonical_frame(frame: pd.DataFrame) -> list[tuple[Any, ...]]:
    """The rows of a frame in canonical form, in frame order."""
    return list(zip(*(_canonical_column(frame.iloc[:, i]) for i in range(frame.shape[1])))) \
        if frame.shape[1] else [() for _ in range(len(frame))]


def _canonical_column(col: pd.Series) -> list[Any]:
    """One column's values in canonical form; integer, boolean, float and string columns
    (numpy or pandas' nullable dtypes) convert in bulk, the rest value by value.

    >>> _canonical_column(pd.Series(pd.array([2**62 + 1, None], dtype="Int64")))
    [4611686018427387905, None]
    >>> _canonical_column(pd.Series(pd.array([0.5, None], dtype="Float32")))
    [0.5, None]
    """
    dtype = col.dtype
    kind = getattr(dtype, "kind", "O")
    if kind in "iub":  # ints stay exact: never through float
        return col.to_numpy(dtype=object, na_value=None).tolist() if col.hasnans else col.tolist()
    if kind == "f":
        values = col.to_numpy(dtype="float64", na_value=np.nan).tolist()
        return [None if v != v else v for v in values]
    if isinstance(dtype, pd.StringDtype):
        return col.to_numpy(dtype=object, na_value=None).tolist()
    return [canonical(v) for v in col.astype(object).tolist()]


def canonical_rows(rows: Sequence[Sequence[Any]], types: Sequence[str]) -> list[tuple[Any, ...]]:
    """The oracle's rows in canonical form (columns of integer, string or boolean type are
    canonical as DuckDB returns them).

    >>> canonical_rows([(1, [1, 2, 3], "a")], ["BIGINT", "INTEGER[]", "VARCHAR"])
    [(1, (1, 2, 3), 'a')]
    """
    fix = [i for i, t in enumerate(types) if str(t).upper() not in INTEGER_TYPES + ("VARCHAR", "BOOLEAN")]
    if not fix:
        return [tuple(r) for r in rows]
    out = []
    for row in rows:
        values = list(row)
        for i in fix:
            values[i] = canonical(values[i])
        out.append(tuple(values))
    return out


def _float_equal(a: Any, b: Any) -> bool:
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_float_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None or isinstance(a, (str, bool)) or isinstance(b, (str, bool)):
            return False
        return math.isclose(a, b, rel_tol=_FLOAT_TOL, abs_tol=_FLOAT_TOL)
    return type(a) is type(b) and a == b or (a is None and b is None)


def _rows_equal(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    return len(a) == len(b) and all(_float_equal(x, y) for x, y in zip(a, b))


def _sort_key(row: tuple[Any, ...]) -> tuple[Any, ...]:
    def key(v: Any) -> tuple[Any, ...]:
        if v is None:
            return (0,)
        if isinstance(v, bool):
            return (1, int(v))
        if isinstance(v, (int, float)):
            # floats rounded so values equal within tolerance usually sort together
            return (2, float(f"{v:.6g}") if isinstance(v, float) else v)
        if isinstance(v, tuple):
            return (3, tuple(key(x) for x in v))
        return (4, str(v))

    return tuple(key(v) for v in row)


def _multiset_equal(got: list[tuple[Any, ...]], want: list[tuple[Any, ...]]) -> bool:
    if len(got) != len(want):
        return False
    if Counter(map(repr, got)) == Counter(map(repr, want)):
        return True
    g, w = sorted(got, key=_sort_key), sorted(want, key=_sort_key)
    if all(_rows_equal(a, b) for a, b in zip(g, w)):
        return True
    # floats near a rounding boundary may sort apart: match greedily (small frames only)
    if len(w) > 5000:
        return False
    pool = list(w)
    for row in g:
        for i, cand in enumerate(pool):
            if _rows_equal(row, cand):
                del pool[i]
                break
        else:
            return False
    return True


def missing_from(got: Sequence[tuple[Any, ...]], want: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The rows of ``got`` left over once each is matched to a distinct row of ``want`` (empty:
    ``got`` is a sub-multiset of ``want``). Exact matches first (by text, linear time), then
    the rest within the float tolerance, against rows alike in every non-float value first.

    >>> missing_from([(1, 0.5), (2, 0.1000000001)], [(2, 0.1), (1, 0.5), (3, 1.0)])
    []
    >>> missing_from([(1, 0.5), (1, 0.5)], [(1, 0.5)])
    [(1, 0.5)]
    >>> missing_from([(7, 2)], [(7, 2.0000001)])
    []
    """
    exact = Counter(map(repr, want))
    loose: list[tuple[Any, ...]] = []
    for row in got:
        text = repr(row)
        if exact[text] > 0:
            exact[text] -= 1
        else:
            loose.append(row)
    if not loose:
        return []
    # the rows of `want` not matched exactly, bucketed by their non-float values
    buckets: dict[str, list[tuple[Any, ...]]] = {}
    for row in want:
        text = repr(row)
        if exact[text] > 0:
            exact[text] -= 1
            buckets.setdefault(_shape(row), []).append(row)
    extra = []
    for row in loose:
        # its own bucket first; then any (an int matching a float within tolerance)
        for pool in [buckets.get(_shape(row), [])] + list(buckets.values()):
            i = next((i for i, cand in enumerate(pool) if _rows_equal(row, cand)), None)
            if i is not None:
                del pool[i]
                break
        else:
            extra.append(row)
    return extra


def _shape(row: tuple[Any, ...]) -> str:
    """A row's text with its floats blanked (rows equal within tolerance share it)."""
    def blank(v: Any) -> Any:
        if isinstance(v, float):
            return float
        if isinstance(v, tuple):
            return tuple(blank(x) for x in v)
        return v

    return repr(tuple(blank(v) for v in row))


def compare(
    frame: pd.DataFrame,
    columns: Sequence[str],
    types: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    *,
    mode: str,
    key_columns: Sequence[int] = (),
) -> str | None:
    """``None`` when ``frame`` equals the oracle's answer, else a description of the difference.

    ``mode``: ``"set"`` (rows as a multiset), ``"ordered"`` (rows in order), or
    ``"keys"`` (ORDER BY with ties under LIMIT: the row count and the sequence of the
    ``key_columns`` values must agree, and every returned row must be a row the
    unlimited query could give — checked by the caller through a second oracle run).

    >>> f = pd.DataFrame({"id": [1.0, 2.0]})
    >>> compare(f, ["id"], ["BIGINT"], [(1,), (2,)], mode="ordered")
    "column 'id' is float64 where the oracle has BIGINT (ids must stay exact integers)"
    """
    return shape_diff(frame, columns, types) or rows_diff(
        canonical_frame(frame), canonical_rows(rows, types), mode=mode, key_columns=key_columns)


def shape_diff(frame: pd.DataFrame, columns: Sequence[str], types: Sequence[str]) -> str | None:
    """The part of :func:`compare` about columns: names, and integers never as floats."""
    got_columns = [str(c) for c in frame.columns]
    if got_columns != list(columns):
        return f"columns differ: got {got_columns}, expected {list(columns)}"
    for i, (name, type_name) in enumerate(zip(columns, types)):
        dtype = frame.iloc[:, i].dtype
        if str(type_name).upper() in INTEGER_TYPES and dtype.kind == "f":
            return f"column {name!r} is {dtype} where the oracle has {type_name} " \
                   "(ids must stay exact integers)"
    return None


def rows_diff(got: list[tuple[Any, ...]], want: list[tuple[Any, ...]], *, mode: str,
              key_columns: Sequence[int] = ()) -> str | None:
    """The part of :func:`compare` about rows, both sides already canonical.

    >>> rows_diff([(1, "a"), (2, "b")], [(2, "b"), (1, "a")], mode="set") is None
    True
    >>> rows_diff([(1, "a"), (2, "b")], [(1, "b"), (2, "a")], mode="keys", key_columns=[0]) is None
    True
    """
    if len(got) != len(want):
        return f"row count differs: got {len(got)}, expected {len(want)}" + _sample(got, want)
    if mode == "set":
        return None if _multiset_equal(got, want) else "rows differ (as multisets)" + _sample(got, want)
    if mode == "ordered":
        for i, (a, b) in enumerate(zip(got, want)):
            if not _rows_equal(a, b):
                return f"row {i} differs: got {a!r}, expected {b!r}"
        return None
    if mode == "keys":
        for i, (a, b) in enumerate(zip(got, want)):
            ka, kb = tuple(a[k] for k in key_columns), tuple(b[k] for k in key_columns)
            if not _rows_equal(ka, kb):
                return f"order keys of row {i} differ: got {ka!r}, expected {kb!r}"
        return None
    raise ValueError(f"unknown mode {mode!r}")


def _sample(got: list[tuple[Any, ...]], want: list[tuple[Any, ...]]) -> str:
    g = Counter(map(repr, got))
    w = Counter(map(repr, want))
    extra = list((g - w).elements())[:3]
    missing = list((w - g).elements())[:3]
    return f"\n  e.g. unexpected rows: {extra}\n  e.g. missing rows: {missing}"
