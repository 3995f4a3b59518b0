"""Rendering result frames: DuckDB-style "duckbox" tables and the export formats.

:func:`render` turns a pandas DataFrame into text (``table``, ``vertical``,
``csv``, ``tsv``, ``json``, ``jsonl``, ``markdown``) or bytes (``parquet``).
The ``table`` format fits the terminal the way DuckDB's CLI does: long results
show their first and last rows with a ``·`` gap, wide results drop middle
columns behind a ``…`` column, and a footer says what was left out. Export
formats are never elided: what is written to a file or a pipe is the whole
result, with 64-bit ids exact.

This module imports pandas/pyarrow lazily (only :func:`render` needs them), so
the CLI can import it at start-up for free.

>>> import pandas as pd
>>> df = pd.DataFrame({"pt_root_id": [864691135808473885, 864691135546540484],
...                    "cell_type": ["BC", None]})
>>> print(render(df, "table"))
┌────────────────────┬───────────┐
│     pt_root_id     │ cell_type │
│       int64        │  string   │
├────────────────────┼───────────┤
│ 864691135808473885 │ BC        │
│ 864691135546540484 │ NULL      │
├────────────────────┴───────────┤
│ 2 rows               2 columns │
└────────────────────────────────┘
>>> print(render(df, "csv"), end="")
pt_root_id,cell_type
864691135808473885,BC
864691135546540484,
"""

from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FORMATS", "TEXT_FORMATS", "format_from_path", "render", "render_to_file", "to_cell"]

#: Every output format, in the order ``--help`` lists them.
FORMATS = ("table", "vertical", "csv", "tsv", "json", "jsonl", "markdown", "parquet")
#: Formats whose output is text (parquet is bytes).
TEXT_FORMATS = FORMATS[:-1]

_EXTENSIONS = {
    ".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".json": "json", ".jsonl": "jsonl",
    ".ndjson": "jsonl", ".md": "markdown", ".markdown": "markdown", ".parquet": "parquet",
    ".pq": "parquet", ".txt": "table",
}

NULL = "NULL"


def format_from_path(path: str | os.PathLike[str]) -> str | None:
    """The output format implied by a file name's extension (``None``: unknown).

    >>> format_from_path("bc_inputs.parquet"), format_from_path("x.JSONL"), format_from_path("x.dat")
    ('parquet', 'jsonl', None)
    """
    ext = os.path.splitext(os.fspath(path))[1].lower()
    return _EXTENSIONS.get(ext)


def to_cell(value: Any, null: str = NULL) -> str:
    """One value as the text a table or CSV cell shows.

    Integers stay exact (root ids), floats use the shortest round-tripping
    form, 3-vectors print as ``[x, y, z]``, missing values as ``null``.

    >>> to_cell(864691135808473885), to_cell(2.5), to_cell(float("nan")), to_cell([1, 2, 3])
    ('864691135808473885', '2.5', 'NULL', '[1, 2, 3]')
    >>> to_cell(True), to_cell(None, null="")
    ('true', '')
    """
    if value is None:
        return null
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return null
        return _float(value)
    if isinstance(value, int | str):
        return str(value)
    kind = type(value).__module__
    if kind == "numpy":
        import numpy as np

        if isinstance(value, np.ndarray):
            return "[" + ", ".join(to_cell(v, null) for v in value.tolist()) + "]"
        if isinstance(value, np.bool_):
            return "true" if value else "false"
        if isinstance(value, np.floating):
            return to_cell(float(value), null)
        if isinstance(value, np.integer):
            return str(int(value))
        if isinstance(value, np.datetime64):
            return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(to_cell(v, null) for v in value) + "]"
    if kind.startswith("pandas"):
        import pandas as pd

        if value is pd.NA or value is pd.NaT:
            return null
        if isinstance(value, pd.Timestamp):
            return value.isoformat(sep=" ")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _float(value: float) -> str:
    if value.is_integer() and abs(value) < 1e16:
        return f"{value:.1f}"
    return repr(value)


def _column_cells(series: pd.Series, null: str) -> list[str]:
    """All cells of a column as text; fast paths for plain numeric/string dtypes."""
    kind = series.dtype.kind
    plain = type(series.dtype).__module__ == "numpy"  # extension dtypes may hold pd.NA
    if kind in "iu" and plain:
        return [str(v) for v in series.tolist()]
    if kind == "b" and plain:
        return ["true" if v else "false" for v in series.tolist()]
    if kind == "f" and series.dtype.itemsize == 4:
        # float32 (volumes): the shortest text that round-trips *as float32*, not float64's digits
        import numpy as np

        values = series.to_numpy(dtype="float32", na_value=np.nan)
        return [null if v != v else _float32(v) for v in values]
    return [to_cell(v, null) for v in series.tolist()]


def _float32(value: Any) -> str:
    text = str(value)
    return text if ("e" in text or "." in text or "n" in text) else text + ".0"


def _is_numeric(series: pd.Series) -> bool:
    return series.dtype.kind in "iufc"


def _type_name(series: pd.Series) -> str:
    if series.dtype == object:
        for v in series.tolist()[:50]:
            if v is None or (isinstance(v, float) and math.isnan(v)):
                continue
            if isinstance(v, str):
                return "string"
            if hasattr(v, "__len__"):
                return f"list[{len(v)}]" if len(v) else "list"
            return type(v).__name__
    return str(series.dtype)


def render(
    df: pd.DataFrame,
    fmt: str = "table",
    *,
    max_rows: int = 40,
    max_width: int | None = None,
    null: str = NULL,
) -> str | bytes:
    """Render a frame in ``fmt`` (one of :data:`FORMATS`).

    ``max_rows`` bounds the ``table`` and ``vertical`` formats, ``max_width`` the ``table``
    format (``0``: no bound; ``max_width`` defaults to the terminal's width). Other formats
    are never cut.

    >>> import pandas as pd
    >>> print(render(pd.DataFrame({"a": [1], "b": ["x"]}), "markdown"))
    | a | b |
    |--:|:--|
    | 1 | x |
    >>> print(render(pd.DataFrame({"a": [1, 2]}), "jsonl"), end="")
    {"a":1}
    {"a":2}
    """
    if fmt == "table":
        if max_width is None:
            max_width = _terminal_width()
        return render_table(df, max_rows=max_rows, max_width=max_width, null=null)
    if fmt == "vertical":
        return render_vertical(df, null=null, max_rows=max_rows)
    if fmt in ("csv", "tsv"):
        return _render_delimited(df, "," if fmt == "csv" else "\t")
    if fmt == "json":
        return _render_json(df, lines=False)
    if fmt == "jsonl":
        return _render_json(df, lines=True)
    if fmt == "markdown":
        return render_markdown(df, null=null)
    if fmt == "parquet":
        buf = io.BytesIO()
        _write_parquet(df, buf)
        return buf.getvalue()
    from caveql.errors import ConfigError

    raise ConfigError(f"unknown output format {fmt!r}", hint=_format_hint(fmt))


def _format_hint(fmt: str) -> str:
    from caveql.errors import did_you_mean

    close = did_you_mean(fmt, FORMATS)
    head = f"did you mean '{close[0]}'? " if close else ""
    return head + "formats: " + ", ".join(FORMATS)


def render_to_file(df: pd.DataFrame, path: str | os.PathLike[str], fmt: str | None = None) -> str:
    """Write the whole result to ``path`` in ``fmt`` (default: from the extension, else csv).

    Returns the format used.

    >>> import pandas as pd, tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "out.jsonl")
    >>> render_to_file(pd.DataFrame({"a": [1]}), p)
    'jsonl'
    >>> with open(p) as fh: fh.read()
    '{"a":1}\\n'
    """
    fmt = fmt or format_from_path(path) or "csv"
    if fmt == "parquet":
        _write_parquet(df, path)
        return fmt
    text = render(df, fmt, max_rows=0, max_width=0)
    assert isinstance(text, str)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(text if text.endswith("\n") or not text else text + "\n")
    return fmt


def _write_parquet(df: pd.DataFrame, where: Any) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pa.Table.from_pandas(df, preserve_index=False)
    except (pa.ArrowException, ValueError, TypeError) as exc:
        from caveql.errors import ExecutionError

        raise ExecutionError(f"cannot write this result as Parquet: {exc}",
                             hint="alias duplicate column names with AS, or use csv/json") from exc
    pq.write_table(table, where)


def _export_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Object columns holding vectors become ``[x, y, z]`` text for flat formats."""
    out = df
    for name in df.columns:
        col = df[name]
        if col.dtype == object and len(col) and _has_sequences(col):
            if out is df:
                out = df.copy()
            # a vector whose components are all missing (bb_start_position) is an empty cell
            out[name] = [None if _missing(v) or (hasattr(v, "__len__") and len(v)
                                                 and all(_missing(x) for x in v))
                         else to_cell(v, "") for v in col.tolist()]
    return out


def _has_sequences(col: pd.Series) -> bool:
    for v in col.tolist()[:50]:
        if v is not None and not isinstance(v, str | int | float | bool):
            return hasattr(v, "__len__")
    return False


def _missing(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, float):
        return math.isnan(v)
    try:
        import pandas as pd

        return v is pd.NA or v is pd.NaT
    except ImportError:  # pragma: no cover - pandas is a dependency
        return False


def _render_delimited(df: pd.DataFrame, sep: str) -> str:
    # pandas writes int64/uint64 exactly and quotes as RFC 4180 wants.
    return _export_frame(df).to_csv(index=False, sep=sep, lineterminator="\n")


def _render_json(df: pd.DataFrame, *, lines: bool) -> str:
    if len(df.columns) != len(set(df.columns)):
        from caveql.errors import ConfigError

        raise ConfigError("JSON output needs distinct column names; alias the duplicates with AS")
    text = df.to_json(orient="records", lines=lines, date_format="iso", date_unit="us",
                      double_precision=15, default_handler=_json_default)
    if lines:
        return text if text.endswith("\n") or not text else text + "\n"
    return text + "\n"


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def render_markdown(df: pd.DataFrame, *, null: str = NULL) -> str:
    """A GitHub pipe table of the whole frame (``|`` in cells escaped).

    >>> import pandas as pd
    >>> print(render_markdown(pd.DataFrame({"x": ["a|b"]})))
    | x |
    |:--|
    | a\\|b |
    """
    cols = [str(c) for c in df.columns]
    cells = [_column_cells(df.iloc[:, i], null) for i in range(len(cols))]
    numeric = [_is_numeric(df.iloc[:, i]) for i in range(len(cols))]

    def esc(s: str) -> str:
        return s.replace("|", "\\|").replace("\n", " ")

    out = ["| " + " | ".join(esc(c) for c in cols) + " |",
           "|" + "|".join("--:" if n else ":--" for n in numeric) + "|"]
    for r in range(len(df)):
        out.append("| " + " | ".join(esc(cells[i][r]) for i in range(len(cols))) + " |")
    return "\n".join(out)


def render_vertical(df: pd.DataFrame, *, null: str = NULL, max_rows: int = 0) -> str:
    """One block per row, ``column | value`` lines (psql's ``\\x``); values are never cut.

    Past ``max_rows`` rows (``0``: no limit) the first and last ones are shown, as the
    ``table`` format does, with the count of those left out.

    >>> import pandas as pd
    >>> print(render_vertical(pd.DataFrame({"id": [1], "cell_type": ["BC"]})))
    -[ RECORD 1 ]-
    id        | 1
    cell_type | BC
    >>> print(render_vertical(pd.DataFrame({"n": range(100)}), max_rows=2))
    -[ RECORD 1 ]
    n | 0
    -[ … 98 rows not shown … ]-
    -[ RECORD 100 ]
    n | 99
    (100 rows, 2 shown)
    """
    n_rows = len(df)
    picked: Sequence[int] = range(n_rows)
    gap_at: int | None = None
    if max_rows and n_rows > max_rows:
        gap_at = (max_rows + 1) // 2
        picked = list(range(gap_at)) + list(range(n_rows - (max_rows - gap_at), n_rows))
        df = df.iloc[list(picked)]
    cols = [str(c) for c in df.columns]
    width = max((len(c) for c in cols), default=0)
    cells = [_column_cells(df.iloc[:, i], null) for i in range(len(cols))]
    out: list[str] = []
    for k, r in enumerate(picked):
        if k == gap_at:
            out.append(f"-[ … {n_rows - len(picked):,} rows not shown … ]-")
        lines = [f"{c.ljust(width)} | {cells[i][k]}" for i, c in enumerate(cols)]
        head = f"-[ RECORD {r + 1} ]"
        out.append(head + "-" * max(0, max(len(x) for x in lines) - len(head)) if lines else head)
        out.extend(lines)
    if not out:
        return "(0 rows)"
    if gap_at is not None:
        out.append(f"({n_rows:,} rows, {len(picked)} shown)")
    return "\n".join(out)


def _terminal_width() -> int:
    import shutil

    return shutil.get_terminal_size((120, 40)).columns


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def render_table(
    df: pd.DataFrame, *, max_rows: int = 40, max_width: int = 120, null: str = NULL,
    max_cell: int = 60,
) -> str:
    """The duckbox table: header with types, middle rows/columns elided, footer.

    ``max_rows``/``max_width`` of ``0`` mean no limit. Cells are cut (``…``) only to fit
    ``max_width``: as little as that allows, and to no fewer than ``max_cell`` characters —
    past that, middle columns are left out instead. With no width limit nothing is cut.

    >>> import pandas as pd
    >>> print(render_table(pd.DataFrame({"n": range(100)}), max_rows=4))
    ┌────────────────────┐
    │         n          │
    │       int64        │
    ├────────────────────┤
    │                  0 │
    │                  1 │
    │                  · │
    │                  · │
    │                  · │
    │                 98 │
    │                 99 │
    ├────────────────────┤
    │ 100 rows (4 shown) │
    │ 1 column           │
    └────────────────────┘
    """
    n_rows, n_cols = df.shape
    if max_rows and n_rows > max_rows:
        head = (max_rows + 1) // 2
        tail = max_rows - head
        picked: Sequence[int] | range = list(range(head)) + list(range(n_rows - tail, n_rows))
        gap_at: int | None = head
    else:
        picked = range(n_rows)
        gap_at = None
    shown = df.iloc[list(picked)] if gap_at is not None else df

    names = [str(c) for c in df.columns]
    raw = [_column_cells(shown.iloc[:, i], null) for i in range(n_cols)]
    types = [_type_name(df.iloc[:, i]) for i in range(n_cols)]
    natural = [max([len(name), len(typ), *(len(c) for c in cells)])
               for name, typ, cells in zip(names, types, raw)]
    cap = _cell_cap(natural, max_width, max_cell)
    columns = []
    for i, name in enumerate(names):
        cells = [_fit(c, cap) for c in raw[i]]
        numeric = _is_numeric(shown.iloc[:, i])
        columns.append((_fit(name, cap), types[i], cells, numeric, min(natural[i], cap)))

    keep = _choose_columns([c[4] for c in columns], max_width)
    parts: list[tuple[str, str, list[str], bool, int] | None] = []
    for i in range(n_cols):
        if i in keep:
            parts.append(columns[i])
        elif not parts or parts[-1] is not None:
            parts.append(None)  # the "…" column standing for the dropped ones
    n_body = len(picked)
    body_cols: list[tuple[str, str, list[str], bool, int]] = [
        p if p is not None else ("…", "", ["…"] * n_body, False, 1) for p in parts
    ]

    widths = [c[4] for c in body_cols]
    rows_text, cols_text = _footer_parts(n_rows, n_body, n_cols, len(keep))
    inner = sum(w + 3 for w in widths) - 3
    need = max(len(rows_text), len(cols_text))
    if inner < need:  # widen the last column so the footer fits (as DuckDB does)
        widths[-1] += need - inner
    lines = ["┌" + "┬".join("─" * (w + 2) for w in widths) + "┐"]
    lines.append("│" + "│".join(f" {c[0].center(w)} " for c, w in zip(body_cols, widths)) + "│")
    lines.append("│" + "│".join(f" {c[1].center(w)} " for c, w in zip(body_cols, widths)) + "│")
    lines.append("├" + "┼".join("─" * (w + 2) for w in widths) + "┤")
    for r in range(n_body):
        if gap_at is not None and r == gap_at:
            for _ in range(3):
                lines.append("│" + "│".join(
                    f" {'·'.rjust(w) if c[3] else '·'.ljust(w)} " for c, w in zip(body_cols, widths)) + "│")
        row = []
        for c, w in zip(body_cols, widths):
            cell = c[2][r]
            row.append(f" {cell.rjust(w) if c[3] else cell.ljust(w)} ")
        lines.append("│" + "│".join(row) + "│")
    inner = sum(w + 3 for w in widths) - 3
    both = rows_text + " " * max(2, inner - len(rows_text) - len(cols_text)) + cols_text
    footer = [both] if len(both) <= inner else [rows_text, cols_text]
    lines.append("├" + "┴".join("─" * (w + 2) for w in widths) + "┤")
    for f in footer:
        lines.append("│ " + f.ljust(inner) + " │")
    lines.append("└" + "─" * (inner + 2) + "┘")
    return "\n".join(lines)


def _cell_cap(natural: list[int], max_width: int, floor: int) -> int:
    """The widest cells may be: uncut if the table fits ``max_width`` (or there is no limit),
    else the largest cap, not below ``floor``, at which it fits (cut as little as possible).

    >>> _cell_cap([10, 300], 160, 60), _cell_cap([10, 300], 0, 60), _cell_cap([100] * 5, 160, 60)
    (143, 300, 60)
    """
    widest = max(natural, default=0)

    def total(cap: int) -> int:
        return sum(min(w, cap) + 3 for w in natural) + 1

    if not max_width or total(widest) <= max_width:
        return max(widest, 1)
    if total(floor) > max_width:
        return floor  # middle columns are left out (see _choose_columns)
    low, high = floor, widest  # total(low) fits, total(high) does not
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if total(mid) <= max_width else (low, mid)
    return low


def _footer_parts(n_rows: int, n_shown: int, n_cols: int, cols_shown: int) -> tuple[str, str]:
    rows = f"{n_rows:,} row{'s' if n_rows != 1 else ''}"
    if n_shown < n_rows:
        rows += f" ({n_shown} shown)"
    cols = f"{n_cols} column{'s' if n_cols != 1 else ''}"
    if cols_shown < n_cols:
        cols += f" ({cols_shown} shown)"
    return rows, cols


def _choose_columns(widths: list[int], max_width: int) -> set[int]:
    """Columns to show: all if they fit, else from both ends alternately (DuckDB)."""
    n = len(widths)
    total = sum(w + 3 for w in widths) + 1
    if not max_width or total <= max_width:
        return set(range(n))
    keep: set[int] = set()
    used = 1 + 4  # borders plus the "…" column
    left, right = 0, n - 1
    take_left = True
    while left <= right:
        i = left if take_left else right
        if used + widths[i] + 3 > max_width:
            break
        keep.add(i)
        used += widths[i] + 3
        if take_left:
            left += 1
        else:
            right -= 1
        take_left = not take_left
    if not keep:
        keep.add(0)
    return keep


def dumps_json(value: Any) -> str:
    """JSON text for a plain value (used by ``\\set`` echo and EXPLAIN bodies).

    >>> dumps_json({"ids": [864691135808473885]})
    '{"ids": [864691135808473885]}'
    """
    return json.dumps(value, default=_json_default)
