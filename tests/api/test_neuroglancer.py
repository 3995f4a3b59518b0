"""Neuroglancer states of answers (caveql.neuroglancer): equal, layer by layer, to nglui 4.x's
state of the same frame; deterministic; converted to the viewer's resolution; offline; and
reachable from every surface (df.cql, Result, the CLI, the REPL's \\ng, %%cql --ng)."""

from __future__ import annotations

import io
import json
import socket
import urllib.parse
import warnings

import pandas as pd
import pytest

import caveql
from caveql import neuroglancer as ng
from caveql.errors import CaveqlError, ConfigError, UnknownColumnError

SYNAPSES = ("SELECT s.id, s.pre_pt_position, s.post_pt_position, s.pre_pt_root_id, s.post_pt_root_id, "
            "c.cell_type FROM synapses s LEFT JOIN cells c ON c.pt_root_id = s.post_pt_root_id")
INFO = {"aligned_volume": {"image_source": "precomputed://https://bucket.example.org/em"},
        "segmentation_source": "graphene://https://cave.example.org/segmentation/table/pcg",
        "viewer_resolution_x": 4.0, "viewer_resolution_y": 4.0, "viewer_resolution_z": 40.0}


@pytest.fixture
def db(tiny_datastack):
    with caveql.connect(path=tiny_datastack) as conn:
        yield conn


@pytest.fixture
def synapses(db) -> pd.DataFrame:
    """The tiny datastack's synapses at 8 × 8 × 40 nm (the viewer is at 4 × 4 × 40)."""
    db.resolution = (8, 8, 40)
    return db.query(SYNAPSES)


@pytest.fixture
def offline(monkeypatch):
    """Any attempt to open a connection fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"a connection was attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("NGLUI_DISABLE_CAPABILITY_PROBE", "1")


def _from_url(link: str) -> dict:
    """The state a viewer reads from a link."""
    return json.loads(urllib.parse.unquote(link.split("#!", 1)[1]))


def _nglui(frame: pd.DataFrame, *, points=(), lines=(), segments=None, description=None, tags=None,
           resolution=(8, 8, 40)) -> dict:
    """nglui's state of ``frame``, as its link holds it: the same layers caveql builds."""
    from nglui.statebuilder import ViewerState

    view = [INFO[f"viewer_resolution_{a}"] for a in "xyz"]
    vs = ViewerState(dimensions=view, infer_coordinates=False)
    vs.add_image_layer(INFO["aligned_volume"]["image_source"], name="imagery")
    vs.add_segmentation_layer(INFO["segmentation_source"], name="segmentation")
    extra = {"description_column": description, "tag_column": tags, "data_resolution": list(resolution)}
    for name, seg in points:
        vs.add_annotation_layer(name, resolution=view, linked_segmentation="segmentation")
        vs.add_points(frame, name=name, point_column=name, segment_column=seg, **extra)
    for a, b, seg in lines:
        vs.add_annotation_layer(f"{a}-{b}", resolution=view, linked_segmentation="segmentation")
        vs.add_lines(frame, name=f"{a}-{b}", point_a_column=a, point_b_column=b, segment_column=seg, **extra)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nglui says it renames tags such as '23P'
        return _from_url(vs.to_url())


def _without_ids(state: dict) -> dict:
    """nglui's annotation ids are random tokens: compare everything else."""
    out = json.loads(json.dumps(state))
    for layer in out["layers"]:
        for anno in layer.get("annotations", ()):
            anno.pop("id")
    return out


def _assert_same_layers(mine: dict, theirs: dict) -> None:
    mine, theirs = _without_ids(mine), _without_ids(theirs)
    assert [layer["name"] for layer in mine["layers"]] == [layer["name"] for layer in theirs["layers"]]
    for a, b in zip(mine["layers"], theirs["layers"], strict=True):
        assert a == b, a["name"]
    del mine["layers"], theirs["layers"]
    assert mine == theirs  # dimensions, layout, position...


# --------------------------------------------------------------------------- equal to nglui's
def test_points_with_segments_descriptions_and_tags_equal_nglui(synapses, offline) -> None:
    pytest.importorskip("nglui", minversion="4")
    frame = synapses[(synapses.pre_pt_root_id != 0) & (synapses.post_pt_root_id != 0)].reset_index(drop=True)
    frame["label"] = frame["id"].astype(str)
    mine = ng.state(frame, info=INFO, description="label", tags="cell_type")
    theirs = _nglui(frame, points=[("pre_pt_position", "pre_pt_root_id"),
                                   ("post_pt_position", "post_pt_root_id")],
                    description="label", tags="cell_type")
    _assert_same_layers(_from_url(ng.url(mine)), theirs)
    # and the point really moved to the viewer's voxels: 8 nm -> 4 nm doubles x and y
    first = mine["layers"][2]["annotations"][0]
    row = frame.iloc[0]
    assert first["point"] == [row.pre_pt_position[0] * 2, row.pre_pt_position[1] * 2, row.pre_pt_position[2]]


def test_lines_of_pre_and_post_equal_nglui(synapses, offline) -> None:
    pytest.importorskip("nglui", minversion="4")
    frame = synapses[(synapses.pre_pt_root_id != 0) & (synapses.post_pt_root_id != 0)].reset_index(drop=True)
    mine = ng.state(frame, info=INFO, lines=True, tags="cell_type")
    # both root ids linked, once each (an autapse links its cell once; nglui would list it twice)
    frame["both"] = [list(dict.fromkeys([a, b]))
                     for a, b in zip(frame.pre_pt_root_id, frame.post_pt_root_id, strict=True)]
    theirs = _nglui(frame, lines=[("pre_pt_position", "post_pt_position", "both")], tags="cell_type")
    _assert_same_layers(mine, theirs)


def test_split_position_columns_equal_nglui(synapses, offline) -> None:
    pytest.importorskip("nglui", minversion="4")
    frame = synapses[synapses.pre_pt_root_id != 0].reset_index(drop=True)
    split = pd.DataFrame(frame["pre_pt_position"].tolist(), columns=["pre_x", "pre_y", "pre_z"])
    split.columns = ["pre_pt_position_x", "pre_pt_position_y", "pre_pt_position_z"]
    split["pre_pt_root_id"] = frame["pre_pt_root_id"]
    mine = ng.state(split, info=INFO, resolution=(8, 8, 40))
    _assert_same_layers(mine, _nglui(split, points=[("pre_pt_position", "pre_pt_root_id")]))


def test_root_ids_alone_select_segments_as_nglui_does(db, offline) -> None:
    pytest.importorskip("nglui", minversion="4")
    from nglui.statebuilder import ViewerState

    frame = db.query("SELECT pt_root_id FROM cells WHERE cell_type = 'BC'")
    mine = ng.state(frame, info=INFO)
    vs = ViewerState(dimensions=[4, 4, 40], infer_coordinates=False)
    vs.add_image_layer(INFO["aligned_volume"]["image_source"], name="imagery")
    vs.add_segmentation_layer(INFO["segmentation_source"], name="segmentation",
                              segments=frame["pt_root_id"].tolist())
    _assert_same_layers(mine, _from_url(vs.to_url()))
    assert mine["layers"][1]["segments"] == [str(v) for v in frame["pt_root_id"]]


# ------------------------------------------------------------------------------ the contents
def test_same_answer_same_state_and_unique_ids(synapses) -> None:
    doubled = pd.concat([synapses, synapses], ignore_index=True)
    first, again = ng.state(doubled, info=INFO), ng.state(doubled.copy(), info=INFO)
    assert first == again
    ids = [a["id"] for a in first["layers"][2]["annotations"]]
    assert len(set(ids)) == len(ids) == len(doubled)
    # an id follows its row's content, not its place: dropping a row keeps the others' ids
    fewer = ng.state(synapses.iloc[1:], info=INFO)
    assert [a["id"] for a in fewer["layers"][2]["annotations"]] == ids[1:len(synapses)]


def test_root_id_zero_and_null_positions_are_left_out(synapses) -> None:
    frame = synapses.copy()
    frame.loc[0, "post_pt_position"] = None  # as an outer join's missing side
    s = ng.state(frame, info=INFO)
    pre, post = s["layers"][2], s["layers"][3]
    assert len(pre["annotations"]) == len(frame) and len(post["annotations"]) == len(frame) - 1
    zero = frame.index[frame.pre_pt_root_id == 0][0]
    assert pre["annotations"][zero]["segments"] == [[]]  # root id 0 is "no cell": nothing linked


def test_resolution_comes_from_the_answer_and_is_required(synapses) -> None:
    at_8 = ng.state(synapses, info=INFO)
    at_4 = ng.state(synapses, info=INFO, resolution=(4, 4, 40))
    p8, p4 = at_8["layers"][2]["annotations"][1]["point"], at_4["layers"][2]["annotations"][1]["point"]
    assert p8 == [2 * p4[0], 2 * p4[1], p4[2]]
    bare = pd.DataFrame({"pt_position": [[1, 2, 3]]})
    with pytest.raises(ConfigError, match="no known resolution"):
        ng.state(bare, info=INFO)


def test_demo_sources_are_placeholders_and_real_ones_get_middleauth(synapses) -> None:
    local = ng.state(synapses)  # the tiny datastack's own info (attrs): a local datastack
    urls = [layer["source"][0]["url"] for layer in local["layers"][:2]]
    assert urls == [ng.DEMO_IMAGE, ng.DEMO_SEGMENTATION]
    real = ng.state(synapses, info=INFO)
    assert real["layers"][1]["source"][0]["url"] == (
        "graphene://middleauth+https://cave.example.org/segmentation/table/pcg")


@pytest.mark.parametrize(("options", "error", "words"), [
    ({"tags": "cel_type"}, UnknownColumnError, "cell_type"),
    ({"description": "nope"}, UnknownColumnError, "no column 'nope'"),
    ({"points": ["pt_position"]}, UnknownColumnError, "pre_pt_position"),
    ({"lines": ("pre_pt_position", "id")}, ConfigError, "a line joins two"),
    ({"viewer_resolution": (4, 0, 40)}, ConfigError, "three positive numbers"),
])
def test_bad_options_name_what_is_wrong(synapses, options, error, words) -> None:
    with pytest.raises(error) as info:
        ng.state(synapses, info=INFO, **options)
    assert words in str(info.value)


def test_lines_true_needs_two_positions(db) -> None:
    frame = db.query("SELECT pt_position FROM cells")
    with pytest.raises(ConfigError, match="joins two position columns; the answer has 1"):
        ng.state(frame, info=INFO, lines=True)


# ---------------------------------------------------------------------------------- outputs
def test_too_big_for_a_link_is_written_as_json(synapses, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(ng.view, "MAX_URL_CHARS", 1000)
    monkeypatch.chdir(tmp_path)
    view = ng.neuroglancer(synapses, info=INFO)
    assert view.url is None and "too big for a link" in view.message and view.path is not None
    assert json.loads((tmp_path / view.path).read_text()) == view.state
    assert str(view) == view.message


def test_link_for_any_viewer_and_bad_viewer(synapses) -> None:
    view = synapses.cql.neuroglancer(info=INFO, viewer="https://neuroglancer-demo.appspot.com/")
    assert view.url.startswith("https://neuroglancer-demo.appspot.com/#!")
    assert _from_url(view.url) == view.state
    with pytest.raises(ConfigError, match="not an http"):
        synapses.cql.neuroglancer(info=INFO, viewer="spelunker")


def test_result_to_neuroglancer(db, tmp_path) -> None:
    db.resolution = (8, 8, 40)
    result = db.execute(SYNAPSES)
    view = result.to_neuroglancer(path=tmp_path / "v.json", backend=db.engine.backend)
    assert view.state == ng.state(db.query(SYNAPSES))
    assert json.loads((tmp_path / "v.json").read_text()) == view.state


def test_accessor_is_registered_on_import() -> None:
    assert hasattr(pd.DataFrame({"a": [1]}).cql, "neuroglancer")


# --------------------------------------------------------------------------------- surfaces
@pytest.fixture
def isolated(monkeypatch, tmp_path):
    monkeypatch.setenv("CAVEQL_CONFIG", str(tmp_path / "no-config.toml"))
    monkeypatch.setenv("CAVEQL_HISTORY_DIR", str(tmp_path / "history"))


def test_cli_format_neuroglancer_and_ng_json(tiny_datastack, tmp_path, capsys, isolated) -> None:
    from caveql.repl.cli import main

    query = "SELECT pt_position, pt_root_id FROM cells"
    assert main(["--path", str(tiny_datastack), "-c", query, "--format", "neuroglancer"]) == 0
    link = capsys.readouterr().out.strip()
    with caveql.connect(path=tiny_datastack) as conn:
        expected = ng.state(conn.query(query))
    assert _from_url(link) == expected
    out = tmp_path / "view.ng.json"
    assert main(["--path", str(tiny_datastack), "-c", query, "-o", str(out)]) == 0
    assert json.loads(out.read_text()) == expected
    plain = tmp_path / "rows.json"  # -o x.json alone stays the rows as JSON
    assert main(["--path", str(tiny_datastack), "-c", query, "-o", str(plain)]) == 0
    assert "layers" not in plain.read_text()


def test_repl_ng_prints_the_link_and_opens_a_browser(tiny_datastack, monkeypatch, isolated) -> None:
    from caveql.repl.session import Session

    opened: list[str] = []
    monkeypatch.setattr("webbrowser.open", lambda u: opened.append(u) or True)
    out, err = io.StringIO(), io.StringIO()
    s = Session(lambda: caveql.connect(path=tiny_datastack), out=out, err=err)
    s.run("\\ng")
    assert "no result to look at yet" in err.getvalue()
    s.run("SELECT pt_position, pt_root_id, cell_type FROM cells;")
    s.run("\\ng open tags=cell_type")
    link = next(line for line in out.getvalue().splitlines() if line.startswith(ng.DEFAULT_VIEWER))
    with caveql.connect(path=tiny_datastack) as conn:
        expected = ng.state(conn.query("SELECT pt_position, pt_root_id, cell_type FROM cells"),
                            tags="cell_type")
    assert _from_url(link) == expected and opened == [link]
    s.run("\\ng colour=red")
    assert "unknown Neuroglancer option 'colour'" in err.getvalue()
    s.close()


def test_magic_ng_displays_a_link(tiny_datastack, monkeypatch) -> None:
    from IPython.testing.globalipapp import get_ipython

    shown: list[object] = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    shell = get_ipython()
    shell.run_line_magic("load_ext", "caveql")
    try:
        shell.run_cell_magic("cql", f"--path {tiny_datastack} --ng='tags=cell_type'",
                             "SELECT pt_position, pt_root_id, cell_type FROM cells")
    finally:
        magics = shell.magics_manager.registry.get("CqlMagics")
        if magics is not None and magics.connection is not None:
            magics.connection.close()
            magics.connection = None
    html = shown[-1].data
    assert html.startswith(f'<a href="{ng.DEFAULT_VIEWER}#!') and "Open in Neuroglancer" in html


def test_errors_are_caveql_errors() -> None:
    with pytest.raises(CaveqlError):
        ng.state(object())
    with pytest.raises(ConfigError, match="expected open"):
        ng.parse_words(["nonsense"])


def test_nothing_to_show_is_said(db) -> None:
    with pytest.raises(ConfigError, match="neither a position column nor a root id column"):
        ng.state(db.query("SELECT cell_type, COUNT(*) AS n FROM cells GROUP BY cell_type"), info=INFO)
    with pytest.raises(ConfigError, match="no rows"):
        ng.state(db.query("SELECT pt_position FROM cells WHERE id < 0"), info=INFO)


def test_infinite_positions_are_left_out_not_a_traceback(synapses) -> None:
    frame = synapses.copy()
    frame.at[0, "pre_pt_position"] = [float("inf"), 0.0, 0.0]
    view = ng.neuroglancer(frame, info=INFO)
    assert len(view.state["layers"][2]["annotations"]) == len(frame) - 1
    assert _from_url(view.url) == view.state


def test_positions_without_root_ids_are_unlinked_points(db) -> None:
    frame = db.query("SELECT pt_position, cell_type FROM cells")
    layer = ng.state(frame, info=INFO, tags="cell_type")["layers"][2]
    assert len(layer["annotations"]) == len(frame)
    assert all("segments" not in a for a in layer["annotations"]) and not layer["swapVisbleSegmentsOnMove"]
