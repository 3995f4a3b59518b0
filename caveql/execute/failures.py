"""DuckDB runtime errors of the local step, said in CQL's terms.

The local SQL is the planner's, so DuckDB's own advice ("Use TRY(...)", "SET
error_on_division_by_zero") does not apply to a CQL user; the common causes get a
plain message and a hint, anything else keeps DuckDB's first line without the advice.

>>> import duckdb
>>> try:
...     duckdb.sql("SELECT 7 % 0").fetchall()
... except duckdb.Error as exc:
...     err = local_failure(exc, "the local step")
>>> err.message
'the local step: division by zero in (7 % 0)'
"""

from __future__ import annotations

import re

import duckdb

from caveql.errors import ExecutionError

__all__ = ["local_failure"]

_DIV_ZERO = re.compile(r"Division by zero in expression \((?P<expr>.*)\)\.?$")
_OVERFLOW = re.compile(r"Overflow in (?P<op>\w+) of (?P<type>\w+) \((?P<expr>.*?)\)")
_OUT_OF_RANGE = re.compile(
    r"value (?P<value>\S+) can't be cast because the value is out of range for the destination "
    r"type (?P<type>\w+)(?: when casting from source column (?P<column>.*))?")
# DuckDB's suggestions name DuckDB features, not CQL ones
_ADVICE = re.compile(r"\s*(Use TRY\(|SET |Consider ).*$")


def local_failure(exc: duckdb.Error, where: str) -> ExecutionError:
    """An :class:`ExecutionError` for DuckDB's ``exc`` raised while running ``where``."""
    text = _ADVICE.sub("", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    if m := _DIV_ZERO.search(text):
        return ExecutionError(f"{where}: division by zero in ({m['expr']})",
                              hint="integer '%' by zero is an error; '/' by zero gives inf (NULL for 0 / 0)")
    if m := _OVERFLOW.search(text):
        return ExecutionError(f"{where}: the {m['op']} {m['expr']} overflows a 64-bit integer",
                              hint="ids are 64-bit integers; arithmetic on them rarely means anything")
    if m := _OUT_OF_RANGE.search(text):
        what = m["column"] or "a value"
        return ExecutionError(f"{where}: {what} = {m['value']} does not fit a 64-bit integer",
                              hint="a SUM over ids or other huge integers overflows; use AVG, or COUNT")
    return ExecutionError(f"{where}: {text}")
