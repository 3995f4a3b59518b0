"""The comparator: what it accepts and what it must reject."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tests.differential.compare import compare

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
