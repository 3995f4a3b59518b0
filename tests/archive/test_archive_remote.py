"""Archives on object stores: the same export read through fsspec answers as it does from disk.

The export is copied into fsspec's in-memory filesystem (``memory://``, standing for ``gs://`` /
``s3://``: the same fsspec calls, no network): the Delta log is replayed over fsspec
(:func:`caveql.backends.archive_store.read_log`, no ``deltalake``) and DuckDB reads the Parquet
through the registered filesystem.
"""

from __future__ import annotations

import json
import uuid

import fsspec
import pandas as pd
import pytest

import caveql
from caveql.backends.archive import ArchiveBackend, is_archive
from caveql.backends.archive_store import open_store, read_log
from caveql.engine import Engine
from caveql.errors import DatastackError
from tests.archive.conftest import local_metadata
from tests.archive.test_archive_engine import STATEMENTS


@pytest.fixture(scope="module")
def memory_root(tiny_archive_root):
    fs = fsspec.filesystem("memory")
    root = f"/caveql-test-{uuid.uuid4().hex}"
    fs.put(str(tiny_archive_root), root, recursive=True)
    yield f"memory://{root}"
    fs.rm(root, recursive=True)


@pytest.fixture(scope="module")
def remote_archive(memory_root, tiny_local):
    b = ArchiveBackend(memory_root, datastack="tiny", metadata=local_metadata(tiny_local))
    yield b
    b.close()


def test_the_log_replayed_over_fsspec_is_deltalakes(tiny_archive, remote_archive):
    """Schema and add actions (paths, sizes, counts, statistics, partitions) as deltalake reads them."""
    store = remote_archive._store
    for version in tiny_archive.versions():
        for table, folder in tiny_archive._dirs[version].items():
            for spec in tiny_archive._store.dirs(folder):
                name = spec.rsplit("/", 1)[-1]
                want = tiny_archive._read_log(spec)
                got = read_log(store, store.join(remote_archive._dirs[version][table], name))
                assert got.schema == want.schema
                assert (got.min_reader_version, got.reader_features) == (want.min_reader_version,
                                                                          want.reader_features)

                def key(files):
                    return sorted(({k: v for k, v in f.items() if k != "modification_time"} for f in files),
                                  key=lambda f: f["path"])
                assert key(got.files) == key(want.files) and got.files


@pytest.mark.parametrize("cql", STATEMENTS)
def test_same_frames_as_from_disk(cql, tiny_archive, remote_archive):
    want = Engine(tiny_archive).execute(cql).frame
    got = Engine(remote_archive).execute(cql).frame
    assert len(want) > 0 or "NULL" in cql
    pd.testing.assert_frame_equal(got, want)


def test_pruning_works_remotely(remote_archive, tiny_archive):
    cql = "SELECT id FROM synapses WHERE post_pt_root_id = 1003"
    Engine(tiny_archive).execute(cql)
    Engine(remote_archive).execute(cql)
    local = [(f.rsplit("/", 1)[-1], len(files)) for f, files in tiny_archive.last_scan]
    remote = [(f.rsplit("/", 1)[-1], len(files)) for f, files in remote_archive.last_scan]
    assert remote == local == [("post_pt_root_id", 1)]


def test_connect_with_a_url(memory_root, tiny_local, tiny_datastack):
    url = memory_root + "/tiny"
    assert is_archive(url)
    fs = fsspec.filesystem("memory")
    meta = local_metadata(tiny_local)
    with fs.open(open_store(url).root + "/archive.json", "w") as fh:
        fh.write(json.dumps({"voxel_resolution": [4, 4, 40], "tables": meta}, default=str))
    try:
        q = "SELECT id, pt_root_id, pt_position FROM cells WHERE pt_root_id = 1002"
        with caveql.connect(archives=[url]) as db, caveql.connect(path=tiny_datastack) as local:
            got, want = db.query(q), local.query(q)
            assert len(want) > 0 and got.equals(want)
            assert f"source: archive {url} (no service)" in db.explain(q)
    finally:
        fs.rm(open_store(url).root + "/archive.json")


def test_a_missing_remote_file_is_named(memory_root, tiny_local):
    fs = fsspec.filesystem("memory")
    url = memory_root + "/tiny"
    b = ArchiveBackend(url, metadata=local_metadata(tiny_local))
    try:
        victim = b._table(2, "cells").copies["id"].files[0]["path"]
        data = fs.cat_file(victim)
        fs.rm(victim)
        try:
            with pytest.raises(DatastackError, match="reading the archive failed") as err:
                Engine(b).execute("SELECT * FROM cells")
            assert victim.rsplit("/", 1)[-1] in str(err.value)
        finally:
            fs.pipe_file(victim, data)
    finally:
        b.close()


def test_a_damaged_remote_log_is_named(memory_root):
    fs = fsspec.filesystem("memory")
    store = open_store(memory_root + "/tiny")
    log = store.join(store.root, "v2", "cells", "id", "_delta_log", f"{0:020d}.json")
    data = fs.cat_file(log)
    fs.pipe_file(log, b"{not json")
    try:
        with pytest.raises(DatastackError, match="not a readable Delta table") as err:
            read_log(store, store.join(store.root, "v2", "cells", "id"))
        assert "memory://" in err.value.message
    finally:
        fs.pipe_file(log, data)


def test_unknown_protocol_is_a_clear_error():
    with pytest.raises(DatastackError, match="cannot open its filesystem"):
        open_store("nosuchproto://bucket/x")
