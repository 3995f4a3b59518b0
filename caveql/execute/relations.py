"""Calls read in place: a backend's SQL over its files as a relation of the local DuckDB step.

A backend with ``Capabilities.relations`` (an archive: DuckDB over Parquet already) answers
``relation(request)`` with the SQL that selects the request's rows. For a call the planner marked
``in_place`` the executor registers that SQL, with the call's renames and the service's column
types, under the call's relation name instead of an Arrow answer: the local statement (filters,
``GROUP BY``, aggregates) then runs over the scan in one DuckDB query and no rows are
materialized in between (``COUNT(*), AVG(size) WHERE size > 5000`` aggregates during the scan).

:func:`fuse` puts the relations into the local statement as CTEs (their parameters renumbered
after the statement's): DuckDB reads them in the same query, where a relation bound with
parameters on its own would be run and materialized first (its Python API executes such a
statement at once). EXPLAIN ANALYZE's per-step statements use :meth:`InPlace.bind` instead.

Answers equal the fetched path's: the same rows (the backend's own statement, without its
ORDER BY: the local statement orders its rows itself) cast to the types the fetched answer has
(:func:`duckdb_type`; a column of a type not mapped here makes the call fetch its rows).

>>> import duckdb
>>> import pyarrow as pa
>>> from caveql.backends.base import Relation
>>> rel = InPlace(Relation("SELECT 1.5::DOUBLE AS s, 7 AS i", (), (pa.field("s", pa.float32()),
...               pa.field("i", pa.int64()))), names=("i", "s"), columns=("id", "size"))
>>> con = duckdb.connect()
>>> _ = con.register("r0", rel.bind(con))
>>> con.sql("SELECT id, size, typeof(size) FROM r0").fetchall()
[(7, 1.5, 'FLOAT')]
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

from caveql.backends.base import Backend, Capabilities, Relation
from caveql.plan.physical import PhysicalPlan, RemoteCall
from caveql.plan.sql import quote

__all__ = ["InPlace", "duckdb_type", "fuse", "in_place", "in_place_calls", "is_in_place"]

# a string literal, a quoted identifier (skipped), or a parameter ($n: renumbered)
_PARAM = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\$(\d+)")

_SIMPLE: dict[pa.DataType, str] = {
    pa.int8(): "TINYINT", pa.int16(): "SMALLINT", pa.int32(): "INTEGER", pa.int64(): "BIGINT",
    pa.uint8(): "UTINYINT", pa.uint16(): "USMALLINT", pa.uint32(): "UINTEGER", pa.uint64(): "UBIGINT",
    pa.float32(): "FLOAT", pa.float64(): "DOUBLE", pa.bool_(): "BOOLEAN", pa.string(): "VARCHAR",
    pa.large_string(): "VARCHAR",
}


def duckdb_type(t: pa.DataType) -> str | None:
    """The DuckDB type an Arrow column of type ``t`` is read as (``None``: not mapped here).

    >>> duckdb_type(pa.float32()), duckdb_type(pa.timestamp("us", tz="UTC")), duckdb_type(pa.binary())
    ('FLOAT', 'TIMESTAMP WITH TIME ZONE', None)
    """
    if t in _SIMPLE:
        return _SIMPLE[t]
    if pa.types.is_timestamp(t):
        return "TIMESTAMP WITH TIME ZONE" if t.tz is not None else "TIMESTAMP"
    return None


@dataclass(frozen=True)
class InPlace:
    """A call's rows as the backend's :class:`Relation`: ``names`` are the answer's columns the
    call reads, in the call's order, registered as ``columns`` (the call's local names)."""

    relation: Relation
    names: tuple[str, ...]
    columns: tuple[str, ...]

    def bind(self, con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyRelation:
        """The relation on ``con``: the backend's SQL, projected to the call's columns under their
        local names, each cast to the type the fetched answer has."""
        r = self.relation
        rel = con.sql(r.sql, params=list(r.params)) if r.params else con.sql(r.sql)
        have = {n: str(t) for n, t in zip(rel.columns, rel.types, strict=True)}
        want = {f.name: duckdb_type(f.type) for f in r.fields}
        exprs = []
        for name, local in zip(self.names, self.columns, strict=True):
            target = want[name]
            src = quote(name)
            exprs.append(f"{src if have[name] == target else f'CAST({src} AS {target})'} AS {quote(local)}")
        return rel.project(", ".join(exprs))

    def select(self, shift: int) -> str:
        """The relation as one SELECT, its parameters numbered after ``shift`` others, each column
        cast to the fetched answer's type (a no-op where it has it) under the call's local name.

        >>> r = InPlace(Relation("SELECT $1 AS a, '$1' AS b", (5,), (pa.field("a", pa.int32()),
        ...             pa.field("b", pa.string()))), ("a", "b"), ("x", "y"))
        >>> print(r.select(2).replace(" FROM", "\\nFROM"))
        SELECT CAST("a" AS INTEGER) AS "x", CAST("b" AS VARCHAR) AS "y"
        FROM (SELECT $3 AS a, '$1' AS b) AS "__in_place"
        """
        want = {f.name: duckdb_type(f.type) for f in self.relation.fields}
        body = _PARAM.sub(lambda m: f"${int(m.group(1)) + shift}" if m.group(1) else m.group(0),
                          self.relation.sql)
        cols = ", ".join(f"CAST({quote(n)} AS {want[n]}) AS {quote(c)}"
                         for n, c in zip(self.names, self.columns, strict=True))
        return f"SELECT {cols} FROM ({body}) AS {quote('__in_place')}"

    def stats(self, ms: float) -> dict[str, Any]:
        """The call's figures for EXPLAIN ANALYZE: no rows fetched; the files it reads."""
        return {"rows": 0, "bytes": 0, "requests": 0, "ms": ms, "in_place": True,
                "files": sum(len(files) for _folder, files in self.relation.scans)}


def fuse(sql: str, params: tuple[Any, ...], relations: Mapping[str, Any]) -> tuple[str, tuple[Any, ...]]:
    """The local statement with each :class:`InPlace` of ``relations`` as a CTE of its name (which
    hides a registered relation of that name), and the parameters of all of them.

    >>> rel = InPlace(Relation("SELECT 7 AS i WHERE 1 < $1", (2,), (pa.field("i", pa.int64()),)),
    ...               ("i",), ("id",))
    >>> sql, params = fuse("SELECT $1 + id FROM r0", (1,), {"r0": rel})
    >>> print(sql.replace(" FROM (", "\\nFROM (")); params
    WITH "r0" AS (SELECT CAST("i" AS BIGINT) AS "id"
    FROM (SELECT 7 AS i WHERE 1 < $2) AS "__in_place") SELECT $1 + id FROM r0
    (1, 2)
    """
    ctes: list[str] = []
    out = list(params)
    for name, rel in relations.items():
        if is_in_place(rel):
            ctes.append(f"{quote(name)} AS ({rel.select(len(out))})")
            out += rel.relation.params
    if not ctes:
        return sql, params
    head = "WITH " + ", ".join(ctes)
    # (a statement of several blocks has its own WITH: one list; WITH RECURSIVE is refused)
    return (f"{head}, {sql[5:]}" if sql.startswith("WITH ") else f"{head} {sql}"), tuple(out)


def is_in_place(table: Any) -> bool:
    """Whether a registered relation of the local step is an :class:`InPlace` call."""
    return isinstance(table, InPlace)


def in_place_calls(p: PhysicalPlan) -> frozenset[str]:
    """Aliases of the plan's calls marked ``in_place`` whose rows no other call is fed from (a
    feed needs the rows themselves)."""
    fed = {f.source for c in p.calls for f in c.feeds}
    return frozenset(c.alias for c in p.calls if c.in_place and c.alias not in fed)


def in_place(backend: Backend, call: RemoteCall, caps: Capabilities) -> InPlace | None:
    """The call as an :class:`InPlace` relation, or ``None`` when its rows must be fetched (the
    backend declines the request, or a column's type is not mapped)."""
    make = getattr(backend, "relation", None)
    if not caps.relations or make is None:
        return None
    rel = make(call.request)
    if rel is None:
        return None
    fields: Mapping[str, pa.Field] = {f.name: f for f in rel.fields}
    names = call.answer_names(list(fields))
    wanted = tuple(names[c] for c in call.columns)
    if any(n not in fields or duckdb_type(fields[n].type) is None for n in wanted):
        return None
    return InPlace(rel, wanted, call.columns)

