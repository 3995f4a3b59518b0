"""One rule for a datastack name, on every surface: a local datastack's name (the demo's, or one
registered in the config file) opens it; other names go to the service; an explicit server takes
every name. (caveql.api.local_datastack / _open_backend)"""

from __future__ import annotations

import pytest

import caveql
from caveql import api
from caveql.errors import CaveqlError


class _Remote:
    """Stands in for the HTTP backend: records what was opened, never touches the network."""

    name = "remote"

    def __init__(self, datastack: str, server: str) -> None:
        self.datastack, self.server, self.closed = datastack, server, False

    def info(self) -> dict[str, str]:
        if self.datastack == "unknown_to_the_service":
            raise CaveqlError(f"datastack info: no datastack {self.datastack!r}")
        return {"datastack_name": self.datastack}

    def versions(self) -> list[int]:
        raise CaveqlError("a stand-in service: nothing to query")

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def remote(monkeypatch, tmp_path, tiny_datastack) -> list[_Remote]:
    """The demo is the tiny datastack; no config file; HTTP backends recorded."""
    opened: list[_Remote] = []

    def fake_http(datastack, server, token, cache):  # type: ignore[no-untyped-def]
        opened.append(_Remote(datastack, server))
        return opened[-1]

    monkeypatch.setattr(api, "_http_backend", fake_http)
    monkeypatch.setenv("CAVEQL_DEMO_PATH", str(tiny_datastack))
    monkeypatch.setenv("CAVEQL_CONFIG", str(tmp_path / "no-config.toml"))
    monkeypatch.delenv("CAVEQL_SERVER", raising=False)
    return opened


def _name_of(conn: caveql.Connection) -> str:
    frame = conn.query("SHOW DATASTACK").set_index("property")["value"]
    return str(frame["datastack_name"])


def test_the_demos_name_opens_the_demo(remote) -> None:
    with caveql.connect(api.DEMO_NAME) as conn:
        assert _name_of(conn) == "tiny"  # (the stand-in demo)
    assert remote == []


def test_other_names_go_to_the_service(remote) -> None:
    conn = caveql.connect("minnie65_public")
    assert [(r.datastack, r.server) for r in remote] == [("minnie65_public", api.DEFAULT_SERVER)]
    conn.close()


def test_an_explicit_server_takes_every_name(remote) -> None:
    caveql.connect(api.DEMO_NAME, server="http://127.0.0.1:8765").close()
    assert [(r.datastack, r.server) for r in remote] == [(api.DEMO_NAME, "http://127.0.0.1:8765")]


def test_a_name_registered_in_the_config_file_opens_its_folder(remote, monkeypatch, tmp_path) -> None:
    from caveql.datastack.tiny import build_tiny

    folder = build_tiny(tmp_path / "my_stack")
    config = tmp_path / "config.toml"
    config.write_text(f'[connection]\npath = "{folder}"\ndatastack = "alias"\n')
    monkeypatch.setenv("CAVEQL_CONFIG", str(config))
    for name in ("my_stack", "alias"):
        with caveql.connect(name) as conn:
            assert _name_of(conn) == "tiny"
    assert remote == []
    assert api.local_datastack("my_stack") == str(folder)


def test_use_follows_the_same_rule(remote) -> None:
    with caveql.connect("minnie65_public") as conn:
        conn.execute(f"USE {api.DEMO_NAME}")  # from the service to the local demo
        assert _name_of(conn) == "tiny"
        conn.execute("USE minnie65_public")  # and back to the service
        assert [r.datastack for r in remote] == ["minnie65_public", "minnie65_public"]
        with pytest.raises(CaveqlError, match="unknown_to_the_service"):
            conn.execute("USE unknown_to_the_service")  # fails at the USE, not at the next query
        assert remote[-1].closed


def test_use_from_the_demo_reaches_the_service(remote) -> None:
    with caveql.connect() as conn:
        conn.execute("USE minnie65_public")
        assert [r.datastack for r in remote] == ["minnie65_public"]


def test_use_from_a_local_folder_prefers_a_sibling(remote, tmp_path) -> None:
    from caveql.datastack.tiny import build_tiny

    a = build_tiny(tmp_path / "a")
    build_tiny(tmp_path / "b")
    with caveql.connect(path=a) as conn:
        conn.execute("USE b")
        assert _name_of(conn) == "tiny" and remote == []
        conn.execute("USE minnie65_public")
        assert [r.datastack for r in remote] == ["minnie65_public"]


def test_the_command_lines_datastack_flag_follows_the_rule(remote, capsys) -> None:
    from caveql.repl.cli import main

    assert main(["--datastack", api.DEMO_NAME, "-F", "csv", "-c", "SHOW DATASTACK"]) == 0
    assert "datastack_name,tiny" in capsys.readouterr().out
    assert remote == []


def test_the_magics_datastack_option_follows_the_rule(remote) -> None:
    from IPython.testing.globalipapp import get_ipython

    ip = get_ipython()  # a real InteractiveShell (started once per process)
    ip.run_line_magic("load_ext", "caveql")
    magics = ip.magics_manager.registry["CqlMagics"]
    try:
        ip.run_line_magic("cql", "--datastack minnie65_public")
        # back to the demo by its name (it took --path before)
        frame = ip.run_line_magic("cql", f"--datastack {api.DEMO_NAME} SHOW DATASTACK")
        assert dict(zip(frame["property"], frame["value"]))["datastack_name"] == "tiny"
        assert [r.datastack for r in remote] == ["minnie65_public"]
    finally:
        if magics.connection is not None:
            magics.connection.close()
            magics.connection = None


def test_the_repls_backslash_c_follows_the_rule(remote) -> None:
    import io

    from caveql.repl.session import Session

    out, err = io.StringIO(), io.StringIO()
    session = Session(lambda: caveql.connect("minnie65_public"), out=out, err=err)
    try:
        assert session.run(f"\\c {api.DEMO_NAME}"), err.getvalue()
        assert session.run("SHOW DATASTACK;")
        assert "tiny" in out.getvalue()
        assert session.run("\\connect minnie65_public")
        assert not session.run("\\c")  # a name is needed
        assert "usage: \\c name" in err.getvalue()
    finally:
        session.close()
    assert [r.datastack for r in remote] == ["minnie65_public", "minnie65_public"]


def test_the_config_files_server_does_not_take_a_local_name(remote, monkeypatch, tmp_path, capsys) -> None:
    from caveql.repl.cli import main

    config = tmp_path / "config.toml"
    config.write_text('[connection]\nserver = "http://127.0.0.1:9"\n')
    monkeypatch.setenv("CAVEQL_CONFIG", str(config))
    assert main(["--datastack", api.DEMO_NAME, "-F", "csv", "-c", "SHOW DATASTACK"]) == 0
    assert "datastack_name,tiny" in capsys.readouterr().out and remote == []
    assert main(["--datastack", "minnie65_public", "-c", "SHOW DATASTACK"]) == 1  # (a stand-in service)
    assert [(r.datastack, r.server) for r in remote] == [("minnie65_public", "http://127.0.0.1:9")]
