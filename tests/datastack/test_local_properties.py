"""Property: any combination of filters gives what a plain Python evaluation of the service's
semantics gives over the unfiltered rows (tiny datastack)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from caveql.backends.base import QueryRequest

ROOTS = [0, 905, 1001, 1002, 1003, 1005, 1006, 2**63 - 1]
coords = st.integers(-5, 100)


@st.composite
def requests(draw):
    filters: dict[str, dict] = {}
    checks = []
    if draw(st.booleans()):
        vals = draw(st.lists(st.sampled_from(ROOTS), max_size=4))
        filters.setdefault("in", {})["pre_pt_root_id"] = vals
        checks.append(lambda r, v=vals: r["pre_pt_root_id"] in v)
    if draw(st.booleans()):
        vals = draw(st.lists(st.sampled_from(ROOTS), max_size=3))
        filters.setdefault("notin", {})["post_pt_root_id"] = vals
        checks.append(lambda r, v=vals: r["post_pt_root_id"] not in v)
    if draw(st.booleans()):
        v = draw(st.sampled_from(ROOTS))
        filters.setdefault("equal", {})["post_pt_root_id"] = v
        checks.append(lambda r, v=v: r["post_pt_root_id"] == v)
    for kind, op in (("greater", float.__gt__), ("less", float.__lt__),
                     ("greater_equal", float.__ge__), ("less_equal", float.__le__)):
        if draw(st.booleans()):
            v = draw(st.integers(0, 450) | st.floats(0, 450))
            filters.setdefault(kind, {})["size"] = v
            checks.append(lambda r, v=v, op=op: op(float(r["size"]), float(v)))
    if draw(st.booleans()):
        lo = [draw(coords) for _ in range(3)]
        hi = [a + draw(st.integers(1, 60)) for a in lo]
        filters["spatial"] = {"ctr_pt_position": [lo, hi]}
        checks.append(lambda r, lo=lo, hi=hi: all(
            lo[i] <= r[f"ctr_pt_position_{a}"] <= hi[i] for i, a in enumerate("xyz")))
    version = draw(st.sampled_from([1, 2]))
    kw = {f"filter_{k}": {"synapses": v} for k, v in filters.items()}
    return QueryRequest(kind="table", table="synapses", version=version, **kw), checks, version


@given(requests())
def test_filters_match_a_python_model(tiny, case):
    request, checks, version = case
    everything = tiny.query(QueryRequest(kind="table", table="synapses", version=version))
    rows = everything.table.to_pylist()
    expected = [r["id"] for r in rows if all(c(r) for c in checks)]
    got = tiny.query(request).table.column("id").to_pylist()
    assert got == expected
