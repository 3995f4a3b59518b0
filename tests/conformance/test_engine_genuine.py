"""CQL through HttpBackend against the genuine engine gives LocalBackend's answer on the same folder.

The statements of the ``caveql serve`` engine tests (tiny datastack: views, reference
tables, root-id maps), the seed page's queries and docs/examples on the small demo — each
through the genuine engine at the service's cap and at a small ``QUERY_LIMIT_SIZE`` that
HttpBackend is *not* told about (it must learn the cap from the answers and page).
"""

from __future__ import annotations

import re

from pathlib import Path

import pandas as pd
import pytest

from caveql.backends.http import HttpBackend
from caveql.backends.local import LocalBackend
from caveql.engine import Engine
from caveql.errors import CaveqlError
from tests.server.test_engine_remote import CAPPED, STATEMENTS, VIEWS

pytestmark = pytest.mark.timeout(600)

ROOT = 864691135808473885
DEMO = [
    "SELECT * FROM aibs_soma_nuc_metamodel_preds_v117 WHERE cell_type = 'BC'",
    "SELECT * FROM aibs_soma_nuc_metamodel_preds_v117 WHERE pt_root_id IN "
    "(864691135771677771, 864691135560505569, 864691136723556861)",
    f"SELECT * FROM synapses_pni_2 WHERE pre_pt_root_id = {ROOT}",
    f"SELECT pre_pt_root_id, post_pt_root_id, COUNT(*) AS syn_count FROM synapses_pni_2 WHERE pre_pt_root_id = {ROOT} "
    "GROUP BY pre_pt_root_id, post_pt_root_id ORDER BY syn_count DESC, post_pt_root_id",
    "SELECT pt_position, pt_root_id FROM nucleus_detection_v0 ORDER BY id LIMIT 10 AT RESOLUTION 1,1,1 "
    "SPLIT POSITIONS",
    "SELECT id FROM nucleus_detection_v0 WHERE volume > 300 ORDER BY id",
    "SELECT id, volume FROM nucleus_detection_v0 WHERE volume > 300 ORDER BY id",
    "SELECT id, pt_position FROM nucleus_detection_v0 WHERE volume > 500 ORDER BY id AT RESOLUTION 3,3,3",
    "SELECT * FROM nucleus_detection_v0 WHERE volume > 500 AT VERSION 343",
    "SELECT cell_type, COUNT(*) AS n FROM aibs_soma_nuc_metamodel_preds_v117 GROUP BY cell_type "
    "ORDER BY n DESC, cell_type",
    "SELECT * FROM nucleus_detection_v0 WHERE volume > 300 ORDER BY id LIMIT 5 OFFSET 1200",
]
DEMO_VIEWS = ["SELECT * FROM connections_with_nuclei WHERE pre_pt_root_id = 864691135808473885"]


def same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a.columns) == list(b.columns)
    assert list(a.dtypes.astype(str)) == list(b.dtypes.astype(str))
    assert a.astype(str).equals(b.astype(str)), (a, b)


def unordered(frame: pd.DataFrame) -> pd.DataFrame:
    keys = frame.astype(str)
    return frame.loc[keys.sort_values(list(keys.columns)).index].reset_index(drop=True)


def _engines(path: Path, *deployments):
    local = LocalBackend(path)
    remotes = [HttpBackend(g.datastack, server=g.global_url, cache=False) for g in deployments]
    return local, remotes


@pytest.fixture(scope="module")
def tiny(tiny_datastack, genuine_tiny, genuine_tiny_capped):
    local, remotes = _engines(tiny_datastack, genuine_tiny, genuine_tiny_capped)
    yield Engine(local), *(Engine(r) for r in remotes)
    for b in (local, *remotes):
        b.close()


@pytest.fixture(scope="module")
def demo(small_demo, genuine_demo, genuine_demo_capped):
    local, remotes = _engines(small_demo, genuine_demo, genuine_demo_capped)
    yield Engine(local), *(Engine(r) for r in remotes)
    for b in (local, *remotes):
        b.close()


def _check(local: Engine, remote: Engine, cql: str) -> None:
    want = local.execute(cql).frame
    got = remote.execute(cql).frame
    if "ORDER BY" in cql.upper():
        same(got, want)
    else:  # the service has no order: compare as multisets, columns and dtypes exactly
        same(unordered(got), unordered(want))


# empty answers: the genuine engine types their string columns as Arrow null
TINY_EXTRA = [
    "SELECT * FROM cells WHERE cell_type = 'nope'",
    "SELECT cell_type, COUNT(*) AS n FROM cells WHERE cell_type = 'nope' GROUP BY cell_type",
    "SELECT s.id, c.cell_type FROM synapses s JOIN cells c ON s.post_pt_root_id = c.pt_root_id "
    "WHERE c.cell_type = 'nope'",
    "SELECT id FROM cells",
    "SELECT pt_root_id FROM cells WHERE id > 1",
]


@pytest.mark.parametrize("cql", STATEMENTS + VIEWS + TINY_EXTRA)
def test_tiny_statement(tiny, cql):
    _check(tiny[0], tiny[1], cql)


@pytest.mark.parametrize("cql", CAPPED)
def test_tiny_statement_capped(tiny, cql):
    _check(tiny[0], tiny[2], cql)


@pytest.mark.parametrize("cql", DEMO + DEMO_VIEWS)
def test_demo_statement(demo, cql):
    _check(demo[0], demo[1], cql)


@pytest.mark.parametrize("cql", DEMO)
def test_demo_statement_capped(demo, cql):
    _check(demo[0], demo[2], cql)


@pytest.mark.parametrize("cql", DEMO_VIEWS)
def test_demo_view_capped_is_cut_by_a_column(demo, cql):
    """A view answer over the genuine capped deployment's cap has no unique id to split by: the
    engine cuts it into ranges of one of its integer columns (counted by the view endpoint) and
    answers what the local datastack answers."""
    _check(demo[0], demo[2], cql)
    assert len(demo[0].execute(cql).frame) > demo[2].backend.capabilities.row_cap  # (past the cap)


# every example of docs/language.md (the language as built), through both backends
from tests.syntax.test_language_doc import EXAMPLES, PARAMS  # noqa: E402


@pytest.mark.parametrize("text", EXAMPLES, ids=[f"example{i:02d}" for i in range(len(EXAMPLES))])
def test_language_example(small_demo, genuine_demo, text):
    """Same rows through HttpBackend (genuine) and LocalBackend; statements whose output names
    the backend (EXPLAIN shows the calls, SHOW DATASTACK the server) must succeed on both, and
    an error must be the same error."""
    local = LocalBackend(small_demo)
    remote = HttpBackend(genuine_demo.datastack, server=genuine_demo.global_url, cache=False)
    try:
        engines = [Engine(local, opener=lambda _n: local), Engine(remote, opener=lambda _n: remote)]
        outcomes = []
        for engine in engines:
            try:
                outcomes.append(engine.execute_script(text, params=used(PARAMS, text)))
            except CaveqlError as exc:
                outcomes.append(type(exc).__name__)
        want, got = outcomes
        if isinstance(want, str) or isinstance(got, str):
            assert got == want
            return
        assert [r.kind for r in got] == [r.kind for r in want]
        backend_named = "EXPLAIN" in text.upper() or "SHOW" in text.upper()
        for w, g in zip(want, got):
            if w.kind == "rows" and not backend_named:
                if "ORDER BY" in text.upper():
                    same(g.frame, w.frame)
                else:
                    same(unordered(g.frame), unordered(w.frame))
    finally:
        local.close()
        remote.close()


# the statements of cql-spec.md ("The seed's examples", "Beyond the seed"); the key column of
# each ORDER BY is compared in order, the rows as multisets (ties may come in any order)
SPEC = [
    ("SELECT * FROM nucleus_detection_v0", None),
    ("SELECT pt_position, pt_root_id FROM nucleus_detection_v0 AT RESOLUTION 1,1,1 SPLIT POSITIONS LIMIT 10", None),
    ("SELECT * FROM aibs_soma_nuc_metamodel_preds_v117", None),
    ("SELECT pt_position, pt_root_id, cell_type FROM aibs_soma_nuc_metamodel_preds_v117 "
     "AT RESOLUTION 1,1,1 SPLIT POSITIONS LIMIT 10", None),
    ("SELECT * FROM aibs_soma_nuc_metamodel_preds_v117 WHERE cell_type = 'BC'", None),
    ("SELECT * FROM aibs_soma_nuc_metamodel_preds_v117 "
     "WHERE pt_root_id IN (864691135771677771, 864691135560505569, 864691136723556861)", None),
    ("SELECT * FROM synapses_pni_2 WHERE pre_pt_root_id = 864691135808473885", None),
    ("SELECT pre_pt_root_id, post_pt_root_id, COUNT(*) AS syn_count FROM synapses_pni_2 "
     "WHERE pre_pt_root_id = 864691135808473885 GROUP BY pre_pt_root_id, post_pt_root_id ORDER BY syn_count DESC",
     "syn_count"),
    ("SELECT s.pre_pt_root_id, s.post_pt_root_id, s.size FROM synapses_pni_2 s "
     "JOIN aibs_soma_nuc_metamodel_preds_v117 c ON s.post_pt_root_id = c.pt_root_id "
     "WHERE c.cell_type = 'BC' AND s.pre_pt_root_id = :root_id", None),
    ("SELECT * FROM synapses_pni_2 WHERE post_pt_root_id IN "
     "(SELECT pt_root_id FROM aibs_soma_nuc_metamodel_preds_v117 WHERE cell_type = 'BC') "
     "AND size > 1000 LIMIT 500000", None),
    ("SELECT pre.cell_type AS pre_type, post.cell_type AS post_type, COUNT(*) AS n_syn FROM synapses_pni_2 s "
     "JOIN aibs_soma_nuc_metamodel_preds_v117 pre ON s.pre_pt_root_id = pre.pt_root_id "
     "JOIN aibs_soma_nuc_metamodel_preds_v117 post ON s.post_pt_root_id = post.pt_root_id "
     "WHERE pre.pt_root_id IN :proofread_ids GROUP BY pre_type, post_type ORDER BY n_syn DESC", "n_syn"),
    ("SELECT id, pt_root_id, pt_position FROM nucleus_detection_v0 "
     "WHERE pt_position WITHIN BOX((700000, 400000, 800000), (800000, 500000, 850000)) AT RESOLUTION 1,1,1", None),
    ("SELECT cell_type, COUNT(*) AS n FROM aibs_soma_nuc_metamodel_preds_v117 GROUP BY cell_type ORDER BY n DESC",
     "n"),
    ("SELECT * FROM nucleus_detection_v0 WHERE pt_position_z BETWEEN 20000 AND 21000 AND volume > 100 "
     "AT VERSION 343", None),
]
def used(params: dict, text: str) -> dict:
    """The parameters ``text`` names (an unknown parameter is an error)."""
    return {k: v for k, v in params.items() if re.search(rf":{k}\b", text)}


SPEC_PARAMS = {"root_id": ROOT, "proofread_ids": [ROOT, 864691135771677771, 864691135560505569]}


@pytest.mark.parametrize(("cql", "key"), SPEC, ids=[f"spec{i:02d}" for i in range(len(SPEC))])
def test_spec_statement(demo, cql, key):
    local, remote, capped = demo
    want = local.execute(cql, params=used(SPEC_PARAMS, cql)).frame
    for engine in (remote, capped):
        got = engine.execute(cql, params=used(SPEC_PARAMS, cql)).frame
        same(unordered(got), unordered(want))
        if key is not None:
            assert got[key].tolist() == want[key].tolist()


@pytest.mark.parametrize("cql", ["SHOW DATASTACK", "SHOW TABLES", "DESCRIBE nucleus_detection_v0"])
def test_spec_catalog_statement(demo, cql):
    """The catalog statements of the spec answer the same tables and columns."""
    local, remote, _ = demo
    want, got = local.execute(cql), remote.execute(cql)
    assert got.kind == want.kind
    if cql == "SHOW TABLES":
        same(got.frame, want.frame)
    elif cql.startswith("DESCRIBE"):
        assert got.frame["column"].tolist() == want.frame["column"].tolist()
