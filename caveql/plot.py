"""Plots of query answers: a connectivity matrix, a spatial scatter, histograms.

Each function takes a DataFrame (what :meth:`caveql.Connection.query` returns) and returns a
matplotlib :class:`~matplotlib.figure.Figure`; :func:`save` writes one to PNG, SVG or PDF. The
same functions are ``df.cql.plot_matrix``, ``plot_scatter`` and ``plot_hist``
(:mod:`caveql.accessor`), ``%%cql --plot matrix`` in Jupyter, ``\\plot matrix out.png`` in the
REPL and ``caveql --plot matrix -o out.png`` on the command line (those three read a *spec*,
``"scatter color=cell_type view=depth"``: :func:`parse_spec`).

matplotlib is the optional extra ``caveql[plot]``; it is imported when a plot is first drawn,
never by ``import caveql``. Figures are made without pyplot (no global state, no GUI backend),
so drawing works in threads, in the REPL and on headless machines alike.

>>> import pandas as pd
>>> df = pd.DataFrame({"pre_type": ["BC", "BC", "23P"], "post_type": ["23P", "BC", "23P"],
...                    "n_syn": [12, 3, 40]})
>>> fig = matrix(df)
>>> [t.get_text() for t in fig.axes[0].get_yticklabels()]
['23P', 'BC']
>>> parse_spec("scatter color=cell_type view=depth")
('scatter', {'color': 'cell_type', 'view': 'depth'})
"""

from __future__ import annotations

import inspect
import io
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from caveql.errors import ConfigError, UnknownColumnError, did_you_mean

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["KINDS", "hist", "image_format", "matrix", "parse_spec", "plot", "save", "scatter", "to_bytes"]

INSTALL_HINT = "pip install 'caveql[plot]'"
FIGSIZE = (6.4, 5.2)  # inches
DPI = 100
#: the style every figure is drawn and saved in: matplotlib's bundled DejaVu fonts (present on
#: every machine, so the pictures are the same everywhere), and no dates or random ids in files
STYLE = {
    "font.family": "DejaVu Sans",
    "font.size": 9.0,
    "svg.hashsalt": "caveql",
    "svg.fonttype": "path",
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "image.interpolation": "nearest",
}
_FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
# metadata matplotlib writes by default (its version, the date) would make every file differ
_METADATA: dict[str, dict[str, Any]] = {"png": {"Software": None}, "svg": {"Date": None},
                                        "pdf": {"CreationDate": None, "Producer": None}}
VIEWS = {  # name: (horizontal axis, vertical axis, vertical axis points down)
    "xz": ("x", "z", False),
    "depth": ("x", "y", True),  # y is cortical depth in MICrONS: pia at the top
    "xy": ("x", "y", True),
    "zy": ("z", "y", True),
}
MAX_TICK_LABELS = 60  # more labels than this on an axis are thinned out (they would overlap)
# a side longer than this is far more cells than the picture has pixels (and 5,000² floats are
# 200 MB): group them instead
MAX_SIDE = 5000


def _matplotlib() -> Any:
    """The matplotlib package, or a ConfigError saying how to install it."""
    try:
        import matplotlib
        from matplotlib.figure import Figure  # noqa: F401  (fails early if the install is broken)
    except ImportError as exc:
        raise ConfigError("plots need matplotlib, which is not installed", hint=INSTALL_HINT) from exc
    return matplotlib


@contextmanager
def _style() -> Iterator[Any]:
    mpl = _matplotlib()
    with mpl.rc_context(STYLE):
        yield mpl


def _figure(figsize: tuple[float, float] | None) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=figsize or FIGSIZE, dpi=DPI, layout="constrained")


# -- columns --------------------------------------------------------------------------------------
def _check_rows(frame: pd.DataFrame, what: str) -> None:
    # a plot of nothing is almost always a query that went wrong: say so rather than draw blank axes
    if len(frame) == 0:
        raise ConfigError(f"the result has no rows: no {what} to draw",
                          hint="check the query's filters (run it without the plot to see)")


def _column(frame: pd.DataFrame, name: str, role: str) -> pd.Series:
    if name not in frame.columns:
        cols = [str(c) for c in frame.columns]
        close = did_you_mean(name, cols)
        more: dict[str, Any] = {} if close else {"hint": "columns: " + ", ".join(cols)}
        raise UnknownColumnError(f"the {role} column {name!r} is not in the result", candidates=close, **more)
    return frame[name]


def _numeric(series: pd.Series, role: str) -> np.ndarray:
    """A numeric column as floats (nulls as NaN); a ConfigError for anything else."""
    if pd.api.types.is_bool_dtype(series.dtype) or not pd.api.types.is_numeric_dtype(series.dtype):
        hint = ("a position is three numbers: name one, e.g. pt_position_y, or use SPLIT POSITIONS"
                if series.dtype == object and _is_positions(series) else None)
        raise ConfigError(f"the {role} column {series.name!r} holds {series.dtype}, not numbers", hint=hint)
    return series.astype("Float64").to_numpy(dtype=float, na_value=np.nan)


def _is_positions(series: pd.Series) -> bool:
    first = series.dropna().head(1)
    return len(first) == 1 and np.ndim(first.iloc[0]) == 1 and len(first.iloc[0]) == 3


def _labels(series: pd.Series) -> pd.Series:
    # a null label is a category of its own ("NULL"), never a silently dropped row
    return series.astype(object).where(series.notna(), "NULL").map(str)


def _ordered(labels: Sequence[str], order: Sequence[str] | str | None) -> list[str]:
    """``labels`` (distinct) in ``order``'s order; labels it does not list follow, sorted."""
    present = sorted(set(labels), key=_natural)
    if order is None:
        return present
    given = [str(o) for o in ([order] if isinstance(order, str) else order)]
    head = [o for o in dict.fromkeys(given) if o in set(present)]
    return head + [p for p in present if p not in set(head)]


def _natural(label: str) -> tuple[Any, ...]:
    # numbers sort as numbers ("2" before "10", root ids in order), then text
    try:
        return (0, int(label), "")
    except ValueError:
        return (1, 0, label)


def _ticks(n: int) -> np.ndarray:
    step = max(1, -(-n // MAX_TICK_LABELS))
    return np.arange(0, n, step)


# -- the connectivity matrix ----------------------------------------------------------------------
def matrix(frame: pd.DataFrame, pre: str | None = None, post: str | None = None,
           weight: str | None = None, *, pre_group: str | None = None, post_group: str | None = None,
           order: Sequence[str] | str | None = None, log: bool = False, cmap: str = "viridis",
           title: str | None = None, figsize: tuple[float, float] | None = None) -> Figure:
    """A connectivity matrix: presynaptic rows, postsynaptic columns, colour = summed ``weight``.

    ``pre``, ``post`` and ``weight`` default to the frame's first three columns (with two, each
    row counts 1); rows with the same pair are summed (null weights are skipped, as SQL's SUM
    does). ``order`` lists labels to put first (the rest follow, sorted). With ``pre_group`` /
    ``post_group`` (e.g. the cell type of each side), the rows and columns are the cells, ordered
    by group, with the groups' names on the axes and lines between them. ``log=True`` colours on
    a log scale (pairs without synapses stay grey). A cell with two groups (two rows that
    disagree) is refused: there is no one place to draw it.

    >>> import pandas as pd
    >>> df = pd.DataFrame({"pre": [1, 1, 2], "post": [2, 3, 3], "n": [4, 1, 2],
    ...                    "pre_type": ["BC", "BC", "23P"], "post_type": ["23P", "BC", "BC"]})
    >>> fig = matrix(df, "pre", "post", "n")      # pre 1 -> post 2: 4 synapses, ...
    >>> fig.axes[0].images[0].get_array().tolist()
    [[4.0, 1.0], [0.0, 2.0]]
    >>> fig = matrix(df, "pre", "post", "n", pre_group="pre_type", post_group="post_type")
    >>> [t.get_text() for t in fig.axes[0].get_xticklabels()]
    ['23P', 'BC']
    """
    cols = [str(c) for c in frame.columns]
    _check_rows(frame, "matrix")
    if pre is None or post is None:
        if len(cols) < 2:
            raise ConfigError("a matrix needs a presynaptic and a postsynaptic column",
                              hint="e.g. SELECT pre_type, post_type, COUNT(*) ... GROUP BY 1, 2")
        pre, post = pre or cols[0], post or cols[1]
        if weight is None and len(cols) >= 3:
            weight = cols[2]
    rows, columns = _labels(_column(frame, pre, "presynaptic")), _labels(_column(frame, post, "postsynaptic"))
    values = (np.ones(len(frame)) if weight is None
              else _numeric(_column(frame, weight, "weight"), "weight"))
    groups = {}
    for side, group, labels in (("pre", pre_group, rows), ("post", post_group, columns)):
        if group is not None:
            kind = "presynaptic group" if side == "pre" else "postsynaptic group"
            groups[side] = _group_of(labels, _labels(_column(frame, group, kind)), group)
    row_order = _group_order(rows, groups.get("pre"), order)
    col_order = _group_order(columns, groups.get("post"), order)
    for side, keys, name in (("presynaptic", row_order, pre), ("postsynaptic", col_order, post)):
        if len(keys) > MAX_SIDE:
            raise ConfigError(f"{len(keys):,} {side} values in {name!r}: too many for a matrix "
                              f"(at most {MAX_SIDE:,} a side)",
                              hint="group them, e.g. by cell type: GROUP BY pre_type, post_type")
    table = (pd.DataFrame({"r": rows.to_numpy(), "c": columns.to_numpy(), "w": values})
             .groupby(["r", "c"], sort=False)["w"].sum(min_count=1))
    grid = np.full((len(row_order), len(col_order)), np.nan)
    r_index = {k: i for i, k in enumerate(row_order)}
    c_index = {k: i for i, k in enumerate(col_order)}
    if len(table):
        r = table.index.get_level_values(0).map(r_index).to_numpy()
        c = table.index.get_level_values(1).map(c_index).to_numpy()
        grid[r, c] = table.to_numpy()
    if not log:
        grid = np.nan_to_num(grid, nan=0.0)  # no synapses: 0, the colour scale's bottom
    with _style() as mpl:
        fig = _figure(figsize)
        ax = fig.add_subplot()
        norm = None
        if log:
            positive = grid[np.isfinite(grid) & (grid > 0)]
            grid = np.where(grid > 0, grid, np.nan)
            if len(positive):
                norm = mpl.colors.LogNorm(vmin=positive.min(), vmax=max(positive.max(), positive.min() * 10))
        # pairs without synapses on a log scale: light grey, told apart from the figure's white
        colours = _colormap(mpl, cmap).with_extremes(bad="#e4e4e4")
        image = ax.imshow(grid, cmap=colours, norm=norm, aspect="auto", interpolation="nearest")
        bar = fig.colorbar(image, ax=ax, shrink=0.85)
        bar.set_label(f"{weight} (sum)" if weight else "rows")
        _axis_labels(ax, "y", row_order, groups.get("pre"))
        _axis_labels(ax, "x", col_order, groups.get("post"))
        ax.set_ylabel(f"presynaptic: {pre_group or pre}")
        ax.set_xlabel(f"postsynaptic: {post_group or post}")
        ax.set_title(title if title is not None else _default_title(frame, len(row_order), len(col_order)))
    return fig


def _group_of(labels: pd.Series, groups: pd.Series, column: str) -> dict[str, str]:
    pairs = pd.DataFrame({"k": labels.to_numpy(), "g": groups.to_numpy()}).drop_duplicates()
    twice = pairs[pairs.duplicated("k", keep=False)]
    if len(twice):
        key = twice["k"].iloc[0]
        both = ", ".join(sorted(twice.loc[twice["k"] == key, "g"]))
        raise ConfigError(f"{key} has more than one {column} ({both}): a matrix row or column "
                          "needs one group", hint=f"pick one {column} per cell in the query")
    return dict(zip(pairs["k"], pairs["g"], strict=True))


def _colormap(mpl: Any, name: str) -> Any:
    try:
        return mpl.colormaps[name]
    except KeyError:
        close = did_you_mean(name, list(mpl.colormaps))
        raise ConfigError(f"unknown colour map {name!r}", hint=f"did you mean {close[0]}?" if close
                          else "e.g. viridis, magma, Greys") from None


def _group_order(labels: pd.Series, group_of: dict[str, str] | None, order: Any) -> list[str]:
    if group_of is None:
        return _ordered(list(labels), order)
    rank = {g: i for i, g in enumerate(_ordered(list(group_of.values()), order))}
    return sorted(set(labels), key=lambda k: (rank[group_of[k]], _natural(k)))


def _axis_labels(ax: Any, axis: str, keys: list[str], group_of: dict[str, str] | None) -> None:
    set_ticks, set_labels = (ax.set_xticks, ax.set_xticklabels) if axis == "x" else (ax.set_yticks,
                                                                                      ax.set_yticklabels)
    rotation = 90 if axis == "x" else 0
    if group_of is None:
        at = _ticks(len(keys))
        set_ticks(at)
        set_labels([keys[i] for i in at], rotation=rotation, fontsize=_fontsize(len(at)))
        return
    # one label per group, at its middle; a line at each boundary
    names: list[str] = []
    starts: list[int] = []
    for i, k in enumerate(keys):
        if not names or group_of[k] != names[-1]:
            names.append(group_of[k])
            starts.append(i)
    ends = [*starts[1:], len(keys)]
    set_ticks([(s + e - 1) / 2 for s, e in zip(starts, ends, strict=True)])
    set_labels(names, rotation=rotation, fontsize=_fontsize(len(names)))
    line = ax.axvline if axis == "x" else ax.axhline
    for s in starts[1:]:
        line(s - 0.5, color="white", linewidth=0.8)


def _fontsize(n: int) -> float:
    return 8.0 if n <= 20 else 6.0 if n <= 40 else 4.5


def _default_title(frame: pd.DataFrame, n_rows: int, n_cols: int) -> str:
    meta = frame.attrs.get("caveql") if isinstance(frame.attrs.get("caveql"), dict) else {}
    where = meta.get("datastack") if meta else None
    size = f"{n_rows} × {n_cols}"
    return f"{where}: {size}" if where else size


# -- the spatial scatter --------------------------------------------------------------------------
def scatter(frame: pd.DataFrame, position: str | None = None, *, view: str = "xz",
            color: str | None = None, size: float | None = None, cmap: str = "viridis",
            resolution: Sequence[float] | None = None, title: str | None = None,
            figsize: tuple[float, float] | None = None) -> Figure:
    """Positions seen from above (``view="xz"``) or from the side, pia at the top
    (``"depth"``: x across, y down; ``"zy"``), coloured by a column (a category, or a number on
    a colour scale). ``position`` is a position column (``pt_position``) or the stem of split
    ones (``pt_position`` for ``pt_position_x/_y/_z``); by default the first of the frame.
    Axes are in µm when the resolution is known (``resolution``, nm per unit as in ``AT
    RESOLUTION``; else the frame's ``attrs["dataframe_resolution"]``), else in voxels. Rows
    without a position are not drawn, and the title says how many.

    >>> import numpy as np, pandas as pd
    >>> df = pd.DataFrame({"pt_position": [np.array([1000, 2000, 30]), np.array([3000, 1000, 20])],
    ...                    "cell_type": ["BC", "23P"]})
    >>> df.attrs["dataframe_resolution"] = [4.0, 4.0, 40.0]
    >>> ax = scatter(df, view="depth", color="cell_type").axes[0]
    >>> ax.get_xlabel(), ax.get_ylabel(), bool(ax.yaxis_inverted())
    ('x (µm)', 'y (µm)', True)
    """
    if view not in VIEWS:
        raise ConfigError(f"unknown view {view!r}", hint="views: " + ", ".join(VIEWS))
    _check_rows(frame, "positions")
    xyz, stem = _positions(frame, position)
    scale, unit = _scale(frame, resolution)
    h_axis, v_axis, down = VIEWS[view]
    h, v = xyz[:, "xyz".index(h_axis)] * scale["xyz".index(h_axis)], xyz[:, "xyz".index(v_axis)] * scale[
        "xyz".index(v_axis)]
    shown = np.isfinite(h) & np.isfinite(v)
    missing = int((~shown).sum())
    s = size if size is not None else float(np.clip(20000 / max(1, int(shown.sum())), 1.0, 16.0))
    with _style() as mpl:
        fig = _figure(figsize)
        ax = fig.add_subplot()
        if color is None:
            ax.scatter(h[shown], v[shown], s=s, linewidths=0, color="C0")
        else:
            series = _column(frame, color, "colour")
            if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
                values = _numeric(series, "colour")[shown]
                # a null value is drawn grey, not left out
                colours = _colormap(mpl, cmap).with_extremes(bad="#b0b0b0")
                points = ax.scatter(h[shown], v[shown], c=values, s=s, linewidths=0, cmap=colours,
                                    plotnonfinite=True)
                fig.colorbar(points, ax=ax, shrink=0.85).set_label(color)
            else:
                labels = _labels(series).to_numpy()[shown]
                palette = mpl.colormaps["tab20" if len(set(labels)) > 10 else "tab10"]
                for i, label in enumerate(_ordered(list(labels), None)):
                    mask = labels == label
                    ax.scatter(h[shown][mask], v[shown][mask], s=s, linewidths=0,
                               color=palette(i % palette.N), label=label)
                ax.legend(title=color, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0,
                          fontsize=7, title_fontsize=8, markerscale=max(1.0, 4 / np.sqrt(s)), frameon=False)
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_xlabel(f"{h_axis} ({unit})")
        ax.set_ylabel(f"{v_axis} ({unit})")
        if down:
            ax.invert_yaxis()
        note = f" ({missing} without a position not shown)" if missing else ""
        ax.set_title((title if title is not None else f"{stem}, {view} view") + note)
    return fig


def _positions(frame: pd.DataFrame, position: str | None) -> tuple[np.ndarray, str]:
    """``(n × 3 float array with NaN for nulls, the position's name)``."""
    cols = [str(c) for c in frame.columns]
    split = [c[:-2] for c in cols if c.endswith("_x") and f"{c[:-2]}_y" in cols and f"{c[:-2]}_z" in cols]
    whole = [c for c in cols if frame[c].dtype == object and _is_positions(frame[c])]
    if position is None:
        found = [c for c in cols if c in whole or c in split or any(c == f"{p}_x" for p in split)]
        if not found:
            raise ConfigError("the result has no position column to plot",
                              hint="select one, e.g. pt_position (or pt_position_x, _y and _z)")
        position = found[0] if found[0] in whole else found[0][:-2]
    if position in split:
        xyz = np.column_stack([_numeric(frame[f"{position}_{a}"], "position") for a in "xyz"])
        return xyz, position
    series = _column(frame, position, "position")
    if position not in whole and len(series.dropna()):
        raise ConfigError(f"the column {position!r} does not hold positions ([x, y, z])")
    xyz = np.full((len(series), 3), np.nan)
    for i, p in enumerate(series.to_numpy()):
        if p is not None and np.ndim(p) == 1 and len(p) == 3:
            xyz[i] = pd.array(p, dtype="Float64").to_numpy(dtype=float, na_value=np.nan)
    return xyz, position


def _scale(frame: pd.DataFrame, given: Sequence[float] | None) -> tuple[tuple[float, float, float], str]:
    if given is not None:
        if len(given) != 3 or not all(isinstance(r, int | float) and r > 0 for r in given):
            raise ConfigError(f"resolution is three positive numbers (nm per unit of x, y, z), not {given!r}")
        return (given[0] / 1000, given[1] / 1000, given[2] / 1000), "µm"
    meta = frame.attrs.get("caveql")
    res = frame.attrs.get("dataframe_resolution")
    if res is None and isinstance(meta, dict):
        res = meta.get("resolution")
    if isinstance(res, list | tuple) and len(res) == 3 and all(isinstance(r, int | float) for r in res):
        return (res[0] / 1000, res[1] / 1000, res[2] / 1000), "µm"
    return (1.0, 1.0, 1.0), "voxels"


# -- histograms -----------------------------------------------------------------------------------
def hist(frame: pd.DataFrame, column: str | None = None, *, by: str | None = None, bins: int = 50,
         log: bool = False, title: str | None = None, figsize: tuple[float, float] | None = None) -> Figure:
    """A histogram of a numeric column (by default the first that is not an id), one outline per
    value of ``by`` when given (the same bins for all). ``log=True`` counts on a log scale. Null
    values are not counted, and the title says how many there were.

    >>> import pandas as pd
    >>> df = pd.DataFrame({"id": [1, 2, 3], "size": [100.0, 250.0, None]})
    >>> hist(df, bins=3).axes[0].get_title()
    'size (1 null not counted)'
    """
    _check_rows(frame, "values")
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ConfigError(f"bins must be a whole number of at least 1, not {bins!r}")
    if column is None:
        numeric = [str(c) for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c].dtype)
                   and not pd.api.types.is_bool_dtype(frame[c].dtype)]
        plain = [c for c in numeric if not (c == "id" or c.endswith("_id") or c.startswith("id_"))]
        if not (plain or numeric):
            raise ConfigError("the result has no numeric column to count",
                              hint="columns: " + ", ".join(str(c) for c in frame.columns))
        column = (plain or numeric)[0]
    values = _numeric(_column(frame, column, "histogram"), "histogram")
    finite = np.isfinite(values)
    edges = np.histogram_bin_edges(values[finite] if finite.any() else np.zeros(1), bins=bins)
    with _style():
        fig = _figure(figsize)
        ax = fig.add_subplot()
        if by is None:
            ax.hist(values[finite], bins=edges, color="C0")
        else:
            labels = _labels(_column(frame, by, "group")).to_numpy()
            for label in _ordered(list(labels), None):
                mask = finite & (labels == label)
                ax.hist(values[mask], bins=edges, histtype="step", linewidth=1.2, label=label)
            ax.legend(title=by, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0,
                      fontsize=7, title_fontsize=8, frameon=False)
        if log:
            ax.set_yscale("log")
        ax.set_xlabel(column)
        ax.set_ylabel("rows")
        nulls = int((~finite).sum())
        note = f" ({nulls} null{'s' if nulls != 1 else ''} not counted)" if nulls else ""
        ax.set_title((title if title is not None else column) + note)
    return fig


# -- by name: the REPL, the CLI and the notebook magic --------------------------------------------
KINDS: dict[str, Callable[..., Figure]] = {"matrix": matrix, "scatter": scatter, "hist": hist}
_ALIASES = {"histogram": "hist", "heatmap": "matrix"}
_LISTS = {"order", "resolution"}  # options whose value is a comma-separated list


def parse_spec(spec: str | Sequence[str]) -> tuple[str, dict[str, Any]]:
    """``"kind name=value ..."`` -> ``(kind, options)``: a plot as the REPL, CLI and magic name
    it. Values are text; ``true``/``false`` and numbers are converted where the option wants
    them, ``order=23P,BC`` is a list. Unknown kinds and options are refused with a suggestion.
    A list of words (already split, e.g. by shlex) is taken as is.

    >>> parse_spec("matrix pre_type post_type n_syn order=23P,BC log=true")
    ('matrix', {'pre': 'pre_type', 'post': 'post_type', 'weight': 'n_syn', 'order': ['23P', 'BC'],
     'log': True})
    >>> parse_spec("scatterplot")
    Traceback (most recent call last):
      ...
    caveql.errors.ConfigError: unknown plot 'scatterplot'; help: did you mean scatter? plots: ...
    """
    words = spec.split() if isinstance(spec, str) else list(spec)
    if not words:
        raise ConfigError("which plot?", hint="plots: " + ", ".join(KINDS))
    kind = _ALIASES.get(words[0].lower(), words[0].lower())
    if kind not in KINDS:
        close = did_you_mean(kind, KINDS)
        raise ConfigError(f"unknown plot {words[0]!r}", hint=(f"did you mean {close[0]}? " if close else "")
                          + "plots: " + ", ".join(KINDS))
    params = inspect.signature(KINDS[kind]).parameters
    names = [n for n in params if n not in ("frame", "figsize")]
    positional = [n for n in names if params[n].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    options: dict[str, Any] = {}
    for i, word in enumerate(words[1:]):
        name, eq, value = word.partition("=")
        if not eq:  # a bare word: the next positional option (matrix pre post weight)
            if i >= len(positional) or any("=" in w for w in words[1:i + 1]):
                raise ConfigError(f"{kind}: options are name=value, not {word!r}",
                                  hint=f"{kind} takes " + ", ".join(names))
            name, value = positional[i], word
        if name not in names:
            close = did_you_mean(name, names)
            hint = (f"did you mean {close[0]}? " if close else "") + f"{kind} takes " + ", ".join(names)
            raise ConfigError(f"{kind} has no option {name!r}", hint=hint)
        options[name] = _convert(kind, name, value, params[name].default)
    return kind, options


def _convert(kind: str, name: str, value: str, default: Any) -> Any:
    if name == "resolution":
        try:
            return [float(v) for v in value.split(",")]
        except ValueError:
            raise ConfigError(f"{kind} resolution= takes x,y,z in nm, not {value!r}") from None
    if name in _LISTS:
        return [v for v in value.split(",") if v]
    if isinstance(default, bool):
        if value.lower() not in ("true", "false", "on", "off", "yes", "no", "1", "0"):
            raise ConfigError(f"{kind} {name}= takes true or false, not {value!r}")
        return value.lower() in ("true", "on", "yes", "1")
    if isinstance(default, int):
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"{kind} {name}= takes a whole number, not {value!r}") from None
    if isinstance(default, float) or name == "size":
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"{kind} {name}= takes a number, not {value!r}") from None
    return value


def plot(frame: pd.DataFrame, spec: str | Sequence[str], **options: Any) -> Figure:
    """The plot a spec names (:func:`parse_spec`) of ``frame``; ``options`` override the spec's.

    >>> import pandas as pd
    >>> plot(pd.DataFrame({"size": [1.0, 2.0, 2.5]}), "hist bins=2").axes[0].get_xlabel()
    'size'
    """
    kind, parsed = parse_spec(spec)
    return KINDS[kind](frame, **{**parsed, **options})


def image_format(path: str | os.PathLike[str]) -> str:
    """The image format a file name asks for (from its extension), or a ConfigError.

    >>> image_format("out.SVG")
    'svg'
    """
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext not in _FORMATS:
        what = f"the extension {ext!r}" if ext else "no extension"
        raise ConfigError(f"cannot write a plot to {os.fspath(path)!r}: {what} names no image format",
                          hint="use .png, .svg or .pdf")
    return _FORMATS[ext]


def save(fig: Figure, path: str | os.PathLike[str]) -> str:
    """Write ``fig`` to ``path``, its format from the extension (.png, .svg, .pdf); returns the
    path. The files are the same on every run (no dates or random ids inside).

    >>> import os, tempfile, pandas as pd
    >>> out = save(hist(pd.DataFrame({"n": [1, 2, 2]})), os.path.join(tempfile.mkdtemp(), "n.svg"))
    >>> with open(out) as f:
    ...     f.read().count("<svg")
    1
    """
    fmt = image_format(path)
    try:
        with _style():
            fig.savefig(path, format=fmt, metadata=_METADATA[fmt])
    except OSError as exc:
        raise ConfigError(f"cannot write the plot to {os.fspath(path)!r}: {exc.strerror or exc}") from exc
    return os.fspath(path)


def to_bytes(fig: Figure, fmt: str = "png") -> bytes:
    """``fig`` as PNG (or SVG, PDF) bytes, e.g. to show inline in a notebook.

    >>> import pandas as pd
    >>> to_bytes(hist(pd.DataFrame({"n": [1, 2, 2]})))[:4]
    b'\\x89PNG'
    """
    if fmt not in _METADATA:
        raise ConfigError(f"unknown image format {fmt!r}", hint="png, svg or pdf")
    buffer = io.BytesIO()
    with _style():
        fig.savefig(buffer, format=fmt, metadata=_METADATA[fmt])
    return buffer.getvalue()
