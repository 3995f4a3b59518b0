"""caveql.plot: the tutorial's plots against reviewed images, and every way in (df.cql, \\plot,
--plot, %%cql --plot) and every way to get it wrong.

The baselines under tests/plot/baseline/ are the tutorial's three plots, drawn from the demo by
the very ``\\plot`` lines docs/tutorial.md shows; docs/images/ holds the same files.
CAVEQL_REGEN_PLOTS=1 redraws both (look at them before committing). matplotlib (the ``plot``
extra) is a test dependency: these tests fail, not skip, without it.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import caveql
from caveql import plot
from caveql.errors import ConfigError, UnknownColumnError
from caveql.repl.session import Session

ROOT = Path(__file__).resolve().parents[2]
TUTORIAL = ROOT / "docs" / "tutorial.md"
BASELINE = Path(__file__).with_name("baseline")
IMAGES = ROOT / "docs" / "images"
# RMS over 0-255 pixel values of the whole image: one changed digit of the title, or one cell of the
# matrix a shade off, measures about 1.0; the same matplotlib wheel (it bundles FreeType and the
# DejaVu fonts) draws the same pixels on any machine, so only a little room is left
TOLERANCE = 0.2
SECTION_TITLE = "## Cell type × cell type connectivity of proofread cells"


def tutorial_plots() -> list[tuple[str, list[str], str]]:
    """``(cql, \\plot words after the file name, image name)`` of each plot of the tutorial's
    connectivity section, in order: each ``\\plot`` line draws the ``cql`` block before it."""
    text = TUTORIAL.read_text(encoding="utf-8")
    start = text.index(SECTION_TITLE)
    section = text[start:text.index("\n## ", start + 1)]
    queries = list(re.finditer(r"```cql\n(.*?)```", section, re.DOTALL))
    plots = list(re.finditer(r"^caveql> \\plot (\S+) \S+(.*)$", section, re.MULTILINE))
    images = re.findall(r"!\[[^\]]*\]\(images/([\w.-]+\.png)\)", section)
    assert len(plots) == len(images) == 3, (plots, images)
    found = []
    for plot_line, image in zip(plots, images, strict=True):
        query = [q for q in queries if q.end() < plot_line.start()][-1]
        found.append((query[1], [plot_line[1], *plot_line[2].split()], image))
    return found


PLOTS = tutorial_plots()


@pytest.fixture(scope="module")
def db(demo_path):
    with caveql.connect(path=demo_path) as conn:
        yield conn


@pytest.fixture(scope="module")
def frames(db) -> list[pd.DataFrame]:
    return [db.query(cql.rstrip().rstrip(";")) for cql, _, _ in PLOTS]


@pytest.mark.parametrize("index", range(len(PLOTS)), ids=[p[2] for p in PLOTS])
def test_tutorial_plots_look_as_reviewed(frames, index, tmp_path) -> None:
    from matplotlib.testing.compare import compare_images

    _, spec, image = PLOTS[index]
    actual = plot.save(plot.plot(frames[index], spec), tmp_path / image)
    if os.environ.get("CAVEQL_REGEN_PLOTS"):
        BASELINE.mkdir(exist_ok=True)
        IMAGES.mkdir(exist_ok=True)
        shutil.copyfile(actual, BASELINE / image)
        shutil.copyfile(actual, IMAGES / image)
    assert (BASELINE / image).stat().st_size < 120_000, "keep baselines small"
    assert compare_images(str(BASELINE / image), actual, tol=TOLERANCE) is None
    # the tutorial shows the reviewed image itself
    assert (IMAGES / image).read_bytes() == (BASELINE / image).read_bytes()


def test_the_matrix_is_the_answer(frames) -> None:
    df = frames[0]
    fig = plot.plot(df, PLOTS[0][1])
    ax = fig.axes[0]
    rows = [t.get_text() for t in ax.get_yticklabels()]
    cols = [t.get_text() for t in ax.get_xticklabels()]
    grid = np.asarray(ax.images[0].get_array().filled(np.nan))
    assert set(rows) == set(df.pre_type) and set(cols) == set(df.post_type)
    assert rows[:3] == ["23P", "4P", "5P-IT"]  # the spec's order=
    for r in df.itertuples():  # every pair's count in its cell
        assert grid[rows.index(r.pre_type), cols.index(r.post_type)] == r.n_syn
    assert np.nansum(grid) == df.n_syn.sum()  # and nothing else


def test_same_file_every_run(frames, tmp_path) -> None:
    for ext in ("png", "svg", "pdf"):
        a = plot.save(plot.matrix(frames[0]), tmp_path / f"a.{ext}")
        b = plot.save(plot.matrix(frames[0]), tmp_path / f"b.{ext}")
        assert Path(a).read_bytes() == Path(b).read_bytes(), ext


# -- the accessor -----------------------------------------------------------------------------------
def test_accessor_methods_are_the_plot_functions(frames) -> None:
    from matplotlib.figure import Figure

    assert isinstance(frames[0].cql.plot_matrix(log=True), Figure)
    fig = frames[1].cql.plot_scatter(view="xz", color="cell_type", resolution=(1, 1, 1))
    assert fig.axes[0].get_xlabel() == "x (µm)" and fig.axes[0].get_ylabel() == "z (µm)"
    assert fig.axes[0].get_legend().get_title().get_text() == "cell_type"
    fig = frames[2].cql.plot_hist("size", by="pre_type", bins=10)
    assert len(fig.axes[0].patches) == 3  # one outline per type


def test_import_caveql_does_not_import_matplotlib() -> None:
    code = ("import sys, caveql, pandas as pd; pd.DataFrame().cql; "
            "assert 'matplotlib' not in sys.modules and 'caveql.plot' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_matplotlib_says_how_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what an uninstalled package looks like
    with pytest.raises(ConfigError, match="matplotlib") as info:
        plot.hist(pd.DataFrame({"n": [1, 2]}))
    assert info.value.hint == "pip install 'caveql[plot]'"


# -- the matrix -----------------------------------------------------------------------------------
def test_matrix_sums_pairs_and_keeps_null_labels() -> None:
    df = pd.DataFrame({"pre": ["a", "a", None], "post": ["b", "b", "b"],
                       "w": pd.array([1, 2, 5], dtype="Int64")})
    ax = plot.matrix(df).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["NULL", "a"]
    assert ax.images[0].get_array().tolist() == [[5.0], [3.0]]


def test_matrix_grouped_by_type() -> None:
    df = pd.DataFrame({"pre": [10, 11, 12], "post": [11, 12, 10], "n": [1, 2, 3],
                       "pre_t": ["B", "A", "B"], "post_t": ["A", "B", "B"]})
    ax = plot.matrix(df, "pre", "post", "n", pre_group="pre_t", post_group="post_t", order=["B"]).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["B", "A"]
    # rows and columns: cells 10, 12 (type B) then 11 (A); 10 -> 11: 1, 12 -> 10: 3, 11 -> 12: 2
    assert ax.images[0].get_array().tolist() == [[0.0, 0.0, 1.0], [3.0, 0.0, 0.0], [0.0, 2.0, 0.0]]
    assert len(ax.lines) == 2  # one per axis


def test_matrix_of_100_types_thins_its_labels() -> None:
    types = [f"t{i:03d}" for i in range(100)]
    df = pd.DataFrame([(a, b, 1) for a in types for b in types], columns=["pre", "post", "n"])
    ax = plot.matrix(df).axes[0]
    assert ax.images[0].get_array().shape == (100, 100)
    assert 1 < len(ax.get_yticklabels()) <= plot.MAX_TICK_LABELS


@pytest.mark.parametrize(("call", "error", "words"), [
    (lambda df: plot.matrix(df, "pre", "post", "nsyn"), UnknownColumnError, ["'nsyn'", "n_syn"]),
    (lambda df: plot.matrix(df, "pre", "post", "pre"), ConfigError, ["weight column 'pre'", "not numbers"]),
    (lambda df: plot.matrix(df[["pre"]]), ConfigError, ["presynaptic and a postsynaptic"]),
    (lambda df: plot.matrix(df, cmap="viridus"), ConfigError, ["colour map 'viridus'", "viridis"]),
    (lambda df: plot.scatter(df), ConfigError, ["no position column"]),
    (lambda df: plot.scatter(df.assign(p=[np.array([1, 2, 3])] * 2), view="side"), ConfigError,
     ["unknown view 'side'", "depth"]),
    (lambda df: plot.scatter(df.assign(p=[np.array([1, 2, 3])] * 2), resolution=(4, 4)), ConfigError,
     ["three positive numbers"]),
    (lambda df: plot.hist(df, "pre"), ConfigError, ["'pre'", "not numbers"]),
    (lambda df: plot.hist(df.assign(p=[np.array([1, 2, 3])] * 2), "p"), ConfigError, ["pt_position_y"]),
    (lambda df: plot.hist(df, bins=0), ConfigError, ["bins"]),
    (lambda df: plot.hist(df[["pre"]]), ConfigError, ["no numeric column"]),
])
def test_bad_arguments_are_named(call, error, words) -> None:
    df = pd.DataFrame({"pre": ["a", "b"], "post": ["b", "a"], "n_syn": [1, 2]})
    with pytest.raises(error) as info:
        call(df)
    text = f"{info.value.message} {info.value.hint}"
    assert all(w in text for w in words), text


# -- scatter and hist -----------------------------------------------------------------------------
def test_scatter_split_positions_and_missing_ones() -> None:
    df = pd.DataFrame({"pt_position_x": pd.array([1000, None, 3000], dtype="Int64"),
                       "pt_position_y": [10, 20, 30], "pt_position_z": [5, 6, 7], "v": [0.1, 0.5, 0.9]})
    ax = plot.scatter(df, color="v").axes[0]
    assert ax.get_title() == "pt_position, xz view (1 without a position not shown)"
    assert len(ax.collections[0].get_offsets()) == 2
    assert ax.get_xlabel() == "x (voxels)"  # no resolution known: not pretending to know µm


def test_hist_counts_every_value_and_notes_nulls() -> None:
    df = pd.DataFrame({"pre_pt_root_id": [1, 2, 3, 4], "size": [1.0, 2.0, 2.0, np.nan]})
    ax = plot.hist(df, bins=2).axes[0]  # the first numeric column that is not an id
    assert ax.get_xlabel() == "size" and ax.get_title() == "size (1 null not counted)"
    assert [p.get_height() for p in ax.patches] == [1.0, 2.0]


# -- specs ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("spec", "words"), [
    ("", ["which plot"]),
    ("pie", ["unknown plot 'pie'", "matrix, scatter, hist"]),
    ("matrix wieght=n", ["no option 'wieght'", "weight"]),
    ("matrix log=maybe", ["true or false"]),
    ("hist bins=many", ["whole number"]),
    ("scatter resolution=4,4,x", ["x,y,z"]),
    ("hist a b c", ["name=value"]),
])
def test_bad_specs(spec, words) -> None:
    with pytest.raises(ConfigError) as info:
        plot.parse_spec(spec)
    text = f"{info.value.message} {info.value.hint}"
    assert all(w in text for w in words), text


def test_save_refuses_unknown_extensions_and_unwritable_places(tmp_path) -> None:
    fig = plot.hist(pd.DataFrame({"n": [1, 2]}))
    with pytest.raises(ConfigError, match=r"'\.jpeg' names no image format"):
        plot.save(fig, tmp_path / "a.jpeg")
    with pytest.raises(ConfigError, match="cannot write the plot"):
        plot.save(fig, tmp_path / "no" / "such" / "dir.png")


# -- the REPL, the CLI, the magic -----------------------------------------------------------------
def _session(demo_path) -> Session:
    session = Session(lambda: caveql.connect(path=demo_path))
    session.out, session.err = io.StringIO(), io.StringIO()
    return session


def test_repl_plot_writes_the_last_result(demo_path, tmp_path) -> None:
    session = _session(demo_path)
    try:
        assert not session.run(f"\\plot matrix {tmp_path / 'm.png'}")  # nothing to plot yet
        assert "no result to plot yet" in session.err.getvalue()
        assert session.run_cql(PLOTS[0][0])
        assert session.run(f"\\plot matrix '{tmp_path / 'm m.svg'}' log=true")
        assert (tmp_path / "m m.svg").read_bytes().count(b"<svg") == 1
        assert f"Wrote the matrix plot of {len(session.last_frame)} rows" in session.err.getvalue()
        for bad, says in [("\\plot matrix", "needs a kind and a file"),
                          (f"\\plot matrix {tmp_path / 'm.gif'}", "names no image format"),
                          (f"\\plot matrx {tmp_path / 'm.png'}", "did you mean matrix")]:
            assert not session.run(bad)
            assert says in session.err.getvalue(), bad
        assert not (tmp_path / "m.png").exists() and not (tmp_path / "m.gif").exists()
    finally:
        session.close()


def test_cli_plot_to_file(demo_path, tmp_path, capsys) -> None:
    from caveql.repl.cli import main

    query = PLOTS[0][0]
    out = tmp_path / "matrix.png"
    assert main(["--path", str(demo_path), "-c", query, "--plot", "matrix log=true", "-o", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert capsys.readouterr().out == ""  # the plot went to the file, no table to stdout
    assert main(["--path", str(demo_path), "-c", query, "--plot", "matrix"]) == 2
    assert "--plot draws the results" in capsys.readouterr().err
    assert main(["--path", str(demo_path), "-c", query, "--plot", "matrix", "-o", "m.bmp"]) == 2
    assert "names no image format" in capsys.readouterr().err
    assert main(["--path", str(demo_path), "-c", query, "--plot", "hist nsyn", "-o", str(out)]) == 1
    assert "did you mean 'n_syn'" in capsys.readouterr().err


def test_magic_plot_shows_the_figure(demo_path, monkeypatch) -> None:
    import IPython.display
    from IPython.testing.globalipapp import get_ipython

    shown: list[object] = []
    monkeypatch.setattr(IPython.display, "display", shown.append)
    ip = get_ipython()
    ip.run_line_magic("load_ext", "caveql")
    try:
        df = ip.run_cell_magic("cql", f"--path {demo_path} --plot 'matrix log=true'", PLOTS[0][0])
        assert isinstance(df, pd.DataFrame) and list(df.columns) == ["pre_type", "post_type", "n_syn"]
        assert len(shown) == 1 and isinstance(shown[0], IPython.display.Image)
        assert shown[0].data[:4] == b"\x89PNG"
        result = ip.run_cell(f"%%cql --plot 'hist nsyn'\n{PLOTS[0][0]}")
        assert not result.success and "n_syn" in str(result.error_in_exec.hint)
    finally:
        magics = ip.magics_manager.registry.get("CqlMagics")
        if magics is not None and magics.connection is not None:
            magics.connection.close()
            magics.connection = None


def test_accessor_neuroglancer_is_caveql_neuroglancer() -> None:
    from caveql import neuroglancer

    df = pd.DataFrame({"pt_root_id": [1001, 1002]})
    options = {"image": "precomputed://gs://b/em", "segmentation": "precomputed://gs://b/seg",
               "viewer_resolution": (4, 4, 40)}
    assert df.cql.neuroglancer(**options).state == neuroglancer.neuroglancer(df, **options).state


@pytest.mark.parametrize("kind", ["matrix", "scatter", "hist"])
def test_an_empty_result_is_said_not_drawn_blank(kind) -> None:
    empty = pd.DataFrame({"pre": pd.Series([], dtype="string"), "post": pd.Series([], dtype="string"),
                          "n": pd.Series([], dtype="Int64")})
    with pytest.raises(ConfigError, match="the result has no rows"):
        plot.plot(empty, kind)


def test_matrix_refuses_more_cells_than_it_can_show(monkeypatch) -> None:
    monkeypatch.setattr(plot, "MAX_SIDE", 3)
    df = pd.DataFrame({"pre": [1, 2, 3, 4], "post": [1, 1, 1, 1], "n": [1, 1, 1, 1]})
    with pytest.raises(ConfigError, match="4 presynaptic values in 'pre': too many") as info:
        plot.matrix(df)
    assert "GROUP BY" in str(info.value.hint)


def test_scatter_draws_null_colour_values_grey() -> None:
    df = pd.DataFrame({"p_x": [1.0, 2.0], "p_y": [1.0, 2.0], "p_z": [1.0, 2.0],
                       "v": pd.array([0.5, None], dtype="Float64")})
    fig = plot.scatter(df, color="v")
    plot.to_bytes(fig)  # (colours are mapped when drawn)
    points = fig.axes[0].collections[0]
    assert len(points.get_offsets()) == 2
    assert tuple(points.get_facecolors()[1][:3]) == pytest.approx((0xb0 / 255,) * 3)


def test_matrix_refuses_a_cell_in_two_groups() -> None:
    df = pd.DataFrame({"pre": [10, 10], "post": [11, 12], "n": [1, 1], "pre_t": ["A", "B"], "post_t": ["A", "A"]})
    with pytest.raises(ConfigError, match=r"10 has more than one pre_t \(A, B\)"):
        plot.matrix(df, "pre", "post", "n", pre_group="pre_t", post_group="post_t")
