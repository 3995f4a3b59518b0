"""caveql's Python API: connect variants, settings, context manager, files, exports."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import pytest

import caveql
from caveql.errors import CaveqlError, ConfigError, CqlFileError, DatastackError, UnknownTableError


@pytest.fixture
def db(tiny_datastack):
    with caveql.connect(path=tiny_datastack) as conn:
        yield conn


def test_all_sorted_and_exports() -> None:
    assert caveql.__all__ == sorted(caveql.__all__)
    for name in ("connect", "query", "Connection", "load_cql", "parse", "format_cql", "CaveqlError",
                 "load_ipython_extension"):
        assert name in caveql.__all__


def test_query_returns_dataframe_with_params(db) -> None:
    df = db.query("SELECT id, pt_root_id FROM cells WHERE pt_root_id IN :ids ORDER BY id", ids=[1001, 1005])
    assert isinstance(df, pd.DataFrame) and df["id"].tolist() == [1, 5]
    # a parameter called "text" does not collide with the query argument
    assert db.query("SELECT id FROM cells WHERE cell_type = :text", text="BC")["id"].tolist() == [2, 5]


def test_query_last_statement_and_messages(db) -> None:
    df = db.query("SET version = 1; SELECT COUNT(*) AS n FROM cells")
    assert int(df["n"][0]) == 6 and db.version == 1
    msg = db.query("SET version = 2")
    assert msg.columns.tolist() == ["message"] and "version = 2" in msg["message"][0]


def test_settings_are_attributes_and_follow_set(db) -> None:
    assert db.version is None and db.resolution is None and db.timestamp is None and db.live is False
    db.version = 1
    assert "cell_types" not in db.tables()
    db.execute("SET version = 2")
    assert db.version == 2
    db.resolution = [1, 1, 1]
    assert db.resolution == (1.0, 1.0, 1.0)
    pos = db.query("SELECT pt_position FROM cells WHERE id = 1")["pt_position"][0]
    assert list(pos) == [400, 800, 400]  # (100, 200, 10) voxels of 4x4x40 nm
    db.timestamp = "2023-01-01T00:00:00"
    assert db.timestamp == datetime(2023, 1, 1)
    db.timestamp = None
    for bad in (("version", "1"), ("version", True), ("resolution", [1, 2]), ("timestamp", "yesterday"),
                ("timestamp", 5)):
        with pytest.raises(ConfigError):
            setattr(db, *bad)


def test_explain_and_execute(db) -> None:
    plan = db.explain("SELECT id FROM synapses WHERE pre_pt_root_id = :r", r=1001)
    assert "filter_equal_dict" in plan and "1001" in plan
    res = db.execute("SELECT COUNT(*) AS n FROM synapses")
    assert res.kind == "rows" and int(res.frame["n"][0]) == 10
    assert [r.kind for r in db.execute_script("SHOW TABLES; SET version = 1")] == ["rows", "message"]


def test_run_file(db, tmp_path) -> None:
    f = tmp_path / "q.cql"
    f.write_text("-- param: t str = 'BC'\nSELECT id FROM cells WHERE cell_type = :t;\nSELECT COUNT(*) AS n FROM cells;\n")
    results = db.run_file(f)
    assert [r.frame.columns.tolist() for r in results] == [["id"], ["n"]]
    assert results[0].frame["id"].tolist() == [2, 5]
    assert db.run_file(f, t="23P")[0].frame["id"].tolist() == [1, 4]
    with pytest.raises(CqlFileError):
        db.run_file(f, t=3)


def test_run_file_error_names_file_line_column(db, tmp_path) -> None:
    f = tmp_path / "bad.cql"
    f.write_text("-- header\n\nSELECT id FROM cellz;\n")
    with pytest.raises(UnknownTableError) as err:
        db.run_file(f)
    assert err.value.filename == str(f)
    assert f"{f}:3:16" in err.value.render()


def test_closed_connection(tiny_datastack) -> None:
    conn = caveql.connect(path=tiny_datastack)
    conn.close()
    conn.close()  # idempotent
    with pytest.raises(ConfigError, match="closed"):
        conn.query("SHOW TABLES")
    assert "closed" in repr(conn)


def test_connect_errors(tmp_path) -> None:
    with pytest.raises(ConfigError):
        caveql.connect("x", path=tmp_path)
    with pytest.raises(ConfigError):
        caveql.connect(server="http://127.0.0.1:1")
    with pytest.raises(DatastackError):
        caveql.connect(path=tmp_path / "missing")


def test_connect_http_builds_http_backend(monkeypatch) -> None:
    import caveql.api as api

    # patch the globals caveql.connect really reads: the doctest collector may import
    # caveql/api.py a second time (importlib mode), so `caveql.api` can be another module object
    namespace = caveql.connect.__globals__
    seen = {}

    class Fake:
        name = "minnie65_public"
        capabilities = None

        def close(self) -> None:
            seen["closed"] = True

    def fake_http(datastack, server, token, cache):  # type: ignore[no-untyped-def]
        seen.update(datastack=datastack, server=server, token=token, cache=cache)
        return Fake()

    monkeypatch.setitem(namespace, "_http_backend", fake_http)
    conn = caveql.connect("minnie65_public", token="tok")
    assert seen == {"datastack": "minnie65_public", "server": api.DEFAULT_SERVER, "token": "tok", "cache": True}
    assert conn.datastack == "minnie65_public"
    conn.close()
    assert seen["closed"]
    caveql.connect("minnie65_demo", server="http://127.0.0.1:8765", cache=False).close()
    assert seen["server"] == "http://127.0.0.1:8765" and seen["cache"] is False


def test_use_switches_to_sibling_folder(tiny_datastack, tmp_path) -> None:
    from caveql.datastack.tiny import build_tiny

    a = build_tiny(tmp_path / "a")
    build_tiny(tmp_path / "b")
    with caveql.connect(path=a) as conn:
        conn.execute("USE b")
        assert conn.query("SHOW DATASTACK").set_index("property")["value"]["datastack_name"] == "tiny"
        with pytest.raises(CaveqlError):
            conn.execute("USE nowhere")


def test_demo_is_built_on_first_use(monkeypatch, tmp_path, capsys) -> None:
    import caveql.api as api
    from caveql.datastack import demo

    built = []

    def fake_build(path, *a, **k):  # type: ignore[no-untyped-def]
        from caveql.datastack.tiny import build_tiny

        built.append(path)
        return build_tiny(path)

    monkeypatch.setenv("CAVEQL_DEMO_PATH", str(tmp_path / "demo"))
    monkeypatch.setattr(demo, "build_demo", fake_build)
    with api.connect() as conn:
        assert "building the demo datastack" in capsys.readouterr().err
        assert conn.tables()
    with api.connect():
        assert capsys.readouterr().err == ""  # built once
    assert built == [str(tmp_path / "demo")]
