"""The oracle on the demo: the seed page's figures (issue 3) hold through its SQL."""

from __future__ import annotations

from tests.differential.oracle import Oracle


def rows(oracle: Oracle, sql: str) -> list[tuple]:
    return oracle.run(sql)[2]


# ---------------------------------------------------------------- the demo: the seed's figures

BC_ROWS = 3084
SEED_ROOT = 864691135808473885
TOP5 = [(864691135946651940, 20), (864691135808597021, 16), (864691136578647572, 15),
        (864691136066504856, 13), (864691135841325283, 11)]


def test_seed_figures_on_demo(oracle: Oracle) -> None:
    ct = oracle.relation_sql(661, "aibs_soma_nuc_metamodel_preds_v117", None)
    assert rows(oracle, f"SELECT count(*) FROM ({ct}) WHERE cell_type = 'BC'") == [(BC_ROWS,)]
    three = rows(oracle, f"SELECT id, pt_root_id, cell_type FROM ({ct}) WHERE pt_root_id IN "
                         "(864691135771677771, 864691135560505569, 864691136723556861) ORDER BY pt_root_id")
    assert sorted((r[1], r[0], r[2]) for r in three) == [
        (864691135560505569, 21783, "23P"), (864691135771677771, 19116, "23P"),
        (864691136723556861, 4074, "23P")]
    syn = oracle.relation_sql(661, "synapses_pni_2", None)
    out = rows(oracle, f"SELECT count(*), count(DISTINCT post_pt_root_id) FROM ({syn}) "
                       f"WHERE pre_pt_root_id = {SEED_ROOT}")
    assert out == [(1498, 1038)]
    top = rows(oracle, f"SELECT post_pt_root_id, count(*) AS n FROM ({syn}) WHERE pre_pt_root_id = {SEED_ROOT} "
                       "GROUP BY 1 ORDER BY n DESC, 1 LIMIT 5")
    assert top == TOP5


def test_seed_positions_at_nm(oracle: Oracle) -> None:
    ct = oracle.relation_sql(661, "aibs_soma_nuc_metamodel_preds_v117", (1, 1, 1))
    got = rows(oracle, f"SELECT pt_position_x, pt_position_y, pt_position_z, pt_position__vx * 4 "
                       f"FROM ({ct}) WHERE id = 19116")
    assert got and got[0][0] == got[0][3]
