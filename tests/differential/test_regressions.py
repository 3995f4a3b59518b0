"""Minimal reproductions of the engine bugs the differential tests found (.notes/differential-*.md).

A bug still open is pinned here by an exact ``xfail(strict=True)``: the day it is fixed the
test XPASSes and fails, so the generator's matching ``KNOWN_BUGS`` flag gets removed. Fixed
bugs stay as plain regression tests. Each answer is checked against the oracle, not a constant.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from caveql.backends.local import LocalBackend
from caveql.engine import Engine
from tests.differential.compare import compare
from tests.differential.generator import KNOWN_BUGS
from tests.differential.oracle import Oracle


def same_as_oracle(engine: Engine, cql: str, oracle: Oracle, sql: str, mode: str = "ordered") -> None:
    frame = engine.execute(cql).frame
    columns, types, rows = oracle.run(sql)
    diff = compare(frame, columns, types, rows, mode=mode)
    assert diff is None, diff


@pytest.fixture(scope="module")
def tiny(tiny_datastack: Path) -> tuple[Engine, Oracle]:
    return Engine(LocalBackend(tiny_datastack)), Oracle(tiny_datastack)


def test_position_and_component_together(tiny: tuple[Engine, Oracle]) -> None:
    """differential-duplicate-names (fixed in 391fba4): `P, P_y` gave a KeyError."""
    engine, oracle = tiny
    rel = oracle.relation_sql(2, "nuclei", None)
    same_as_oracle(engine, "SELECT id, pt_position, pt_position_y FROM nuclei ORDER BY id", oracle,
                   f"SELECT id, [pt_position_x, pt_position_y, pt_position_z] AS pt_position, pt_position_y "
                   f"FROM ({rel}) ORDER BY id")
    same_as_oracle(engine, "SELECT id, pt_position, pt_position_y FROM nuclei ORDER BY id SPLIT POSITIONS",
                   oracle, f"SELECT id, pt_position_x, pt_position_y, pt_position_z, pt_position_y "
                           f"FROM ({rel}) ORDER BY id")
    assert not KNOWN_BUGS["position_and_component"]


def test_explicit_select_keeps_position_place(tiny: tuple[Engine, Oracle]) -> None:
    """differential-position-order (fixed in 391fba4): explicit items moved positions last."""
    engine, oracle = tiny
    rel = oracle.relation_sql(2, "nuclei", None)
    same_as_oracle(engine, "SELECT pt_position, id FROM nuclei WHERE id = 10", oracle,
                   f"SELECT [pt_position_x, pt_position_y, pt_position_z] AS pt_position, id "
                   f"FROM ({rel}) WHERE id = 10")
    assert not KNOWN_BUGS["positions_last"]


def test_reference_table_pages(demo_path: Path, oracle: Oracle) -> None:
    """differential-reference-paging (fixed by H3 before 42626b6): a merged reference table above
    the row cap failed with TruncatedResultError."""
    assert not KNOWN_BUGS["reference_paging"]
    engine = Engine(LocalBackend(demo_path, row_cap=1000))
    rel = oracle.relation_sql(661, "aibs_soma_nuc_metamodel_preds_v117", None)
    same_as_oracle(engine, "SELECT id_ref, cell_type FROM aibs_soma_nuc_metamodel_preds_v117", oracle,
                   f"SELECT id_ref, cell_type FROM ({rel})", mode="set")


def test_limit_at_cap(tiny_datastack: Path, tiny: tuple[Engine, Oracle]) -> None:
    """.notes/differential-limit-at-cap.md: LIMIT n at row_cap <= n used to raise TruncatedResultError."""
    assert not KNOWN_BUGS["limit_at_cap"]
    _engine, oracle = tiny
    capped = Engine(LocalBackend(tiny_datastack, row_cap=3))
    rel = oracle.relation_sql(1, "cells", None)
    same_as_oracle(capped, "SELECT id, cell_type FROM cells LIMIT 3 AT VERSION 1", oracle,
                   f"SELECT id, cell_type FROM ({rel}) ORDER BY id LIMIT 3")


@pytest.mark.parametrize("row_cap", [None, 1000, 2])
def test_ref_columns_of_a_reference_table_with_its_own_points(demo_path: Path, oracle: Oracle,
                                                               row_cap: int | None) -> None:
    """.notes/differential-ref-own-points.md (fixed by H3 in 87778d1): the `_ref` columns of
    nucleus_alternative_points (a reference table with its own points) gave a KeyError."""
    assert not KNOWN_BUGS["ref_own_points"]
    engine = Engine(LocalBackend(demo_path, row_cap=row_cap))
    where = "WHERE id BETWEEN 7768 AND 20751 AND pt_root_id NOT BETWEEN 0 AND 864691136212870537"
    rel = oracle.relation_sql(661, "nucleus_alternative_points", (1, 1, 1))
    assert oracle.run(f"SELECT count(*) FROM ({rel}) {where}")[2][0][0] > 2  # pages at cap 2
    same_as_oracle(engine, "SELECT valid_ref, pt_position_ref, pt_root_id_ref, created_ref, pt_supervoxel_id_ref "
                           f"FROM nucleus_alternative_points {where} SPLIT POSITIONS AT RESOLUTION 1, 1, 1 "
                           "AT VERSION 661", oracle,
                   "SELECT valid_ref, pt_position_ref_x, pt_position_ref_y, pt_position_ref_z, pt_root_id_ref, "
                   f"created_ref, pt_supervoxel_id_ref FROM ({rel}) {where}", mode="set")


@pytest.mark.parametrize("condition, sql", [
    ("avg_input_size = 9625.333333333334", "avg_input_size = 9625.333333333334"),
    ("avg_input_size != 9625.333333333334", "avg_input_size != 9625.333333333334"),
    ("NOT (avg_input_size = 9625.333333333334)", "NOT (avg_input_size = 9625.333333333334)"),
    ("(avg_input_size = 9625.333333333334 OR root_id = 1)",
     "(avg_input_size = 9625.333333333334 OR root_id = 1)"),
    ("avg_input_size = 9625.333", "avg_input_size = 9625.333"),
    ("avg_input_size = 9625.3330078125", "avg_input_size = 9625.3330078125"),  # its float32: no row
])
def test_view_float_compares_as_the_double(demo_path: Path, oracle: Oracle, condition: str, sql: str) -> None:
    """.notes/differential-view-float-precision.md: a view's double came back as Float32, pushed
    conditions compared the double and local ones the float32, so `x = v` and `NOT (x = v)` both
    held. H3 made both compare in 32 bits; the genuine engine answers a view's floats as the
    doubles (reflected DOUBLE PRECISION → Float64), so now both compare the double, as the
    service filters it."""
    engine = Engine(LocalBackend(demo_path))
    root = 864691132827765541  # its avg_input_size is 28876/3 in the view
    rel = oracle.relation_sql(343, "synapses_pni_2_in_out_degree", None)
    assert oracle.run(f"SELECT count(*) FROM ({rel}) WHERE root_id = {root} "
                      "AND avg_input_size = 28876.0 / 3")[2] == [(1,)]
    same_as_oracle(engine, f"SELECT root_id FROM synapses_pni_2_in_out_degree WHERE root_id = {root} "
                           f"AND {condition} AT VERSION 343", oracle,
                   f"SELECT root_id FROM ({rel}) WHERE root_id = {root} AND {sql}", mode="set")
