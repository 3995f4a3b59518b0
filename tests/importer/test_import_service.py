"""``caveql import ... --service URL``: the metadata the dumps lack (resolutions, reference
targets, the version's record) read from the service (``caveql serve``) instead of the sidecar."""

from __future__ import annotations

import pandas.testing as pdt
import pytest

from caveql.backends.local import LocalBackend
from caveql.datastack.importer import import_dumps
from caveql.engine import Engine
from caveql.repl.cli import main
from tests.importer.dumps import write_dumps
from tests.server.conftest import TOKEN, serve

pytestmark = pytest.mark.timeout(120)

STATEMENTS = [
    "SELECT * FROM cells",
    "SELECT * FROM cell_types",  # a reference table: merged with its target only when known
    "SELECT id, pt_position FROM nuclei WHERE volume > 100 AT RESOLUTION 1,1,1",
    "SELECT id FROM synapses WHERE ctr_pt_position WITHIN BOX((0, 0, 0), (300, 300, 30))",
]


@pytest.fixture(scope="module")
def bare_dumps(tiny_datastack, tmp_path_factory):
    """Version 2's dumps without the sidecar: the header files are all there is."""
    return write_dumps(tiny_datastack, 2, tmp_path_factory.mktemp("bare") / "v2", sidecar=False)


@pytest.fixture(scope="module")
def served(tiny_datastack):
    s = serve(tiny_datastack)
    yield s
    s.stop()


def test_metadata_from_the_service(served, bare_dumps, tiny_datastack, tmp_path):
    dest = tmp_path / "tiny"
    with served.http() as http:
        import_dumps(bare_dumps, 2, dest, service=http, progress=lambda _m: None)
        with LocalBackend(dest) as got:
            assert got.info()["datastack_name"] == "tiny"
            assert got.version_metadata(2)["time_stamp"] == http.version_metadata(2)["time_stamp"]
            for t in got.tables(2):
                meta = got.table_metadata(2, t)
                assert meta == http.table_metadata(2, t)
            assert got.table_metadata(2, "cell_types")["reference_table"] == "nuclei"
    a, b = Engine(LocalBackend(tiny_datastack)), Engine(LocalBackend(dest))
    for stmt in STATEMENTS:
        want, got_frame = a.execute(stmt).frame, b.execute(stmt).frame
        assert len(want) > 0
        pdt.assert_frame_equal(got_frame, want, obj=stmt)


def test_without_service_nor_sidecar_the_reference_is_unknown(bare_dumps, tmp_path):
    dest = tmp_path / "tiny"
    import_dumps(bare_dumps, 2, dest, progress=lambda _m: None)
    with LocalBackend(dest) as got:
        assert got.table_metadata(2, "cell_types").get("reference_table") is None


def test_an_unreachable_service_falls_back_to_the_sidecar(tiny_datastack, tmp_path):
    from caveql.backends.http import HttpBackend

    dumps = write_dumps(tiny_datastack, 2, tmp_path / "v2")  # with its sidecar
    down = serve(tiny_datastack)
    url = down.url
    down.stop()
    said: list[str] = []
    with HttpBackend("tiny", server=url, token=TOKEN, cache=False, progress=False) as http:
        import_dumps(dumps, 2, tmp_path / "out", service=http, progress=said.append)
    assert any("unreachable" in m for m in said)
    with LocalBackend(tmp_path / "out") as got:
        assert got.table_metadata(2, "cell_types")["reference_table"] == "nuclei"


def test_cli_service_option(served, bare_dumps, tmp_path, capsys):
    dest = tmp_path / "cli"
    assert main(["import", str(bare_dumps), "--version", "2", "--path", str(dest), "--service", served.url,
                 "--datastack", "tiny", "--token", TOKEN]) == 0
    assert capsys.readouterr().out.strip() == str(dest)
    with LocalBackend(dest) as got:
        assert got.table_metadata(2, "cell_types")["reference_table"] == "nuclei"
