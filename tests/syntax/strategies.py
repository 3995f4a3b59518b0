"""Hypothesis strategies for CQL ASTs (importable by other test suites).

Every AST drawn here is one the parser can produce, so ``parse(print_ast(a)) == a`` must hold.
That means following the conventions of ``caveql/syntax/ast.py``: function names upper-case,
``SET`` names lower-case, no unary minus directly on a number literal (the parser folds it), no
``NOT`` directly on a plain ``EXISTS`` (read as one ``NOT EXISTS`` node), a general ``ListExpr``
has two or more items (an IN list may have one, but not a lone subquery: ``IN ((SELECT ...))``
is ``IN (SELECT ...)``), ``Star`` only as a select item, a derived table always named, no
duplicate CTE / WINDOW / option names, and the literal kinds the builder checks (LIMIT, OFFSET,
AT VERSION: a non-negative integer or a parameter; resolutions positive; timestamps ISO).

``expressions`` covers every expression node (CASE, casts, window calls, scalar and EXISTS
subqueries, ...); ``queries`` every query shape (SELECT with any source and join, set
operations with per-branch CAVE clauses, WITH).

    from tests.syntax.strategies import scripts, statements, selects, queries, expressions
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import strategies as st

from caveql.syntax import ast as A
from caveql.syntax.builder import DOUBLE_MAX
from caveql.syntax.diagnose import KEYWORDS

__all__ = [
    "column_names", "expressions", "identifiers", "literals", "queries", "scripts", "selects",
    "statements",
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
          "DISTANCE", "NOW", "ROW_NUMBER", "RANK", "LAG", "NULLIF", "GREATEST"]
_TYPES = ["BIGINT", "INTEGER", "INT", "DOUBLE", "FLOAT", "VARCHAR", "TEXT", "BOOLEAN", "TIMESTAMP",
          "DATE", "DECIMAL", "UBIGINT", "version"]


def _no_fold(e: A.Node) -> bool:
    return not isinstance(e, (A.Integer, A.Float))


def _no_exists(e: A.Node) -> bool:
    return not (isinstance(e, A.Exists) and not e.negated)


def _in_target(children: st.SearchStrategy) -> st.SearchStrategy:
    lists = st.lists(children, min_size=1, max_size=4).map(tuple).filter(
        lambda xs: not (len(xs) == 1 and isinstance(xs[0], A.Subquery)))
    return st.one_of(lists.map(A.ListExpr), _params,
                     st.deferred(lambda: _sub_queries).map(A.Subquery))


_type_names = st.builds(
    A.TypeName, st.sampled_from(_TYPES).map(str.upper),
    st.lists(st.integers(0, 2**31 - 1), max_size=2).map(tuple), st.integers(0, 2))
_offsets = st.one_of(st.integers(0, 100).map(A.Integer), _params,
                     st.deferred(lambda: expressions))
_bounds = st.one_of(
    st.sampled_from(["UNBOUNDED PRECEDING", "CURRENT ROW", "UNBOUNDED FOLLOWING"]).map(A.FrameBound),
    st.builds(A.FrameBound, st.sampled_from(["PRECEDING", "FOLLOWING"]), _offsets),
)
_frames = st.builds(A.Frame, st.sampled_from(["ROWS", "RANGE", "GROUPS"]), _bounds,
                    st.none() | _bounds,
                    st.sampled_from([None, "CURRENT ROW", "GROUP", "TIES", "NO OTHERS"]))


def _windows(children: st.SearchStrategy) -> st.SearchStrategy:
    return st.builds(
        A.WindowSpec, st.none() | identifiers,
        st.lists(children, max_size=2).map(tuple),
        st.lists(st.builds(A.OrderItem, children, st.booleans(),
                           st.sampled_from([None, "FIRST", "LAST"])), max_size=2).map(tuple),
        st.none() | _frames,
    )


def _extend(children: st.SearchStrategy) -> st.SearchStrategy:
    pair = st.tuples(children, children)
    point = st.tuples(children, children, children)
    calls = st.builds(lambda name, args, d: A.FuncCall(name, args, d and bool(args)),
                      st.sampled_from(_FUNCS), st.lists(children, max_size=3).map(tuple), st.booleans())
    # an aggregate's FILTER (WHERE c) (a window call's FILTER is the WindowCall's own)
    filtered = st.builds(lambda c, f: A.FuncCall(c.name, c.args, c.distinct, c.star, filter=f),
                         calls | st.just(A.FuncCall("COUNT", star=True)), children)
    return st.one_of(
        st.builds(A.Unary, st.just("NOT"), children.filter(_no_exists)),
        st.builds(A.Unary, st.just("-"), children.filter(_no_fold)),
        st.builds(A.Unary, st.just("+"), children),
        st.builds(lambda op, p: A.Binary(op, *p), st.sampled_from(A.BINARY_OPS), pair),
        st.builds(A.In, children, _in_target(children), st.booleans()),
        st.builds(A.Between, children, children, children, st.booleans()),
        st.builds(A.Like, children, children, st.booleans()),
        st.builds(A.Regex, children, children, st.booleans()),
        st.builds(A.IsNull, children, st.booleans()),
        st.builds(A.WithinBox, children, point, point),
        calls,
        filtered,
        st.lists(children, min_size=2, max_size=4).map(lambda xs: A.ListExpr(tuple(xs))),
        st.builds(A.Case, st.none() | children, st.lists(pair, min_size=1, max_size=3).map(tuple),
                  st.none() | children),
        st.builds(A.Cast, children, _type_names, st.booleans(), st.booleans()).map(
            lambda c: c if not (c.shorthand and c.try_) else A.Cast(c.expr, c.type, False, True)),
        st.builds(A.WindowCall, calls | st.just(A.FuncCall("COUNT", star=True)),
                  st.one_of(identifiers, _windows(children)), st.none() | children),
        st.deferred(lambda: _sub_queries).map(A.Subquery),
        st.builds(A.Exists, st.deferred(lambda: _sub_queries), st.booleans()),
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
_table_refs = st.builds(A.TableRef, identifiers, st.none() | identifiers)
_paths = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=12)
_option_names = st.lists(identifiers.map(str.lower).filter(bool), max_size=3, unique=True)
_file_refs = st.one_of(
    st.builds(A.FileRef, _paths, st.none() | identifiers),
    st.builds(lambda p, a, f, names, vals: A.FileRef(p, a, f, tuple(zip(names, vals))),
              _paths, st.none() | identifiers, st.sampled_from(["read_csv", "read_parquet", "read_json"]),
              _option_names, st.lists(literals, min_size=3, max_size=3)),
)
_param_tables = st.builds(lambda p, a: A.ParamTable(p.name, a), _params, st.none() | identifiers)
_derived = st.builds(A.Derived, st.deferred(lambda: _sub_queries), identifiers,
                     st.lists(identifiers, max_size=2).map(tuple))
_small_exprs = st.recursive(_leaves, _extend, max_leaves=3)
_simple_sources = st.one_of(_table_refs, _table_refs, _file_refs, _param_tables, _derived)


def _pivots(source: st.SearchStrategy) -> st.SearchStrategy:
    aggs = st.lists(st.builds(A.SelectItem, _small_exprs, st.none() | identifiers),
                    min_size=1, max_size=2).map(tuple)
    values = st.lists(st.builds(A.PivotValue, _small_exprs, st.none() | identifiers),
                      min_size=1, max_size=3).map(tuple)
    unpivot_cols = st.lists(st.tuples(_columns, st.none() | identifiers), min_size=1, max_size=3).map(tuple)
    return st.one_of(
        st.builds(A.Pivot, source, aggs, _columns, values, st.none() | identifiers),
        st.builds(A.Unpivot, source, identifiers, identifiers, unpivot_cols, st.booleans(),
                  st.none() | identifiers),
    )


_tables = st.recursive(_simple_sources, _pivots, max_leaves=2)
_joins = st.one_of(
    st.builds(A.Join, _tables, expressions, st.sampled_from(["INNER", "LEFT", "RIGHT", "FULL"])),
    st.builds(lambda t, k, u: A.Join(t, None, k, tuple(u)), _tables,
              st.sampled_from(["INNER", "LEFT", "RIGHT", "FULL"]),
              st.lists(identifiers, min_size=1, max_size=2)),
    st.builds(lambda t: A.Join(t, None, "CROSS"), _tables),
)
_orders = st.builds(A.OrderItem, expressions, st.booleans(), st.sampled_from([None, "FIRST", "LAST"]))
_window_defs = st.lists(st.tuples(identifiers, _windows(_small_exprs)), max_size=2,
                        unique_by=lambda x: x[0]).map(tuple)


@st.composite
def _selects(draw: st.DrawFn, items: st.SearchStrategy, where: st.SearchStrategy) -> A.Select:
    source = draw(st.none() | _tables)
    group_all = draw(st.booleans()) and draw(st.booleans())
    return A.Select(
        items=draw(st.lists(items, min_size=1, max_size=4).map(tuple)),
        source=source,
        joins=() if source is None else draw(st.lists(_joins, max_size=2).map(tuple)),
        where=draw(st.none() | where),
        group_by=() if group_all else draw(st.lists(expressions, max_size=3).map(tuple)),
        having=draw(st.none() | expressions),
        order_by=draw(st.lists(_orders, max_size=3).map(tuple)),
        limit=draw(st.none() | _count_value),
        offset=draw(st.none() | _count_value),
        distinct=draw(st.booleans()),
        cave=draw(_caves),
        group_by_all=group_all,
        windows=draw(_window_defs),
        qualify=draw(st.none() | expressions),
    )


selects = _selects(_select_items, expressions)

# a subquery: simpler parts, so drawing nested queries stays cheap
_sub_selects = st.builds(
    A.Select,
    items=st.lists(st.builds(A.SelectItem, _leaves), min_size=1, max_size=2).map(tuple),
    source=st.none() | _table_refs,
    where=st.none() | st.recursive(_leaves, _extend, max_leaves=3),
    limit=st.none() | _count_value,
    cave=_caves,
)


def _set_ops(branch: st.SearchStrategy) -> st.SearchStrategy:
    return st.builds(
        A.SetOp, st.sampled_from(["UNION", "INTERSECT", "EXCEPT"]), branch, branch, st.booleans(),
        st.lists(st.builds(A.OrderItem, _leaves, st.booleans()), max_size=2).map(tuple),
        st.none() | _count_value, st.none() | _count_value,
    )


def _withs(body: st.SearchStrategy) -> st.SearchStrategy:
    ctes = st.lists(st.builds(A.Cte, identifiers, body, st.lists(identifiers, max_size=2).map(tuple)),
                    min_size=1, max_size=2, unique_by=lambda c: c.name).map(tuple)
    return st.builds(A.With, ctes, body, st.booleans())


_sub_queries = st.recursive(_sub_selects, lambda q: st.one_of(_set_ops(q), _withs(q)), max_leaves=3)

#: any query: SELECT, set operations (their branches with their own CAVE clauses), WITH
queries = st.one_of(
    selects,
    st.recursive(selects, lambda q: st.one_of(_set_ops(q), _withs(q)), max_leaves=3),
)

statements = st.one_of(
    selects,
    queries,
    st.builds(A.Show, st.sampled_from(["TABLES", "VIEWS"]), st.none() | st.text(max_size=8)),
    st.builds(A.Show, st.sampled_from(["VERSIONS", "DATASTACK"])),
    st.builds(A.Describe, identifiers),
    st.builds(A.Explain, queries, st.booleans()),
    st.builds(A.Set, identifiers.map(str.lower).filter(bool), expressions),
    st.builds(A.Use, identifiers),
)

scripts = st.lists(statements, min_size=1, max_size=2).map(lambda xs: A.Script(tuple(xs)))
