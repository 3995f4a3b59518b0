"""The local part as one statement per step, for EXPLAIN ANALYZE's per-step figures.

The executor normally runs the local part as ONE DuckDB statement (fast, fused). To give
each step its own rows, bytes and milliseconds, EXPLAIN ANALYZE also runs it as a chain
of statements, each over the previous one's materialized result, built here from the
same rendered fragments (same expressions, same ``$n`` values):

- join (one statement per JOIN) and filter keep each source's row as a ``struct`` column
  named by its alias, so ``"alias"."column"`` in later expressions still resolves (as a
  field of that struct);
- aggregate computes the outputs ``c0..``, plus HAVING (``__h``) and ORDER BY
  expressions (``__o<i>``) that are not outputs; having filters on ``__h``;
- distinct computes the outputs and dedupes; sort orders; limit cuts;
- project computes the outputs from the source rows (or, after an aggregate or
  DISTINCT, keeps ``c0..`` and drops the helper columns).

Each :class:`LocalStep` names the EXPLAIN step line it measures. The chain's final rows
are the statement's rows (tests check both against DuckDB run directly).

>>> _renumber('SELECT $3 + $1 FROM t WHERE "a$1" = $3', ("x", "y", "z"))
('SELECT $1 + $2 FROM t WHERE "a$1" = $1', ('z', 'x'))
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from caveql.plan.sql import quote

__all__ = ["LocalParts", "LocalStep", "local_steps"]

_PARAM = re.compile(r'"(?:[^"]|"")*"|\$(\d+)')


@dataclass(frozen=True)
class LocalStep:
    """One step as its own statement: ``step`` is the index of the EXPLAIN step line it
    measures; ``sql`` reads the previous step's result as ``__step<i-1>``."""

    step: int
    sql: str
    params: tuple[Any, ...] = ()


@dataclass
class LocalParts:
    """The rendered fragments of the one-statement local SQL, and which step line is which."""

    first: tuple[str, str]  # (relation, alias)
    columns: dict[str, tuple[str, ...]]  # alias -> the relation's columns
    joins: list[tuple[str, str, str, str]] = field(default_factory=list)  # kind, relation, alias, ON
    select: list[tuple[str, str]] = field(default_factory=list)  # (expression, result name)
    where: str | None = None
    group: list[str] = field(default_factory=list)
    having: str | None = None
    aggregate: bool = False
    distinct: bool = False
    window: bool = False  # window functions: computed after HAVING, before QUALIFY/DISTINCT/sort
    qualify: str | None = None
    order: list[tuple[int | None, str, str]] = field(default_factory=list)  # (position, expr, suffix)
    limit: str = ""
    lines: dict[str, int] = field(default_factory=dict)  # "join<i>"/"filter"/... -> step line

    def statement(self) -> str:
        """The one-statement local SQL these fragments make (what the executor runs).

        >>> p = LocalParts(("r0", "s"), {"s": ("id", "size")}, select=[('"s"."size"', "c0")],
        ...                where='("s"."size" > $1)', order=[(None, '"s"."id"', "")], limit=" LIMIT 5")
        >>> p.statement()
        'SELECT "s"."size" AS "c0" FROM r0 AS "s" WHERE ("s"."size" > $1) ORDER BY "s"."id" LIMIT 5'
        """
        rel, alias = self.first
        sql = ("SELECT " + ("DISTINCT " if self.distinct else "")
               + ", ".join(f"{e} AS {quote(n)}" for e, n in self.select) + f" FROM {rel} AS {quote(alias)}")
        for kind, jrel, jalias, on in self.joins:
            sql += f" {kind} JOIN {jrel} AS {quote(jalias)} ON {on}"
        if self.where is not None:
            sql += " WHERE " + self.where
        if self.group:
            sql += " GROUP BY " + ", ".join(self.group)
        if self.having is not None:
            sql += " HAVING " + self.having
        if self.qualify is not None:
            sql += " QUALIFY " + self.qualify
        if self.order:
            # an int is an output position (ORDER BY 2), else an expression
            sql += " ORDER BY " + ", ".join(f"{pos if pos is not None else e}{suffix}"
                                             for pos, e, suffix in self.order)
        return sql + self.limit


def _renumber(sql: str, params: tuple[Any, ...]) -> tuple[str, tuple[Any, ...]]:
    """``sql`` with its ``$n`` renumbered 1.. in order of first use, and those values
    (DuckDB wants exactly the parameters a statement uses); quoted names are left alone."""
    seen: dict[int, int] = {}

    def sub(m: re.Match[str]) -> str:
        if m.group(1) is None:
            return m.group(0)
        k = int(m.group(1))
        if k not in seen:
            seen[k] = len(seen) + 1
        return f"${seen[k]}"

    out = _PARAM.sub(sub, sql)
    return out, tuple(params[k - 1] for k in seen)


def _struct(alias: str, cols: tuple[str, ...]) -> str:
    a = quote(alias)
    fields = ", ".join(f"{quote(c)} := {a}.{quote(c)}" for c in cols) or f"{quote('__row')} := TRUE"
    return f"struct_pack({fields}) AS {a}"


def local_steps(p: LocalParts, params: tuple[Any, ...]) -> tuple[LocalStep, ...]:
    """The chain of per-step statements (see the module docstring)."""
    out: list[LocalStep] = []
    rel, alias = p.first
    raw = f"{rel} AS {quote(alias)}"
    prev: str | None = None
    aliases = [alias]

    def emit(line: str, sql: str) -> None:
        nonlocal prev
        text, values = _renumber(sql, params)
        out.append(LocalStep(p.lines[line], text, values))
        prev = f"__step{len(out) - 1}"

    for i, (kind, jrel, jalias, on) in enumerate(p.joins):
        if prev is None:
            cols, src = [_struct(alias, p.columns[alias])], raw
        else:
            cols, src = [f"{prev}.{quote(a)}" for a in aliases], prev
        cols.append(_struct(jalias, p.columns[jalias]))
        emit(f"join{i}", f"SELECT {', '.join(cols)} FROM {src} {kind} JOIN {jrel} AS {quote(jalias)} ON {on}")
        aliases.append(jalias)
    if p.where is not None:
        if prev is None:
            emit("filter", f"SELECT {_struct(alias, p.columns[alias])} FROM {raw} WHERE {p.where}")
        else:
            emit("filter", f"SELECT * FROM {prev} WHERE {p.where}")
    outputs = [name for _e, name in p.select]
    select = ", ".join(f"{e} AS {quote(n)}" for e, n in p.select)
    src = prev or raw
    if not p.aggregate and not p.distinct and not p.window:
        # sort and cut the source rows; the outputs are computed last (the project step);
        # an ORDER BY position stands for that output's expression
        keys = ", ".join((p.select[pos - 1][0] if pos is not None else e) + suffix
                         for pos, e, suffix in p.order)
        order = f" ORDER BY {keys}" if keys else ""
        if prev is None:
            emit("sort", f"SELECT {_struct(alias, p.columns[alias])} FROM {raw}{order}")
        else:
            emit("sort", f"SELECT * FROM {prev}{order}")
        if p.limit:
            emit("limit", f"SELECT * FROM {prev}{p.limit}")
        emit("project", f"SELECT {select or 'NULL'} FROM {prev}")
        return tuple(out)
    # after an aggregate or DISTINCT, ORDER BY terms are output positions -> result columns,
    # or expressions -> helper columns computed where the groups (or rows) are at hand
    helpers = [e for pos, e, _s in p.order if pos is None]
    helper_sql = "".join(f", {e} AS {quote(f'__o{i}')}" for i, e in enumerate(helpers))
    terms: list[str] = []
    h = 0
    for pos, _e, suffix in p.order:
        if pos is not None:
            terms.append(quote(outputs[pos - 1]) + suffix)
        else:
            terms.append(quote(f"__o{h}") + suffix)
            h += 1
    if p.window:
        # windows see the rows (or, after GROUP BY / HAVING, the groups) whole: computed in one
        # step with the outputs, QUALIFY as __q, then filtered, deduplicated, sorted and cut
        q = f", {p.qualify} AS {quote('__q')}" if p.qualify is not None else ""
        if p.aggregate:
            # the groups (and HAVING's cut) are measured on their own; the window step then
            # computes the outputs over the groups HAVING kept, from the rows again (a window's
            # text holds the aggregates it reads)
            group = (" GROUP BY " + ", ".join(p.group)) if p.group else ""
            if p.having is not None:
                emit("aggregate", f"SELECT {p.having} AS {quote('__h')} FROM {src}{group}")
                emit("having", f"SELECT * FROM {prev} WHERE {quote('__h')}")
            else:
                emit("aggregate", f"SELECT {', '.join(p.group) or 'count(*)'} FROM {src}{group}")
            having = f" HAVING {p.having}" if p.having is not None else ""
            emit("window", f"SELECT {select}{q}{helper_sql} FROM {src}{group}{having}")
        else:
            emit("window", f"SELECT {select}{q}{helper_sql} FROM {src}")
        if p.qualify is not None:
            emit("qualify", f"SELECT * EXCLUDE ({quote('__q')}) FROM {prev} WHERE {quote('__q')}")
        if p.distinct:
            emit("distinct", f"SELECT DISTINCT * FROM {prev}")
    elif p.aggregate:
        having = f", {p.having} AS {quote('__h')}" if p.having is not None else ""
        group = (" GROUP BY " + ", ".join(p.group)) if p.group else ""
        emit("aggregate", f"SELECT {select}{having}{helper_sql} FROM {src}{group}")
        if p.having is not None:
            emit("having", f"SELECT * FROM {prev} WHERE {quote('__h')}")
        if p.distinct:
            emit("distinct", f"SELECT DISTINCT * FROM {prev}")
    else:
        emit("distinct", f"SELECT DISTINCT {select}{helper_sql} FROM {src}")
    emit("sort", f"SELECT * FROM {prev} ORDER BY {', '.join(terms)}" if terms else f"SELECT * FROM {prev}")
    if p.limit:
        emit("limit", f"SELECT * FROM {prev}{p.limit}")
    emit("project", f"SELECT {', '.join(quote(n) for n in outputs) or 'NULL'} FROM {prev}")
    return tuple(out)
