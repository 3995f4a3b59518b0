"""``caveql serve`` as a real process, and ``caveql cache``."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest

from caveql.backends.base import QueryRequest
from caveql.backends.http import HttpBackend
from caveql.cache import ResultCache

pytestmark = pytest.mark.timeout(180)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_process(tiny_datastack, tmp_path):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "caveql.repl.cli", "serve", "--path", str(tiny_datastack), "--port", str(port),
         "--row-cap", "4", "--token", "process-token-123"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90  # the process imports and starts uvicorn: slow on a busy machine
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "caveql serve did not start"
                time.sleep(0.1)
        b = HttpBackend("tiny", server=url, token="process-token-123", cache=ResultCache(tmp_path))
        assert b.versions() == [1, 2]
        r = b.query(QueryRequest(kind="table", table="cells", version=2))
        assert r.capped and r.table.num_rows == 4
        r = b.query(QueryRequest(kind="table", table="cells", version=2, filter_equal={"cells": {"cell_type": "BC"}}))
        assert r.table.column("id").to_pylist() == [2, 5]
        b.close()
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    assert "caveclient.CAVEclient('tiny'" in out
    assert proc.returncode in (0, -15)


def test_serve_refuses_open_host_without_token(tiny_datastack):
    out = subprocess.run([sys.executable, "-m", "caveql.repl.cli", "serve", "--path", str(tiny_datastack),
                          "--host", "0.0.0.0"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "needs --token" in out.stderr


def test_cache_command(tmp_path, capsys):
    import pyarrow as pa

    from caveql.cache import cache_key
    from caveql.repl.cli import main

    cache = ResultCache(tmp_path)
    cache.put(cache_key("s", "d", 1, "r", b""), pa.table({"a": [1]}))
    assert main(["cache", "--dir", str(tmp_path)]) == 0
    assert "1 cached answer," in capsys.readouterr().out
    assert main(["cache", "clear", "--dir", str(tmp_path)]) == 0
    assert "removed 1 cached answer from" in capsys.readouterr().out
    assert cache.entries() == []


def test_no_cache_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("CAVEQL_CACHE_DIR", str(tmp_path))
    with HttpBackend("x", token="t") as b:
        assert b.cache is not None and b.cache.directory == tmp_path
    monkeypatch.setenv("CAVEQL_NO_CACHE", "1")
    with HttpBackend("x", token="t") as b:
        assert b.cache is None


def test_cli_queries_a_served_datastack(tiny_served, tmp_path, monkeypatch, capsys):
    """`caveql -d tiny --server URL -c ...` goes through the HTTP backend to `caveql serve`."""
    from caveql.repl.cli import main

    monkeypatch.setenv("CAVEQL_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CAVE_TOKEN", "cli-token-0123456789")
    before = len(tiny_served.recorder.log)
    code = main(["-d", "tiny", "--server", tiny_served.url, "--format", "csv",
                 "-c", "SELECT id, cell_type FROM cells WHERE cell_type = 'BC'"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.splitlines() == ["id,cell_type", "2,BC", "5,BC"]
    posts = [e for e in tiny_served.recorder.log[before:] if e["method"] == "POST"]
    assert posts and all(e["headers"]["authorization"] == "Bearer cli-token-0123456789" for e in posts)
    assert "cli-token-0123456789" not in out


def test_cli_no_cache_neither_writes_nor_reads_the_cache(tiny_served, tmp_path, monkeypatch, capsys):
    """`--no-cache` sends every versioned query to the server and leaves the cache folder empty;
    without it the repeated query is answered from the cache."""
    from caveql.repl.cli import main

    cache_dir = tmp_path / "cache"
    monkeypatch.setenv("CAVEQL_CACHE_DIR", str(cache_dir))
    monkeypatch.delenv("CAVEQL_NO_CACHE", raising=False)
    argv = ["-d", "tiny", "--server", tiny_served.url, "--format", "csv",
            "-c", "SELECT id FROM cells WHERE cell_type = 'BC'"]

    def posts_during(args: list[str]) -> int:
        before = len(tiny_served.recorder.log)
        assert main(args) == 0
        assert capsys.readouterr().out.splitlines() == ["id", "2", "5"]
        return sum(1 for e in tiny_served.recorder.log[before:] if e["method"] == "POST")

    assert posts_during([*argv, "--no-cache"]) >= 1
    assert posts_during([*argv, "--no-cache"]) >= 1
    assert not any(p.is_file() for p in cache_dir.rglob("*"))
    assert posts_during(argv) >= 1  # fills the cache
    assert any(p.is_file() for p in cache_dir.rglob("*"))
    assert posts_during(argv) == 0  # answered from the cache
