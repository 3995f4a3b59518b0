"""DuckDB view SQL translated for PostgreSQL 15 (the loader's views).

A caveql datastack stores its views as DuckDB SQL; the engine reads them as PostgreSQL views.
The differences the stored views use: ``GROUP BY ALL`` (spelled out from the select list) and
subqueries in FROM without an alias (PostgreSQL 15 requires one). Plain Python (``re`` only):
run by me_loader.py in the engine's environment and imported by pytest in caveql's.
"""

from __future__ import annotations

import re


_TOKEN = re.compile(r"""
    (?P<ws>\s+|--[^\n]*|/\*.*?\*/)
  | (?P<str>'(?:[^']|'')*')
  | (?P<qid>"(?:[^"]|"")*")
  | (?P<word>[A-Za-z_][A-Za-z0-9_$]*)
  | (?P<num>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)
  | (?P<op>::|<>|!=|<=|>=|\|\||.)
""", re.S | re.X)
_AGGREGATES = {"count", "sum", "avg", "min", "max", "any_value", "first", "last", "list",
               "array_agg", "string_agg", "bool_and", "bool_or", "median", "stddev",
               "stddev_pop", "stddev_samp", "variance", "var_pop", "var_samp", "mode",
               "quantile", "quantile_cont", "quantile_disc", "approx_count_distinct", "arg_min",
               "arg_max", "bit_and", "bit_or", "corr", "covar_pop", "covar_samp"}
_CLAUSE_END = {"where", "group", "order", "limit", "offset", "having", "window", "join", "left",
               "right", "inner", "full", "cross", "natural", "on", "using", "union", "except",
               "intersect", "qualify", "fetch", "lateral"}


def _tokens(sql: str) -> list[str]:
    return [m.group(0) for m in _TOKEN.finditer(sql)]


def _sig(tokens: list[str], i: int, step: int) -> int:
    """Index of the next significant (non-space, non-comment) token from i in direction step."""
    i += step
    while 0 <= i < len(tokens) and (tokens[i].isspace() or tokens[i].startswith(("--", "/*"))):
        i += step
    return i


def _depths(tokens: list[str]) -> list[int]:
    depth, out = 0, []
    for t in tokens:
        if t == ")":
            depth -= 1
        out.append(depth)
        if t == "(":
            depth += 1
    return out


def duckdb_to_postgres(sql: str) -> str:
    """Translate the simple DuckDB SQL of a stored view to PostgreSQL 15: ``GROUP BY ALL`` becomes
    the ordinals of the non-aggregate select items, and a FROM/JOIN subquery without an alias
    gets one (PostgreSQL before 16 requires it). Everything else is passed through."""
    tokens = _tokens(sql)
    depth = _depths(tokens)
    low = [t.lower() for t in tokens]
    # GROUP BY ALL -> GROUP BY 1, 2, ...
    for i, t in enumerate(low):
        if t != "all" or low[_sig(tokens, i, -1)] != "by":
            continue
        g = _sig(tokens, _sig(tokens, i, -1), -1)
        if g < 0 or low[g] != "group":
            continue
        d = depth[i]
        sel = max(j for j in range(g) if low[j] == "select" and depth[j] == d)
        frm = min(j for j in range(sel, g) if low[j] == "from" and depth[j] == d)
        items, cur = [], []
        start = _sig(tokens, sel, 1)
        if low[start] in ("distinct", "all"):
            start += 1
        for j in range(start, frm):
            if tokens[j] == "," and depth[j] == d:
                items.append(cur)
                cur = []
            else:
                cur.append(j)
        items.append(cur)
        keys = []
        for n, item in enumerate(items, start=1):
            aggregate = any(low[j] in _AGGREGATES and tokens[_sig(tokens, j, 1)] == "("
                            for j in item)
            if not aggregate:
                keys.append(str(n))
        if keys:
            tokens[i] = ", ".join(keys)
        else:  # only aggregates: no grouping at all
            tokens[g] = tokens[_sig(tokens, g, 1)] = tokens[i] = ""
    # FROM (subquery) without alias -> FROM (subquery) AS _sqN
    n_alias = 0
    for i, t in enumerate(tokens):
        if t != "(" or low[_sig(tokens, i, -1)] not in ("from", "join", ","):
            continue
        if low[_sig(tokens, i, -1)] == "," and not _in_from_list(low, depth, i):
            continue
        close = next(j for j in range(i + 1, len(tokens)) if tokens[j] == ")" and depth[j] == depth[i])
        nxt = _sig(tokens, close, 1)
        nt = low[nxt] if nxt < len(tokens) else ""
        if nt in ("", ")", ",", ";") or nt in _CLAUSE_END:
            n_alias += 1
            tokens[close] = f") AS _sq{n_alias}"
    return "".join(tokens)


def _in_from_list(low: list[str], depth: list[int], i: int) -> bool:
    """Whether the comma before token i separates FROM items (a FROM precedes it at its depth
    with no WHERE/GROUP/... in between)."""
    for j in range(i - 1, -1, -1):
        if depth[j] == depth[i]:
            if low[j] == "from":
                return True
            if low[j] in ("select", "where", "group", "having", "order", "on"):
                return False
    return False
