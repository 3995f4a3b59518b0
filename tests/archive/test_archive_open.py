"""Opening an archive as a datastack: ``connect(path=...)`` and the CLI's ``--archive``."""

from __future__ import annotations

import json

import pytest

import caveql
from caveql.backends.archive import ArchiveBackend
from caveql.repl.cli import main
from tests.archive.conftest import local_metadata
from tests.archive.writer import export_archive

Q = "SELECT id, pt_root_id, pt_position FROM cells WHERE pt_root_id IN (1001, 1003) ORDER BY id"


@pytest.fixture(scope="module")
def archive_dir(tiny_datastack, tiny_local, tmp_path_factory):
    folder = export_archive(tiny_datastack, tmp_path_factory.mktemp("open"), n_partitions=2)
    meta = local_metadata(tiny_local)
    (folder / "archive.json").write_text(json.dumps({
        "info": {"synapse_table": "synapses", "soma_table": "nuclei"},
        "voxel_resolution": [4, 4, 40],
        "tables": {"nuclei": {k: meta["nuclei"][k] for k in ("voxel_resolution_x", "voxel_resolution_y",
                                                                 "voxel_resolution_z")},
                   "cell_types": {"reference_table": "nuclei"}}}))
    return folder


def test_connect_path_opens_an_archive(archive_dir, tiny_datastack):
    with caveql.connect(path=archive_dir) as db, caveql.connect(path=tiny_datastack) as local:
        assert isinstance(db.engine.backend, ArchiveBackend)
        assert db.tables() == local.tables()
        got, want = db.query(Q), local.query(Q)
        assert got.equals(want)
        ref = "SELECT id, cell_type, pt_position FROM cell_types"
        assert db.query(ref).equals(local.query(ref))


def test_cli_archive_flag(archive_dir, tiny_datastack, capsys):
    assert main(["--path", str(tiny_datastack), "-c", Q, "-F", "csv"]) == 0
    want = capsys.readouterr().out
    assert main(["--archive", str(archive_dir), "-c", Q, "-F", "csv"]) == 0
    assert capsys.readouterr().out == want and want.count("\n") == 3


def test_timestamp_without_version_time_stamps_is_refused(archive_dir):
    # without time stamps (the export records none) a timestamp cannot pick a version
    with caveql.connect(path=archive_dir) as db, pytest.raises(caveql.CaveqlError, match="time stamp"):
        db.query("SELECT id FROM cells AT TIMESTAMP '2024-01-01T00:00:00'")


def test_live_calls_are_refused(archive_dir):
    from caveql.backends.base import QueryRequest

    with ArchiveBackend(archive_dir) as b, pytest.raises(caveql.CaveqlError, match="live queries"):
        b.query(QueryRequest(kind="live", table="cells"))
