"""The identity functions' errors: never-a-root ids (CQL017, naming them), a datastack without a
graph, wrong argument types and counts (naming the function), failures and bad answers of the
graph (BackendError, raised ``from`` the cause), cancellation."""

from __future__ import annotations

import shutil

import pytest

from caveql import cancel
from caveql.backends.base import Capabilities
from caveql.backends.local import LocalBackend
from caveql.datastack.tiny import build_tiny
from caveql.engine import Engine
from caveql.errors import (
    BackendError, CancelledError, CqlSemanticError, CqlTypeError, InvalidRootIdError, UnsupportedError,
)
from caveql.identity.resolve import Resolver


@pytest.mark.parametrize("call", ["LATEST_ROOTS(7)", "PAST_IDS(7, 1)", "ROOT_CREATED(7)", "ROOT_SUPERSEDED(7)"])
def test_never_a_root_constant(tiny, call):
    with pytest.raises(InvalidRootIdError) as err:
        tiny.execute(f"SELECT {call} AS x")
    assert err.value.root_ids == (7,) and "root id 7" in err.value.message
    assert err.value.span is not None and err.value.code == "CQL017"


def test_never_a_root_over_a_column(tiny):
    """Raised from inside a UDF: the original error, not DuckDB's wrapping of it."""
    with pytest.raises(InvalidRootIdError) as err:
        tiny.execute("SELECT id, LATEST_ROOTS(id) AS x FROM nuclei")
    assert set(err.value.root_ids) == {10, 11, 12, 13, 14}
    assert "LATEST_ROOTS()" in err.value.message


def test_is_latest_and_root_at_of_unknown_ids_are_answers(tiny):
    f = tiny.execute("SELECT IS_LATEST(7) AS k, ROOT_AT(7) AS a").frame
    assert bool(f["k"].iloc[0]) is False and f["a"].isna().all()


@pytest.fixture(scope="module")
def no_graph(tmp_path_factory):
    folder = build_tiny(tmp_path_factory.mktemp("nograph"))
    (folder / "history.parquet").unlink()
    eng = Engine(LocalBackend(folder))
    assert not eng.backend.capabilities.graph
    yield eng
    eng.backend.close()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize("text", ["SELECT LATEST_ROOTS(905)", "SELECT id, IS_LATEST(pt_root_id) FROM nuclei",
                                  "SELECT id FROM nuclei WHERE pt_root_id IN PAST_IDS(905, 1)"])
def test_without_a_graph(no_graph, text):
    with pytest.raises(UnsupportedError) as err:
        no_graph.execute(text)
    name = text.split("(")[0].split()[-1]
    assert f"{name}()" in err.value.message and "proofreading" in err.value.message
    assert err.value.span is not None


def test_nucleus_root_needs_no_graph(no_graph):
    f = no_graph.execute("SELECT id, pt_root_id, NUCLEUS_ROOT(id, 1) AS n FROM nuclei AT VERSION 1").frame
    assert [None if str(x) == "<NA>" else int(x) for x in f["n"]] == [int(x) or None for x in f["pt_root_id"]]


@pytest.mark.parametrize(("text", "fn"), [
    ("SELECT LATEST_ROOTS('a')", "LATEST_ROOTS"), ("SELECT IS_LATEST(1.5)", "IS_LATEST"),
    ("SELECT ROOT_AT(1, TRUE)", "ROOT_AT"), ("SELECT id, PAST_IDS(id, created > created) FROM nuclei", "PAST_IDS"),
])
def test_wrong_argument_types(tiny, text, fn):
    with pytest.raises(CqlTypeError) as err:
        tiny.execute(text)
    assert f"{fn}()" in err.value.message


@pytest.mark.parametrize("text", ["SELECT PAST_IDS(905)", "SELECT ROOT_CREATED(905, 1)", "SELECT LATEST_ROOTS()"])
def test_wrong_argument_counts(tiny, text):
    with pytest.raises(CqlSemanticError) as err:
        tiny.execute(text)
    assert text.split("(")[0].split()[-1] + "()" in err.value.message


def test_unknown_version(tiny):
    with pytest.raises(CqlSemanticError.__mro__[1]) as err:  # a ConfigError: the versions listed
        tiny.execute("SELECT IS_LATEST(905, 99)")
    assert "version 99" in err.value.message


class _Bad:
    def __init__(self, answer):
        self.answer = answer

    def is_latest(self, ids, at=None):
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


class _Backend:
    name = "stub"
    capabilities = Capabilities(graph=True)

    def __init__(self, graph):
        self._g = graph

    def graph(self):
        return self._g


@pytest.mark.parametrize("answer", [[True], [True, False, True], ["yes", "no"], 7])
def test_bad_answers_are_refused(answer):
    r = Resolver(_Backend(_Bad(answer)))
    with pytest.raises(BackendError):
        r.evaluate("IS_LATEST", [1, 2], [None, None])


def test_foreign_failures_are_translated():
    cause = OSError("connection reset")
    r = Resolver(_Backend(_Bad(cause)))
    with pytest.raises(BackendError) as err:
        r.evaluate("IS_LATEST", [1], [None])
    assert err.value.__cause__ is cause


def test_cancelled_statement_stops_the_resolver(tiny):
    token = cancel.CancelToken()
    with cancel.activate(token):
        r = Resolver(tiny.backend)
    token.cancel()
    with pytest.raises(CancelledError):
        r.evaluate("IS_LATEST", [905], [None])
