"""The comparator: what it accepts and what it must reject."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from tests.differential.compare import canonical_frame, canonical_rows, compare, missing_from

BIG = 864691135808473885


def test_ids_through_float_are_rejected() -> None:
    frame = pd.DataFrame({"root": np.array([BIG], dtype=np.float64)})
    assert "exact integers" in compare(frame, ["root"], ["BIGINT"], [(BIG,)], mode="set")


def test_nullable_ids_compare_exactly() -> None:
    frame = pd.DataFrame({"root": pd.array([BIG, None], dtype="Int64")})
    assert compare(frame, ["root"], ["BIGINT"], [(None,), (BIG,)], mode="set") is None
    assert compare(frame, ["root"], ["BIGINT"], [(BIG + 1,), (None,)], mode="set") is not None


def test_multisets_keep_duplicates() -> None:
    frame = pd.DataFrame({"a": [1, 1, 2]})
    assert compare(frame, ["a"], ["BIGINT"], [(1,), (2,), (2,)], mode="set") is not None
    assert compare(frame, ["a"], ["BIGINT"], [(2,), (1,), (1,)], mode="set") is None


def test_order_matters_when_ordered() -> None:
    frame = pd.DataFrame({"a": [2, 1]})
    assert compare(frame, ["a"], ["BIGINT"], [(1,), (2,)], mode="ordered") is not None
    assert compare(frame, ["a"], ["BIGINT"], [(2,), (1,)], mode="ordered") is None


def test_keys_mode_compares_only_the_keys() -> None:
    frame = pd.DataFrame({"k": [1, 1], "v": ["b", "a"]})
    assert compare(frame, ["k", "v"], ["BIGINT", "VARCHAR"], [(1, "a"), (1, "b")], mode="keys",
                   key_columns=(0,)) is None


def test_positions_and_floats() -> None:
    frame = pd.DataFrame({"p": [np.array([1, 2, 3]), np.array([np.nan] * 3)],
                          "s": np.array([1.0, 2.0000001], dtype=np.float32)})
    want = [((1, 2, 3), 1.0), (None, 2.0)]
    assert compare(frame, ["p", "s"], ["INTEGER[]", "FLOAT"], want, mode="ordered") is None
    assert compare(frame, ["p", "s"], ["INTEGER[]", "FLOAT"], [((1, 2, 4), 1.0), (None, 2.0)],
                   mode="ordered") is not None


def test_column_names_and_counts() -> None:
    frame = pd.DataFrame({"a": [1]})
    assert "columns differ" in compare(frame, ["b"], ["BIGINT"], [(1,)], mode="set")
    assert "row count" in compare(frame, ["a"], ["BIGINT"], [(1,), (1,)], mode="set")


row = st.tuples(st.integers(0, 3), st.sampled_from(["a", "b", None]),
                st.floats(-1e6, 1e6, allow_nan=False, width=32))


@given(st.lists(row, max_size=30), st.data())
def test_missing_from_finds_exactly_the_rows_not_in_the_pool(want: list, data: st.DataObject) -> None:
    """A shuffled sub-multiset (floats nudged within tolerance) is contained; a row added
    beyond its count in the pool is reported."""
    picked = data.draw(st.lists(st.sampled_from(want), unique_by=id, max_size=len(want))) if want else []
    got = [(i, s, f * (1 + 1e-9)) for i, s, f in data.draw(st.permutations(picked))]
    assert missing_from(got, want) == []
    extra = (9, "z", 1.0)
    assert missing_from(got + [extra], want) == [extra]
    if want:
        twice = want[0]
        assert missing_from(want + [twice], want) == [twice]


def test_canonical_column_keeps_ids_exact_in_every_dtype() -> None:
    for dtype in ("int64", "Int64", "int64[pyarrow]"):
        col = pd.Series(pd.array([BIG, BIG + 1], dtype=dtype))
        assert canonical_frame(pd.DataFrame({"r": col})) == [(BIG,), (BIG + 1,)]
    col = pd.Series(pd.array([BIG, None], dtype="Int64"))
    assert canonical_frame(pd.DataFrame({"r": col})) == [(BIG,), (None,)]
    assert canonical_rows([(BIG, 1.5, [1, 2, 3])], ["BIGINT", "DOUBLE", "INTEGER[]"]) == [(BIG, 1.5, (1, 2, 3))]
