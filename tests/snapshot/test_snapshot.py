"""``caveql snapshot``: the tiny datastack served at a 4-row cap, copied into a local folder, answers
every statement exactly as the original does; an interrupted snapshot resumes; rows lost on the way
are an error, never a short table; progress is reported."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest

from caveql.backends.base import QueryRequest, QueryResult
from caveql.backends.local import LocalBackend
from caveql.datastack.snapshot import snapshot
from caveql.engine import Engine
from caveql.errors import CaveqlError, ConfigError, CqlSyntaxError, DatastackError, TruncatedResultError

from .conftest import CAP

pytestmark = pytest.mark.timeout(60)

STATEMENTS = [
    "SELECT * FROM cells",
    "SELECT * FROM cells WHERE cell_type = 'BC'",
    "SELECT id, pt_position FROM cells AT RESOLUTION 1,1,1",
    "SELECT * FROM cells AT VERSION 1",
    "SELECT * FROM cell_types",
    "SELECT id, cell_type, pt_root_id FROM cell_types WHERE pt_root_id IN (1001, 1002, 1003)",
    "SELECT * FROM nuclei WHERE volume > 100 AND volume <= 512",
    "SELECT * FROM nuclei AT VERSION 1",
    "SELECT * FROM nuclei WHERE pt_position WITHIN BOX((400, 800, 400), (800, 1200, 480)) "
    "AT RESOLUTION 1,1,1",
    "SELECT * FROM synapses WHERE pre_pt_root_id = 1001",
    "SELECT * FROM synapses WHERE pre_pt_root_id NOT IN (1001) AND size > 50",
    "SELECT * FROM synapses WHERE pre_pt_root_id != post_pt_root_id ORDER BY size DESC LIMIT 3",
    "SELECT pre_pt_root_id, post_pt_root_id, COUNT(*) AS n FROM synapses GROUP BY pre_pt_root_id, "
    "post_pt_root_id ORDER BY n DESC, pre_pt_root_id, post_pt_root_id",
    "SELECT s.id, s.size, c.cell_type FROM synapses s JOIN cells c ON s.post_pt_root_id = c.pt_root_id "
    "WHERE c.cell_type = 'BC'",
    "SELECT * FROM synapses WHERE post_pt_root_id IN (SELECT pt_root_id FROM cells WHERE cell_type = 'BC')",
    "SELECT * FROM synapses WHERE size BETWEEN 80 AND 200 AT VERSION 1",
    "SELECT * FROM synapses WHERE post_pt_root_id = 905 AT VERSION 1",
    "SELECT id, pre_pt_position_x FROM synapses WHERE pre_pt_position_x BETWEEN 10 AND 30",
    "SELECT * FROM cells WHERE cell_type ~ '^(BC|4P)$' OFFSET 1",
    "SELECT * FROM syn_counts",
    "SELECT * FROM syn_counts WHERE n_syn > 1 OR pre_pt_root_id = 0 AT VERSION 1",
]


def same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a.columns) == list(b.columns)
    assert list(a.dtypes.astype(str)) == list(b.dtypes.astype(str))
    assert a.astype(str).equals(b.astype(str)), (a, b)


class Wrapped:
    """A backend passing everything to ``inner`` except what ``query`` does to the answers."""

    def __init__(self, inner: Any, alter: Any) -> None:
        self.inner = inner
        self.alter = alter

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def query(self, request: QueryRequest) -> QueryResult:
        return self.alter(request, self.inner.query(request))


@pytest.fixture(scope="module")
def copied(tiny_capped, tiny_datastack, tmp_path_factory):
    """Both versions of the tiny datastack (tables and views) snapshotted through the 4-row cap."""
    from caveql.backends.http import HttpBackend

    from .conftest import TOKEN

    dest = tmp_path_factory.mktemp("snap") / "tiny_copy"
    with HttpBackend("tiny", server=tiny_capped.url, token=TOKEN, cache=False, progress=False) as http:
        reports = [snapshot(http, v, dest, progress=None, workers=2) for v in (1, 2)]
    return dest, reports


@pytest.fixture(scope="module")
def engines(copied, tiny_datastack):
    orig, copy = LocalBackend(tiny_datastack), LocalBackend(copied[0])
    yield Engine(orig), Engine(copy)
    orig.close()
    copy.close()


def test_every_table_copied_whole(copied, tiny_datastack, remote):
    dest, reports = copied
    orig = LocalBackend(tiny_datastack)
    copy = LocalBackend(dest)
    try:
        assert copy.versions() == orig.versions() == [1, 2]
        for report in reports:
            v = report.version
            # by default every table and every view
            assert sorted(t.name for t in report.tables) == sorted(orig.tables(v) + list(orig.views(v)))
            assert copy.tables(v) == orig.tables(v) and copy.views(v) == remote.views(v) == orig.views(v)
            for t in report.tables:
                assert not t.skipped and t.view == (t.name in orig.views(v))
                assert copy.table_columns(v, t.name) == orig.table_columns(v, t.name)
                if t.view:
                    count = QueryRequest(kind="view", table=t.name, version=v, count=True)
                    assert t.rows == orig.query(count).table["count"][0].as_py() \
                        == copy.query(count).table["count"][0].as_py()
                    continue
                assert t.rows == orig.table_count(v, t.name) == copy.table_count(v, t.name)
                # the metadata exactly as the service returns it
                assert copy.table_metadata(v, t.name) == remote.table_metadata(v, t.name)
            assert copy.version_metadata(v) == remote.version_metadata(v)
        assert copy.info() == remote.info()
    finally:
        orig.close()
        copy.close()


def test_synapses_get_the_sorted_copies(copied):
    dest = copied[0]
    doc = json.loads((dest / "versions" / "2" / "tables" / "synapses.json").read_text())
    files = doc["_storage"]["files"]
    assert [f["sorted_by"] for f in files] == ["pre_pt_root_id", "post_pt_root_id", "ctr_pt_position", "size"]
    by_size = pq.read_table(dest / files[3]["path"]).column("size").to_pylist()
    assert by_size == sorted(by_size) and len(by_size) == 10
    # a plain table is one file, sorted by id
    assert pq.read_table(dest / "versions" / "2" / "tables" / "cells.parquet").column("id").to_pylist() \
        == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("cql", STATEMENTS)
def test_snapshot_answers_as_the_original(engines, cql):
    orig, copy = engines
    same(copy.execute(cql).frame, orig.execute(cql).frame)


def test_a_table_past_the_cap_is_fetched_in_pages(remote, tmp_path):
    fetched: list[int] = []

    def record(request: QueryRequest, result: QueryResult) -> QueryResult:
        if request.table == "synapses" and not request.count:
            fetched.append(result.table.num_rows)
        return result

    report = snapshot(Wrapped(remote, record), 2, tmp_path / "s", tables=["synapses"], progress=None)
    assert report.tables[0].rows == 10
    assert len(fetched) > 1 and max(fetched) < CAP + 1  # pages under the cap (samples included)
    with LocalBackend(tmp_path / "s") as copy:
        ids = Engine(copy).execute("SELECT id FROM synapses").frame["id"].tolist()
    assert ids == list(range(100, 110))


def test_run_again_skips_complete_tables(remote, tmp_path):
    dest = tmp_path / "s"
    first = snapshot(remote, 2, dest, tables=["cells", "nuclei"], progress=None)
    again = snapshot(remote, 2, dest, tables=["cells", "nuclei", "synapses"], progress=None)
    assert [(t.name, t.skipped) for t in first.tables] == [("cells", False), ("nuclei", False)]
    assert [(t.name, t.skipped) for t in again.tables] == [
        ("cells", True), ("nuclei", True), ("synapses", False)]


def test_a_damaged_file_is_copied_again(remote, tmp_path):
    dest = tmp_path / "s"
    snapshot(remote, 2, dest, tables=["cells"], progress=None)
    path = dest / "versions" / "2" / "tables" / "cells.parquet"
    t = pq.read_table(path)
    pq.write_table(t.slice(0, 3), path)  # (a file cut short by hand)
    again = snapshot(remote, 2, dest, tables=["cells"], progress=None)
    assert again.tables[0].skipped is False
    assert pq.read_table(path).num_rows == 6


def test_resume_after_an_interruption(remote, tmp_path):
    dest = tmp_path / "s"

    def die_on_synapses(request: QueryRequest, result: QueryResult) -> QueryResult:
        if request.table == "synapses" and not request.count:
            raise KeyboardInterrupt
        return result

    with pytest.raises(KeyboardInterrupt):
        snapshot(Wrapped(remote, die_on_synapses), 2, dest, tables=["cells", "synapses"], progress=None,
                 workers=1)
    tables = dest / "versions" / "2" / "tables"
    assert (tables / "cells.json").exists() and not (tables / "synapses.json").exists()
    resumed = snapshot(remote, 2, dest, tables=["cells", "synapses"], progress=None)
    assert [(t.name, t.skipped) for t in resumed.tables] == [("cells", True), ("synapses", False)]
    with LocalBackend(dest) as copy:
        assert copy.table_count(2, "synapses") == 10
    assert not [p for p in dest.rglob(".*") if p.is_file()]  # no temporary file left


def test_files_of_a_killed_run_are_removed(remote, tmp_path):
    dest = tmp_path / "s"
    snapshot(remote, 2, dest, tables=["cells"], progress=None)
    stale = dest / "versions" / "2" / "tables" / ".nuclei.parquet.99999"
    stale.write_bytes(b"half a file")
    assert snapshot(remote, 2, dest, tables=["cells"], progress=None).tables[0].skipped
    assert not stale.exists()


def test_rows_lost_on_the_way_are_an_error(remote, tmp_path):
    dest = tmp_path / "s"

    dropped: list[int] = []

    def drop_one(request: QueryRequest, result: QueryResult) -> QueryResult:
        t = result.table
        # (a proxy losing the first row of one page: the counts still add up, the rows do not)
        if request.table == "nuclei" and not request.count and request.limit is None and t.num_rows \
                and not dropped:
            dropped.append(t.num_rows)
            t = t.slice(1)
        return QueryResult(t, result.warnings, result.resolution, result.bytes_read)

    with pytest.raises(TruncatedResultError, match=r"table nuclei at version 2: fetched 4 rows, "
                                                   r"the service counts 5"):
        snapshot(Wrapped(remote, drop_one), 2, dest, tables=["cells", "nuclei"], progress=None, workers=1)
    assert dropped
    tables = dest / "versions" / "2" / "tables"
    assert not (tables / "nuclei.json").exists() and not (tables / "nuclei.parquet").exists()


def test_progress_reports_tables_and_rows(remote, tmp_path):
    lines: list[str] = []
    snapshot(remote, 2, tmp_path / "s", tables=["cells", "synapses"], progress=lines.append, workers=1)
    assert lines[0].startswith("[caveql snapshot] [") and "1/2 tables" in lines[0]
    assert "2/2 tables, 16/16 rows" in lines[1] and "#" * 24 in lines[1]
    assert lines[-1].startswith("done: ") and "16 rows" in lines[-1]


def test_where_keeps_the_rows_it_selects(remote, tmp_path, tiny_datastack):
    dest = tmp_path / "s"
    report = snapshot(remote, 2, dest, tables=["cells", "nuclei"], where="pt_root_id != 0", progress=None)
    assert {t.name: t.rows for t in report.tables} == {"cells": 5, "nuclei": 4}
    with LocalBackend(dest) as copy, LocalBackend(tiny_datastack) as orig:
        for table in ("cells", "nuclei"):
            cql = f"SELECT * FROM {table} WHERE pt_root_id != 0"
            same(Engine(copy).execute(f"SELECT * FROM {table}").frame, Engine(orig).execute(cql).frame)
    # another condition is another snapshot: the tables are copied again, not skipped
    again = snapshot(remote, 2, dest, tables=["cells"], progress=None)
    assert again.tables[0].skipped is False and again.tables[0].rows == 6


def test_where_errors_name_the_table(remote, tmp_path):
    with pytest.raises(CaveqlError, match="--where on table synapses: .*pt_root_id"):
        snapshot(remote, 2, tmp_path / "s", tables=["synapses"], where="pt_root_id != 0", progress=None)
    with pytest.raises(CqlSyntaxError):
        snapshot(remote, 2, tmp_path / "s", where="1 = 1) UNION SELECT * FROM cells WHERE (1 = 1",
                 progress=None)
    with pytest.raises(ConfigError):
        snapshot(remote, 2, tmp_path / "s", where="  ", progress=None)


def test_bad_arguments_are_refused(remote, tmp_path):
    with pytest.raises(DatastackError, match="no table or view 'cels' at version 2.*views: syn_counts"):
        snapshot(remote, 2, tmp_path / "s", tables=["cels"], progress=None)
    with pytest.raises(DatastackError, match="version 7 is not a version"):
        snapshot(remote, 7, tmp_path / "s", progress=None)
    with pytest.raises(ConfigError):
        snapshot(object(), 2, tmp_path / "s", progress=None)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(DatastackError, match="not a datastack folder"):
        snapshot(remote, 2, other, progress=None)
    assert [p.name for p in other.iterdir()] == ["notes.txt"]


def test_where_on_a_reference_table_keeps_its_own_columns(remote, tmp_path, tiny_datastack):
    dest = tmp_path / "s"
    report = snapshot(remote, 2, dest, tables=["cell_types"], where="cell_type = 'BC'", progress=None)
    # its target comes too, whole: a reference table is read merged with it
    assert [(t.name, t.rows) for t in report.tables] == [("cell_types", 2), ("nuclei", 5)]
    with LocalBackend(dest) as copy, LocalBackend(tiny_datastack) as orig:
        assert copy.table_columns(2, "cell_types") == orig.table_columns(2, "cell_types")
        same(Engine(copy).execute("SELECT * FROM cell_types").frame,
             Engine(orig).execute("SELECT * FROM cell_types WHERE cell_type = 'BC'").frame)


def test_an_error_stops_the_other_tables(remote, tmp_path):
    import threading

    failed = threading.Event()
    after: list[str] = []

    def fail_cells(request: QueryRequest, result: QueryResult) -> QueryResult:
        if failed.is_set():
            after.append(request.table or "")
        if request.table == "cells" and not request.count:
            failed.set()
            raise TruncatedResultError("cells: a page went missing")
        if request.table == "synapses" and not request.count:
            failed.wait(5)  # synapses is still fetching when cells fails
        return result

    with pytest.raises(TruncatedResultError, match="a page went missing"):
        snapshot(Wrapped(remote, fail_cells), 2, tmp_path / "s", tables=["cells", "synapses"],
                 progress=None, workers=2)
    # synapses sends at most the requests already under way, then stops: nothing of it is written
    assert len(after) <= 4
    assert not (tmp_path / "s" / "versions" / "2" / "tables" / "synapses.json").exists()
