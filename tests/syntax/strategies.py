"""Hypothesis strategies for CQL ASTs (importable by other test suites).

Every AST drawn here is one the parser can produce, so ``parse(print_ast(a)) == a`` must hold.
That means following the conventions of ``caveql/syntax/ast.py``: function names upper-case,
``SET`` names lower-case, no unary minus directly on a number literal (the parser folds it), a
general ``ListExpr`` has two or more items (an IN list may have one), ``Star`` only as a select
item, ``Subquery`` only as an IN target, and the literal kinds the builder checks (LIMIT,
OFFSET, AT VERSION: a non-negative integer or a parameter; resolutions positive; timestamps ISO).

    from tests.syntax.strategies import scripts, statements, selects, expressions
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import strategies as st

from caveql.syntax import ast as A
from caveql.syntax.builder import DOUBLE_MAX
from caveql.syntax.diagnose import KEYWORDS

__all__ = [
    "column_names", "expressions", "identifiers", "literals", "scripts", "selects", "statements",
]

_PLAIN = st.builds(
    lambda a, b: a + b, st.sampled_from("abcxyz_"), st.text("abcdefghijklmnopqrstuvwxyz_0123456789", max_size=10)
).filter(lambda s: s.upper() not in KEYWORDS)

#: names a user could write: plain, CAVE-like, soft keywords, and names that need quotes
identifiers = st.one_of(
    _PLAIN,
    st.sampled_from(["pt_root_id", "cell_type", "pt_position", "pre_pt_root_id", "synapses_pni_2",
                     "selected_cells", "order_id", "in_degree", "fromage", "version", "timestamp",
                     "first", "box", "live", "tables", "analyze", "outer", "Id", "CellType"]),
    st.sampled_from(["select", "from", "order", "group", "where", "limit", "null", "and"]),
    st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=8),
)
column_names = identifiers
_params = st.builds(lambda a, b: A.Param(a + b), st.sampled_from("abcXYZ_"),
                   st.text("abcdefghijklmnopqrstuvwxyzABC_0123456789", max_size=8))

_ints = st.one_of(
    st.integers(-(2**64 - 1), 2**64 - 1),
    st.sampled_from([0, 1, 864691135808473885, 2**53 + 1, 2**63, 2**64 - 1]),
).map(A.Integer)
# number literals are finite doubles: nothing that would overflow to infinity or underflow to 0
_decimals = st.decimals(allow_nan=False, allow_infinity=False, places=None).filter(
    lambda d: not d or (abs(d) <= DOUBLE_MAX and float(d) != 0)).map(A.Float)
_strings = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12).map(A.String)

literals = st.one_of(
    _ints, _decimals, _strings, st.booleans().map(A.Boolean), st.just(A.Null()), _params,
)
_columns = st.builds(A.Column, identifiers, st.none() | identifiers)
_FUNCS = ["COUNT", "SUM", "AVG", "MIN", "MAX", "ABS", "ROUND", "SQRT", "LOWER", "UPPER", "COALESCE",
          "DISTANCE", "NOW"]


def _no_fold(e: A.Node) -> bool:
    return not isinstance(e, (A.Integer, A.Float))


def _extend(children: st.SearchStrategy) -> st.SearchStrategy:
    pair = st.tuples(children, children)
    lists = st.lists(children, min_size=1, max_size=4).map(tuple)
    point = st.tuples(children, children, children)
    return st.one_of(
        st.builds(A.Unary, st.just("NOT"), children),
        st.builds(A.Unary, st.just("-"), children.filter(_no_fold)),
        st.builds(A.Unary, st.just("+"), children),
        st.builds(lambda op, p: A.Binary(op, *p), st.sampled_from(A.BINARY_OPS), pair),
        st.builds(A.In, children, st.one_of(lists.map(A.ListExpr), _params,
                                            st.deferred(lambda: _sub_selects).map(A.Subquery)),
                  st.booleans()),
        st.builds(A.Between, children, children, children, st.booleans()),
        st.builds(A.Like, children, children, st.booleans()),
        st.builds(A.Regex, children, children, st.booleans()),
        st.builds(A.IsNull, children, st.booleans()),
        st.builds(A.WithinBox, children, point, point),
        st.builds(lambda name, args, d: A.FuncCall(name, args, d and bool(args)),
                  st.sampled_from(_FUNCS), st.lists(children, max_size=3).map(tuple), st.booleans()),
        st.lists(children, min_size=2, max_size=4).map(lambda xs: A.ListExpr(tuple(xs))),
    )


#: any expression the parser can produce (no Star, no bare Subquery)
_leaves = st.one_of(literals, _columns, st.just(A.FuncCall("COUNT", star=True)))
expressions = st.recursive(_leaves, _extend, max_leaves=8)

_count_value = st.one_of(st.integers(0, 2**63 - 1).map(A.Integer), _params)  # INT64_MAX
_positive = st.one_of(
    st.integers(1, 10**6).map(A.Integer),
    st.decimals(min_value=Decimal("0.001"), max_value=Decimal(10**6), places=3).map(A.Float),
    _params,
)
_timestamps = st.one_of(
    st.datetimes().map(lambda d: A.String(d.isoformat())),
    st.sampled_from(["2023-04-20T12:00:00Z", "2024-01-01", "2023-06-01T08:30:00.123456+02:00"]).map(A.String),
    _params,
)
_caves = st.builds(
    A.CaveClauses,
    resolution=st.none() | st.tuples(_positive, _positive, _positive),
    version=st.none() | _count_value,
    timestamp=st.none() | _timestamps,
    live=st.booleans(),
    split_positions=st.booleans(),
)
_select_items = st.one_of(
    st.builds(A.SelectItem, expressions, st.none() | identifiers),
    st.builds(lambda t: A.SelectItem(A.Star(t)), st.none() | identifiers),
)
_tables = st.builds(A.TableRef, identifiers, st.none() | identifiers)
_orders = st.builds(A.OrderItem, expressions, st.booleans(), st.sampled_from([None, "FIRST", "LAST"]))

selects = st.builds(
    A.Select,
    items=st.lists(_select_items, min_size=1, max_size=4).map(tuple),
    source=_tables,
    joins=st.lists(st.builds(A.Join, _tables, expressions, st.sampled_from(["INNER", "LEFT"])),
                   max_size=2).map(tuple),
    where=st.none() | expressions,
    group_by=st.lists(expressions, max_size=3).map(tuple),
    having=st.none() | expressions,
    order_by=st.lists(_orders, max_size=3).map(tuple),
    limit=st.none() | _count_value,
    offset=st.none() | _count_value,
    distinct=st.booleans(),
    cave=_caves,
)

# a subquery: simpler parts, so drawing nested SELECTs stays cheap
_sub_selects = st.builds(
    A.Select,
    items=st.lists(st.builds(A.SelectItem, _leaves), min_size=1, max_size=2).map(tuple),
    source=_tables,
    where=st.none() | st.recursive(_leaves, _extend, max_leaves=3),
    limit=st.none() | _count_value,
    cave=_caves,
)

statements = st.one_of(
    selects,
    selects,
    st.builds(A.Show, st.sampled_from(["TABLES", "VIEWS"]), st.none() | st.text(max_size=8)),
    st.builds(A.Show, st.sampled_from(["VERSIONS", "DATASTACK"])),
    st.builds(A.Describe, identifiers),
    st.builds(A.Explain, selects, st.booleans()),
    st.builds(A.Set, identifiers.map(str.lower).filter(bool), expressions),
    st.builds(A.Use, identifiers),
)

scripts = st.lists(statements, min_size=1, max_size=2).map(lambda xs: A.Script(tuple(xs)))
