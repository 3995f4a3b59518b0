"""``caveql snapshot`` of views: the small demo's views served at a 1,000-row cap (``soma_counts``,
144,120 rows, at 50,000), copied as materialized views and as Delta Lake exports; every CQL
statement over a copy answers as over the source. A view is counted with its endpoint's
``count``, cut into ranges of a column without NULLs (never pages by offset: the endpoint orders
nothing), the next column when one value holds more rows than the cap."""

from __future__ import annotations

import json
import threading
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from caveql.backends.archive import ArchiveBackend
from caveql.backends.base import QueryRequest, QueryResult
from caveql.backends.local import LocalBackend
from caveql.datastack.layout import write_view
from caveql.datastack.snapshot import snapshot
from caveql.datastack.tiny import build_tiny
from caveql.engine import Engine
from caveql.errors import DatastackError, TruncatedResultError
from tests.server.conftest import serve

from .conftest import CAP, DEMO_CAP
from .test_snapshot import Wrapped, same

pytestmark = pytest.mark.timeout(300)

IN_OUT, CONNECTIONS, SOMA = "synapses_pni_2_in_out_degree", "connections_with_nuclei", "soma_counts"
SOMA_CAP = 50_000

STATEMENTS = [
    f"SELECT * FROM {IN_OUT}",
    f"SELECT * FROM {IN_OUT} AT VERSION 343",
    f"SELECT root_id, n_input FROM {IN_OUT} WHERE n_output > 3 ORDER BY n_input DESC, root_id LIMIT 20",
    f"SELECT * FROM {CONNECTIONS}",
    f"SELECT * FROM {CONNECTIONS} WHERE pre_pt_root_id = 864691135808473885 AND n_syn > 1",
    f"SELECT count(*) AS n, sum(n_syn) AS s FROM {CONNECTIONS} WHERE post_nuc_id IS NULL",
    f"SELECT * FROM {SOMA}",
    f"SELECT * FROM {SOMA} WHERE neuron_count > 1 ORDER BY id LIMIT 50",
    f"SELECT id, pt_position FROM {SOMA} WHERE cell_type = 'neuron' AND total_count = 2 AT RESOLUTION 1,1,1",
    f"SELECT cell_type, count(*) AS n, max(total_count) AS most FROM {SOMA} GROUP BY cell_type "
    "ORDER BY cell_type",
]


class Recording:
    """Rows of every view answer that is neither a count nor a sample (a limit), per view."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rows: dict[str, list[int]] = {}

    def __call__(self, request: QueryRequest, result: QueryResult) -> QueryResult:
        if request.kind == "view" and not request.count and request.limit is None:
            with self.lock:
                self.rows.setdefault(request.table or "", []).append(result.table.num_rows)
        return result


@pytest.fixture(scope="module")
def soma_capped(demo_4k):
    server = serve(demo_4k, row_cap=SOMA_CAP)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def copies(demo_capped, soma_capped, tmp_path_factory):
    """The three views at 661 (and the in/out degrees at 343) snapshotted locally and as Delta
    Lake tables; the rows of each view answer."""
    out: dict[str, Any] = {"pages": Recording(), "reports": []}
    for fmt in ("local", "delta"):
        dest = tmp_path_factory.mktemp(fmt) / "minnie65_demo"
        opts: dict[str, Any] = {"format": "delta", "n_partitions": 2} if fmt == "delta" else {}
        for served, version, names in ((demo_capped, 661, [IN_OUT, CONNECTIONS]),
                                       (demo_capped, 343, [IN_OUT]), (soma_capped, 661, [SOMA])):
            with served.http(progress=False) as http:
                out["reports"].append(snapshot(Wrapped(http, out["pages"]), version, dest, tables=names,
                                               progress=None, **opts))
        out[fmt] = dest
    return out


@pytest.fixture(scope="module")
def engines(copies, demo_4k):
    backends = [LocalBackend(demo_4k), LocalBackend(copies["local"]), ArchiveBackend(copies["delta"])]
    yield tuple(Engine(b) for b in backends)
    for b in backends:
        b.close()


def test_views_are_copied_whole(copies, demo_4k, demo_capped):
    with LocalBackend(demo_4k) as orig, LocalBackend(copies["local"]) as copy, \
            ArchiveBackend(copies["delta"]) as archive, demo_capped.http(progress=False) as http:
        for v, names in ((661, [IN_OUT, CONNECTIONS, SOMA]), (343, [IN_OUT])):
            assert copy.tables(v) == archive.tables(v) == []  # views only, as asked
            assert sorted(copy.views(v)) == sorted(archive.views(v)) == sorted(names)
            for name in names:
                count = QueryRequest(kind="view", table=name, version=v, count=True)
                n = orig.query(count).table["count"][0].as_py()
                assert copy.query(count).table["count"][0].as_py() == n \
                    == archive.query(count).table["count"][0].as_py()
                # the metadata as the service gives it, the columns as the source's
                assert copy.views(v)[name] == http.views(v)[name]
                assert {k: archive.views(v)[name][k] for k in http.views(v)[name]} == http.views(v)[name]
                assert copy.table_columns(v, name) == orig.table_columns(v, name)
                # (the export appends a view's decoded point: its place is not in the export)
                assert sorted(archive.table_columns(v, name), key=str) \
                    == sorted(orig.table_columns(v, name), key=str)
    reports = [t for r in copies["reports"] for t in r.tables]
    assert all(t.view and not t.skipped for t in reports) and len(reports) == 8


def test_views_past_the_cap_are_fetched_in_pages(copies):
    pages = copies["pages"].rows
    for name, cap in ((IN_OUT, DEMO_CAP), (CONNECTIONS, DEMO_CAP), (SOMA, SOMA_CAP)):
        fetched = [n for n in pages[name] if n]
        runs = sum(t.name == name for r in copies["reports"] for t in r.tables)
        # (at most the first request of a run is cut, for the whole view: it learns the cap, which
        # HttpBackend takes to be the service's 200,000 until told)
        assert len(fetched) > 2 * runs and max(fetched) <= cap, name
        assert sum(n >= cap for n in fetched) <= runs, name


@pytest.mark.parametrize("cql", STATEMENTS)
def test_copies_answer_as_the_source(engines, cql):
    orig, copy, archive = engines
    want = orig.execute(cql).frame
    assert len(want) > 0
    same(copy.execute(cql).frame, want)
    pd.testing.assert_frame_equal(archive.execute(cql).frame.reset_index(drop=True),
                                  want.reset_index(drop=True))


def test_the_layout_of_a_materialized_view(copies):
    dest = copies["local"]
    doc = json.loads((dest / "versions" / "661" / "views" / f"{SOMA}.json").read_text())
    assert "sql" not in doc and doc["_storage"]["files"] == [{"path": f"versions/661/views/{SOMA}.parquet"}]
    assert doc["_storage"]["caveql_snapshot"]["rows"] == 144_120
    ids = pq.read_table(dest / doc["_storage"]["files"][0]["path"]).column("id").to_pylist()
    assert ids == sorted(ids)  # sorted by id, as a table's copy
    # the Delta export of a view: `flat` + `id` + the Morton copy of its point, as the exporter
    assert sorted(p.name for p in (copies["delta"] / "v661" / SOMA).iterdir()) == [
        "flat", "id", "pt_position_morton"]
    assert [p.name for p in (copies["delta"] / "v661" / CONNECTIONS).iterdir()] == ["flat"]


# -- the tiny datastack: resuming, conditions, columns that cannot split a view ------------------

def test_a_view_resumes_and_is_redone_when_damaged(remote, tmp_path):
    dest = tmp_path / "s"
    first = snapshot(remote, 2, dest, tables=["syn_counts"], progress=None)
    assert [(t.name, t.rows, t.view, t.skipped) for t in first.tables] == [("syn_counts", 8, True, False)]
    assert snapshot(remote, 2, dest, tables=["syn_counts"], progress=None).tables[0].skipped
    path = dest / "versions" / "2" / "views" / "syn_counts.parquet"
    pq.write_table(pq.read_table(path).slice(0, 2), path)  # (a file cut short by hand)
    assert not snapshot(remote, 2, dest, tables=["syn_counts"], progress=None).tables[0].skipped
    assert pq.read_table(path).num_rows == 8


def test_where_on_a_view(remote, tmp_path, tiny_datastack):
    dest = tmp_path / "s"
    # (the engine fetches what the condition keeps: pushed to the service, 3 rows under the cap)
    report = snapshot(remote, 2, dest, tables=["syn_counts"], where="pre_pt_root_id = 1001", progress=None)
    assert report.tables[0].rows == 3
    with LocalBackend(dest) as copy, LocalBackend(tiny_datastack) as orig:
        same(Engine(copy).execute("SELECT * FROM syn_counts").frame,
             Engine(orig).execute("SELECT * FROM syn_counts WHERE pre_pt_root_id = 1001").frame)
    # a condition the service cannot evaluate fetches the whole view through the engine, which
    # cuts a view past the cap into ranges of a column (caveql.execute.remote, split_view)
    report = snapshot(remote, 2, tmp_path / "t", tables=["syn_counts"], where="pre_pt_root_id != 1001",
                      progress=None)
    assert report.tables[0].rows == 5
    with LocalBackend(tmp_path / "t") as copy, LocalBackend(tiny_datastack) as orig:
        same(Engine(copy).execute("SELECT * FROM syn_counts").frame,
             Engine(orig).execute("SELECT * FROM syn_counts WHERE pre_pt_root_id != 1001").frame)


@pytest.fixture(scope="module")
def awkward(tmp_path_factory):
    """The tiny datastack with a view whose most distinct columns cannot split it: ``maybe_id``
    has a NULL, ``heavy`` holds 6 rows with one value (over the 4-row cap); ``pair`` (2 rows per
    value) can; ``late`` is NULL in the first five rows. Served at the 4-row cap."""
    root = build_tiny(tmp_path_factory.mktemp("awkward"))
    meta = json.loads((root / "versions" / "2" / "views" / "syn_counts.json").read_text())
    meta = {k: v for k, v in meta.items() if k != "sql"}
    write_view(root, 2, "awkward", {**meta, "id": 2}, (
        "SELECT CASE WHEN id = 109 THEN NULL ELSE id END AS maybe_id, "
        "CASE WHEN id >= 104 THEN 1000 ELSE id END AS heavy, id // 2 AS pair, size, "
        "CASE WHEN id >= 105 THEN id END AS late FROM synapses"))
    server = serve(root, row_cap=CAP)
    yield root, server
    server.stop()


def test_a_view_is_split_by_a_column_that_can_split_it(awkward, tmp_path):
    root, server = awkward
    with server.http(progress=False) as http:
        report = snapshot(http, 2, tmp_path / "s", tables=["awkward"], progress=None)
    assert report.tables[0].rows == 10
    posts = [json.loads(e["body"]) for e in server.recorder.posts() if "/views/awkward/" in e["path"]]
    ranged = {c for body in posts for c in body.get("filter_less_dict", {}).get("awkward", {})}
    assert ranged == {"heavy", "pair"}  # maybe_id refused by its NULL count, heavy failed, pair cut it
    with LocalBackend(tmp_path / "s") as copy, LocalBackend(root) as orig:
        same(Engine(copy).execute("SELECT * FROM awkward").frame,
             Engine(orig).execute("SELECT * FROM awkward").frame)


def test_a_split_value_holding_exactly_the_cap_is_fetched(tmp_path):
    """``quad`` (id // 4) is the only column that can split this view, and two of its values hold
    exactly the 4-row cap: their counts prove those answers whole (an answer of the cap's size
    is otherwise taken as cut)."""
    root = build_tiny(tmp_path / "tiny")
    meta = json.loads((root / "versions" / "2" / "views" / "syn_counts.json").read_text())
    meta = {k: v for k, v in meta.items() if k != "sql"}
    write_view(root, 2, "exact", {**meta, "id": 3},
               "SELECT CAST(floor(id / 4) AS BIGINT) AS quad, 7 AS seven FROM synapses")
    server = serve(root, row_cap=CAP)
    try:
        with server.http(progress=False) as http:
            report = snapshot(http, 2, tmp_path / "s", tables=["exact"], progress=None)
    finally:
        server.stop()
    assert CAP == 4 and report.tables[0].rows == 10
    with LocalBackend(tmp_path / "s") as copy, LocalBackend(root) as orig:
        got = Engine(copy).execute("SELECT quad, COUNT(*) AS n FROM exact GROUP BY quad ORDER BY quad").frame
        assert got["n"].tolist() == [4, 4, 2]
        same(Engine(copy).execute("SELECT * FROM exact").frame, Engine(orig).execute("SELECT * FROM exact").frame)


class TextNulls(Wrapped):
    """The genuine service's answers: a column NULL in every row of an answer comes as text."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner, self.text)

    @staticmethod
    def text(request: QueryRequest, result: QueryResult) -> QueryResult:
        t = result.table
        for i, f in enumerate(t.schema):
            if t.num_rows and t.column(i).null_count == t.num_rows:
                t = t.set_column(i, f.name, pa.nulls(t.num_rows, pa.string()))
        return QueryResult(t, result.warnings, result.resolution, result.bytes_read)

    def table_columns(self, version: int, table: str) -> pa.Schema:
        # (the HTTP backend's schema of a view is its one-row answer's: here `late` is NULL there)
        first = self.query(QueryRequest(kind="view", table=table, version=version, limit=1)).table
        return first.schema


def test_pieces_with_an_all_null_column_are_typed_as_the_view(awkward, tmp_path):
    root, server = awkward
    with server.http(progress=False) as http:
        assert http.view_schema(2, "awkward")["late"] == {"type": "integer"}
        report = snapshot(TextNulls(http), 2, tmp_path / "s", tables=["awkward"], progress=None)
    assert report.tables[0].rows == 10
    with LocalBackend(tmp_path / "s") as copy, LocalBackend(root) as orig:
        assert copy.table_columns(2, "awkward") == orig.table_columns(2, "awkward")
        same(Engine(copy).execute("SELECT * FROM awkward").frame,
             Engine(orig).execute("SELECT * FROM awkward").frame)


def test_a_view_no_column_can_split_is_an_error(awkward, tmp_path):
    root, server = awkward
    served = serve(root, row_cap=2)  # every column of syn_counts has a value with 2 rows or more
    try:
        with served.http(progress=False) as http, pytest.raises(TruncatedResultError) as err:
            snapshot(http, 2, tmp_path / "s", tables=["cells", "syn_counts"], progress=None, workers=1)
    finally:
        served.stop()
    assert "view syn_counts at version 2: 8 rows, more than the service's row cap of 2" in err.value.message
    assert not (tmp_path / "s" / "versions" / "2" / "views" / "syn_counts.json").exists()


def test_a_broken_view_file_is_an_error(remote, tmp_path):
    dest = tmp_path / "s"
    snapshot(remote, 2, dest, tables=["syn_counts"], progress=None)
    doc_path = dest / "versions" / "2" / "views" / "syn_counts.json"
    doc = json.loads(doc_path.read_text())
    doc_path.write_text(json.dumps({**doc, "sql": "SELECT 1 AS x"}))
    with pytest.raises(DatastackError, match="either an 'sql' string or '_storage'"):
        LocalBackend(dest)
    doc_path.write_text(json.dumps(doc))
    (dest / "versions" / "2" / "views" / "syn_counts.parquet").unlink()
    with pytest.raises(DatastackError, match="syn_counts.parquet is missing"):
        LocalBackend(dest)
