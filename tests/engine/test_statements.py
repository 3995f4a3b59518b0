"""SHOW / DESCRIBE / SET / USE / EXPLAIN [ANALYZE] and scripts."""

from __future__ import annotations

import pytest

from caveql.backends.local import LocalBackend
from caveql.engine import Engine, Settings
from caveql.errors import ConfigError, UnknownTableError


def test_show_tables_like(engine, tiny_backend):
    r = engine.execute("SHOW TABLES")
    assert r.kind == "rows" and r.frame.table_name.tolist() == tiny_backend.tables(2)
    r = engine.execute("SHOW TABLES LIKE 'cell%'")
    assert sorted(r.frame.table_name) == sorted(t for t in tiny_backend.tables(2) if t.startswith("cell"))


def test_show_views_versions_datastack(engine, tiny_backend):
    assert engine.execute("SHOW VIEWS").frame.view_name.tolist() == list(tiny_backend.views(2))
    v = engine.execute("SHOW VERSIONS").frame
    assert v.version.tolist() == sorted(tiny_backend.versions())
    d = engine.execute("SHOW DATASTACK").frame
    props = dict(zip(d.property, d.value, strict=True))
    assert props["datastack_name"] == "tiny" and props["synapse_table"] == "synapses"
    assert props["version"] == str(max(tiny_backend.versions()))


def test_describe_reference_table(engine):
    r = engine.execute("DESCRIBE cell_types")
    assert r.kind == "rows"
    assert "reference table: nuclei" in r.message and "voxel resolution" in r.message
    cols = dict(zip(r.frame.column, r.frame.table, strict=True))
    assert cols["id"] == "nuclei" and cols["id_ref"] == "cell_types" and cols["cell_type"] == "cell_types"
    with pytest.raises(UnknownTableError):
        engine.execute("DESCRIBE cel_types")


def test_set_version_resolution_and_params(tiny_backend):
    eng = Engine(tiny_backend)
    assert eng.execute("SET version = 1").message == "version = 1"
    assert eng.execute("SELECT pt_root_id FROM cells WHERE id = 5").frame.pt_root_id.tolist() == [905]
    eng.execute("SET resolution = (1, 1, 1)")
    got = eng.execute("SELECT pt_position FROM cells WHERE id = 1 SPLIT POSITIONS").frame
    assert got.iloc[0].tolist() == [400, 800, 400]
    eng.execute("SET root = 1001")
    assert len(eng.execute("SELECT id FROM synapses WHERE pre_pt_root_id = :root AT VERSION 2").frame) == 4
    with pytest.raises(ConfigError):
        eng.execute("SET version = 99")


def test_use_needs_opener_and_switches(tiny_backend, tiny_datastack):
    with pytest.raises(ConfigError):
        Engine(tiny_backend).execute("USE other")
    opened = []

    def opener(name):
        opened.append(name)
        return LocalBackend(tiny_datastack)

    eng = Engine(tiny_backend, settings=Settings(version=1), opener=opener)
    assert eng.execute("USE tiny").message == "using datastack tiny"
    assert opened == ["tiny"] and eng.settings.version is None


def test_explain_analyze_reports_figures(engine):
    r = engine.execute("EXPLAIN ANALYZE SELECT s.id FROM synapses s JOIN cells c "
                       "ON s.post_pt_root_id = c.pt_root_id WHERE c.cell_type = 'BC'")
    assert r.kind == "message"
    assert "actual: 2 rows" in r.message and "rows out" in r.message and "ms" in r.message
    plain = engine.execute("EXPLAIN SELECT id FROM cells")
    assert "actual" not in plain.message and "POST /materialize/api/v3/datastack/tiny/version/2/" in plain.message


def test_script(engine):
    results = engine.execute_script("SET version = 1; SELECT COUNT(*) AS n FROM cells; SHOW TABLES;")
    assert [r.kind for r in results] == ["message", "rows", "rows"]
    assert results[1].frame.n.tolist() == [6]
    assert all(r.elapsed >= 0 for r in results)


def test_live_timestamp_uses_version_at_that_time(engine):
    old = engine.execute("SELECT pt_root_id FROM cells WHERE id = 5 AT TIMESTAMP '2022-06-01T00:00:00'")
    new = engine.execute("SELECT pt_root_id FROM cells WHERE id = 5 AT TIMESTAMP '2024-01-01T00:00:00Z'")
    assert old.frame.pt_root_id.tolist() == [905] and new.frame.pt_root_id.tolist() == [1005]
