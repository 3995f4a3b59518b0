"""The invalid-root check over local datastacks (issue 13): a query naming a root id that is not a
current root at its version or timestamp gets an error naming the id, the column, the instant, when
it stopped being current and its latest roots — never an empty answer without a word."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caveql.backends.local import LocalBackend
from caveql.backends.local_live import version_time
from caveql.datastack.history import FILE as HISTORY_FILE
from caveql.engine import Engine
from caveql.errors import ConfigError, InvalidRootIdError
from tests.roots.conftest import Reading

V2 = "2023-04-06 20:17:09.199182+00:00"  # the tiny datastack's version 2


def error_of(eng: Engine, text: str) -> InvalidRootIdError:
    with pytest.raises(InvalidRootIdError) as info:
        eng.execute(text)
    return info.value


def test_a_stale_id_at_a_version_names_id_time_and_latest_roots(tiny):
    err = error_of(tiny, "SELECT id FROM cells WHERE pt_root_id = 905")
    assert err.code == "CQL017" and err.root_ids == (905,)
    assert err.message == (f"cells.pt_root_id: root id 905 is not current at version 2 ({V2}): it stopped "
                           f"being current at 2022-08-01 00:00:00+00:00; its latest roots are 1005, 2001")
    assert "SELECT LATEST_ROOTS(905)" in err.hint and "SET allow_invalid_root_ids = true" in err.hint


def test_valid_at_one_version_not_at_the_next(tiny):
    assert tiny.execute("SELECT id FROM cells WHERE pt_root_id = 905 AT VERSION 1").frame.id.tolist() == [5]
    assert error_of(tiny, "SELECT id FROM cells WHERE pt_root_id = 905 AT VERSION 2").root_ids == (905,)
    # and the other way round: 1005 was made after version 1
    err = error_of(tiny, "SELECT id FROM cells WHERE pt_root_id = 1005 AT VERSION 1")
    assert "it was made later, at 2022-08-01 00:00:00+00:00" in err.message


def test_a_never_valid_id(tiny):
    err = error_of(tiny, "SELECT * FROM synapses WHERE pre_pt_root_id = 77")
    assert err.message == "synapses.pre_pt_root_id: root id 77 is not a root id of this datastack at any time"


def test_a_future_id_made_after_the_version(tiny):
    err = error_of(tiny, "SELECT id FROM cells WHERE pt_root_id = 2003")  # made 2023-09-01, after v2
    assert err.message.endswith("is not current at version 2 (2023-04-06 20:17:09.199182+00:00): it was "
                                "made later, at 2023-09-01 00:00:00+00:00")


def test_live_exactly_at_an_edit_sees_it(tiny):
    at = "AT TIMESTAMP '2023-06-01T00:00:00Z'"  # edit 102: 1003 + 1006 -> 2002, visible at t
    before = "AT TIMESTAMP '2023-05-31T23:59:59.999999Z'"
    assert sorted(tiny.execute(f"SELECT id FROM cells WHERE pt_root_id = 2002 {at}").frame.id) == [3, 6]
    assert tiny.execute(f"SELECT id FROM cells WHERE pt_root_id = 1003 {before}").frame.id.tolist() == [3]
    err = error_of(tiny, f"SELECT id FROM cells WHERE pt_root_id = 1003 {at}")
    assert err.message == ("cells.pt_root_id: root id 1003 is not current at 2023-06-01 00:00:00+00:00: it "
                           "stopped being current at 2023-06-01 00:00:00+00:00; its latest roots are 2002")
    err = error_of(tiny, f"SELECT id FROM cells WHERE pt_root_id = 2002 {before}")
    assert "it was made later, at 2023-06-01 00:00:00+00:00" in err.message


def test_live_now(tiny):
    err = error_of(tiny, "SELECT id FROM cells WHERE pt_root_id = 1003 AT LIVE")
    # (AT LIVE reads the instant the statement is planned)
    assert "root id 1003 is not current at " in err.message and err.message.endswith("its latest roots are 2003, 2004")


def test_an_in_list_with_one_bad_id(tiny):
    err = error_of(tiny, "SELECT id FROM cells WHERE pt_root_id IN (1001, 1002, 905, 1003)")
    assert err.root_ids == (905,) and "root id 905" in err.message and "1001" not in err.message


def test_several_bad_ids_and_columns(tiny):
    err = error_of(tiny, "SELECT id FROM synapses WHERE pre_pt_root_id IN (905, 2003) AND post_pt_root_id = 905")
    assert set(err.root_ids) == {905, 2003}
    assert err.message.startswith("2 root ids the statement names are not current:\n- ")
    assert "synapses.pre_pt_root_id, synapses.post_pt_root_id: root id 905" in err.message


def test_many_bad_ids_are_summed_up(tiny):
    bad = list(range(3000, 3012))
    err = error_of(tiny, f"SELECT id FROM cells WHERE pt_root_id IN ({', '.join(map(str, bad))})")
    assert err.root_ids == tuple(bad)
    assert err.message.count("is not a root id of this datastack") == 5
    assert err.message.endswith("- and 7 more root ids not current then: 3005, 3006, 3007, 3008, 3009, 3010, 3011")


def test_zero_and_fed_keys_are_not_checked(tiny):
    assert tiny.execute("SELECT id FROM cells WHERE pt_root_id = 0").frame.id.tolist() == [4]
    # the join's keys come from the rows (at version 1 they hold 905): never checked
    got = tiny.execute("SELECT s.id FROM cells c JOIN synapses s ON s.pre_pt_root_id = c.pt_root_id "
                       "WHERE c.cell_type = 'BC' AT VERSION 1")
    assert len(got.frame) > 0


def test_allow_invalid_root_ids_turns_errors_into_notices(tiny):
    eng = Engine(tiny.backend)
    assert eng.execute("SET allow_invalid_root_ids = true").message == "allow_invalid_root_ids = true"
    res = eng.execute("SELECT id FROM cells WHERE pt_root_id IN (905, 1001)")
    assert res.frame.id.tolist() == [1]
    assert res.notices == [f"cells.pt_root_id: root id 905 is not current at version 2 ({V2}): it stopped "
                           f"being current at 2022-08-01 00:00:00+00:00; its latest roots are 1005, 2001"]
    assert eng.execute("SELECT id FROM cells WHERE pt_root_id = 1001").notices == []
    assert eng.execute("SET allow_invalid_root_ids = false").message == "allow_invalid_root_ids = false"
    error_of(eng, "SELECT id FROM cells WHERE pt_root_id IN (905, 1001)")
    with pytest.raises(ConfigError, match="true or false"):
        eng.execute("SET allow_invalid_root_ids = 3")


def test_explain_does_not_check(tiny):
    assert "905" in tiny.execute("EXPLAIN SELECT id FROM cells WHERE pt_root_id = 905").message


def test_no_history_no_check(tiny_datastack, tmp_path):
    folder = tmp_path / "tiny"
    shutil.copytree(tiny_datastack, folder)
    (folder / HISTORY_FILE).unlink()
    with LocalBackend(folder) as b:
        assert not b.capabilities.graph
        assert Engine(b).execute("SELECT id FROM cells WHERE pt_root_id = 905").frame.empty


# --------------------------------------------------------------------------- the demo


@pytest.fixture(scope="module")
def reading(demo_history) -> Reading:
    return Reading.of(demo_history)


@pytest.fixture(scope="module")
def stamps(demo) -> dict[int, datetime]:
    return {v: version_time(demo.backend.version_metadata(v)) for v in demo.backend.versions()}


def test_demo_an_id_of_343_errors_only_at_661(demo, reading, stamps):
    roots = demo.execute("SELECT pt_root_id FROM nucleus_detection_v0 WHERE pt_root_id != 0 "
                         "ORDER BY id LIMIT 2000 AT VERSION 343").frame.pt_root_id.tolist()
    r = next(int(x) for x in roots if not reading.valid(int(x), stamps[661]))
    q = f"SELECT id FROM nucleus_detection_v0 WHERE pt_root_id = {r}"
    assert len(demo.execute(q + " AT VERSION 343").frame) >= 1
    err = error_of(demo, q + " AT VERSION 661")
    assert err.root_ids == (r,)
    assert f"root id {r} is not current at version 661 ({stamps[661]}): it stopped being current at " \
           f"{reading.gone[r]}" in err.message
    latest = err.message.rsplit("its latest roots are ", 1)[1].split(", ")
    assert latest and all(reading.valid(int(x), stamps[661]) for x in latest)


def instants(h, stamps) -> st.SearchStrategy[datetime]:
    """Random instants from the first version to after the last edit, the edits' own instants (and a
    microsecond either side), and the versions'."""
    first, last = min(stamps.values()), h.edits[-1].timestamp + timedelta(days=1)
    edit = st.tuples(st.sampled_from(h.edits), st.sampled_from([-1, 0, 1])).map(
        lambda e: e[0].timestamp + timedelta(microseconds=e[1]))
    span = int((last - first).total_seconds())
    return st.one_of(st.integers(0, span).map(lambda s: first + timedelta(seconds=s)), edit,
                     st.sampled_from(sorted(stamps.values())))


def root_ids(h) -> st.SearchStrategy[int]:
    """Roots the edits name, and ids that never were roots."""
    return st.one_of(st.sampled_from(h.edits).flatmap(lambda e: st.sampled_from([*e.old_roots, *e.new_roots])),
                     st.integers(1, 10**6))


@given(data=st.data())
@settings(max_examples=40)
def test_demo_error_iff_the_edits_say_not_valid(demo, demo_history, reading, stamps, data):
    r = data.draw(root_ids(demo_history))
    at_version = data.draw(st.booleans())
    if at_version:
        v = data.draw(st.sampled_from(sorted(stamps)))
        t, clause = stamps[v], f"AT VERSION {v}"
    else:
        t = data.draw(instants(demo_history, stamps))
        clause = f"AT TIMESTAMP '{t.isoformat()}'"
    q = f"SELECT id FROM nucleus_detection_v0 WHERE pt_root_id = {r} {clause}"
    if reading.valid(r, t):
        demo.execute(q)
    else:
        assert error_of(demo, q).root_ids == (r,)


def test_the_python_api_passes_it_through(tiny_datastack):
    import caveql

    with caveql.connect(path=tiny_datastack, allow_invalid_root_ids=True) as db:
        assert db.allow_invalid_root_ids
        assert db.query("SELECT id FROM cells WHERE pt_root_id = 905").empty
        db.allow_invalid_root_ids = False
        with pytest.raises(InvalidRootIdError):
            db.query("SELECT id FROM cells WHERE pt_root_id = 905")
        with pytest.raises(ConfigError):
            db.allow_invalid_root_ids = "yes"


def test_explain_analyze_checks_root_ids_as_a_select_does(tiny):
    """EXPLAIN ANALYZE runs the statement: a root id not current is refused the same way, and
    allowed, the notices follow the figures."""
    with pytest.raises(InvalidRootIdError) as info:
        tiny.explain("SELECT id FROM cells WHERE pt_root_id = 905", analyze=True)
    assert info.value.root_ids == (905,)
    tiny.execute("SET allow_invalid_root_ids = true")
    try:
        text = tiny.explain("SELECT id FROM cells WHERE pt_root_id IN (905, 1001)", analyze=True)
    finally:
        tiny.execute("SET allow_invalid_root_ids = false")
    assert text.splitlines()[-1].startswith("notice: cells.pt_root_id: root id 905 is not current")


def test_a_plan_made_again_for_a_smaller_cap_keeps_the_allow_flag_and_the_notes(tiny):
    """When the service caps answers below the plan's row cap the executor plans the statement
    again (PhysicalPlan.replan): the live calls still ask for invalid ids to be answered, and
    EXPLAIN's notes on folded identity calls stay."""
    from caveql.engine import _allowing_invalid_roots

    p = tiny.physical_plan("SELECT id FROM cells WHERE pt_root_id IN (905, 1001) AT LIVE")
    allowed = _allowing_invalid_roots(p)
    again = allowed.replan(2)
    assert [c.request.kind for c in again.calls] == ["live"]
    assert all(c.request.allow_invalid_root_ids for c in [*allowed.calls, *again.calls])
    folded = tiny.physical_plan("SELECT id FROM nuclei WHERE pt_root_id IN LATEST_ROOTS(905)")
    note = next(n for n in folded.notes if n.startswith("LATEST_ROOTS(905)"))
    assert note in folded.replan(2).notes
