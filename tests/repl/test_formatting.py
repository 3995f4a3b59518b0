"""Output formats: duckbox elision, exact ids in every format, files by extension."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from caveql.errors import ConfigError
from caveql.repl.formatting import (
    FORMATS,
    format_from_path,
    render,
    render_table,
    render_to_file,
    to_cell,
)

ROOT = 864691135808473885


def frame(n: int = 3) -> pd.DataFrame:
    return pd.DataFrame({
        "id": np.arange(n, dtype="int64"),
        "pt_root_id": np.array([ROOT + i for i in range(n)], dtype="uint64"),
        "cell_type": (["BC", None, "23P"] * n)[:n],
        "pt_position": [np.array([i, i + 1, i + 2], dtype="int32") for i in range(n)],
        "volume": [1.25 * i for i in range(n)],
    })


def test_table_shows_everything_when_it_fits() -> None:
    text = render_table(frame(), max_rows=40, max_width=200)
    assert str(ROOT + 2) in text and "[2, 3, 4]" in text and "NULL" in text
    assert "3 rows" in text and "5 columns" in text and "shown" not in text


def test_table_elides_middle_rows_with_footer() -> None:
    text = render_table(frame(1000), max_rows=10, max_width=300)
    lines = text.splitlines()
    assert sum(1 for ln in lines if "·" in ln) == 3
    assert f" {ROOT} " in text and f" {ROOT + 999} " in text and f" {ROOT + 500} " not in text
    assert "1,000 rows (10 shown)" in text


def test_table_elides_middle_columns_to_fit_width() -> None:
    wide = pd.DataFrame({f"column_{i:02d}": [i] for i in range(30)})
    text = render_table(wide, max_width=80)
    assert all(len(line) <= 80 for line in text.splitlines())
    assert "column_00" in text and "column_29" in text and "column_15" not in text
    assert "│ … │" in text.replace("│ …  │", "│ … │") or " … " in text
    assert "30 columns (" in text


def test_table_of_empty_result() -> None:
    text = render_table(pd.DataFrame({"a": pd.Series([], dtype="int64")}), max_width=80)
    assert "0 rows" in text and "int64" in text


def test_numbers_right_strings_left() -> None:
    text = render_table(pd.DataFrame({"n": [1, 100], "s": ["a", "bbb"]}), max_width=80)
    body = [ln for ln in text.splitlines() if "│" in ln and ("a " in ln or "bbb" in ln)]
    assert body[0].startswith("│     1 │ a ")


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f != "parquet"])
def test_text_formats_keep_root_ids_exact(fmt: str) -> None:
    text = render(frame(), fmt, max_rows=0, max_width=0)
    assert isinstance(text, str)
    assert str(ROOT + 1) in text


def test_csv_tsv_roundtrip() -> None:
    df = frame()
    back = pd.read_csv(io.StringIO(render(df, "csv")), dtype={"pt_root_id": "uint64"})
    assert back["pt_root_id"].tolist() == df["pt_root_id"].tolist()
    assert back["pt_position"].tolist() == ["[0, 1, 2]", "[1, 2, 3]", "[2, 3, 4]"]
    back = pd.read_csv(io.StringIO(render(df, "tsv")), sep="\t")
    assert back.columns.tolist() == df.columns.tolist()


def test_json_and_jsonl() -> None:
    df = frame()
    rows = json.loads(render(df, "json"))
    assert rows[1] == {"id": 1, "pt_root_id": ROOT + 1, "cell_type": None, "pt_position": [1, 2, 3],
                       "volume": 1.25}
    lines = render(df, "jsonl").splitlines()
    assert [json.loads(x)["pt_root_id"] for x in lines] == [ROOT, ROOT + 1, ROOT + 2]


def test_json_refuses_duplicate_columns() -> None:
    df = pd.DataFrame([[1, 2]], columns=["a", "a"])
    with pytest.raises(ConfigError, match="distinct column names"):
        render(df, "json")


def test_parquet_bytes_roundtrip() -> None:
    data = render(frame(), "parquet")
    assert isinstance(data, bytes)
    table = pq.read_table(io.BytesIO(data))
    assert table.column("pt_root_id").to_pylist() == [ROOT, ROOT + 1, ROOT + 2]


def test_markdown_and_vertical() -> None:
    md = render(frame(2), "markdown")
    assert md.splitlines()[1] == "|--:|--:|:--|:--|--:|"
    vert = render(frame(2), "vertical")
    assert "-[ RECORD 2 ]" in vert and f"pt_root_id  | {ROOT + 1}" in vert


def test_unknown_format_suggests() -> None:
    with pytest.raises(ConfigError) as err:
        render(frame(), "jsn")
    assert "did you mean 'json'" in (err.value.hint or "")


@pytest.mark.parametrize(("name", "fmt"), [("a.csv", "csv"), ("a.tsv", "tsv"), ("a.json", "json"),
                                           ("a.jsonl", "jsonl"), ("a.md", "markdown"),
                                           ("a.parquet", "parquet")])
def test_render_to_file_by_extension(tmp_path, name: str, fmt: str) -> None:
    path = tmp_path / name
    assert format_from_path(path) == fmt
    assert render_to_file(frame(), path) == fmt
    if fmt == "parquet":
        assert pq.read_table(path).num_rows == 3
    else:
        assert str(ROOT) in path.read_text()


def test_nullable_and_timestamp_cells() -> None:
    df = pd.DataFrame({"u": pd.array([1, None], dtype="UInt64"),
                       "t": pd.to_datetime(["2020-09-28 22:40:41.780734", None])})
    text = render_table(df, max_width=100)
    assert "<NA>" not in text and "NaT" not in text and text.count("NULL") == 2
    assert "2020-09-28 22:40:41.780734" in text


@given(st.lists(st.integers(min_value=0, max_value=2**64 - 1), min_size=1, max_size=30))
def test_uint64_exact_everywhere(values: list[int]) -> None:
    df = pd.DataFrame({"x": np.array(values, dtype="uint64")})
    for fmt in ("table", "csv", "jsonl", "markdown"):
        text = render(df, fmt, max_rows=0, max_width=0)
        for v in values:
            assert str(v) in text
    assert [to_cell(v) for v in df["x"]] == [str(v) for v in values]


def test_all_missing_vector_is_an_empty_csv_cell() -> None:
    df = pd.DataFrame({"bb": [[None, None, None], [1, None, 3]]})
    assert render(df, "csv") == 'bb\n""\n"[1, , 3]"\n'  # "" marks the empty field of a 1-column row
    assert "[NULL, NULL, NULL]" in render_table(df, max_width=80)
