"""Runtime failures of the local step come back as CQL errors in CQL's terms."""

from __future__ import annotations

import pytest

from caveql.errors import ExecutionError


@pytest.mark.parametrize(("cql", "message", "hint"), [
    ("SELECT id % 0 AS r FROM synapses", "division by zero in (id % 0)", "integer '%' by zero"),
    ("SELECT id * 9223372036854775807 AS r FROM synapses",
     "the multiplication 100 * 9223372036854775807 overflows a 64-bit integer", "64-bit"),
    ("SELECT SUM(pre_pt_root_id * 4611686018427387) AS s FROM synapses",
     "does not fit a 64-bit integer", "SUM over ids"),
])
def test_local_runtime_errors_are_plain(engine, cql: str, message: str, hint: str) -> None:
    with pytest.raises(ExecutionError) as info:
        engine.execute(cql)
    err = info.value
    assert err.code == "CQL030"
    assert message in err.message
    assert err.message.startswith("the local step failed: ")
    assert hint in (err.hint or "")
    # DuckDB's advice names DuckDB features, not CQL ones
    assert "TRY(" not in err.message and "SET error_on" not in err.message


def test_explain_analyze_steps_fail_the_same_way(engine) -> None:
    with pytest.raises(ExecutionError) as info:
        engine.explain("SELECT id % 0 AS r FROM synapses WHERE size > 0", analyze=True)
    # the step chain names columns its own way; the cause is the same
    assert info.value.message.startswith("local step 2 failed: division by zero in (")


def test_float_division_by_zero_is_not_an_error(engine) -> None:
    frame = engine.execute("SELECT id / 0 AS r FROM synapses ORDER BY id LIMIT 1").frame
    assert frame["r"].iloc[0] == float("inf")
