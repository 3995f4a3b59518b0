"""The function table: every function CQL knows, its type rule and its DuckDB lowering.

One :class:`Function` per function (aliases share it): its kind (``scalar``, ``aggregate``
or ``window``; every aggregate may also be used ``OVER (...)``), its signatures (parameter
classes and a result rule), how it is written in DuckDB, an example and whether the
materialization service can evaluate it (none can: functions always run locally in DuckDB,
over the fetched rows; only plain comparisons on columns are pushed, see
``caveql.plan.rules.pushdown_filters``). ``docs/functions.md`` is generated from this table
(:func:`markdown`; a test keeps the file in step).

Types are CQL's: ``int``, ``float``, ``string``, ``bool``, ``timestamp``, ``date``, lists
``T[]`` and ``null`` (an untyped NULL, accepted everywhere). A ``position`` is not a value
any function but ``DISTANCE`` takes.

>>> lookup("coalesce").name
'COALESCE'
>>> check(lookup("ROUND"), ["float", "int"])
'float'
>>> check(lookup("LIST_VALUE"), ["int", "float"])
'float[]'
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = [
    "FUNCTIONS", "UNSUPPORTED", "ArgTypeError", "ArityError", "Function", "Sig", "check",
    "common_type", "lookup", "markdown", "names", "render",
]

NUMERIC = ("int", "float")


class ArityError(Exception):
    """Wrong number of arguments (the analyzer turns it into a CqlSemanticError)."""


class ArgTypeError(Exception):
    """Argument ``index`` has the wrong type; ``wanted`` says what it should be."""

    def __init__(self, index: int, wanted: str) -> None:
        super().__init__(wanted)
        self.index = index
        self.wanted = wanted


def _norm(t: str) -> str:
    return "float" if t == "float32" else t


def element(t: str) -> str:
    """The element type of a list type (``int[]`` → ``int``).

    >>> element("string[]")
    'string'
    """
    return t[:-2] if t.endswith("[]") else "null"


def common_type(types: Sequence[str]) -> str | None:
    """The type values of ``types`` unify to, or None when they do not (NULLs take any type).

    >>> common_type(["int", "null", "float"]), common_type(["int", "string"])
    ('float', None)
    """
    known = [_norm(t) for t in types if t != "null"]
    if not known:
        return "null"
    if all(t == known[0] for t in known):
        return known[0]
    if all(t in NUMERIC for t in known):
        return "float"
    if set(known) <= {"timestamp", "date"}:
        return "timestamp"
    if all(t.endswith("[]") for t in known):
        inner = common_type([element(t) for t in known])
        return None if inner is None else inner + "[]"
    return None


# parameter classes: what each accepts (NULL is accepted by every class)
_CLASSES: dict[str, Callable[[str], bool]] = {
    "number": lambda t: t in NUMERIC,
    "int": lambda t: t == "int",
    "string": lambda t: t == "string",
    "bool": lambda t: t == "bool",
    "time": lambda t: t in ("timestamp", "date"),
    "list": lambda t: t.endswith("[]"),
    "intlist": lambda t: t == "int[]",
    "any": lambda t: t != "position",
    "T": lambda t: t != "position",
    "cmp": lambda t: t != "position" and not t.endswith("[]"),
    "position": lambda t: t == "position",
}
_WORDS = {"number": "a number", "int": "an integer", "string": "a string", "bool": "a boolean",
          "time": "a timestamp or date", "list": "a list", "intlist": "a list of integers",
          "any": "a value", "T": "a value",
          "cmp": "a value", "position": "a position"}


@dataclass(frozen=True)
class Sig:
    """One signature: ``params`` are parameter classes (``number``, ``int``, ``string``,
    ``bool``, ``time``, ``list``, ``any``, ``T`` — all ``T`` arguments unify); ``optional``
    of the last ones may be left out; ``variadic`` repeats the last class. ``result`` is a
    type or a rule: ``T`` (the unified type), ``arg0`` (the first argument's), ``num`` (float
    if any argument is, else int), ``elem0`` (the first list's element type), ``list(T)``.
    ``lower`` overrides the function's DuckDB lowering for this signature."""

    params: tuple[str, ...]
    result: str
    optional: int = 0
    variadic: bool = False
    lower: str | None = None

    def fits(self, n: int) -> bool:
        lo = len(self.params) - self.optional - (1 if self.variadic else 0)
        return n >= lo and (self.variadic or n <= len(self.params))

    def text(self, name: str) -> str:
        req = len(self.params) - self.optional
        parts = [p if i < req else f"[{p}]" for i, p in enumerate(self.params)]
        if self.variadic:
            parts.append("...")
        return f"{name}({', '.join(parts)}) → {self.result}"


@dataclass(frozen=True)
class Function:
    """One function of the table (see the module docstring)."""

    name: str
    kind: str  # scalar | aggregate | window
    category: str
    sigs: tuple[Sig, ...]
    lower: str  # DuckDB function name, or a template with {0}, {1}, ... / {args}
    example: str
    doc: str
    aliases: tuple[str, ...] = ()
    service: bool = False  # whether the materialization service evaluates it (none does)
    star: bool = False  # COUNT(*)
    backend: bool = False  # answered by the backend's graph or tables (caveql.identity), not DuckDB

    @property
    def aggregate(self) -> bool:
        return self.kind == "aggregate"


def _unify(types: Sequence[str], sig: Sig) -> str:
    ts = [t for t, p in zip(types, _expand(sig, len(types)), strict=True) if p == "T"]
    u = common_type(ts)
    if u is None:
        raise ArgTypeError(-1, "arguments of one type (" + ", ".join(dict.fromkeys(ts)) + " do not mix)")
    return u


def _expand(sig: Sig, n: int) -> list[str]:
    ps = list(sig.params)
    while len(ps) < n:
        ps.append(ps[-1])
    return ps[:n]


def _match(sig: Sig, types: Sequence[str]) -> str:
    """The result type of ``sig`` on ``types`` or ArgTypeError."""
    types = [_norm(t) for t in types]
    for i, (t, p) in enumerate(zip(types, _expand(sig, len(types)), strict=True)):
        if t != "null" and not _CLASSES[p](t):
            raise ArgTypeError(i, _WORDS[p])
    r = sig.result
    if r == "T":
        return _unify(types, sig)
    if r == "arg0":
        return types[0]
    if r == "num":
        return "float" if "float" in types else "int"
    if r == "elem0":
        return element(types[0])
    if r == "list(T)":
        u = _unify(types, sig)
        return ("null" if u == "null" else u) + "[]"
    return r


def check(fn: Function, types: Sequence[str]) -> str:
    """The result type of ``fn`` applied to arguments of ``types``.

    Raises :class:`ArityError` or :class:`ArgTypeError` (of the first signature of a fitting
    arity).

    >>> check(lookup("LENGTH"), ["string"])
    'int'
    >>> check(lookup("LENGTH"), ["int"])
    Traceback (most recent call last):
      ...
    caveql.analyze.functions.ArgTypeError: a string or a list
    """
    fitting = [s for s in fn.sigs if s.fits(len(types))]
    if not fitting:
        raise ArityError(arity_text(fn))
    first: ArgTypeError | None = None
    for s in fitting:
        try:
            return _match(s, types)
        except ArgTypeError as err:
            first = first or err
    if len(fitting) > 1 and first is not None and first.index >= 0:
        words = [_WORDS[_expand(s, len(types))[first.index]] for s in fitting]
        raise ArgTypeError(first.index, " or ".join(dict.fromkeys(words)))
    assert first is not None
    raise first


def signature_for(fn: Function, types: Sequence[str]) -> Sig:
    """The signature :func:`check` chose for ``types``."""
    for s in fn.sigs:
        if s.fits(len(types)):
            try:
                _match(s, types)
                return s
            except ArgTypeError:
                continue
    raise ArityError(arity_text(fn))


def arity_text(fn: Function) -> str:
    """How many arguments ``fn`` takes, in words."""
    counts = set()
    variadic = None
    for s in fn.sigs:
        lo = len(s.params) - s.optional - (1 if s.variadic else 0)
        if s.variadic:
            variadic = lo if variadic is None else min(variadic, lo)
        counts.update(range(lo, len(s.params) + 1) if not s.variadic else [lo])
    if variadic is not None:
        return f"{fn.name}() takes {variadic} or more arguments"
    c = sorted(counts)
    if len(c) == 1:
        return f"{fn.name}() takes {_n(c[0])}"
    if c == list(range(c[0], c[-1] + 1)):
        return f"{fn.name}() takes {c[0]} to {c[-1]} arguments"
    return f"{fn.name}() takes " + " or ".join(str(x) for x in c) + " arguments"


def _n(k: int) -> str:
    return {0: "no arguments", 1: "one argument"}.get(k, f"{k} arguments")


def render(fn: Function, args: Sequence[str], types: Sequence[str], distinct: bool = False,
           over: str = "") -> str:
    """The DuckDB text of ``fn`` over rendered ``args`` (their CQL ``types``); ``distinct``
    for an aggregate over distinct values; ``over`` (`` OVER (...)``) follows the call itself
    (inside a lowering's CAST).

    >>> render(lookup("FLOOR"), ['"t"."x"'], ["float"])
    'CAST(floor("t"."x") AS BIGINT)'
    """
    sig = signature_for(fn, types)
    low = sig.lower or fn.lower
    d = "DISTINCT " if distinct else ""
    if "{" in low:
        return low.format(*args, args=", ".join(args), d=d, w=over)
    return f"{low}({d}{', '.join(args)}){over}"


# ------------------------------------------------------------------------------ the table

def _f(name: str, kind: str, cat: str, sigs: Sequence[Sig] | Sig, lower: str | None, example: str,
       doc: str, aliases: Sequence[str] = (), star: bool = False) -> Function:
    return Function(name, kind, cat, tuple(sigs) if isinstance(sigs, Sequence) else (sigs,),
                    lower or name.lower(), example, doc, tuple(aliases), star=star)


S = Sig
_T = ("T",)
_ROUND_INT = "CAST(round({0}) AS BIGINT)"

_TABLE: list[Function] = [
    # ------------------------------------------------------------------ conditional
    _f("COALESCE", "scalar", "conditional", S(_T, "T", variadic=True), None,
       "COALESCE(cell_type, 'unknown')", "the first argument that is not NULL"),
    _f("IFNULL", "scalar", "conditional", S(("T", "T"), "T"), "coalesce",
       "IFNULL(cell_type, 'unknown')", "the first argument unless it is NULL, else the second"),
    _f("NULLIF", "scalar", "conditional", S(("T", "T"), "T"), None,
       "NULLIF(cell_type, '')", "NULL when the two are equal, else the first"),
    _f("GREATEST", "scalar", "conditional", S(("T",), "T", variadic=True), None,
       "GREATEST(size, 100)", "the largest argument (NULLs are skipped)"),
    _f("LEAST", "scalar", "conditional", S(("T",), "T", variadic=True), None,
       "LEAST(size, 100)", "the smallest argument (NULLs are skipped)"),
    # ------------------------------------------------------------------ math
    _f("ABS", "scalar", "math", S(("number",), "arg0"), None, "ABS(-3)", "absolute value"),
    _f("ROUND", "scalar", "math",
       (S(("int",), "int", lower=_ROUND_INT), S(("number",), "float"),
        S(("number", "int"), "arg0", lower="round({0}, CAST({1} AS INTEGER))")), None,
       "ROUND(size / 3.0, 2)", "round half away from zero, to an optional number of decimals"),
    _f("FLOOR", "scalar", "math", S(("number",), "int"), "CAST(floor({0}) AS BIGINT)",
       "FLOOR(2.7)", "the largest integer not above"),
    _f("CEIL", "scalar", "math", S(("number",), "int"), "CAST(ceil({0}) AS BIGINT)",
       "CEIL(2.1)", "the smallest integer not below", aliases=("CEILING",)),
    _f("TRUNC", "scalar", "math", S(("number",), "int"), "CAST(trunc({0}) AS BIGINT)",
       "TRUNC(-2.7)", "the integer part (towards zero)"),
    _f("SIGN", "scalar", "math", S(("number",), "int"), "CAST(sign({0}) AS BIGINT)",
       "SIGN(-5)", "-1, 0 or 1"),
    _f("MOD", "scalar", "math", S(("number", "number"), "num"), "({0} % {1})",
       "MOD(id, 10)", "remainder, with the sign of the dividend (as the % operator)"),
    _f("SQRT", "scalar", "math", S(("number",), "float"), None, "SQRT(size)", "square root"),
    _f("CBRT", "scalar", "math", S(("number",), "float"), None, "CBRT(27)", "cube root"),
    _f("POWER", "scalar", "math", S(("number", "number"), "float"), "pow", "POWER(2, 10)",
       "x to the power y", aliases=("POW",)),
    _f("EXP", "scalar", "math", S(("number",), "float"), None, "EXP(1)", "e to the power x"),
    _f("LN", "scalar", "math", S(("number",), "float"), None, "LN(size)", "natural logarithm"),
    _f("LOG10", "scalar", "math", S(("number",), "float"), None, "LOG10(size)",
       "base-10 logarithm", aliases=("LOG",)),
    _f("LOG2", "scalar", "math", S(("number",), "float"), None, "LOG2(size)", "base-2 logarithm"),
    _f("PI", "scalar", "math", S((), "float"), None, "PI()", "π"),
    _f("SIN", "scalar", "math", S(("number",), "float"), None, "SIN(PI() / 2)", "sine (radians)"),
    _f("COS", "scalar", "math", S(("number",), "float"), None, "COS(0)", "cosine (radians)"),
    _f("TAN", "scalar", "math", S(("number",), "float"), None, "TAN(0)", "tangent (radians)"),
    _f("ASIN", "scalar", "math", S(("number",), "float"), None, "ASIN(1)", "arc sine"),
    _f("ACOS", "scalar", "math", S(("number",), "float"), None, "ACOS(1)", "arc cosine"),
    _f("ATAN", "scalar", "math", S(("number",), "float"), None, "ATAN(1)", "arc tangent"),
    _f("ATAN2", "scalar", "math", S(("number", "number"), "float"), None, "ATAN2(1, 1)",
       "arc tangent of y / x, in the right quadrant"),
    _f("DEGREES", "scalar", "math", S(("number",), "float"), None, "DEGREES(PI())",
       "radians to degrees"),
    _f("RADIANS", "scalar", "math", S(("number",), "float"), None, "RADIANS(180)",
       "degrees to radians"),
    _f("DISTANCE", "scalar", "math", S(("position", "position"), "float"), None,
       "DISTANCE(pre_pt_position, post_pt_position)",
       "Euclidean distance between two positions, in the statement's resolution"),
    # ------------------------------------------------------------------ strings
    _f("LOWER", "scalar", "string", S(("string",), "string"), None, "LOWER(cell_type)",
       "lower case", aliases=("LCASE",)),
    _f("UPPER", "scalar", "string", S(("string",), "string"), None, "UPPER(cell_type)",
       "upper case", aliases=("UCASE",)),
    _f("LENGTH", "scalar", "string", (S(("string",), "int"), S(("list",), "int")), None,
       "LENGTH(cell_type)", "number of characters (or list items)", aliases=("CHAR_LENGTH",)),
    _f("SUBSTRING", "scalar", "string", S(("string", "int", "int"), "string", optional=1), None,
       "SUBSTRING(cell_type, 1, 2)", "the characters from a 1-based start, optionally of a length",
       aliases=("SUBSTR",)),
    _f("TRIM", "scalar", "string", S(("string", "string"), "string", optional=1), None,
       "TRIM('  BC ')", "without leading and trailing spaces (or the given characters)"),
    _f("LTRIM", "scalar", "string", S(("string", "string"), "string", optional=1), None,
       "LTRIM('  BC')", "without leading spaces (or the given characters)"),
    _f("RTRIM", "scalar", "string", S(("string", "string"), "string", optional=1), None,
       "RTRIM('BC  ')", "without trailing spaces (or the given characters)"),
    _f("REPLACE", "scalar", "string", S(("string", "string", "string"), "string"), None,
       "REPLACE(cell_type, 'P', 'p')", "every occurrence of a substring replaced"),
    _f("CONCAT", "scalar", "string", S(("any",), "string", variadic=True), None,
       "CONCAT(cell_type, '-', id)", "the arguments as text, joined (NULLs are skipped)"),
    _f("CONCAT_WS", "scalar", "string", S(("string", "any", "any"), "string", variadic=True), None,
       "CONCAT_WS('/', cell_type, id)", "the arguments after the first, joined by it"),
    _f("REPEAT", "scalar", "string", S(("string", "int"), "string"), None, "REPEAT('ab', 3)",
       "the string n times"),
    _f("REVERSE", "scalar", "string", S(("string",), "string"), None, "REVERSE(cell_type)",
       "the characters in reverse order"),
    _f("LPAD", "scalar", "string", S(("string", "int", "string"), "string"),
       "lpad({0}, CAST({1} AS INTEGER), {2})",
       "LPAD(cell_type, 5, '.')", "padded on the left to n characters (cut if longer)"),
    _f("RPAD", "scalar", "string", S(("string", "int", "string"), "string"),
       "rpad({0}, CAST({1} AS INTEGER), {2})",
       "RPAD(cell_type, 5, '.')", "padded on the right to n characters (cut if longer)"),
    _f("STRPOS", "scalar", "string", S(("string", "string"), "int"), None,
       "STRPOS(cell_type, 'P')", "1-based position of the first occurrence, 0 if none",
       aliases=("INSTR",)),
    _f("STARTS_WITH", "scalar", "string", S(("string", "string"), "bool"), None,
       "STARTS_WITH(cell_type, '2')", "whether the string starts with the prefix"),
    _f("ENDS_WITH", "scalar", "string", S(("string", "string"), "bool"), "suffix",
       "ENDS_WITH(cell_type, 'P')", "whether the string ends with the suffix"),
    _f("CONTAINS", "scalar", "string", S(("string", "string"), "bool"), None,
       "CONTAINS(cell_type, '3')", "whether the substring occurs"),
    _f("SPLIT_PART", "scalar", "string", S(("string", "string", "int"), "string"), None,
       "SPLIT_PART('a/b/c', '/', 2)", "the n-th (1-based) field between separators"),
    _f("STRING_SPLIT", "scalar", "string", S(("string", "string"), "string[]"), None,
       "STRING_SPLIT('a/b/c', '/')", "the fields between separators, as a list",
       aliases=("STR_SPLIT",)),
    _f("REGEXP_MATCHES", "scalar", "string", S(("string", "string"), "bool"), None,
       "REGEXP_MATCHES(cell_type, '^[0-9]')", "whether the RE2 pattern matches anywhere (as ~)"),
    _f("REGEXP_REPLACE", "scalar", "string",
       S(("string", "string", "string", "string"), "string", optional=1), None,
       "REGEXP_REPLACE(cell_type, '[0-9]', '#', 'g')",
       "the first match (every match with option 'g') replaced"),
    _f("REGEXP_EXTRACT", "scalar", "string", S(("string", "string", "int"), "string", optional=1),
       None, "REGEXP_EXTRACT(cell_type, '[0-9]+')",
       "the first match (or its n-th group), '' if none"),
    _f("MD5", "scalar", "string", S(("string",), "string"), None, "MD5(cell_type)",
       "the MD5 digest as hex"),
    # ------------------------------------------------------------------ date and time
    _f("DATE_TRUNC", "scalar", "time", S(("string", "time"), "timestamp"), None,
       "DATE_TRUNC('month', created)", "the timestamp truncated to a part ('year', 'month', "
       "'day', 'hour', ...)", aliases=("DATETRUNC",)),
    _f("DATE_PART", "scalar", "time", S(("string", "time"), "int"), None,
       "DATE_PART('hour', created)", "one part of a timestamp as an integer",
       aliases=("DATEPART",)),
    _f("DATE_DIFF", "scalar", "time", S(("string", "time", "time"), "int"), None,
       "DATE_DIFF('day', created, MAKE_TIMESTAMP(2024, 1, 1, 0, 0, 0))",
       "the number of part boundaries between two timestamps", aliases=("DATEDIFF",)),
    _f("YEAR", "scalar", "time", S(("time",), "int"), None, "YEAR(created)", "the year"),
    _f("QUARTER", "scalar", "time", S(("time",), "int"), None, "QUARTER(created)",
       "the quarter (1-4)"),
    _f("MONTH", "scalar", "time", S(("time",), "int"), None, "MONTH(created)", "the month (1-12)"),
    _f("WEEK", "scalar", "time", S(("time",), "int"), None, "WEEK(created)", "the ISO week"),
    _f("DAY", "scalar", "time", S(("time",), "int"), None, "DAY(created)",
       "the day of the month", aliases=("DAYOFMONTH",)),
    _f("DAYOFWEEK", "scalar", "time", S(("time",), "int"), None, "DAYOFWEEK(created)",
       "the day of the week (Sunday = 0)"),
    _f("DAYOFYEAR", "scalar", "time", S(("time",), "int"), None, "DAYOFYEAR(created)",
       "the day of the year (1-366)"),
    _f("HOUR", "scalar", "time", S(("time",), "int"), None, "HOUR(created)", "the hour"),
    _f("MINUTE", "scalar", "time", S(("time",), "int"), None, "MINUTE(created)", "the minute"),
    _f("SECOND", "scalar", "time", S(("time",), "int"), None, "SECOND(created)",
       "the second (whole)"),
    _f("EPOCH", "scalar", "time", S(("time",), "float"), None, "EPOCH(created)",
       "seconds since 1970-01-01 UTC"),
    _f("EPOCH_MS", "scalar", "time", S(("time",), "int"), "epoch_ms(CAST({0} AS TIMESTAMP))",
       "EPOCH_MS(created)",
       "milliseconds since 1970-01-01 UTC"),
    _f("MAKE_TIMESTAMP", "scalar", "time",
       S(("int", "int", "int", "int", "int", "number"), "timestamp"), None,
       "MAKE_TIMESTAMP(2024, 1, 31, 12, 0, 0)", "a timestamp from its parts (UTC)"),
    _f("MAKE_DATE", "scalar", "time", S(("int", "int", "int"), "date"), None,
       "MAKE_DATE(2024, 1, 31)", "a date from its parts"),
    _f("STRFTIME", "scalar", "time", S(("time", "string"), "string"), None,
       "STRFTIME(created, '%Y-%m')", "the timestamp as text in a format"),
    _f("STRPTIME", "scalar", "time", S(("string", "string"), "timestamp"), None,
       "STRPTIME('2024-01-31', '%Y-%m-%d')", "text in a format as a timestamp (error if it "
       "does not match)"),
    # ------------------------------------------------------------------ lists
    _f("LIST_VALUE", "scalar", "list", S(_T, "list(T)", variadic=True), None,
       "LIST_VALUE(1, 2, 3)", "a list of the arguments", aliases=("LIST_PACK",)),
    _f("LEN", "scalar", "list", S(("list",), "int"), None, "LEN(LIST_VALUE(1, 2))",
       "number of items", aliases=("ARRAY_LENGTH",)),
    _f("LIST_CONTAINS", "scalar", "list", S(("list", "any"), "bool"), None,
       "LIST_CONTAINS(LIST_VALUE(1, 2), 2)", "whether the list holds the value",
       aliases=("LIST_HAS", "ARRAY_CONTAINS")),
    _f("LIST_EXTRACT", "scalar", "list", S(("list", "int"), "elem0"), None,
       "LIST_EXTRACT(LIST_VALUE(4, 5), 1)", "the n-th (1-based) item, NULL past the end",
       aliases=("LIST_ELEMENT",)),
    _f("LIST_SUM", "scalar", "list",
       (S(("intlist",), "int", lower="CAST(list_sum({0}) AS BIGINT)"), S(("list",), "elem0")), None,
       "LIST_SUM(LIST_VALUE(1, 2))",
       "sum of the items"),
    _f("LIST_MIN", "scalar", "list", S(("list",), "elem0"), None, "LIST_MIN(LIST_VALUE(1, 2))",
       "smallest item"),
    _f("LIST_MAX", "scalar", "list", S(("list",), "elem0"), None, "LIST_MAX(LIST_VALUE(1, 2))",
       "largest item"),
    _f("LIST_AVG", "scalar", "list", S(("list",), "float"), None, "LIST_AVG(LIST_VALUE(1, 2))",
       "mean of the items"),
    _f("LIST_SORT", "scalar", "list", S(("list",), "arg0"), None, "LIST_SORT(LIST_VALUE(2, 1))",
       "the items in ascending order", aliases=("ARRAY_SORT",)),
    _f("LIST_DISTINCT", "scalar", "list", S(("list",), "arg0"), "list_sort(list_distinct({0}))",
       "LIST_DISTINCT(LIST_VALUE(2, 1, 2))", "the distinct non-NULL items, in ascending order"),
    # ------------------------------------------------------------------ aggregates
    _f("COUNT", "aggregate", "aggregate", S(("any",), "int"), None, "COUNT(*), COUNT(DISTINCT cell_type)",
       "number of rows (*) or of non-NULL values", star=True),
    _f("SUM", "aggregate", "aggregate",
       (S(("int",), "int", lower="CAST(sum({d}{0}){w} AS BIGINT)"), S(("number",), "float")), None,
       "SUM(size)", "sum of the non-NULL values"),
    _f("AVG", "aggregate", "aggregate", S(("number",), "float"), None, "AVG(size)",
       "mean of the non-NULL values", aliases=("MEAN",)),
    _f("MIN", "aggregate", "aggregate", S(("cmp",), "arg0"), None, "MIN(size)", "smallest value"),
    _f("MAX", "aggregate", "aggregate", S(("cmp",), "arg0"), None, "MAX(size)", "largest value"),
    _f("STDDEV", "aggregate", "aggregate", S(("number",), "float"), "stddev_samp", "STDDEV(size)",
       "sample standard deviation", aliases=("STDDEV_SAMP",)),
    _f("STDDEV_POP", "aggregate", "aggregate", S(("number",), "float"), None, "STDDEV_POP(size)",
       "population standard deviation"),
    _f("VARIANCE", "aggregate", "aggregate", S(("number",), "float"), "var_samp", "VARIANCE(size)",
       "sample variance", aliases=("VAR_SAMP",)),
    _f("VAR_POP", "aggregate", "aggregate", S(("number",), "float"), None, "VAR_POP(size)",
       "population variance"),
    _f("MEDIAN", "aggregate", "aggregate", S(("number",), "float"), "CAST(median({d}{0}){w} AS DOUBLE)",
       "MEDIAN(size)", "the middle value (mean of the two middle ones)"),
    _f("QUANTILE_CONT", "aggregate", "aggregate", S(("number", "number"), "float"),
       "CAST(quantile_cont({d}{0}, {1}){w} AS DOUBLE)", "QUANTILE_CONT(size, 0.9)",
       "interpolated quantile (the second argument a constant in [0, 1])"),
    _f("QUANTILE_DISC", "aggregate", "aggregate", S(("cmp", "number"), "arg0"), None,
       "QUANTILE_DISC(size, 0.9)", "the value at a quantile (a constant in [0, 1])"),
    _f("MODE", "aggregate", "aggregate", S(("cmp",), "arg0"), "mode({d}{0} ORDER BY {0}){w}",
       "MODE(cell_type)",
       "the most frequent value (on a tie, the smallest)"),
    _f("STRING_AGG", "aggregate", "aggregate",
       (S(("string",), "string", lower="string_agg({d}{0}, ',' ORDER BY {0}){w}"),
        S(("string", "string"), "string")),
       "string_agg({d}{0}, {1} ORDER BY {0}){w}", "STRING_AGG(cell_type, ',')",
       "the values joined by a separator (',' by default), in ascending order",
       aliases=("GROUP_CONCAT", "LISTAGG")),
    _f("LIST", "aggregate", "aggregate", S(("T",), "list(T)"), "list({d}{0} ORDER BY {0}){w}",
       "LIST(post_pt_root_id)", "the values as a list, in ascending order", aliases=("ARRAY_AGG",)),
    _f("BOOL_AND", "aggregate", "aggregate", S(("bool",), "bool"), None, "BOOL_AND(size > 10)",
       "whether every value is true"),
    _f("BOOL_OR", "aggregate", "aggregate", S(("bool",), "bool"), None, "BOOL_OR(size > 10)",
       "whether any value is true"),
    _f("ARG_MIN", "aggregate", "aggregate", S(("any", "cmp"), "arg0"), None,
       "ARG_MIN(id, size)", "the first argument of the row with the smallest second one"),
    _f("ARG_MAX", "aggregate", "aggregate", S(("any", "cmp"), "arg0"), None,
       "ARG_MAX(id, size)", "the first argument of the row with the largest second one"),
    # ------------------------------------------------------------------ window functions
    _f("ROW_NUMBER", "window", "window", S((), "int"), None,
       "ROW_NUMBER() OVER (PARTITION BY cell_type ORDER BY id)",
       "1, 2, ... within the partition (ties in ORDER BY broken by the sources' ids)"),
    _f("RANK", "window", "window", S((), "int"), None, "RANK() OVER (ORDER BY size DESC)",
       "rank with gaps after ties"),
    _f("DENSE_RANK", "window", "window", S((), "int"), None,
       "DENSE_RANK() OVER (ORDER BY size DESC)", "rank without gaps"),
    _f("PERCENT_RANK", "window", "window", S((), "float"), None,
       "PERCENT_RANK() OVER (ORDER BY size)", "(rank - 1) / (rows in partition - 1)"),
    _f("CUME_DIST", "window", "window", S((), "float"), None, "CUME_DIST() OVER (ORDER BY size)",
       "share of partition rows up to and including the row's peers"),
    _f("NTILE", "window", "window", S(("int",), "int"), None, "NTILE(4) OVER (ORDER BY size)",
       "bucket number 1..n of about equal size"),
    _f("LAG", "window", "window", S(("T", "int", "T"), "T", optional=2), None,
       "LAG(size, 1, 0) OVER (ORDER BY id)",
       "the value n rows (1 by default) before, or the default"),
    _f("LEAD", "window", "window", S(("T", "int", "T"), "T", optional=2), None,
       "LEAD(size) OVER (ORDER BY id)", "the value n rows (1 by default) after, or the default"),
    _f("FIRST_VALUE", "window", "window", S(("any",), "arg0"), None,
       "FIRST_VALUE(id) OVER (PARTITION BY cell_type ORDER BY id DESC)",
       "the value at the frame's first row"),
    _f("LAST_VALUE", "window", "window", S(("any",), "arg0"), None,
       "LAST_VALUE(id) OVER (ORDER BY size ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)",
       "the value at the frame's last row"),
    _f("NTH_VALUE", "window", "window", S(("any", "int"), "arg0"), None,
       "NTH_VALUE(id, 2) OVER (ORDER BY size)", "the value at the frame's n-th row"),
]

# ------------------------------------------------------------------ identity through time
# Answered by the backend (caveql.identity): folded to constants before analysis when every
# argument is one, else run by DuckDB Python UDFs that ask the statement's resolver, found by
# the cursor's variable `caveql_identity`. `at` reaches a UDF as text: v<version>, t<µs>, n(ow).
_UDF = "caveql_{fn}(CAST({{0}} AS BIGINT), {at}, getvariable('caveql_identity'))"
_AT = {"int": "'v' || CAST({1} AS VARCHAR)",
       "time": "'t' || CAST(epoch_us(CAST({1} AS TIMESTAMP)) AS VARCHAR)",
       "string": "'t' || CAST(epoch_us(CAST({1} AS TIMESTAMPTZ)) AS VARCHAR)"}


def _identity(name: str, first: str, result: str, example: str, doc: str, at: str = "optional"
              ) -> Function:
    """An identity function: ``name(first [, at])``; ``at`` "optional", "required" or "none"."""
    fn = name.lower()
    sigs = [] if at == "required" else [S((first,), result, lower=_UDF.format(fn=fn, at="'n'"))]
    if at != "none":
        sigs += [S((first, k), result, lower=_UDF.format(fn=fn, at=low)) for k, low in _AT.items()]
    return Function(name, "scalar", "identity", tuple(sigs), _UDF.format(fn=fn, at="'n'"), example, doc,
                    backend=True)


_TABLE += [
    _identity("LATEST_ROOTS", "int", "int[]", "LATEST_ROOTS(864691135808473885)",
              "the roots a root id became by `at` (now if omitted; an integer is a version, meaning "
              "its time stamp): itself if still current, empty if made after `at` (get_latest_roots)"),
    _identity("IS_LATEST", "int", "bool", "IS_LATEST(post_pt_root_id, 343)",
              "whether a root id is current at `at` (is_latest_roots); false for an id that was "
              "never a root"),
    _identity("ROOT_AT", "int", "int", "ROOT_AT(post_pt_supervoxel_id, '2023-01-01T00:00:00Z')",
              "the root of a supervoxel at `at` (get_roots); NULL for an unknown supervoxel"),
    _identity("PAST_IDS", "int", "int[]", "PAST_IDS(post_pt_root_id, 343)",
              "the roots at `at` a root id came from (get_past_ids' past_id_map)", at="required"),
    _identity("ROOT_CREATED", "int", "timestamp", "ROOT_CREATED(post_pt_root_id)",
              "when the edit that made a root id happened (get_root_timestamps)", at="none"),
    _identity("ROOT_SUPERSEDED", "int", "timestamp", "ROOT_SUPERSEDED(post_pt_root_id)",
              "when an edit replaced a root id; NULL while it is current "
              "(get_root_timestamps(latest=True))", at="none"),
    _identity("NUCLEUS_ROOT", "int", "int", "NUCLEUS_ROOT(id, 343)",
              "the pt_root_id of a nucleus id in the datastack's soma_table at `at`: a version "
              "reads that version, a timestamp (or now) a live query; NULL if absent"),
]

#: Every function by name and alias (names upper-cased).
FUNCTIONS: dict[str, Function] = {}
for _fn in _TABLE:
    for _name in (_fn.name, *_fn.aliases):
        FUNCTIONS[_name] = _fn

#: Names people reach for that CQL refuses on purpose, with the reason.
UNSUPPORTED: dict[str, str] = {
    "NOW": "NOW() changes from run to run; an answer must not depend on when it ran "
           "(write the timestamp, or bind it as a :param)",
    "CURRENT_TIMESTAMP": "CURRENT_TIMESTAMP changes from run to run (write the timestamp or bind a :param)",
    "TODAY": "TODAY() changes from run to run (write the date or bind a :param)",
    "CURRENT_DATE": "CURRENT_DATE changes from run to run (write the date or bind a :param)",
    "RANDOM": "RANDOM() gives a different answer on every run",
    "UUID": "UUID() gives a different answer on every run",
    "LEFT": "LEFT is a keyword (LEFT JOIN); use SUBSTRING(s, 1, n)",
    "RIGHT": "RIGHT is a keyword (RIGHT JOIN); use SUBSTRING(s, -n)",
    "UNNEST": "UNNEST() changes the number of rows, which a function in an expression cannot",
    "AGE": "AGE() returns an INTERVAL, which CQL has no type for; use DATE_DIFF('day', a, b)",
    "DATE_ADD": "DATE_ADD() needs an INTERVAL, which CQL has no type for; use MAKE_TIMESTAMP or "
                "EPOCH arithmetic",
    "ANY_VALUE": "ANY_VALUE() may pick a different row on every run; use MIN() or ARG_MIN()",
    "FIRST": "FIRST() as an aggregate depends on row order; use ARG_MIN(x, id) or FIRST_VALUE() OVER (...)",
    "LAST": "LAST() as an aggregate depends on row order; use ARG_MAX(x, id) or LAST_VALUE() OVER (...)",
}


def lookup(name: str) -> Function | None:
    """The function called ``name`` (any case), or None."""
    return FUNCTIONS.get(name.upper())


def names(kind: str | None = None) -> list[str]:
    """Every name and alias (of one kind), sorted."""
    return sorted(n for n, f in FUNCTIONS.items() if kind is None or f.kind == kind)


def markdown() -> str:
    """The table as docs/functions.md (a test checks the file equals this)."""
    out = [
        "# CQL functions",
        "",
        "Generated from `caveql/analyze/functions.py` (`python -m caveql.analyze.functions > "
        "docs/functions.md`); a test keeps this file in step with the table.",
        "",
        "Every function runs locally, in DuckDB, over the rows the service returned: the "
        "materialization service evaluates no function (only the plain comparisons, IN, BETWEEN, "
        "regex and IS NULL filters of docs/language.md are pushed). Types: `int`, `float`, "
        "`string`, `bool`, `timestamp`, `date`, lists `T[]`; `number` is int or float, `time` is "
        "timestamp or date, `T` arguments must share a type (int and float mix as float), "
        "`cmp` is any value but a list. NULL is accepted for every argument. A wrong number of "
        "arguments or a wrong argument type is an error at analysis, pointing at the call.",
        "",
        "Every aggregate may also be used as a window function (`SUM(size) OVER (PARTITION BY ...)`).",
        "",
    ]
    titles = {"conditional": "Conditional", "math": "Math", "string": "Strings",
              "time": "Dates and times", "list": "Lists", "aggregate": "Aggregates",
              "window": "Window functions", "identity": "Identity through time (answered by the backend)"}
    for cat, title in titles.items():
        out += [f"## {title}", "",
                "| name | signature | DuckDB | example | meaning |",
                "|---|---|---|---|---|"]
        if cat == "identity":
            out[-2:-2] = ["These ask the datastack's proofreading graph (the ChunkedGraph; locally its "
                          "history) or its soma table, not DuckDB. `at` is a timestamp, or an integer "
                          "version meaning its time stamp; left out, it is now, pinned once per statement. "
                          "A call whose arguments are all constants is evaluated before planning, so its "
                          "value is pushed to the service like a literal (`WHERE pt_root_id IN "
                          "LATEST_ROOTS(...)`); one over columns runs in the local step, one graph call per "
                          "batch of distinct values. A root id that was never a root is an error (CQL017); "
                          "a datastack without a graph cannot run the graph's functions.", ""]
        for fn in _TABLE:
            if fn.category != cat:
                continue
            name = fn.name + (" (" + ", ".join(fn.aliases) + ")" if fn.aliases else "")
            sigs = "<br>".join(f"`{s.text(fn.name)}`" for s in fn.sigs)
            lows = ((s.lower or fn.lower).replace("{d}", "").replace("{w}", "").replace("|", "¦")
                    for s in fn.sigs)
            low = "<br>".join(dict.fromkeys(f"`{x}`" for x in lows))
            ex = fn.example.replace("|", "¦")
            out.append(f"| {name} | {sigs} | {low} | `{ex}` | {fn.doc} |")
        out.append("")
    out += ["## Not supported", "", "| name | why |", "|---|---|"]
    out += [f"| {k} | {v} |" for k, v in UNSUPPORTED.items()]
    return "\n".join(out) + "\n"


if __name__ == "__main__":  # pragma: no cover - regenerates docs/functions.md
    print(markdown(), end="")
