"""The user's own data as tables: files (CSV, Parquet, JSON) and DataFrames.

A :class:`LocalTable` is what analysis knows of one: its name as errors and EXPLAIN show it,
its kind, its columns with their CQL types (read cheaply: DuckDB's sniffer or the Parquet
footer) and, when known cheaply, its row count; :meth:`LocalTable.read` gives the rows at
execution. A :class:`LocalTables` is what one statement may use: the tables registered on the
connection (``db.register``, ``caveql --table``, the magic) and the folder file paths are
relative to (the ``.cql`` file's, else the working directory).

>>> import pandas as pd
>>> tables = LocalTables()
>>> t = tables.param("cells", pd.DataFrame({"root_id": [864691135808473885], "kind": ["BC"]}), None)
>>> t.name, t.kind, t.columns, t.rows
(':cells', 'frame', (('root_id', 'int'), ('kind', 'string')), 1)
>>> t.read(["root_id"]).to_pydict()
{'root_id': [864691135808473885]}

Rules (docs/language.md, "Your own data as tables"):

- the format comes from the function (``read_csv``, ``read_parquet``, ``read_json``) or else
  the extension (``.csv``, ``.tsv``, ``.parquet``/``.pq``, ``.json``, ``.jsonl``/``.ndjson``,
  each also ``.gz``); a path is relative to the ``.cql`` file's folder, else the working
  directory; ``~`` is expanded; globs and URLs are refused;
- options are an allow-list (:data:`OPTIONS`), each value checked; ``ignore_errors`` and the
  like that would drop rows silently are not on it;
- integers keep their exact 64-bit values (a CSV column of ids above 2^63 is read as UBIGINT,
  never through a float); a column written as strings stays a string;
- a DataFrame's columns are its columns; a *named* index (``df.set_index("root_id")``) becomes
  a column too (so it is not lost), an unnamed one (a RangeIndex, or what filtering left) is
  dropped; categoricals read as their values.
"""

from __future__ import annotations

import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pyarrow as pa

from caveql.analyze.catalog import arrow_type_name
from caveql.errors import (
    ConfigError,
    CqlSemanticError,
    CqlTypeError,
    ExecutionError,
    ParameterError,
    Span,
)
from caveql.lru import LRU
from caveql.syntax import ast

__all__ = ["OPTIONS", "LocalTable", "LocalTables", "frame_table", "is_table_value", "read_file_table",
           "describe", "registration", "valid_name"]

#: The table functions CQL knows, by the format they read.
FUNCTIONS = {
    "read_csv": "csv", "read_csv_auto": "csv", "read_parquet": "parquet", "parquet_scan": "parquet",
    "read_json": "json", "read_json_auto": "json", "read_ndjson": "json",
}

#: Format by file extension (a trailing ``.gz`` is looked through).
EXTENSIONS = {".csv": "csv", ".tsv": "csv", ".txt": None, ".parquet": "parquet", ".pq": "parquet",
              ".json": "json", ".jsonl": "json", ".ndjson": "json"}

_STR = "a string"
_BOOL = "true or false"
_INT = "a whole number"

#: The options each format takes, passed to DuckDB's reader once checked: name -> (kind, check).
#: Left out on purpose: ``ignore_errors``, ``null_padding``, ``store_rejects`` (rows dropped or
#: padded silently), ``filename``/``hive_partitioning`` (columns that are not in the file).
OPTIONS: dict[str, dict[str, str]] = {
    "csv": {"header": _BOOL, "delim": _STR, "sep": _STR, "quote": _STR, "escape": _STR,
            "skip": _INT, "comment": _STR, "nullstr": _STR, "columns": "column types",
            "dateformat": _STR, "timestampformat": _STR, "compression": _STR,
            "all_varchar": _BOOL, "sample_size": _INT, "decimal_separator": _STR,
            "max_line_size": _INT, "auto_detect": _BOOL, "encoding": _STR},
    "json": {"format": _STR, "columns": "column types", "compression": _STR, "dateformat": _STR,
             "timestampformat": _STR, "sample_size": _INT, "maximum_depth": _INT},
    "parquet": {},
}

_CHOICES = {
    "compression": ("auto", "none", "gzip", "zstd"),
    "format": ("auto", "newline_delimited", "array", "unstructured"),
    "encoding": ("utf-8", "utf-16", "latin-1"),
}

#: Column types a ``columns = 'name type, ...'`` option may give: CQL's names and DuckDB's.
COLUMN_TYPES = {
    "int": "BIGINT", "bigint": "BIGINT", "integer": "BIGINT", "int64": "BIGINT", "ubigint": "UBIGINT",
    "uint64": "UBIGINT", "float": "DOUBLE", "double": "DOUBLE", "real": "DOUBLE", "string": "VARCHAR",
    "varchar": "VARCHAR", "text": "VARCHAR", "bool": "BOOLEAN", "boolean": "BOOLEAN",
    "timestamp": "TIMESTAMP", "timestamptz": "TIMESTAMPTZ", "date": "DATE",
}

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

#: Bytes of file contents kept in memory across statements (a 5,000-cell list is ~100 kB).
CACHE_BYTES = 256 * 1024 * 1024

#: A CSV or JSON file up to this size is read whole when its schema is asked for (one DuckDB
#: pass, not two); a larger one has its schema sniffed then, its rows read at execution.
SMALL_FILE = 8 * 1024 * 1024


@dataclass(frozen=True)
class LocalTable:
    """One table of the user's: a file or a DataFrame (see the module docstring).

    ``name`` is as errors and EXPLAIN show it (``'cells.csv'``, ``:cells``, or a registered
    name); ``kind`` is ``csv``, ``parquet``, ``json`` or ``frame``; ``columns`` pairs each column
    with its CQL type (``int``, ``float``, ``string``, ``bool``, ``timestamp``, ``other``);
    ``schema`` is the Arrow schema :meth:`read` returns; ``path`` the resolved file (files).
    """

    name: str
    kind: str
    columns: tuple[tuple[str, str], ...]
    rows: int | None
    schema: pa.Schema = field(default_factory=lambda: pa.schema([]), compare=False, repr=False)
    path: str | None = None
    _reader: Callable[[], pa.Table] | None = field(default=None, compare=False, repr=False)

    def read(self, columns: Sequence[str] | None = None) -> pa.Table:
        """The rows, with ``columns`` only (all when ``None``), typed as :attr:`schema`.

        An unknown column is an :class:`ExecutionError` naming the table; a file that cannot be
        read (gone, malformed from some line on) one naming the file.

        >>> frame_table("t", pa.table({"a": [1], "b": ["x"]})).read(["b"]).to_pydict()
        {'b': ['x']}
        """
        assert self._reader is not None, "a LocalTable made without a reader"
        table = self._reader()
        if [(f.name, f.type) for f in table.schema] != [(f.name, f.type) for f in self.schema]:
            raise ExecutionError(f"{self.name} changed since the statement was analyzed "
                                 "(its columns or their types differ); run the statement again")
        if columns is None:
            return table
        missing = [c for c in columns if c not in table.column_names]
        if missing:
            raise ExecutionError(f"{self.name} has no column {missing[0]!r}")
        return table.select(list(columns))

    def column_type(self, name: str) -> str | None:
        """The CQL type of column ``name``, or ``None``.

        >>> LocalTable("t", "frame", (("a", "int"),), 0).column_type("a")
        'int'
        """
        for n, t in self.columns:
            if n == name:
                return t
        return None


class LocalTables:
    """The local tables one statement may use: registered ones by name, files, parameters.

    >>> LocalTables(base_dir="/data").base_dir
    PosixPath('/data')
    """

    def __init__(self, registered: Mapping[str, LocalTable | Callable[[], LocalTable]] | None = None,
                 base_dir: str | Path | None = None) -> None:
        # a registered file is a maker, called when a statement names it (so that a file
        # registered and since deleted fails only the statements that read it)
        self.registered: dict[str, LocalTable | Callable[[], LocalTable]] = dict(registered or {})
        self.base_dir = Path(base_dir) if base_dir is not None else None
        self._made: dict[str, LocalTable] = {}

    def get(self, name: str) -> LocalTable | None:
        """The table registered as ``name`` (``db.register``, ``--table``, the magic), or None.

        >>> LocalTables({"cells": LocalTable("cells", "frame", (), 0)}).get("CELLS").name
        'cells'
        """
        key = name if name in self.registered else next(
            (n for n in self.registered if n.lower() == name.lower()), None)  # case-insensitive
        if key is None:
            return None
        if key not in self._made:
            entry = self.registered[key]
            self._made[key] = entry if isinstance(entry, LocalTable) else entry()
        return self._made[key]

    def names(self) -> list[str]:
        """The registered names (for "did you mean").

        >>> LocalTables({"picked": LocalTable("picked", "frame", (), 0)}).names()
        ['picked']
        """
        return list(self.registered)

    def resolve_path(self, path: str, span: Span | None = None) -> Path:
        """``path`` made absolute: ``~`` expanded, else relative to :attr:`base_dir` or the
        working directory. URLs and glob patterns are refused.

        >>> LocalTables(base_dir="/data").resolve_path("q/../cells.csv").as_posix()
        '/data/cells.csv'
        """
        return resolve_path(path, self.base_dir, span)

    def file(self, path: str, function: str | None, options: Mapping[str, Any], span: Span | None,
             *, params: Mapping[str, Any] | None = None) -> LocalTable:
        """The file ``path`` as a table (``FROM 'x.csv'`` / ``FROM read_csv('x.csv', ...)``).

        ``options`` values are Python constants or constant AST expressions (a ``:param`` is
        looked up in ``params``). Errors (unknown format or option, a missing or unreadable
        file) are :class:`CqlSemanticError` at ``span``, naming the file.

        >>> import tempfile
        >>> folder = tempfile.mkdtemp(); _ = Path(folder, "ids.tsv").write_text("id\\tn\\n7\\t1\\n")
        >>> LocalTables(base_dir=folder).file("ids.tsv", None, {}, None).columns
        (('id', 'int'), ('n', 'int'))
        """
        values = {k: _option_value(k, v, params or {}, span) for k, v in dict(options).items()}
        resolved = self.resolve_path(path, span)
        return read_file_table(resolved, function, values, span, shown=f"'{path}'")

    def param(self, name: str, value: Any, span: Span | None) -> LocalTable:
        """The table passed as parameter ``:name`` (a DataFrame or an Arrow table).

        >>> LocalTables().param("ids", pa.table({"id": [1, 2]}), None).rows
        2
        """
        if not is_table_value(value):
            raise ParameterError(
                f"parameter :{name} is used as a table (FROM :{name}) but is "
                f"{_a(type(value).__name__)}; pass a pandas or polars DataFrame or an Arrow table",
                span=span, hint=f"a list of values is used as `x IN :{name}`" if isinstance(
                    value, (list, tuple, set, frozenset)) else None)
        return frame_table(f":{name}", value, span)


def _a(word: str) -> str:
    return ("an " if word[:1].lower() in "aeiou" else "a ") + word


def is_table_value(value: Any) -> bool:
    """Whether ``value`` binds a table: a pandas/polars DataFrame, an Arrow table or batch.

    >>> import pandas as pd
    >>> is_table_value(pd.DataFrame()), is_table_value([1, 2])
    (True, False)
    """
    if isinstance(value, (pa.Table, pa.RecordBatch)):
        return True
    module = type(value).__module__ or ""
    if module.startswith("pandas") and type(value).__name__ == "DataFrame":
        return True
    return module.startswith("polars") and type(value).__name__ == "DataFrame"


# ---------------------------------------------------------------------------- DataFrames

def frame_table(name: str, value: Any, span: Span | None = None) -> LocalTable:
    """A DataFrame or Arrow table as a :class:`LocalTable` called ``name`` (see the module
    docstring for the index rule).

    >>> import pandas as pd
    >>> df = pd.DataFrame({"n": pd.array([1, None], dtype="Int64")},
    ...                   index=pd.Index([10, 20], name="root_id"))
    >>> frame_table("cells", df).columns
    (('root_id', 'int'), ('n', 'int'))
    """
    table = _to_arrow(name, value, span)
    table = _plain(table)
    _check_names(name, table.column_names, span)
    return LocalTable(name, "frame", _cql_columns(table.schema), table.num_rows, table.schema,
                      None, lambda: table)


def _to_arrow(name: str, value: Any, span: Span | None) -> pa.Table:
    if isinstance(value, pa.Table):
        return value
    if isinstance(value, pa.RecordBatch):
        return pa.Table.from_batches([value])
    module = type(value).__module__ or ""
    try:
        if module.startswith("polars"):
            return value.to_arrow()
        return _pandas_arrow(name, value, span)
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise ParameterError(f"{name} cannot be read as a table: {str(exc).splitlines()[0]}",
                             span=span, hint="each column must hold one kind of value "
                                             "(numbers, strings, booleans, timestamps)") from exc


def _pandas_arrow(name: str, df: Any, span: Span | None) -> pa.Table:
    import pandas as pd

    levels = [n for n in df.index.names if n is not None]
    if levels:  # a named index is data the user set: keep it, as a column
        clash = [n for n in levels if n in df.columns]
        if clash:
            raise ParameterError(f"{name} has both an index and a column called {clash[0]!r}",
                                 span=span, hint="reset or rename the index")
        df = df.reset_index(level=levels)
        if len(levels) < df.index.nlevels or not isinstance(df.index, pd.RangeIndex):
            df = df.reset_index(drop=True)
    bad = [c for c in df.columns if not isinstance(c, str)]
    if bad:
        raise ParameterError(f"{name} has a column named {bad[0]!r}, not a string; CQL column "
                             "names are strings", span=span, hint="df.columns = df.columns.astype(str)")
    return pa.Table.from_pandas(df, preserve_index=False)


def _check_names(name: str, columns: Sequence[str], span: Span | None) -> None:
    seen: set[str] = set()
    for c in columns:
        if c == "":
            raise ParameterError(f"{name} has a column with an empty name", span=span)
        if c.lower() in seen:
            raise ParameterError(f"{name} has two columns called {c!r}", span=span)
        seen.add(c.lower())


def _plain(table: pa.Table) -> pa.Table:
    """``table`` with dictionary (categorical) columns decoded and pandas' stored index
    columns dropped, so that its types are the ones the catalog knows."""
    cols, names = [], []
    for f, col in zip(table.schema, table.columns, strict=True):
        if f.name.startswith("__index_level_"):
            continue
        if pa.types.is_dictionary(f.type):
            col = col.cast(f.type.value_type)
        cols.append(col)
        names.append(f.name)
    if len(names) == table.num_columns and all(not pa.types.is_dictionary(t) for t in table.schema.types):
        return table.replace_schema_metadata(None)
    return pa.table(cols, names=names)


def _cql_columns(schema: pa.Schema) -> tuple[tuple[str, str], ...]:
    return tuple((f.name, arrow_type_name(f.type)) for f in schema)


# ---------------------------------------------------------------------------- files

def resolve_path(path: str, base_dir: Path | None, span: Span | None = None) -> Path:
    """``path`` as an absolute path (see :meth:`LocalTables.resolve_path`).

    >>> resolve_path("cells.csv", Path("/data/queries")).as_posix()
    '/data/queries/cells.csv'
    """
    if re.match(r"[A-Za-z][A-Za-z0-9+.-]+://", path):
        raise CqlSemanticError(f"'{path}' is a URL; only local files can be read as tables",
                               span=span, hint="download it first")
    if any(ch in path for ch in "*?["):
        raise CqlSemanticError(f"'{path}': glob patterns are not supported; name one file",
                               span=span)
    if not path.strip():
        raise CqlSemanticError("an empty file name", span=span)
    p = Path(os.path.expanduser(path))
    if not p.is_absolute():
        p = (base_dir if base_dir is not None else Path.cwd()) / p
    return Path(os.path.normpath(p))


def file_format(path: Path, function: str | None) -> str | None:
    """The format of ``path``: the function's, else its extension's (``None``: unknown).

    >>> file_format(Path("a.csv.gz"), None), file_format(Path("a.txt"), "read_csv")
    ('csv', 'csv')
    """
    if function is not None:
        return FUNCTIONS.get(function.lower())
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    return EXTENSIONS.get(suffixes[-1]) if suffixes else None


def read_file_table(path: Path, function: str | None, options: Mapping[str, Any],
                    span: Span | None = None, shown: str | None = None) -> LocalTable:
    """The file at ``path`` (absolute) as a :class:`LocalTable`; its schema is read now, its
    rows by :meth:`LocalTable.read` (cached by path, size and modification time).

    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "cells.csv"
    >>> _ = p.write_text("root_id,kind\\n18446744073709551615,BC\\n")
    >>> t = read_file_table(p, None, {})
    >>> t.columns, t.read().column("root_id").to_pylist()
    ((('root_id', 'int'), ('kind', 'string')), [18446744073709551615])
    """
    shown = shown or f"'{path}'"
    if function is not None and function.lower() not in FUNCTIONS:
        raise CqlSemanticError(f"unknown table function {function}; CQL reads files with "
                               + ", ".join(sorted({"read_csv", "read_parquet", "read_json"})),
                               span=span)
    fmt = file_format(path, function)
    if fmt is None:
        raise CqlSemanticError(f"cannot tell the format of {shown} from its extension", span=span,
                               hint=f"name it: read_csv({shown}), read_parquet({shown}) or "
                                    f"read_json({shown})")
    opts = _check_options(fmt, function, path, options, span, shown)
    stat = _stat(path, span, shown)
    key = (str(path), stat.st_size, stat.st_mtime_ns, fmt, repr(sorted(opts.items())))
    schema, rows = _CACHE.schema(key, lambda: _describe(path, fmt, opts, span, shown, key))

    def reader() -> pa.Table:
        try:
            now = path.stat()
        except OSError as exc:
            raise ExecutionError(f"cannot read {shown}: {exc.strerror or exc}") from exc
        key_now = (str(path), now.st_size, now.st_mtime_ns, fmt, key[4])
        return _CACHE.rows(key_now, lambda: _read(path, fmt, opts, shown))

    return LocalTable(shown, fmt, _cql_columns(schema), rows, schema, str(path), reader)


def _stat(path: Path, span: Span | None, shown: str) -> os.stat_result:
    try:
        stat = path.stat()
    except FileNotFoundError:
        near = f" (looked in {path.parent})" if path.parent else ""
        raise CqlSemanticError(f"no file {shown}{near}", span=span,
                               hint="paths are relative to the .cql file's folder, else the "
                                    "working directory") from None
    except OSError as exc:
        raise CqlSemanticError(f"cannot read {shown}: {exc.strerror or exc}", span=span) from None
    if not path.is_file():
        raise CqlSemanticError(f"{shown} is not a file", span=span)
    if not os.access(path, os.R_OK):
        raise CqlSemanticError(f"cannot read {shown}: permission denied", span=span)
    if stat.st_size == 0:  # (DuckDB would make up a column of no rows)
        raise CqlSemanticError(f"{shown} is empty", span=span)
    return stat


def _option_value(name: str, value: Any, params: Mapping[str, Any], span: Span | None) -> Any:
    # (resolve's constant_value is not imported: resolve uses this module)
    if isinstance(value, (ast.Integer, ast.Float, ast.String, ast.Boolean)):
        return value.value
    if isinstance(value, ast.Null):
        return None
    if isinstance(value, ast.Param):
        if value.name not in params:
            raise ParameterError(f"parameter :{value.name} has no value", span=value.span or span)
        return params[value.name]
    if isinstance(value, ast.Unary) and value.op == "-" and isinstance(value.operand, ast.Integer):
        return -value.operand.value
    if isinstance(value, ast.Node):
        raise CqlTypeError(f"the option {name} takes a constant", span=getattr(value, "span", None) or span)
    return value


def _check_options(fmt: str, function: str | None, path: Path, options: Mapping[str, Any],
                   span: Span | None, shown: str) -> dict[str, Any]:
    allowed = OPTIONS[fmt]
    out: dict[str, Any] = {}
    reader = function or f"read_{fmt}"
    for raw, value in options.items():
        name = raw.lower()
        kind = allowed.get(name)
        if kind is None:
            have = ", ".join(sorted(allowed)) if allowed else "no options"
            raise CqlSemanticError(f"{reader} has no option {raw}; it takes {have}", span=span)
        if value is None:
            raise CqlTypeError(f"the option {raw} of {reader} takes {kind}, not NULL", span=span)
        if kind == _BOOL:
            ok = isinstance(value, bool)
        elif kind == _INT:
            ok = isinstance(value, int) and not isinstance(value, bool) and value >= -1
        elif kind == _STR:
            ok = isinstance(value, str)
        else:
            value, ok = _column_types(raw, value, span), True
        if not ok:
            raise CqlTypeError(f"the option {raw} of {reader} takes {kind}, not {value!r}", span=span)
        if name in _CHOICES and value.lower() not in _CHOICES[name]:
            raise CqlSemanticError(f"the option {raw} of {reader} is one of "
                                   + ", ".join(repr(c) for c in _CHOICES[name]), span=span)
        if name in ("delim", "sep", "quote", "escape") and not 1 <= len(value.encode()) <= 4:
            raise CqlSemanticError(f"the option {raw} of {reader} takes 1 to 4 characters", span=span)
        out["delim" if name == "sep" else name] = value
    if function is None and fmt == "csv" and ".tsv" in [s.lower() for s in path.suffixes]:
        out.setdefault("delim", "\t")
    if function and function.lower() == "read_ndjson":
        out.setdefault("format", "newline_delimited")
    return out


def _column_types(raw: str, value: Any, span: Span | None) -> dict[str, str]:
    """A ``columns`` option: a mapping, or the string ``'name type, name type'``."""
    if isinstance(value, str):
        pairs = []
        for part in value.split(","):
            bits = part.split()
            if len(bits) != 2:
                raise CqlSemanticError(f"the option {raw} is 'name type, name type, ...', not "
                                       f"{value!r}", span=span)
            pairs.append((bits[0], bits[1]))
    elif isinstance(value, Mapping):
        pairs = [(str(k), str(v)) for k, v in value.items()]
    else:
        raise CqlTypeError(f"the option {raw} is 'name type, name type, ...'", span=span)
    out: dict[str, str] = {}
    for n, t in pairs:
        duck = COLUMN_TYPES.get(t.lower())
        if duck is None:
            raise CqlSemanticError(f"unknown column type {t!r} in the option {raw}; use one of "
                                   + ", ".join(sorted(COLUMN_TYPES)), span=span)
        out[n] = duck
    if not out:
        raise CqlSemanticError(f"the option {raw} names no column", span=span)
    return out


# ---------------------------------------------------------------------------- DuckDB and Arrow

_DB: Any = None
_DB_LOCK = threading.Lock()


def _cursor() -> Any:
    global _DB
    import duckdb

    with _DB_LOCK:
        if _DB is None:
            _DB = duckdb.connect(":memory:")
            _DB.execute("SET GLOBAL TimeZone = 'UTC'")
        return _DB.cursor()


def _scan(fmt: str, opts: Mapping[str, Any]) -> tuple[str, list[Any]]:
    """``read_csv($1, name := $2, ...)``: option names are from the allow-list, values bound."""
    args, values = ["$1"], []
    for i, (k, v) in enumerate(sorted(opts.items()), start=2):
        args.append(f"{k} = ${i}")
        values.append(v)
    return f"read_{fmt}({', '.join(args)})", values


def _duck_failure(exc: Exception, shown: str) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    first = re.sub(r"^[A-Za-z ]*Error: ", "", first)
    if first.startswith("Error when sniffing file"):
        return (f"cannot read {shown}: its delimiter, quoting or header could not be told "
                "(is it a CSV file? read_csv(..., delim = ',', header = true) names them)")
    csv = re.match(r"CSV Error on Line: (\d+)", first)
    if csv:  # DuckDB says the line first and why on a later line
        why = next((ln.strip() for ln in text.splitlines()[1:]
                    if ln.strip() and not ln.startswith(("Original Line", " "))), "")
        return f"cannot read {shown} (line {csv.group(1)}): {why or first}"
    js = re.match(r'Malformed JSON in file ".*", at byte \d+ in line (\d+): (.*)$', first)
    if js:
        return f"cannot read {shown} (line {js.group(1)}): malformed JSON: {js.group(2)}"
    line = re.search(r"\bline (\d+)", text, flags=re.IGNORECASE)
    where = f" (line {line.group(1)})" if line and f"line {line.group(1)}" not in first else ""
    return f"cannot read {shown}{where}: {first}"


def _describe(path: Path, fmt: str, opts: Mapping[str, Any], span: Span | None, shown: str,
              key: tuple[Any, ...] | None = None) -> tuple[pa.Schema, int | None]:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            meta = pq.ParquetFile(path)
            schema = meta.schema_arrow
            rows = meta.metadata.num_rows
        except (pa.ArrowException, OSError) as exc:
            raise CqlSemanticError(f"cannot read {shown}: {str(exc).splitlines()[0]}", span=span,
                                   hint="is it a Parquet file?") from exc
        return _plain_schema(schema), rows
    import duckdb

    if key is not None and path.stat().st_size <= SMALL_FILE:
        # one pass instead of two (DuckDB sniffs again on every scan): read the rows now, for
        # read() to find in the cache
        try:
            table = _CACHE.rows(key, lambda: _read(path, fmt, opts, shown))
        except ExecutionError as err:
            raise CqlSemanticError(err.message, span=span) from err
        _check_names(shown, table.column_names, span)
        return table.schema, None
    scan, values = _scan(fmt, opts)
    con = _cursor()
    try:
        schema = con.sql(f"SELECT * FROM {scan} LIMIT 0", params=[str(path), *values]
                         ).to_arrow_table().schema
    except duckdb.Error as exc:
        raise CqlSemanticError(_duck_failure(exc, shown), span=span) from exc
    finally:
        con.close()
    fields = [pa.field(f.name, _exact_int(f.type)) for f in schema]
    _check_names(shown, [f.name for f in fields], span)
    return pa.schema(fields), None


def _exact_int(t: pa.DataType) -> pa.DataType:
    # DuckDB's sniffer reads integers beyond int64 as HUGEINT (Arrow decimal128(38, 0)); ids
    # are 64-bit: read them as UBIGINT, exactly (a value outside it is an error at read)
    if pa.types.is_decimal(t) and t.scale == 0 and t.precision == 38:
        return pa.uint64()
    return t


def _plain_schema(schema: pa.Schema) -> pa.Schema:
    return pa.schema([pa.field(f.name, f.type.value_type if pa.types.is_dictionary(f.type) else f.type)
                      for f in schema if not f.name.startswith("__index_level_")])


def _read(path: Path, fmt: str, opts: Mapping[str, Any], shown: str) -> pa.Table:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            return _plain(pq.read_table(path))
        except (pa.ArrowException, OSError) as exc:
            raise ExecutionError(f"cannot read {shown}: {str(exc).splitlines()[0]}") from exc
    import duckdb

    from caveql import cancel

    scan, values = _scan(fmt, opts)
    con = _cursor()
    try:
        with cancel.on_cancel(con.interrupt):
            cancel.check()
            table = con.sql(f"SELECT * FROM {scan}", params=[str(path), *values]).to_arrow_table()
    except duckdb.InterruptException as exc:
        from caveql.errors import CancelledError

        raise CancelledError(f"the statement was cancelled while reading {shown}") from exc
    except duckdb.Error as exc:
        raise ExecutionError(_duck_failure(exc, shown)) from exc
    finally:
        con.close()
    return _exact_ints(table, shown)


def _exact_ints(table: pa.Table, shown: str) -> pa.Table:
    """HUGEINT columns (integers beyond int64) as uint64, exactly, or an error naming the column."""
    for i, f in enumerate(table.schema):
        if _exact_int(f.type) != f.type:
            try:
                col = table.column(i).cast(pa.uint64())
            except pa.ArrowInvalid as exc:
                raise ExecutionError(f"cannot read {shown}: column {f.name!r} holds integers that do "
                                     "not fit 64 bits (ids are 64-bit)") from exc
            table = table.set_column(i, pa.field(f.name, pa.uint64()), col)
    return table


class _Cache:
    """Schemas and rows of files by (path, size, mtime, format, options); rows up to
    :data:`CACHE_BYTES`, least recently used dropped first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._schemas: LRU[tuple[pa.Schema, int | None]] = LRU(256)
        self._rows: OrderedDict[tuple[Any, ...], pa.Table] = OrderedDict()

    def schema(self, key: tuple[Any, ...], make: Callable[[], tuple[pa.Schema, int | None]]
               ) -> tuple[pa.Schema, int | None]:
        return self._schemas.get_or_make(key, make)

    def rows(self, key: tuple[Any, ...], make: Callable[[], pa.Table]) -> pa.Table:
        with self._lock:
            if key in self._rows:
                self._rows.move_to_end(key)
                return self._rows[key]
        table = make()
        with self._lock:
            self._rows[key] = table
            while len(self._rows) > 1 and sum(t.nbytes for t in self._rows.values()) > CACHE_BYTES:
                self._rows.popitem(last=False)
        return table

    def clear(self) -> None:
        self._schemas.clear()
        with self._lock:
            self._rows.clear()


_CACHE = _Cache()


def registration(name: str, data: Any, options: Mapping[str, Any] | None = None, *,
                 function: str | None = None, base_dir: str | Path | None = None
                 ) -> LocalTable | Callable[[], LocalTable]:
    """What registering ``data`` as ``name`` keeps: a DataFrame's or Arrow table's rows as they
    are now; for a file path (relative to ``base_dir``, else the working directory), a maker that
    reads its schema again at each statement (cheap: cached while the file is unchanged). The
    file is checked now: a missing or unreadable one fails here, naming it.

    >>> import pandas as pd
    >>> registration("picked", pd.DataFrame({"root_id": [1, 2]})).rows
    2
    """
    if not valid_name(name):
        raise ConfigError(f"{name!r} cannot name a table: use letters, digits and _ "
                          "(not starting with a digit)")
    options = dict(options or {})
    if is_table_value(data):
        if options or function:
            raise ConfigError(f"options ({', '.join(options) or 'function'}) apply to files, not to "
                              f"a {type(data).__name__}")
        return frame_table(name, data)
    if not isinstance(data, (str, os.PathLike)):
        raise ConfigError(f"cannot register {_a(type(data).__name__)} as a table: give a pandas or "
                          "polars DataFrame, an Arrow table, or the path of a CSV, Parquet or JSON file")
    text = os.fspath(data)
    path = resolve_path(text, Path(base_dir) if base_dir is not None else None)
    checked = {k: _option_value(k, v, {}, None) for k, v in options.items()}

    def make() -> LocalTable:
        found = read_file_table(path, function, checked, None, shown=f"'{text}'")
        return replace(found, name=name)

    make()  # fails now for a missing file or a bad option
    return make


def describe(tables: LocalTables, name: str) -> str:
    """A line saying what the registered table ``name`` is (``\\tables``, ``registered()``).

    >>> import pandas as pd
    >>> describe(LocalTables({"t": frame_table("t", pd.DataFrame({"a": [1]}))}), "t")
    'a frame: 1 row, columns a int'
    """
    from caveql.errors import CaveqlError

    try:
        t = tables.get(name)
    except CaveqlError as err:
        return f"unreadable: {err.message}"
    if t is None:
        return "not registered"
    cols = ", ".join(f"{n} {typ}" for n, typ in t.columns)
    rows = "" if t.rows is None else f"{t.rows:,} row{'s' if t.rows != 1 else ''}, "
    what = "a frame" if t.kind == "frame" else f"{t.kind} file {t.path}"
    return f"{what}: {rows}columns {cols}"


def valid_name(name: str) -> bool:
    """Whether ``name`` can name a registered table (an identifier).

    >>> valid_name("cells"), valid_name("my cells")
    (True, False)
    """
    return bool(_NAME.match(name))
