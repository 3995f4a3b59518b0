"""End-to-end engine behaviour on the tiny datastack, checked against pandas over the full tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from caveql.backends.base import QueryRequest
from caveql.engine import Engine


def full(backend, table, version=2):
    """Every row of a table as the backend returns it (positions split), in id order."""
    t = backend.query(QueryRequest(kind="table", table=table, version=version)).table
    return t.to_pandas(types_mapper=pd.ArrowDtype).sort_values("id").reset_index(drop=True)


def test_filter_and_columns(engine, tiny_backend):
    cells = full(tiny_backend, "cells")
    got = engine.execute("SELECT id, pt_root_id FROM cells WHERE cell_type = 'BC'").frame
    want = cells[cells.cell_type == "BC"][["id", "pt_root_id"]]
    assert got.id.tolist() == want.id.tolist()
    assert got.pt_root_id.tolist() == want.pt_root_id.tolist()
    assert list(got.columns) == ["id", "pt_root_id"]
    assert str(got.dtypes["id"]) == "Int64"


def test_not_equal_and_not_in_stay_local(engine, tiny_backend):
    syn = full(tiny_backend, "synapses")
    got = engine.execute("SELECT id FROM synapses WHERE pre_pt_root_id != post_pt_root_id "
                         "AND post_pt_root_id NOT IN (0, 1001)").frame
    want = syn[(syn.pre_pt_root_id != syn.post_pt_root_id) & ~syn.post_pt_root_id.isin([0, 1001])]
    assert got.id.tolist() == want.id.tolist()
    text = engine.explain("SELECT id FROM synapses WHERE post_pt_root_id NOT IN (0, 1001)")
    assert "filter_notin" not in text and "local filter" in text


def test_semi_join_and_join_agree(engine, tiny_backend):
    syn, cells = full(tiny_backend, "synapses"), full(tiny_backend, "cells")
    bc = set(cells[cells.cell_type == "BC"].pt_root_id)
    want = syn[syn.post_pt_root_id.isin(bc)].id.tolist()
    a = engine.execute("SELECT s.id FROM synapses s JOIN cells c ON s.post_pt_root_id = c.pt_root_id "
                       "WHERE c.cell_type = 'BC'").frame
    b = engine.execute("SELECT id FROM synapses WHERE post_pt_root_id IN "
                       "(SELECT pt_root_id FROM cells WHERE cell_type = 'BC')").frame
    assert a.id.tolist() == want == b.id.tolist()


def test_group_by_counts(engine, tiny_backend):
    syn = full(tiny_backend, "synapses")
    got = engine.execute("SELECT pre_pt_root_id, COUNT(*) AS n FROM synapses GROUP BY pre_pt_root_id "
                         "ORDER BY n DESC, pre_pt_root_id").frame
    want = syn.groupby("pre_pt_root_id").size().reset_index(name="n")
    want = want.sort_values(["n", "pre_pt_root_id"], ascending=[False, True])
    assert got.pre_pt_root_id.tolist() == want.pre_pt_root_id.tolist()
    assert got.n.tolist() == want.n.tolist()


def test_positions_packed_like_caveclient(engine, tiny_backend):
    from caveclient.materializationengine import concatenate_position_columns

    got = engine.execute("SELECT * FROM cells").frame
    raw = full(tiny_backend, "cells")
    raw = raw.astype({c: str(t).replace("[pyarrow]", "").replace("int64", "Int64").replace(
        "int32", "Int32") for c, t in raw.dtypes.items() if "int" in str(t)})
    want = concatenate_position_columns(raw)
    assert list(got.columns) == list(want.columns)
    for a, b in zip(got.pt_position, want.pt_position, strict=True):
        assert np.array_equal(a, b) and a.dtype == b.dtype


def test_split_positions_and_resolution(engine, tiny_backend):
    cells = full(tiny_backend, "cells")
    got = engine.execute("SELECT pt_position, pt_root_id FROM cells AT RESOLUTION 1,1,1 "
                         "SPLIT POSITIONS").frame
    assert list(got.columns) == ["pt_position_x", "pt_position_y", "pt_position_z", "pt_root_id"]
    assert got.pt_position_x.tolist() == (cells.pt_position_x * 4).tolist()
    assert got.pt_position_z.tolist() == (cells.pt_position_z * 40).tolist()
    assert str(got.dtypes["pt_position_x"]) == "Int32"


@pytest.mark.parametrize("box", [((0, 0, 0), (200, 300, 400)), ((400, 800, 400), (1204, 1612, 600)),
                                 ((401, 0, 0), (1203, 10_000, 10_000))])
def test_within_box_exact_at_other_resolution(engine, tiny_backend, box):
    cells = full(tiny_backend, "cells")
    (x0, y0, z0), (x1, y1, z1) = box
    x, y, z = cells.pt_position_x * 4, cells.pt_position_y * 4, cells.pt_position_z * 40
    inside = (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1) & (z >= z0) & (z <= z1)
    got = engine.execute(f"SELECT id FROM cells WHERE pt_position WITHIN BOX({box[0]}, {box[1]}) "
                         "AT RESOLUTION 1,1,1").frame
    assert got.id.tolist() == cells[inside].id.tolist()


def test_params_and_list_binding(engine, tiny_backend):
    syn = full(tiny_backend, "synapses")
    got = engine.execute("SELECT id FROM synapses WHERE pre_pt_root_id = :ids", params={"ids": [1001, 1005]})
    assert got.frame.id.tolist() == syn[syn.pre_pt_root_id.isin([1001, 1005])].id.tolist()
    got = engine.execute("SELECT id FROM synapses WHERE pre_pt_root_id IN :ids", params={"ids": (1002,)})
    assert got.frame.id.tolist() == syn[syn.pre_pt_root_id == 1002].id.tolist()


def test_limit_pushed_and_local(engine):
    text = engine.explain("SELECT id FROM synapses LIMIT 3")
    assert '"limit": 3' in text
    text = engine.explain("SELECT id FROM synapses ORDER BY size DESC LIMIT 3")
    assert '"limit"' not in text
    assert engine.execute("SELECT id FROM synapses ORDER BY size DESC LIMIT 3").frame.id.tolist() == [109, 108, 107]


def test_versions(engine, tiny_backend):
    v1 = engine.execute("SELECT pt_root_id FROM cells WHERE id = 5 AT VERSION 1").frame
    v2 = engine.execute("SELECT pt_root_id FROM cells WHERE id = 5").frame
    assert v1.pt_root_id.tolist() == [905] and v2.pt_root_id.tolist() == [1005]


QUERIES = [
    "SELECT * FROM synapses",
    "SELECT * FROM cell_types",
    "SELECT id, size FROM synapses WHERE size > 100 ORDER BY size",
    "SELECT s.id, c.cell_type FROM synapses s JOIN cells c ON s.pre_pt_root_id = c.pt_root_id",
    "SELECT s.id, c.cell_type FROM synapses s LEFT JOIN cells c ON s.post_pt_root_id = c.pt_root_id",
    "SELECT id FROM synapses WHERE pre_pt_root_id IN (1001, 1002, 1005)",
    "SELECT pre_pt_root_id, COUNT(*) AS n FROM synapses GROUP BY pre_pt_root_id",
    "SELECT id FROM synapses WHERE post_pt_root_id IN (SELECT pt_root_id FROM cells)",
    "SELECT id FROM synapses LIMIT 4 OFFSET 2",
    "SELECT COUNT(*) AS n FROM synapses",
    "SELECT COUNT(*) AS n FROM synapses WHERE size > 100",
    "SELECT COUNT(*) AS n, COUNT(*) AS m FROM synapses WHERE pre_pt_root_id IN (1001, 1002)",
    "SELECT id, pt_position FROM cells WHERE pt_position WITHIN BOX((0, 0, 0), (300, 400, 20))",
]


@pytest.mark.parametrize("cql", QUERIES)
def test_paging_answers_equal_uncapped(tiny_backend, capped_backend, cql):
    a = Engine(tiny_backend).execute(cql).frame
    b = Engine(capped_backend).execute(cql).frame
    pd.testing.assert_frame_equal(a.astype(str), b.astype(str))
    assert len(a) > 0
