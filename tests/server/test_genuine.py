"""``caveql serve`` does what MaterializationEngine 5.26.4 does, failures included.

Each test names the genuine code it mirrors (``materializationengine/blueprints/client/...``,
see .notes/genuine-vs-serve.md) and checks the answer on the wire (raw HTTP) and, where it
changes a frame, through unmodified caveclient 8.2.1.
"""

from __future__ import annotations

import json
import logging
import shutil
from datetime import UTC, datetime

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytestmark = pytest.mark.timeout(120)

Q = "?return_pyarrow=True&arrow_format=True&split_positions=True&direct_sql_pandas=True"
NOW = "2024-05-01T00:00:00"


class Wire:
    """Raw HTTP against a served datastack."""

    def __init__(self, served) -> None:
        self.url = served.url
        self.ds = served.datastack

    def v3(self, path: str) -> str:
        return f"{self.url}/materialize/api/v3/datastack/{self.ds}{path}"

    def post(self, path: str, body=None, query: str = Q, content: bytes | None = None, api: int = 3):
        base = self.v3(path) if api == 3 else f"{self.url}/materialize/api/v2/datastack/{self.ds}{path}"
        kw = {"content": content} if content is not None else {"json": body if body is not None else {}}
        return httpx.post(base + query, headers={"Accept-Encoding": "zstd"}, timeout=60, **kw)

    def get(self, path: str, api: int = 3):
        base = self.v3(path) if api == 3 else f"{self.url}/materialize/api/v2/datastack/{self.ds}{path}"
        return httpx.get(base, timeout=60)


def table_of(r) -> pa.Table:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "data.arrow"
    return pa.ipc.open_stream(r.content).read_all()


def message(r) -> str:
    assert r.status_code == 500, r.text
    return r.json()["message"]


@pytest.fixture(scope="module")
def wire(tiny_served):
    return Wire(tiny_served)


@pytest.fixture(scope="module")
def variant(tmp_path_factory, tiny_datastack, helpers):
    """The tiny datastack with version 1 expired (valid false), and at version 2 a nucleus of
    ``cells`` whose supervoxel lookup is pending (1) and one without a segmentation row (NULL)."""
    root = tmp_path_factory.mktemp("variant") / "tiny"
    shutil.copytree(tiny_datastack, root)
    v1 = root / "versions" / "1" / "version.json"
    meta = json.loads(v1.read_text())
    v1.write_text(json.dumps({**meta, "valid": False, "status": "EXPIRED"}))
    path = root / "versions" / "2" / "tables" / "cells.parquet"
    t = pq.read_table(path)
    sv = t.column("pt_supervoxel_id").to_pylist()
    root_ids = t.column("pt_root_id").to_pylist()
    ids = t.column("id").to_pylist()
    sv[ids.index(5)] = 1
    sv[ids.index(6)] = None
    root_ids[ids.index(6)] = None
    t = t.set_column(t.schema.get_field_index("pt_supervoxel_id"), "pt_supervoxel_id", pa.array(sv, pa.int64()))
    t = t.set_column(t.schema.get_field_index("pt_root_id"), "pt_root_id", pa.array(root_ids, pa.int64()))
    pq.write_table(t, path)
    served = helpers.serve(root)
    yield served
    served.stop()


@pytest.fixture(scope="module")
def merged(tmp_path_factory, tiny_datastack, helpers):
    """The tiny datastack with version 2 merged (``is_merged``: flat tables)."""
    root = tmp_path_factory.mktemp("merged") / "tiny"
    shutil.copytree(tiny_datastack, root)
    v2 = root / "versions" / "2" / "version.json"
    v2.write_text(json.dumps({**json.loads(v2.read_text()), "is_merged": True}))
    served = helpers.serve(root)
    yield served
    served.stop()


# ------------------------------------------------------------------------------ columns

def test_supervoxel_id_comes_before_a_selected_root_id(wire, tiny_served, caplog):
    """query_manager.py:336-365: selecting X_root_id selects X_supervoxel_id right before it
    (simple, view, join map and list); a column is selected once, in the first place asked."""
    caplog.set_level(logging.ERROR)
    t = table_of(wire.post("/version/2/table/cells/query", {"select_columns": ["id", "pt_root_id"]}))
    assert t.column_names == ["id", "pt_supervoxel_id", "pt_root_id"]
    t = table_of(wire.post("/version/2/table/cells/query",
                           {"select_columns": ["pt_root_id", "pt_supervoxel_id", "id", "id"]}))
    assert t.column_names == ["pt_supervoxel_id", "pt_root_id", "id"]
    t = table_of(wire.post("/version/2/table/synapses/query",
                           {"select_columns": ["post_pt_root_id", "size", "pre_pt_root_id"]}))
    assert t.column_names == ["post_pt_supervoxel_id", "post_pt_root_id", "size", "pre_pt_supervoxel_id",
                              "pre_pt_root_id"]
    # a view without supervoxel ids gets none
    t = table_of(wire.post("/version/2/views/syn_counts/query", {"select_columns": ["pre_pt_root_id", "n_syn"]}))
    assert t.column_names == ["pre_pt_root_id", "n_syn"]
    body = {"tables": [["synapses", "post_pt_root_id"], ["cells", "pt_root_id"]],
            "select_column_map": {"cells": ["pt_root_id", "cell_type"], "synapses": ["id", "pre_pt_root_id"]}}
    t = table_of(wire.post("/version/2/query", body))
    # blocks in the map's order; the default suffix follows that order ("x" for cells)
    assert t.column_names == ["pt_supervoxel_id", "pt_root_id", "cell_type", "id", "pre_pt_supervoxel_id",
                              "pre_pt_root_id"]
    c = tiny_served.caveclient()
    frame = c.materialize.query_table("cells", select_columns=["pt_position", "pt_root_id"], split_positions=True)
    assert list(frame.columns) == ["pt_position_x", "pt_position_y", "pt_position_z", "pt_supervoxel_id",
                                   "pt_root_id"]
    # the live path selects it too, then drops every column not asked for (api2.py:1796-1804)
    live = c.materialize.live_live_query("cells", datetime(2024, 5, 1, tzinfo=UTC),
                                         select_columns={"cells": ["id", "pt_root_id"]})
    assert list(live.columns) == ["id", "pt_root_id"]


def test_empty_select_columns_selects_everything(wire):
    """common.py:329-334: ``if select_columns:`` — an empty list selects every column."""
    t = table_of(wire.post("/version/2/table/cells/query", {"select_columns": []}))
    assert t.column_names == table_of(wire.post("/version/2/table/cells/query", {})).column_names


@pytest.mark.parametrize(("path", "body", "text"), [
    ("/version/2/table/cells/query", {"select_columns": ["id"]}, "'BigInteger' object has no attribute 'id'"),
    ("/version/2/table/cells/query", {"select_columns": ["cell_type"]},
     "'String' object has no attribute 'cell_type'"),
    ("/version/2/table/nuclei/query", {"select_columns": ["volume"], "filter_equal_dict": {"nuclei": {"id": 99}}},
     "'Float' object has no attribute 'volume'"),
    ("/version/2/views/syn_counts/query", {"select_columns": ["n_syn"]}, "'BIGINT' object has no attribute 'n_syn'"),
    ("/version/2/query", {"tables": [["synapses", "post_pt_root_id"], ["cells", "pt_root_id"]],
                          "select_column_map": {"cells": ["cell_type"]}},
     "'String' object has no attribute 'cell_type'"),
])
def test_one_selected_column_fails(wire, path, body, text):
    """query.py:89-94 ``fix_columns_with_query``: with one column the model is the column's type,
    and ``getattr(type, name)`` fails — even on an empty answer."""
    assert message(wire.post(path, body)) == text


def test_one_column_count_and_positions_do_not_fail(wire):
    r = wire.post("/version/2/table/cells/query", {"select_columns": ["id"]}, query=Q + "&count=True")
    assert table_of(r).to_pydict() == {"count": [6]}
    t = table_of(wire.post("/version/2/table/cells/query", {"select_columns": ["pt_position"]}))
    assert t.column_names == ["pt_position_x", "pt_position_y", "pt_position_z"]


# ------------------------------------------------------------------------------ types

def test_table_timestamps_are_utc_aware_and_view_numbers_wide(wire, tiny_served, caplog):
    """query.py:23-29, 106-111: a model's DateTime → datetime64[ns, UTC]; a view's reflected
    BIGINT/DOUBLE PRECISION are not in dtype_map → Int64/Float64 (its doubles, not float32)."""
    caplog.set_level(logging.ERROR)
    t = table_of(wire.post("/version/2/table/cells/query", {}))
    assert t.schema.field("created").type == pa.timestamp("ns", tz="UTC")
    assert t.schema.field("pt_position_x").type == pa.int32()
    frame = tiny_served.caveclient().materialize.query_table("cells")
    assert str(frame["created"].dtype) == "datetime64[ns, UTC]"
    assert str(frame.loc[0, "created"]) == "2020-09-28 22:40:00.123456+00:00"
    v = table_of(wire.post("/version/2/views/syn_counts/query", {}))
    assert [f.type for f in v.schema] == [pa.int64(), pa.int64(), pa.int64(), pa.float64()]
    view = tiny_served.caveclient().materialize.query_view("syn_counts")
    assert view.dtypes.astype(str).tolist() == ["Int64", "Int64", "Int64", "Float64"]


def test_pandas_metadata_and_count_dtype(wire, tiny_served, caplog):
    """utils.py:109: ``RecordBatch.from_pandas(df)``: a range index in the metadata; a count is a
    plain int64 frame (not Int64)."""
    caplog.set_level(logging.ERROR)
    t = table_of(wire.post("/version/2/table/cells/query", {}))
    meta = json.loads(t.schema.metadata[b"pandas"])
    assert meta["index_columns"] == [{"kind": "range", "name": None, "start": 0, "stop": 6, "step": 1}]
    counts = tiny_served.caveclient().materialize.query_table("cells", get_counts=True)
    assert str(counts["count"].dtype) == "int64" and counts["count"].tolist() == [6]


def test_split_layout_reads_missing_segmentation_as_one(variant):
    """query_manager.py:640-646: in a split version root and supervoxel ids are COALESCE(col, 1)."""
    w = Wire(variant)
    t = table_of(w.post("/version/2/table/cells/query", {"filter_in_dict": {"cells": {"id": [5, 6]}}}))
    assert t.column("pt_supervoxel_id").to_pylist() == [1, 1]
    assert t.column("pt_root_id").to_pylist() == [1005, 1]


def test_merged_layout_keeps_nulls_and_has_no_phantom(merged):
    w = Wire(merged)
    r = w.post("/version/2/table/cells/query", {})
    assert "'deleted'" not in r.headers["column_names"]
    live = table_of(w.post("/query", {"table": "cells", "timestamp": NOW}))
    assert "valid" in live.column_names and "deleted" not in live.column_names  # select_all skips nothing


# ------------------------------------------------------------------------------ filters

def test_strings_for_numbers_are_cast_as_postgresql_does(wire):
    """literal_binds renders '7' quoted: PostgreSQL casts it to the column's type; a NaN renders
    as a bare ``nan`` (a column that does not exist)."""
    t = table_of(wire.post("/version/2/table/cells/query", {"filter_in_dict": {"cells": {"id": ["1", " 3 "]}}}))
    assert t.column("id").to_pylist() == [1, 3]
    t = table_of(wire.post("/version/2/table/nuclei/query", {"filter_greater_dict": {"nuclei": {"volume": "300"}}}))
    assert t.num_rows and all(v > 300 for v in t.column("volume").to_pylist())
    t = table_of(wire.post("/version/2/table/cells/query", {"filter_equal_dict": {"cells": {"valid": "t"}}}))
    assert t.num_rows == 6
    assert 'invalid input syntax for type bigint: "x"' in message(
        wire.post("/version/2/table/cells/query", {"filter_equal_dict": {"cells": {"id": "x"}}}))
    r = wire.post("/version/2/table/cells/query", content=b'{"filter_greater_dict": {"cells": {"id": NaN}}}')
    assert 'column "nan" does not exist' in message(r)


@pytest.mark.parametrize(("body", "text"), [
    ({"filter_equal_dict": {"cells": {"cel_type": "BC"}}}, "'cel_type'"),
    ({"filter_equal_dict": {"nuclei": {"id": 1}}}, "'nuclei'"),
    ({"filter_regex_dict": {"cells": {"pt_root_id": "1"}}}, "Regex filter is only supported on string columns"),
    ({"filter_spatial_dict": {"cells": {"pt_position": [[0, 0, 5], [10, 10, 5]]}}},
     "min bounds: [0 0 5] must be less than max bounds: [10 10  5]"),
    ({"filter_in_dict": {"cells": [1]}}, "'list' object has no attribute 'items'"),
    ({"select_columns": ["nope"]}, "nope not in model or models for cells"),
])
def test_filter_and_column_failures(wire, body, text):
    """query_manager.py:263-365, query.py:169-199: the service's own exceptions."""
    assert message(wire.post("/version/2/table/cells/query", body)) == text


# ------------------------------------------------------------------------------ counts, limits

def test_count_after_offset_and_row_count(wire, tiny_served):
    """``query.count()`` counts ``SELECT ... OFFSET n``; ``/count`` is ``materializedmetadata``'s
    row count (valid rows)."""
    r = wire.post("/version/2/table/cells/query", {"offset": 4}, query=Q + "&count=True")
    assert table_of(r).to_pydict() == {"count": [2]}
    r = wire.post("/version/2/table/cells/query", {"offset": 40}, query=Q + "&count=True")
    assert table_of(r).to_pydict() == {"count": [0]}
    assert wire.get("/version/2/table/cells/count").json() == 6
    assert tiny_served.caveclient().materialize.get_annotation_count("cells") == 6


def test_join_ignores_count(wire):
    body = {"tables": [["synapses", "post_pt_root_id"], ["cells", "pt_root_id"]]}
    t = table_of(wire.post("/version/2/query", body, query=Q + "&count=True"))
    assert "count" not in t.column_names and t.num_rows > 1


def test_warnings_and_their_order(wire):
    """common.py:344-348 (cap, notice, CSV), 399-552 (join: notices per entry, deprecations,
    cap last), api2.py:3262-3272 (view: CSV, cap, notice), utils.py:100-108 (IPC format)."""
    r = wire.post("/version/2/table/cell_types/query", {"limit": 2}, query="?arrow_format=True")
    assert r.headers.get_list("warning") == [
        '201 - "Limited query to 2 rows', "Table Owner Notice on cell_types: Synthetic: for tests only.",
        "Query was executed using streaming via CSV, which can mangle types. Please upgrade to caveclient > 8.0.0 "
        "to avoid type mangling. Because you may have been affected by mangled types, this change is breaking, "
        "but it should provide an improved experience."]
    body = {"tables": [["cell_types", "target_id"], ["nuclei", "id"]], "suffixes": ["", "_ref"], "limit": 1,
            "select_columns": ["cell_type", "volume"]}
    r = wire.post("/version/2/query", body, query="?arrow_format=True&direct_sql_pandas=True")
    got = r.headers.get_list("warning")
    assert got[0] == "Table Owner Notice on cell_types: Synthetic: for tests only."
    assert got[1].startswith("Suffixes is deprecated") and got[2].startswith("Select_columns is deprecated")
    assert got[3] == '201 - "Limited query to 1 rows' and len(got) == 4
    r = wire.post("/version/2/views/syn_counts/query", {"limit": 1}, query="?arrow_format=True")
    assert [w[:20] for w in r.headers.get_list("warning")] == ["Query was executed u", '201 - "Limited query']
    r = wire.post("/version/2/table/cell_types/query", {"limit": 2}, query="?direct_sql_pandas=True")
    assert r.headers.get_list("warning") == [
        "Response is in pyarrow IPC format. If you encounter a parsing error, please upgrade CAVEClient to >=5.9.0 "
        "with: pip install --upgrade caveclient. To suppress this warning, pass arrow_format=True in your query "
        "parameters."]


def test_column_names_header(wire):
    """utils.py:98: ``str()`` of ``{table: {model column: output name}}``: a split table's
    select-all lists ``deleted`` (dropped from the frame); a join names both tables."""
    r = wire.post("/version/2/table/cells/query", {})
    assert r.headers["column_names"] == (
        "{'cells': {'id': 'id', 'created': 'created', 'deleted': 'deleted', 'superceded_id': 'superceded_id', "
        "'valid': 'valid', 'classification_system': 'classification_system', 'cell_type': 'cell_type', "
        "'pt_position': 'pt_position', 'pt_supervoxel_id': 'pt_supervoxel_id', 'pt_root_id': 'pt_root_id'}}")
    assert "deleted" not in table_of(r).column_names
    body = {"tables": [["synapses", "post_pt_root_id"], ["cells", "pt_root_id"]],
            "select_column_map": {"synapses": ["id", "size"], "cells": ["id"]}}
    r = wire.post("/version/2/query", body)
    assert r.headers["column_names"] == "{'synapses': {'id': 'idx', 'size': 'size'}, 'cells': {'id': 'idy'}}"
    assert table_of(r).column_names == ["idx", "size", "idy"]


# ------------------------------------------------------------------------------ joins

def test_join_failures(wire):
    """common.py:383-554 and QueryManager's checks."""
    base = [["synapses", "post_pt_root_id"], ["cells", "pt_root_id"]]
    assert message(wire.post("/version/2/query", {"tables": base, "suffix_map": {"synapses": "", "cells": ""}})) \
        == "Duplicate suffixes set in {'synapses': '', 'cells': ''}"
    assert message(wire.post("/version/2/query", {"tables": [base[0]]})) == "list index out of range"
    assert message(wire.post("/version/2/query", {"tables": base, "select_columns": ["nope"]})) \
        == "400 Bad Request: column nope not found in any table referenced"
    assert message(wire.post("/version/2/query", {"tables": base, "select_column_map": {"cells": ["nope"]}})) \
        == "400 Bad Request: column nope not found in cells"
    assert message(wire.post("/version/2/query", {"tables": [base[0], ["cells", "pt_rot_id"]]})) == "'pt_rot_id'"
    # a third table is validated and filtered on `valid`, never joined: a split version fails
    three = base + [["nuclei", "id"]]
    assert message(wire.post("/version/2/query", {"tables": three})) == "'nuclei'"
    assert message(wire.post("/version/2/query", {"tables": base + [["nope", "id"]]})) == \
        "404 Not Found: Analysis table 'nope' not found for version 2 in datastack tiny"


def test_third_table_of_a_merged_join_multiplies_the_rows(merged):
    """A merged version: ``t3.valid = true`` puts t3 in FROM without a join condition."""
    w = Wire(merged)
    base = [["synapses", "post_pt_root_id"], ["cells", "pt_root_id"]]
    two = table_of(w.post("/version/2/query", {"tables": base}))
    three = table_of(w.post("/version/2/query", {"tables": base + [["nuclei", "id"]]}))
    nuclei = table_of(w.post("/version/2/table/nuclei/query", {}, query=Q + "&count=True")).column(0)[0].as_py()
    assert three.num_rows == two.num_rows * nuclei
    assert three.column_names == two.column_names
    filtered = table_of(w.post("/version/2/query", {"tables": base + [["nuclei", "id"]], "limit": 5,
                                                    "filter_in_dict": {"nuclei": {"id": [10, 11]}}}))
    assert filtered.num_rows == 5
    ids = filtered.column("idx").to_pylist()
    assert ids == [two.column("idx")[0].as_py()] * 2 + [two.column("idx")[1].as_py()] * 2 + [
        two.column("idx")[2].as_py()]


# ------------------------------------------------------------------------------ metadata

def test_metadata_routes(wire, tiny_served, caplog):
    caplog.set_level(logging.ERROR)
    r = wire.get("/version/2/table/nope/metadata")
    assert r.status_code == 404 and r.json() == "No table named 'nope' found for version '2' in datastack 'tiny'"
    meta = wire.get("/version/2/table/cells/metadata").json()
    assert meta["table_name"] == "cells" and "annotation_table" not in meta
    v2 = wire.get("/version/2/table/cell_types/metadata", api=2)
    assert v2.headers.get_list("warning") == ["Table Owner Notice on cell_types: Synthetic: for tests only."]
    cells2 = wire.get("/version/2/table/cells/metadata", api=2).json()
    assert cells2["table_name"] == "cells__tiny_pcg" and cells2["annotation_table"] == "cells"
    r = wire.get("/version/9/tables")
    assert r.status_code == 404 and r.json() is None
    assert message(wire.get("/version/9/tables", api=2)) == "404 Not Found: version 9 does not exist for tiny "
    assert message(wire.get("/version/9/table/cells/count")) == "404 Not Found: version 9 not found in tiny"
    assert message(wire.get("/version/2/views/nope/metadata")) == "No row was found for one()"
    assert message(wire.get("/table/nope/unique_string_values")) == "No table named 'nope' exists."
    assert message(wire.get("/version/2/views/nope/schema")).startswith("Could not reflect")


def test_expired_versions(variant, caplog):
    """api2.py:716-880: ``?expired=true`` lists every version; version metadata answers for an
    expired version; queries at it still run (validate_datastack does not look at ``valid``)."""
    caplog.set_level(logging.ERROR)
    w = Wire(variant)
    assert w.get("/versions").json() == [2]
    assert httpx.get(w.v3("/versions?expired=true")).json() == [1, 2]
    assert httpx.get(w.v3("/versions?expired=false")).json() == [2]
    assert [m["version"] for m in httpx.get(w.v3("/metadata?expired=True")).json()] == [1, 2]
    assert w.get("/version/1").json()["valid"] is False
    assert table_of(w.post("/version/1/table/cells/query", {})).num_rows == 6
    c = variant.caveclient()
    assert c.materialize.get_versions(expired=True) == [1, 2]


# ------------------------------------------------------------------------------ v2

def test_v2_queries_fail_after_running(wire):
    """common.py:379: ``args["ipc_compress"]`` is not a v2 argument (api.py:63-103)."""
    assert message(wire.post("/version/2/table/cells/query", {}, query="", api=2)) == "'ipc_compress'"
    body = {"tables": [["synapses", "post_pt_root_id"], ["cells", "pt_root_id"]]}
    assert message(wire.post("/version/2/query", body, query="", api=2)) == "'ipc_compress'"
    # an error of the query itself comes first
    assert message(wire.post("/version/2/table/cels/query", {}, query="", api=2)).startswith("404 Not Found")


# ------------------------------------------------------------------------------ bodies, args

@pytest.mark.parametrize(("body", "errors"), [
    ({"limit": None}, {"limit": ["Field may not be null."]}),
    ({"limit": True}, {"limit": ["Not a valid integer."]}),
    ({"desired_resolution": [1, 2]}, {"desired_resolution": ["Length must be 3."]}),
    ({"desired_resolution": [1, "x", None]}, {"desired_resolution": {"1": ["Not a valid number."],
                                                                     "2": ["Field may not be null."]}}),
    ({"select_columns": ["a", 1]}, {"select_columns": {"1": ["Not a valid string."]}}),
    ({"filter_in_dict": None}, {"filter_in_dict": ["Field may not be null."]}),
])
def test_body_schema_errors(wire, body, errors):
    r = wire.post("/version/2/table/cells/query", body)
    assert r.status_code == 500 and r.json() == {"schema_errors": errors}


def test_body_coercions(wire):
    """marshmallow 3.5.1: Integer takes "3" and 3.9 (as 3); Float takes "4"."""
    t = table_of(wire.post("/version/2/table/cells/query", {"limit": "3"}))
    assert t.num_rows == 3
    t = table_of(wire.post("/version/2/table/cells/query", {"limit": 2.9, "desired_resolution": ["4", 4, 40]}))
    assert t.num_rows == 2
    r = wire.post("/query", {"table": "cells", "timestamp": "2024-05-01"})
    assert r.json() == {"schema_errors": {"timestamp": ["Not a valid datetime."]}}
    r = wire.post("/query", {"table": "cells", "timestamp": NOW, "join_tables": [["a", "b"]], "extra": 1})
    assert r.json() == {"schema_errors": {"extra": ["Unknown field."]}}


def test_bad_json_and_args(wire):
    r = wire.post("/version/2/table/cells/query", content=b"")
    assert message(r) == "400 Bad Request: Failed to decode JSON object: Expecting value: line 1 column 1 (char 0)"
    r = wire.post("/version/2/table/cells/query", {}, query="?random_sample=0")
    assert r.status_code == 500 and r.json()["errors"] == {"random_sample": (
        "How many samples to randomly get using tablesample on annotation tables, useful for visualization of "
        "large tables does not work as a random sample of query Invalid argument: 0. argument must be a "
        "positive integer")}
    r = wire.post("/version/2/table/cells/query", {}, query="?count=off")
    assert r.json()["errors"]["count"].endswith("Invalid literal for boolean(): off")
    t = table_of(wire.post("/version/2/table/cells/query", {}, query="?count=on&arrow_format=1"))
    assert t.column_names == ["count"]
    assert message(wire.post("/version/77/table/cells/query", {})) == "404 Not Found: version 77 not found in tiny"


# ------------------------------------------------------------------------------ live

def test_live_layout_and_warning(wire, tiny_served, caplog):
    """api2.py:1657-1805 on a split version: every column but valid/superceded_id, a null
    ``deleted`` after ``created``, the main table's id first; the cap warning's text keeps its
    continuation line's indentation and is given when ``len >= limit``; no owner notices."""
    caplog.set_level(logging.ERROR)
    r = wire.post("/query", {"table": "cell_types", "timestamp": NOW, "limit": 2})
    t = table_of(r)
    assert t.column_names == ["id", "created", "deleted", "target_id", "classification_system", "cell_type"]
    assert t.schema.field("deleted").type == pa.timestamp("ns", tz="UTC") and t.column("deleted").null_count == 2
    assert r.headers.get_list("warning") == [
        "result has 2 entries, which is equal or more         than limit of 2 there may be more results which "
        "are not shown"]
    r = wire.post("/query", {"table": "cells", "timestamp": NOW, "select_columns": {"cells": ["cell_type", "id"]}})
    assert table_of(r).column_names == ["id", "cell_type"]
    assert r.headers["column_names"] == "{'cells': {'cell_type': 'cell_type', 'id': 'id'}}"
    r = wire.post("/query", {"table": "cells", "timestamp": NOW, "limit": 0})
    assert table_of(r).num_rows == 6  # a falsy limit leaves QueryManager's 250,000
    assert "than limit of 0" in r.headers["warning"]


def test_live_failures(wire, variant):
    """api2.py:1666 (check_read_permission on no metadata), 651-652 (no materialized rows),
    647-648 (``set_index(id)``), 579 (a filter on a column not selected), new_query.py:29-38."""
    assert message(wire.post("/query", {"table": "nope", "timestamp": NOW})) == \
        "'NoneType' object is not subscriptable"
    assert message(wire.post("/query", {"table": "cell_types", "timestamp": "2022-06-01T00:00:00"})) == \
        "400 Bad Request: This query on table cell_types returned no results"
    assert message(wire.post("/query", {"table": "cells", "timestamp": NOW,
                                        "select_columns": {"cells": ["cell_type"]}})) == \
        "'String' object has no attribute 'cell_type'"  # one column: before anything else
    assert message(wire.post("/query", {"table": "cells", "timestamp": NOW,
                                        "select_columns": {"cells": ["cell_type", "pt_root_id"]}})) == "'id'"
    assert message(wire.post("/query", {"table": "cells", "timestamp": NOW, "select_columns": {}})) == "'cells'"
    assert message(wire.post("/query", {"table": "cells", "timestamp": NOW,
                                        "select_columns": {"cells": ["id", "cell_type"]},
                                        "filter_equal_dict": {"cells": {"pt_root_id": 1001}}})) == "'pt_root_id'"
    w = Wire(variant)
    assert message(w.post("/query", {"table": "cells", "timestamp": NOW})) == (
        "406 Not Acceptable: There are 2 annotations that need supervoxel lookups, wait till new annotation "
        "ingest is done or pick an less recent timestamp")
    r = w.post("/query", {"table": "cells", "timestamp": NOW}, query=Q + "&allow_missing_lookups=True")
    assert table_of(r).column("id").to_pylist() == [1, 2, 3, 4]
    assert r.headers.get_list("warning")[0].startswith("There are 2 annotations that need supervoxel lookups")


def test_live_refilter_in_pandas(wire):
    """api2.py:567-611: the answer is filtered again in pandas with the request's values: ``None``
    matches nothing, a string matches no number, ``>`` a string fails, and a frame whose rows no
    longer form a range keeps its index as ``__index_level_0__``."""
    r = wire.post("/query", {"table": "cells", "timestamp": NOW, "filter_equal_dict": {"cells": {"cell_type": None}}})
    assert table_of(r).num_rows == 0
    r = wire.post("/version/2/table/cells/query", {"filter_in_dict": {"cells": {"id": [1, 2, "3", 4]}}})
    assert table_of(r).column("id").to_pylist() == [1, 2, 3, 4]
    r = wire.post("/query", {"table": "cells", "timestamp": NOW, "filter_in_dict": {"cells": {"id": [1, 2, "3", 4]}}})
    t = table_of(r)
    assert t.column("id").to_pylist() == [1, 2, 4]
    assert t.column_names[-1] == "__index_level_0__" and t.column("__index_level_0__").to_pylist() == [0, 1, 3]
    assert pa.ipc.open_stream(r.content).read_pandas().index.tolist() == [0, 1, 3]
    assert message(wire.post("/query", {"table": "cells", "timestamp": NOW,
                                       "filter_greater_dict": {"cells": {"id": "2"}}})).startswith("ufunc 'greater'")


# ------------------------------------------------------------------------------ random_sample

def test_random_sample_samples_blocks_before_filters(demo_path):
    """common.py:290-301 + query_manager.py:180-236: TABLESAMPLE SYSTEM(100 n / row_count) on the
    table, then the filters and the limit: about n rows of the table, filtered."""
    from caveql.backends.base import QueryRequest
    from caveql.backends.local import LocalBackend

    with LocalBackend(demo_path, server_compat=True) as b:
        req = QueryRequest(kind="table", table="synapses_pni_2", version=661, select_columns={
            "synapses_pni_2": ("id", "size")}, filter_greater={"synapses_pni_2": {"size": 0}})
        whole = b.query(req).table.num_rows
        got = [b.query(req, sample_percent=25.0).table.num_rows for _ in range(3)]
        assert all(0.1 * whole < n < 0.45 * whole for n in got), (got, whole)
        capped = b.query(QueryRequest(kind="table", table="synapses_pni_2", version=661, limit=10,
                                      select_columns={"synapses_pni_2": ("id", "size")}), sample_percent=25.0)
        assert capped.table.num_rows == 10  # the limit comes after the sample


def test_datastack_mismatch(wire):
    r = httpx.get(f"{wire.url}/materialize/api/v3/datastack/other/version/2/table/cells/count")
    assert message(r).startswith("datastack other info not returned 404")


def test_notin_is_never_read(wire, tiny_datastack):
    """Every handler reads ``filter_out_dict`` (common.py:316) where the schema and caveclient have
    ``filter_notin_dict``: it is accepted and ignored, whatever it holds; ``--honor-notin``
    applies it."""
    from caveql.backends.local import LocalBackend
    from caveql.server import ServerThread, create_app

    body = {"filter_notin_dict": {"cells": {"id": ["x", 1]}, "elsewhere": 5}}
    assert table_of(wire.post("/version/2/table/cells/query", body)).num_rows == 6
    with LocalBackend(tiny_datastack, server_compat=True, honor_notin=True) as backend, \
            ServerThread(create_app(backend)) as s:
        r = httpx.post(f"{s.url}/materialize/api/v3/datastack/tiny/version/2/table/cells/query" + Q,
                       json={"filter_notin_dict": {"cells": {"cell_type": ["BC"]}}})
        assert table_of(r).column("id").to_pylist() == [1, 3, 4]


def test_through_caveclient(tiny_served, merged, caplog):
    """What a caveclient user sees of the mirrored behaviours."""
    import requests

    caplog.set_level(logging.ERROR)
    c = tiny_served.caveclient()
    with pytest.raises(requests.HTTPError, match="'BigInteger' object has no attribute 'id'"):
        c.materialize.query_table("cells", select_columns=["id"])
    with pytest.raises(requests.HTTPError, match="'nuclei'"):
        c.materialize.join_query([["synapses", "post_pt_root_id"], ["cells", "pt_root_id"], ["nuclei", "id"]])
    live = c.materialize.live_live_query("cells", datetime(2024, 5, 1, tzinfo=UTC), split_positions=True)
    assert list(live.columns)[:3] == ["id", "created", "deleted"] and "valid" not in live.columns
    assert live["deleted"].isna().all() and str(live["deleted"].dtype) == "datetime64[ns, UTC]"
    with pytest.raises(requests.HTTPError, match="'id'"):
        c.materialize.live_live_query("cells", datetime(2024, 5, 1, tzinfo=UTC),
                                      select_columns={"cells": ["cell_type", "pt_root_id"]})
    counts = c.materialize.query_table("cells", get_counts=True, offset=4)
    assert counts["count"].tolist() == [2]
    m = merged.caveclient()
    two = m.materialize.join_query([["synapses", "post_pt_root_id"], ["cells", "pt_root_id"]])
    three = m.materialize.join_query([["synapses", "post_pt_root_id"], ["cells", "pt_root_id"], ["nuclei", "id"]])
    assert len(three) == 5 * len(two)
