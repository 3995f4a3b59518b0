"""Timestamps are UTC in every step, and a live statement's tables have the live answer's columns.

The genuine MaterializationEngine 5.26.4 sends a table's DateTime columns as
``timestamp[ns, tz=UTC]`` and a view's timestamps naive; its live endpoint answers a split
version without ``valid``/``superceded_id`` (.notes/genuine-vs-serve.md rows 4, 5, 38). CQL's
answers must be the same frame whichever backend and whichever local step (DuckDB's or the
direct one) produced them, and literals mean UTC whatever the machine's zone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from unittest import mock

import pandas as pd
import pytest

from caveql.analyze.catalog import LIVE_ABSENT
from caveql.engine import Engine
from caveql.errors import UnknownColumnError

T0 = pd.Timestamp("2020-09-28 22:40:41.123456", tz="UTC")  # the tiny datastack's first `created`


def test_table_timestamps_are_utc_aware(engine):
    f = engine.execute("SELECT id, created FROM cells").frame
    assert str(f.created.dtype) == "datetime64[ns, UTC]"
    assert f.created.iloc[0] == T0.replace(second=0)
    agg = engine.execute("SELECT MIN(created) AS first, MAX(created) AS last FROM cells").frame
    assert list(agg.dtypes.astype(str)) == ["datetime64[ns, UTC]"] * 2


@pytest.mark.parametrize("literal, n", [
    ("'2020-09-28T22:40:02'", 4),          # naive: UTC (cells 3-6: 22:40:02.123456 and later)
    ("'2020-09-28T22:40:02Z'", 4),
    ("'2020-09-29T00:40:02+02:00'", 4),    # the same instant
    ("'2020-09-28T18:40:02-04:00'", 4),
    ("'2020-09-28'", 6),                   # a date: midnight UTC
])
def test_literals_are_utc(engine, literal, n):
    f = engine.execute(f"SELECT id FROM cells WHERE created > {literal}").frame
    assert len(f) == n


def test_direct_step_and_duckdb_name_one_zone(engine, capped_backend):
    """The direct local step (Arrow straight from the backend) and DuckDB's step give one frame."""
    from caveql.execute.direct import direct_step

    for eng in (engine, Engine(capped_backend)):
        for cql in ("SELECT * FROM cells", "SELECT * FROM cell_types SPLIT POSITIONS",
                    "SELECT id, created FROM synapses AT VERSION 1"):
            assert direct_step(eng.physical_plan(cql)) is not None
            direct = eng.execute(cql).frame
            with mock.patch("caveql.execute.local.direct_step", return_value=None):
                duck = eng.execute(cql).frame
            pd.testing.assert_frame_equal(direct, duck, check_exact=True)
            assert str(direct.created.dtype) == "datetime64[ns, UTC]"


@pytest.fixture(scope="module")
def stamps_root(tmp_path_factory, tiny_datastack):
    """The tiny datastack plus a view ``stamps`` passing the cells' ``created`` through."""
    import shutil

    from caveql.datastack.layout import write_view

    root = tmp_path_factory.mktemp("stamps") / "tiny"
    shutil.copytree(tiny_datastack, root)
    write_view(root, 2, "stamps", {"id": 3, "description": "", "datastack_name": "tiny",
                                   "voxel_resolution_x": 4.0, "voxel_resolution_y": 4.0,
                                   "voxel_resolution_z": 40.0, "notice_text": None},
               "SELECT id, created, CAST(id AS DOUBLE) / 3 AS third FROM cells")
    return root


def test_a_views_timestamps_stay_naive(stamps_root):
    """The service reflects a view's TIMESTAMP column: naive in its frames, and so in CQL's."""
    from caveql.backends.local import LocalBackend

    with LocalBackend(stamps_root) as b:
        eng = Engine(b)
        f = eng.execute("SELECT * FROM stamps WHERE created > '2020-09-28T22:40:02'").frame
        assert list(f.dtypes.astype(str)) == ["Int64", "datetime64[ns]", "Float64"]
        assert len(f) == 5  # cells 3-7 (the invalid 7 too: a view has no valid filter)
        # a view's naive timestamp and a table's aware one compare as the same UTC instants
        j = eng.execute("SELECT s.id FROM stamps s JOIN cells c ON s.id = c.id WHERE s.created = c.created").frame
        assert len(j) == 6


def test_comparisons_ignore_the_machines_zone(stamps_root):
    """In a process whose zone is not UTC, literals and naive values (a view's, the stored ones)
    still mean UTC, in the backend's DuckDB and in the local step's."""
    script = textwrap.dedent(f"""
        import json, sys
        from caveql.backends.local import LocalBackend
        from caveql.backends.base import QueryRequest
        b = LocalBackend({str(stamps_root)!r})
        from caveql.engine import Engine
        eng = Engine(b)
        f = eng.execute("SELECT id, created FROM cells WHERE created > '2020-09-28T22:40:02'").frame
        g = eng.execute("SELECT id FROM cells WHERE created > '2020-09-28T22:40:02' AND id > 0 ORDER BY created").frame
        j = eng.execute("SELECT s.id FROM stamps s JOIN cells c ON s.id = c.id WHERE s.created = c.created").frame
        r = b.query(QueryRequest(kind="table", table="cells", version=2,
                                 filter_greater={{"cells": {{"created": "2020-09-28T22:40:02"}}}}))
        print(json.dumps([f.id.tolist(), [str(t) for t in f.created], g.id.tolist(), str(f.created.dtype),
                          len(j), r.table.column("id").to_pylist()]))
    """)
    env = {**os.environ, "TZ": "America/New_York"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    ids, stamps, ordered, dtype, joined, pushed = json.loads(out.stdout.strip().splitlines()[-1])
    assert ids == [3, 4, 5, 6] and ordered == [3, 4, 5, 6] and pushed == [3, 4, 5, 6]
    assert stamps[0] == "2020-09-28 22:40:02.123456+00:00" and dtype == "datetime64[ns, UTC]"
    assert joined == 6


# ------------------------------------------------------------------ live columns

def test_live_star_has_the_live_answers_columns(engine):
    frozen = engine.execute("SELECT * FROM cells").frame
    live = engine.execute("SELECT * FROM cells AT TIMESTAMP '2024-01-01T00:00:00'").frame
    assert list(live.columns) == [c for c in frozen.columns if c not in LIVE_ABSENT]
    assert {"valid", "superceded_id"} <= set(frozen.columns)
    ref = engine.execute("SELECT * FROM cell_types AT LIVE").frame
    assert not {"valid", "valid_ref", "superceded_id", "deleted"} & set(ref.columns)
    assert {"id", "id_ref", "created", "created_ref", "target_id"} <= set(ref.columns)


def test_live_statements_never_ask_for_bookkeeping_columns(engine):
    for cql in ("SELECT * FROM cells AT LIVE", "SELECT id FROM cells AT LIVE",
                "SELECT id, cell_type FROM cells WHERE cell_type = 'BC' AT LIVE",
                "SELECT c.id FROM cells c JOIN synapses s ON s.pre_pt_root_id = c.pt_root_id AT LIVE",
                "SELECT id, cell_type FROM cell_types AT LIVE"):
        for call in engine.physical_plan(cql).calls:
            sel = call.request.select_columns or {}
            asked = {c for cols in sel.values() for c in cols} | set(call.columns)
            assert not asked & set(LIVE_ABSENT), (cql, asked)
            assert call.spare not in LIVE_ABSENT


@pytest.mark.parametrize("cql", ["SELECT valid FROM cells AT LIVE",
                                 "SELECT c.superceded_id FROM cells c AT TIMESTAMP '2024-01-01T00:00:00'",
                                 "SELECT id FROM cell_types WHERE valid_ref AT LIVE"])
def test_bookkeeping_columns_are_not_live_columns(engine, cql):
    with pytest.raises(UnknownColumnError) as err:
        engine.execute(cql)
    assert "live answer" in (err.value.hint or "")


def test_frozen_statements_keep_them(engine):
    assert len(engine.execute("SELECT valid, superceded_id FROM cells").frame) == 6
    # the same catalog object serves both: the live view of it does not leak into frozen statements
    engine.execute("SELECT * FROM cells AT LIVE")
    assert "valid" in engine.execute("SELECT * FROM cells AT VERSION 2").frame.columns


def test_live_catalog_shares_the_frozen_one(engine):
    cat = engine.catalog(2)
    live = cat.for_live()
    assert live.for_live() is live and cat.for_live() is live and live.live and not cat.live
    assert live.tables() == cat.tables() and live.views() == cat.views()
    assert live.count("cells") == cat.count("cells")
    assert [c.name for c in live.source("syn_counts").columns] == [c.name for c in cat.source("syn_counts").columns]
    assert live.source("cells").column("valid") is None and cat.source("cells").column("valid") is not None


# ------------------------------------------------------------------ empty answers

class _NullStrings:
    """A backend answering as the genuine service does when an answer has no rows: pandas'
    empty object columns (its strings) become Arrow ``null`` columns."""

    def __init__(self, inner):
        self.inner = inner
        self.name = inner.name
        self.capabilities = inner.capabilities

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def query(self, request):
        import pyarrow as pa

        from caveql.backends.base import QueryResult

        r = self.inner.query(request)
        t = r.table
        if t.num_rows == 0:
            t = pa.table({f.name: (pa.array([], pa.null()) if pa.types.is_string(f.type) else t.column(i))
                          for i, f in enumerate(t.schema)})
        return QueryResult(t, r.warnings, r.resolution, r.bytes_read)


@pytest.mark.parametrize("cql", [
    "SELECT * FROM cells WHERE cell_type = 'nope'",
    "SELECT cell_type, COUNT(*) AS n FROM cells WHERE cell_type = 'nope' GROUP BY cell_type",
    "SELECT s.id, c.cell_type FROM synapses s JOIN cells c ON s.post_pt_root_id = c.pt_root_id "
    "WHERE c.cell_type = 'nope'",
    # a call never made (its key feed is empty) has the catalog's types too
    "SELECT * FROM cell_types WHERE pt_root_id IN (SELECT pt_root_id FROM cells WHERE cell_type = 'nope')",
])
def test_empty_answers_keep_the_catalogs_types(tiny_backend, cql):
    want = Engine(tiny_backend).execute(cql).frame
    got = Engine(_NullStrings(tiny_backend)).execute(cql).frame
    assert len(want) == 0
    assert all(str(t) != "object" for n, t in want.dtypes.items() if "position" not in n), want.dtypes
    assert "string" in list(want.dtypes.astype(str))
    assert list(got.dtypes.astype(str)) == list(want.dtypes.astype(str))
