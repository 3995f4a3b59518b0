"""Builder rules for table sources and joins: tables, files, :parameter tables, derived tables,
PIVOT / UNPIVOT, and the join kinds (a mixin of :class:`~caveql.syntax.builder.Builder`).

>>> from caveql.syntax import parse
>>> parse("SELECT * FROM 'cells.csv' AS c", start="statement").source
FileRef(path='cells.csv', alias='c', function=None, options=())
"""

from __future__ import annotations

from typing import Any

from caveql.errors import CqlSyntaxError, InvalidLiteralError
from caveql.syntax import ast as A
from caveql.syntax.build_common import (
    FILE_FUNCTIONS,
    _alias,
    _cov,
    _cover,
    _Part,
    _split_ints,
    _tspan,
    _unquote,
)

__all__ = ["SourceRules"]


class SourceRules:
    """The grammar's table-source and join rules (``_deep`` and ``_paren_span`` come from the builder)."""

    _deep: Any
    _paren_span: Any

    # ------------------------------------------------------------------ table sources
    def table_ref(self, c: list[Any]) -> A.TableRef:
        return A.TableRef(c[0].value, _alias(c), span=_cov(c))

    def file_ref(self, c: list[Any]) -> A.FileRef:
        path = _unquote(c[0], "'")
        if not path:
            raise InvalidLiteralError("an empty file name", span=_tspan(c[0]),
                                      hint="FROM 'cells.csv' reads a file as a table")
        return A.FileRef(path, _alias(c), span=_cov(c))

    def file_function(self, c: list[Any]) -> A.FileRef:
        function = str(c[0]).lower()
        if function not in FILE_FUNCTIONS:
            raise CqlSyntaxError(
                f"unknown table function {str(c[0])!r}", span=_tspan(c[0]),
                hint="files are read with read_csv, read_parquet or read_json (or named by a "
                     "string: FROM 'cells.csv')",
            )
        path = _unquote(c[2], "'")
        if not path:
            raise InvalidLiteralError("an empty file name", span=_tspan(c[2]))
        options = tuple(x.value for x in c if isinstance(x, _Part) and x.kind == "option")
        names: set[str] = set()
        for x in c:
            if isinstance(x, _Part) and x.kind == "option":
                if x.value[0] in names:
                    raise CqlSyntaxError(f"option {x.value[0]!r} given twice", span=x.span)
                names.add(x.value[0])
        node = A.FileRef(path, _alias(c), function, options, span=_cov(c))
        return self._deep(node, *(v for _, v in options))

    def file_option(self, c: list[Any]) -> _Part:
        return _Part("option", (c[0].value.lower(), c[2]), _cov(c))

    def param_table(self, c: list[Any]) -> A.ParamTable:
        return A.ParamTable(str(c[0])[1:], _alias(c), span=_cov(c))

    def derived(self, c: list[Any]) -> A.Derived:
        q = c[0]
        alias = _alias(c)
        columns = next((x.value for x in c if isinstance(x, _Part) and x.kind == "columns"), ())
        span = _cover(self._paren_span(q), c[-1]) if len(c) > 1 else self._paren_span(q)
        if alias is None:
            raise CqlSyntaxError(
                "a subquery in FROM needs a name", span=span,
                hint="write (SELECT ...) AS name",
            )
        return self._deep(A.Derived(q, alias, columns, span=span), q)

    def pivot(self, c: list[Any]) -> A.Pivot:
        source = c[0]
        items = tuple(x for x in c[3:] if isinstance(x, A.SelectItem))
        for i in items:
            if isinstance(i.expr, A.Star):
                raise CqlSyntaxError("PIVOT takes aggregates, not *", span=i.span,
                                     hint="for example PIVOT (count(*) FOR cell_type IN ('BC', 'MC'))")
        column = next(x for x in c if isinstance(x, A.Column))
        values = next(x.value for x in c if isinstance(x, _Part) and x.kind == "values")
        node = A.Pivot(source, items, column, values, _alias(c), span=_cov(c))
        return self._deep(node, source, *items, *values)

    def pivot_values(self, c: list[Any]) -> _Part:
        return _Part("values", tuple(x for x in c if isinstance(x, A.PivotValue)), _cov(c))

    def pivot_int_values(self, c: list[Any]) -> _Part:
        return _Part("values", tuple(A.PivotValue(i, span=i.span) for i in _split_ints(c[0])),
                     _tspan(c[0]))

    def pivot_value(self, c: list[Any]) -> A.PivotValue:
        alias = c[2].value if len(c) == 3 else None
        return self._deep(A.PivotValue(c[0], alias, span=_cov(c)), c[0])

    def unpivot(self, c: list[Any]) -> A.Unpivot:
        source = c[0]
        include = next((x.value for x in c if isinstance(x, _Part) and x.kind == "include_nulls"), False)
        names = [x for x in c if isinstance(x, _Part) and x.kind == "name"]
        columns = tuple(x.value for x in c if isinstance(x, _Part) and x.kind == "unpivot_column")
        node = A.Unpivot(source, names[0].value, names[1].value, columns, include, _alias(c),
                         span=_cov(c))
        return self._deep(node, source)

    def unpivot_nulls(self, c: list[Any]) -> _Part:
        return _Part("include_nulls", c[0].type == "INCLUDE", _cov(c))

    def unpivot_column(self, c: list[Any]) -> _Part:
        return _Part("unpivot_column", (c[0], c[2].value if len(c) == 3 else None), _cov(c))

    # ------------------------------------------------------------------ joins
    def join(self, c: list[Any]) -> A.Join:
        kind = c[0].value if isinstance(c[0], _Part) else "INNER"
        source, cond = c[-2], c[-1]
        on = cond.value if cond.kind == "on" else None
        using = cond.value if cond.kind == "using" else ()
        return self._deep(A.Join(source, on, kind, using, span=_cov(c)), source, on)

    def cross_join(self, c: list[Any]) -> A.Join:
        return self._deep(A.Join(c[2], None, "CROSS", span=_cov(c)), c[2])

    def join_on(self, c: list[Any]) -> _Part:
        return _Part("on", c[1], _cov(c))

    def join_using(self, c: list[Any]) -> _Part:
        return _Part("using", c[1].value, _cov(c))

    def join_inner(self, c: list[Any]) -> _Part:
        return _Part("kind", "INNER", _cov(c))

    def join_left(self, c: list[Any]) -> _Part:
        return _Part("kind", "LEFT", _cov(c))

    def join_right(self, c: list[Any]) -> _Part:
        return _Part("kind", "RIGHT", _cov(c))

    def join_full(self, c: list[Any]) -> _Part:
        return _Part("kind", "FULL", _cov(c))
