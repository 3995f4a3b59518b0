"""Checking ``:parameter`` values when they are bound, before anything is planned or sent.

A value CQL cannot represent must fail here, as a :class:`~caveql.errors.ParameterError`
naming the parameter (and pointing at its first use in the statement), never deeper down as a
foreign exception (``decimal.InvalidOperation`` from ``Decimal('sNaN')``, ``ValueError`` from a
NaN box corner), a service error or a wrong answer:

- numbers must be finite: no NaN, no infinity (``float``, ``Decimal`` — signalling NaN
  included — and numpy floats, alone or inside a list); a ``Decimal`` must also be within the
  double range, as number literals must;
- integers within what an integer literal may be, ``[-(2^64-1), 2^64-1]``;
- strings must be valid Unicode (no lone surrogate: they cannot be encoded to be sent);
- no ``NaT`` timestamp;
- the value of ``LIMIT :n``, ``OFFSET :n`` and ``AT VERSION :v`` at most 2^63-1 (DuckDB and the
  service take them as signed 64-bit integers), as for literals (caveql/syntax/builder.py).

Other kinds of values (a dict, bytes, ``pd.NA``) are rejected by the analyzer with its own
message (:mod:`caveql.analyze.resolve`).

>>> from caveql.syntax import parse
>>> stmt = parse("SELECT id FROM t WHERE x > :lo", start="statement")
>>> check_values({"lo": float("nan")}, param_uses([stmt]))
Traceback (most recent call last):
  ...
caveql.errors.ParameterError: parameter :lo is nan: NaN and infinite numbers cannot be compared or sent (line 1, column 28); help: use None (NULL) for a missing value
>>> check_values({"lo": 1.5, "ids": [1, 2]}, param_uses([stmt]))   # fine: nothing raised
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from caveql.errors import CaveqlError, ParameterError, Span, did_you_mean
from caveql.syntax import ast
from caveql.syntax.builder import DOUBLE_MAX, INT64_MAX, UINT64_MAX

__all__ = ["check_counts", "check_names", "check_values", "only_used", "param_uses", "used_names"]


def param_uses(statements: Iterable[ast.Node]) -> dict[str, Span | None]:
    """The span of the first use of each ``:parameter`` in ``statements`` (in source order)."""
    uses: dict[str, Span | None] = {}
    for node in _walk(statements):
        # (``FROM :cells`` binds a table: a use too)
        if isinstance(node, (ast.Param, ast.ParamTable)) and node.name not in uses:
            uses[node.name] = node.span
    return uses


def check_values(params: Mapping[str, Any], uses: Mapping[str, Span | None] | None = None) -> None:
    """Raise :class:`ParameterError` for the first value in ``params`` CQL cannot bind (see the
    module docstring); ``uses`` (from :func:`param_uses`) gives the span to point at."""
    uses = uses or {}
    for name, value in params.items():
        found = _problem(value)
        if found is None:
            continue
        what, why, hint, item = found
        where = f"is {what}" if item is None else f"holds {what} at item {item}"
        raise ParameterError(f"parameter :{name} {where}: {why}", span=uses.get(name), hint=hint)


def check_names(params: Iterable[str], known: Iterable[str], *, where: str = "the query") -> None:
    """Raise :class:`ParameterError` for the first name in ``params`` that is not in ``known``
    (the names the text uses, and those a ``.cql`` header declares): a misspelt parameter would
    otherwise be ignored and the query run without it (or with a ``.cql`` file's default), which
    looks like a right answer. ``where`` names what was run.

    >>> check_names(["rootid"], ["root_id", "min_size"], where="bc_inputs.cql")
    Traceback (most recent call last):
      ...
    caveql.errors.ParameterError: unknown parameter :rootid: bc_inputs.cql takes :min_size and :root_id; help: did you mean :root_id?
    >>> check_names(["r"], ["r"])   # fine: nothing raised
    """
    known = sorted(set(known))
    for name in params:
        if name in known:
            continue
        if not known:
            have = f"{where} takes no parameters"
        else:
            listed = [f":{k}" for k in known]
            listed = listed if len(listed) <= 12 else listed[:12] + [f"{len(known) - 12} more"]
            have = (f"{where} takes "
                    + (listed[0] if len(listed) == 1 else ", ".join(listed[:-1]) + " and " + listed[-1]))
        close = did_you_mean(name, known)
        hint = ("did you mean " + " or ".join(f":{c}" for c in close) + "?") if close else None
        raise ParameterError(f"unknown parameter :{name}: {have}", hint=hint)


def used_names(text: str) -> set[str] | None:
    """The ``:parameter`` names ``text`` uses, by its tokens (comments and strings are not
    searched); ``None`` when it does not even lex (its parse then says why).

    >>> sorted(used_names("SELECT ':x' FROM t -- :y\\nWHERE a = :a AND b IN :ids"))
    ['a', 'ids']
    """
    from caveql.syntax.parser import tokens

    try:
        return {str(t)[1:] for t in tokens(text) if t.type == "PARAM"}
    except CaveqlError:
        return None


def only_used(text: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``values`` that ``text`` uses (all of them if it does not lex): for values
    offered to every statement, as the REPL's ``\\set`` variables are, where most are unused.

    >>> only_used("SELECT :a", {"a": 1, "b": 2})
    {'a': 1}
    """
    names = [k for k in values if isinstance(k, str) and k]
    # lexing a long script takes a while: first a plain search for any ':name' at all
    if not names or not re.search(":(?:" + "|".join(map(re.escape, names)) + ")(?![A-Za-z0-9_])", text):
        return {}
    used = used_names(text)
    return dict(values) if used is None else {k: v for k, v in values.items() if k in used}


def check_counts(statement: ast.Node, params: Mapping[str, Any]) -> None:
    """Raise :class:`ParameterError` when a ``LIMIT``/``OFFSET``/``AT VERSION`` parameter of
    ``statement`` (subqueries included) holds an integer beyond 2^63-1.

    >>> from caveql.syntax import parse
    >>> check_counts(parse("SELECT id FROM t LIMIT :n", start="statement"), {"n": 2**64 - 1})
    Traceback (most recent call last):
      ...
    caveql.errors.ParameterError: parameter :n = 18446744073709551615 is out of range for LIMIT (the largest is 9223372036854775807, 2^63-1) (line 1, column 24)
    """
    if not params:
        return  # literals were checked by the parser
    for node in _walk([statement]):
        if not isinstance(node, ast.Select):
            continue
        for clause, e in (("LIMIT", node.limit), ("OFFSET", node.offset), ("AT VERSION", node.cave.version)):
            if isinstance(e, ast.Param) and e.name in params:
                v = params[e.name]
                if hasattr(v, "item") and not isinstance(v, (list, tuple)):
                    try:
                        v = v.item()  # a numpy integer
                    except (TypeError, ValueError):
                        continue
                if isinstance(v, int) and not isinstance(v, bool) and v > INT64_MAX:
                    raise ParameterError(
                        f"parameter :{e.name} = {v} is out of range for {clause} (the largest is "
                        f"{INT64_MAX}, 2^63-1)", span=e.span)


_NOT_FINITE = ("NaN and infinite numbers cannot be compared or sent",
               "use None (NULL) for a missing value")

#: (what the value is, why it cannot be bound, a hint, the list item it is at or None)
Problem = tuple[str, str, str | None, int | None]


def _problem(value: Any, in_list: bool = False) -> Problem | None:
    """What is wrong with ``value``, or None."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            return (f"a string with a lone surrogate at character {exc.start + 1}",
                    "it is not valid Unicode text and cannot be sent",
                    "decode bytes strictly (not with surrogateescape)", None)
        return None
    if value is None or isinstance(value, (bytes, bool)):
        return None
    if hasattr(value, "tolist") and not isinstance(value, (list, tuple)):
        try:
            value = value.tolist()  # numpy scalars and arrays, pandas Series
        except (TypeError, ValueError):
            return None  # the analyzer says what it cannot take
    if isinstance(value, (list, tuple, set, frozenset)):
        if in_list:
            return None  # a nested list: the analyzer's message
        for i, item in enumerate(value, start=1):
            found = _problem(item, in_list=True)
            if found is not None:
                return found[0], found[1], found[2], i
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else (repr(value), *_NOT_FINITE, None)
    if isinstance(value, Decimal):
        if not value.is_finite():
            return f"Decimal('{value}')", *_NOT_FINITE, None
        if abs(value) > DOUBLE_MAX:
            return (f"Decimal('{_short(value)}')", "numbers are 64-bit floating point, at most about 1.8e308",
                    None, None)
        if value and not float(value):
            return (f"Decimal('{_short(value)}')", "numbers are 64-bit floating point; this one would "
                    "become 0 (the smallest is about 4.9e-324)", None, None)
        return None
    if isinstance(value, int):
        if -UINT64_MAX <= value <= UINT64_MAX:
            return None
        return (_short(value), f"integers are at most 2^64-1 ({UINT64_MAX}) in magnitude", None, None)
    if isinstance(value, datetime) and type(value).__name__ == "NaTType":
        return "NaT", "a timestamp must be a real time", "use None (NULL) for a missing value", None
    return None


def _short(value: int | Decimal) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:20] + "…" + text[-8:]


def _walk(nodes: Iterable[Any]) -> Iterable[ast.Node]:
    """Every AST node under ``nodes``, depth first in source order (iterative: no recursion)."""
    stack = list(reversed(list(nodes)))
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Integer, ast.Float, ast.String, ast.Boolean, ast.Null, ast.Column)):
            continue  # leaves, and the bulk of a long IN list
        if isinstance(node, ast.Node):
            yield node
            children = []
            for f in dataclasses.fields(node):
                if f.name == "span":
                    continue
                v = getattr(node, f.name)
                if isinstance(v, ast.Node):
                    children.append(v)
                elif isinstance(v, tuple):
                    children.extend(x for x in v if isinstance(x, (ast.Node, tuple)))
            stack.extend(reversed(children))
        elif isinstance(node, tuple):
            stack.extend(reversed([x for x in node if isinstance(x, (ast.Node, tuple))]))
