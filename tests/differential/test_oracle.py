"""The oracle checked against answers computed by hand (tiny datastack) and the seed's figures."""

from __future__ import annotations

import pytest

from tests.differential.oracle import Domain, Oracle
from tests.differential.tiny import CT, NUC, SYN, R, build_tiny


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Oracle:
    return Oracle(build_tiny(tmp_path_factory.mktemp("tiny")))


def rows(oracle: Oracle, sql: str) -> list[tuple]:
    return oracle.run(sql)[2]


def test_valid_rows_only(tiny: Oracle) -> None:
    got = rows(tiny, f"SELECT id FROM ({tiny.relation_sql(1, 'nuc', None)}) ORDER BY id")
    assert got == [(r[0],) for r in NUC if r[1]]
    syn = rows(tiny, f"SELECT id FROM ({tiny.relation_sql(1, 'syn', None)}) ORDER BY id")
    assert syn == [(1,), (2,), (3,), (5,), (6,)]


def test_reference_merge_columns_and_rows(tiny: Oracle) -> None:
    cols, _types, got = tiny.run(f"SELECT * FROM ({tiny.relation_sql(1, 'ct', None)}) ORDER BY id")
    keep = [i for i, c in enumerate(cols) if "__v" not in c]
    cols, got = [cols[i] for i in keep], [tuple(r[i] for i in keep) for r in got]
    assert cols == ["id", "valid", "volume", "pt_position_x", "pt_position_y", "pt_position_z",
                    "pt_supervoxel_id", "pt_root_id", "bb_start_position_x", "bb_start_position_y",
                    "bb_start_position_z", "id_ref", "valid_ref", "target_id", "classification_system",
                    "cell_type"]
    # ct 3 targets an invalid nucleus, ct 4 is invalid: both gone; ids are the nuclei's
    assert [(r[0], r[11], r[15]) for r in got] == [(10, 1, "23P"), (11, 2, "BC"), (14, 5, "MC")]
    assert [r[7] for r in got] == [R + 1001, R + 1002, R + 1002]
    assert len(CT) == 5


def test_crud_columns(tiny: Oracle) -> None:
    # `deleted` never comes back; `superceded_id` does from a simple query, not from a merge
    assert [c[0] for c in tiny.merged_columns(1, "nuc")][:3] == ["id", "superceded_id", "valid"]
    assert not {"deleted", "superceded_id"} & {c[0] for c in tiny.merged_columns(1, "ct")}


def test_views_see_the_versions_tables(tiny: Oracle) -> None:
    assert tiny.views(1) == ["pairs"] and "pairs" not in tiny.tables(1)
    sql = "SELECT pre_pt_root_id, post_pt_root_id, n_syn, sum_size FROM ({}) ORDER BY 1, 2"
    assert rows(tiny, sql.format(tiny.relation_sql(1, "pairs", None))) == [
        (R + 1001, R + 1002, 2, 488.0), (R + 1002, R + 1001, 1, 1200.0), (R + 1003, 0, 1, 36.0)]
    assert rows(tiny, sql.format(tiny.relation_sql(2, "pairs", None)))[0] == (R + 1002, R + 2001, 1, 1200.0)


def test_root_id_map_rewrites_every_root_column(tiny: Oracle) -> None:
    got = rows(tiny, f"SELECT id, pre_pt_root_id, post_pt_root_id FROM ({tiny.relation_sql(2, 'syn', None)}) "
                     "ORDER BY id")
    assert got[0] == (1, R + 2001, R + 1002)
    assert got[2] == (3, R + 1002, R + 2001)
    merged = rows(tiny, f"SELECT id, pt_root_id FROM ({tiny.relation_sql(2, 'ct', None)}) ORDER BY id")
    assert merged[0] == (10, R + 2001)


@pytest.mark.parametrize(("resolution", "expected"), [
    (None, (100, 200, 30)),
    ((1, 1, 1), (400, 800, 1200)),
    ((8, 8, 80), (50, 100, 15)),
    # exactly 100 * 4/3 (the service would truncate it to 133; CQL never does) and 30 * 40/30 = 40
    ((3, 3, 30), (400 / 3, 800 / 3, 40.0)),
])
def test_position_rescaling(tiny: Oracle, resolution: tuple | None, expected: tuple) -> None:
    got = rows(tiny, f"SELECT pt_position_x, pt_position_y, pt_position_z, pt_position__vx "
                     f"FROM ({tiny.relation_sql(1, 'nuc', resolution)}) WHERE id = 10")
    assert got == [(*expected, 100)]


def test_odd_voxels_keep_their_fraction(tiny: Oracle) -> None:
    got = rows(tiny, f"SELECT pt_position_x, pt_position_y, pt_position_z "
                     f"FROM ({tiny.relation_sql(1, 'nuc', (8, 8, 80))}) WHERE id = 11")
    assert got == [(50.5, 102.5, 15.5)]  # 101/2, 205/2, 31/2: not truncated toward zero


def test_domain_on_tiny(tiny: Oracle) -> None:
    dom = Domain(tiny)
    assert dom.versions == [1, 2] and dom.default_version == 2
    assert dom.anchor_roots(1, "pre") == [R + 1001]
    assert dom.row_count(1, "syn") == len([r for r in SYN if r[1]])
    names = [c.name for c in dom.star_columns(1, "ct", split=False)]
    assert names[-2:] == ["pt_position", "bb_start_position"]  # packed positions go last
    kinds = {c.name: c for c in dom.columns(1, "nuc")}
    assert kinds["id"].unique and kinds["pt_root_id"].not_null and not kinds["pt_root_id"].unique
    assert kinds["volume"].kind == "float" and kinds["pt_position"].kind == "pos"
