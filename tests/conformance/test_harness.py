"""The harness itself: missing prerequisites fail with the command that installs them, and a
running engine is the genuine one (its version, its database, its row cap)."""

from __future__ import annotations

import httpx
import pytest

from tests.conformance import harness
from tests.conformance.harness import HarnessError, PgCluster


def test_missing_postgres_names_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setattr(harness, "PG_BIN", tmp_path / "nowhere")
    with pytest.raises(HarnessError, match="apt-get install -y postgresql-15 postgresql-15-postgis-3"):
        PgCluster(folder=tmp_path).start()


def test_missing_python312_names_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path))
    with pytest.raises(HarnessError, match="pyenv install 3.12"):
        harness.python312()


def test_missing_source_names_the_variable(monkeypatch, tmp_path):
    monkeypatch.setattr(harness, "ROOT", tmp_path / "project")
    monkeypatch.delenv("CAVEQL_ME_SOURCE", raising=False)
    with pytest.raises(HarnessError, match="CAVEQL_ME_SOURCE"):
        harness.engine_source()
    monkeypatch.setenv("CAVEQL_ME_SOURCE", str(tmp_path / "absent.tar.gz"))
    with pytest.raises(HarnessError, match="neither a file, a folder nor a URL"):
        harness.engine_source()


def test_the_engine_is_the_genuine_one(genuine_demo_capped):
    with httpx.Client(timeout=60) as c:
        assert c.get(genuine_demo_capped.url + "/materialize/version").json() == "5.26.4"
        assert c.get(genuine_demo_capped.url + "/materialize/api/versions").json() == [2, 3]
        # its own QUERY_LIMIT_SIZE: a whole-table read is cut at 1,000 rows with the service's warning
        r = c.post(genuine_demo_capped.url + "/materialize/api/v3/datastack/minnie65_demo/version/661/table/"
                   "nucleus_detection_v0/query", params={"return_pyarrow": "True", "arrow_format": "True",
                                                         "split_positions": "True"}, json={})
        assert r.status_code == 200
        assert "Limited query to 1000 rows" in r.headers.get("warning", "")
