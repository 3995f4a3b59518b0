"""``.cql`` files: CQL scripts with a header of typed, defaulted parameters.

A ``.cql`` file is a script (statements separated by ``;``, ``--`` and
``/* */`` comments, ``SET`` and ``USE`` allowed) whose leading comment lines
may declare metadata and parameters::

    -- name: inputs onto basket cells
    -- description: synapses from one neuron onto BC-typed cells
    -- param: root_id int = 864691135808473885
    -- param: min_size int = 0
    -- param: ids list[int]                (no default: required)

A parameter is referred to as ``:root_id`` in the statements. Values come from
Python keyword arguments (checked against the declared type), from
``--param name=value`` on the command line (parsed by the type), or from the
default. Parameters the header does not declare may still be passed when the
statements use them (they are bound as given), so a file without a header works
like any script; a name neither declared nor used is an error ("did you mean").

Errors point at ``file:line:column``: a bad header line is a
:class:`~caveql.errors.CqlFileError` with the header's span, and errors from
running the statements carry the file's name and text (line numbers are the
file's own because the whole file is what the engine parses).

>>> f = CqlFile.from_text('''-- param: root_id int = 864691135808473885
... -- param: types list[str] = ('BC', 'MC')
... SELECT * FROM t WHERE pt_root_id = :root_id''', filename="q.cql")
>>> [(p.name, p.type, p.default) for p in f.params]
[('root_id', 'int', 864691135808473885), ('types', 'list[str]', ['BC', 'MC'])]
>>> f.bind({"root_id": "42"}, from_text=True)
{'root_id': 42, 'types': ['BC', 'MC']}
"""

from __future__ import annotations

import ast as pyast
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from caveql.bind import check_names, only_used, used_names
from caveql.errors import CqlFileError, ParameterError, Span

__all__ = ["PARAM_TYPES", "CqlFile", "Param", "coerce_param", "load_cql", "parse_param_value"]

#: Declarable parameter types (``list[T]`` for each scalar ``T`` too).
PARAM_TYPES = ("int", "float", "str", "bool", "timestamp", "any")
_ALIASES = {"string": "str", "text": "str", "integer": "int", "bigint": "int", "double": "float",
            "boolean": "bool", "ids": "list[int]", "datetime": "timestamp"}

_HEADER = re.compile(r"^--\s*(?P<key>[A-Za-z_][A-Za-z0-9_-]*)\s*:\s*(?P<rest>.*?)\s*$")
_PARAM = re.compile(
    r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s+(?P<type>[A-Za-z_][A-Za-z0-9_]*(\[[A-Za-z_]+\])?)"
    r"\s*(=\s*(?P<default>.+))?$"
)
_UNSET = object()


@dataclass(frozen=True)
class Param:
    """A declared parameter: ``name``, ``type`` (``int``, ``list[int]``, ...), optional default."""

    name: str
    type: str
    default: Any = _UNSET
    span: Span | None = field(default=None, compare=False, repr=False)

    @property
    def required(self) -> bool:
        """True when the header gives no default."""
        return self.default is _UNSET


@dataclass(frozen=True)
class CqlFile:
    """A loaded ``.cql`` script: its text, header metadata and declared parameters."""

    text: str
    filename: str | None = None
    meta: Mapping[str, str] = field(default_factory=dict)
    params: tuple[Param, ...] = ()

    @property
    def base_dir(self) -> str | None:
        """The folder the script's file paths are relative to (``FROM 'cells.csv'``): its
        file's, ``None`` (the working directory) for text that has no file.

        >>> q = CqlFile("SELECT 1", filename=os.path.join("queries", "q.cql"))
        >>> q.base_dir == os.path.abspath("queries")
        True
        """
        if not self.filename:
            return None
        return os.path.dirname(os.path.abspath(self.filename))

    @classmethod
    def from_text(cls, text: str, filename: str | None = None) -> CqlFile:
        """Read the header of ``text`` (comment lines before the first statement); a leading
        byte-order mark is dropped."""
        text = text.removeprefix("\ufeff")
        meta: dict[str, str] = {}
        params: list[Param] = []
        offset = 0
        in_block = False
        for lineno, line in enumerate(text.split("\n"), start=1):
            stripped = line.strip()
            start = offset
            offset += len(line) + 1
            if in_block:
                in_block = "*/" not in stripped
                continue
            if not stripped:
                continue
            if stripped.startswith("/*"):
                in_block = "*/" not in stripped[2:]
                continue
            if not stripped.startswith("--"):
                break  # the first statement ends the header
            m = _HEADER.match(stripped)
            if m is None:
                continue
            key = m["key"].lower()
            col = line.index("--") + 1
            if key == "param":
                rest_col = col + stripped.index(m["rest"]) if m["rest"] else col
                span = Span(start + rest_col - 1, start + len(line), lineno, rest_col)
                param = _parse_param(m["rest"], span, text, filename)
                if any(p.name == param.name for p in params):
                    raise CqlFileError(f"parameter '{param.name}' declared twice", span=span,
                                       source=text, filename=filename)
                params.append(param)
            else:
                meta[key] = m["rest"]
        return cls(text=text, filename=filename, meta=meta, params=tuple(params))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> CqlFile:
        """Read a ``.cql`` file (UTF-8; a leading byte-order mark, as Windows editors write, is
        dropped)."""
        name = os.fspath(path)
        try:
            with open(name, encoding="utf-8-sig") as fh:
                text = fh.read()
        except OSError as exc:
            raise CqlFileError(f"cannot read {name}: {exc.strerror or exc}", filename=name) from exc
        except UnicodeDecodeError as exc:
            raise CqlFileError(f"{name} is not UTF-8 text ({exc.reason} at byte {exc.start})",
                               filename=name) from exc
        return cls.from_text(text, filename=name)

    def bind(self, values: Mapping[str, Any], *, from_text: bool = False) -> dict[str, Any]:
        """Parameter values for a run: ``values`` over the defaults, typed.

        ``from_text``: values are command-line strings, parsed by the declared type
        (undeclared ones are parsed as CQL literals). A required parameter with no
        value raises :class:`CqlFileError` pointing at its declaration.

        >>> CqlFile.from_text("-- param: n int\\nSELECT :n").bind({})
        Traceback (most recent call last):
        ...
        caveql.errors.CqlFileError: parameter 'n' has no value and no default (line 1, column 11); help: pass it: --param n=VALUE (or n=... in Python)
        """
        out: dict[str, Any] = {}
        declared = {p.name: p for p in self.params}
        self.check_names(values)
        for p in self.params:
            if p.name in values:
                raw = values[p.name]
                try:
                    out[p.name] = (parse_param_value(raw, p.type) if from_text and isinstance(raw, str)
                                   else coerce_param(raw, p.type))
                except (TypeError, ValueError) as exc:
                    raise CqlFileError(f"parameter '{p.name}': {exc}", span=p.span, source=self.text,
                                       filename=self.filename) from exc
            elif not p.required:
                out[p.name] = p.default
            else:
                raise CqlFileError(f"parameter '{p.name}' has no value and no default", span=p.span,
                                   source=self.text, filename=self.filename,
                                   hint=f"pass it: --param {p.name}=VALUE (or {p.name}=... in Python)")
        for name, raw in values.items():
            if name not in declared:
                if from_text and isinstance(raw, str):
                    try:
                        out[name] = parse_param_value(raw, "any")
                    except ValueError as exc:
                        raise CqlFileError(f"parameter '{name}': {exc}", filename=self.filename) from exc
                else:
                    out[name] = raw
        return out

    def check_names(self, names: Iterable[str]) -> None:
        """Raise :class:`CqlFileError` for a name that the header does not declare and the
        statements do not use: a misspelt ``--param rootid=1`` would otherwise run the file with
        its defaults and exit 0.

        >>> CqlFile.from_text("-- param: root_id int = 1\\nSELECT :root_id", "q.cql").check_names(["rootid"])
        Traceback (most recent call last):
          ...
        caveql.errors.CqlFileError: unknown parameter :rootid: q.cql takes :root_id; help: did you mean :root_id?
        """
        declared = {p.name for p in self.params}
        known = declared | (used_names(self.text) or set())
        try:
            check_names([n for n in names if n not in known], known,
                        where=os.path.basename(self.filename) if self.filename else "the script")
        except ParameterError as err:
            raise CqlFileError(err.message, hint=err.hint, filename=self.filename) from None

    def used(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The entries of ``values`` (as :meth:`bind` made them) that the statements use: a
        declared parameter they never refer to is not passed on.

        >>> f = CqlFile.from_text("-- param: a int = 1\\n-- param: b int = 2\\nSELECT :a")
        >>> f.used(f.bind({}))
        {'a': 1}
        """
        return only_used(self.text, values)


def _parse_param(rest: str, span: Span, text: str, filename: str | None) -> Param:
    m = _PARAM.match(rest)
    if m is None:
        raise CqlFileError("malformed parameter declaration; expected 'name type [= default]'",
                           span=span, source=text, filename=filename,
                           hint="for example: -- param: root_id int = 864691135808473885")
    typ = normalize_type(m["type"])
    if typ is None:
        raise CqlFileError(f"unknown parameter type '{m['type']}'", span=span, source=text,
                           filename=filename,
                           hint="types: " + ", ".join(PARAM_TYPES) + " and list[T]")
    default: Any = _UNSET
    if m["default"] is not None:
        try:
            default = parse_param_value(m["default"], typ)
        except ValueError as exc:
            raise CqlFileError(f"default of '{m['name']}': {exc}", span=span, source=text,
                               filename=filename) from exc
    return Param(m["name"], typ, default, span)


def normalize_type(name: str) -> str | None:
    """The canonical spelling of a parameter type, or ``None`` if unknown.

    >>> normalize_type("INTEGER"), normalize_type("ids"), normalize_type("list[string]"), normalize_type("x")
    ('int', 'list[int]', 'list[str]', None)
    """
    name = name.strip().lower()
    name = _ALIASES.get(name, name)
    if name.startswith("list[") and name.endswith("]"):
        inner = normalize_type(name[5:-1])
        return f"list[{inner}]" if inner is not None and not inner.startswith("list") else None
    if name == "list":
        return "list[any]"
    return name if name in PARAM_TYPES else None


def parse_param_value(text: str, typ: str = "any") -> Any:
    """Parse a command-line / header value by its declared type.

    Integers are parsed exactly (never through float); lists are written
    ``1,2,3``, ``(1, 2, 3)`` or ``[1, 2, 3]``; strings may be quoted.

    >>> parse_param_value("864691135808473885", "int")
    864691135808473885
    >>> parse_param_value("(1, 2,3)", "list[int]"), parse_param_value("BC,MC", "list[str]")
    ([1, 2, 3], ['BC', 'MC'])
    >>> parse_param_value("'BC'"), parse_param_value("12"), parse_param_value("1.5"), parse_param_value("BC")
    ('BC', 12, 1.5, 'BC')
    """
    text = text.strip()
    if typ.startswith("list["):
        inner = typ[5:-1]
        body = text
        if len(body) >= 2 and body[0] + body[-1] in ("()", "[]"):
            body = body[1:-1]
        if not body.strip():
            return []
        return [parse_param_value(part, inner) for part in _split_list(body)]
    if typ == "any":
        if len(text) >= 2 and text[0] + text[-1] in ("()", "[]"):
            return [parse_param_value(p, "any") for p in _split_list(text[1:-1])] if text[1:-1].strip() else []
        for t in ("int", "float"):
            try:
                return parse_param_value(text, t)
            except _NotFinite:
                raise  # a number, but not one CQL can take (not the string 'nan')
            except ValueError:
                pass
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
        if text.lower() == "null":
            return None
        return _unquote(text)
    if typ == "int":
        if not re.fullmatch(r"[+-]?\d+", text):
            raise ValueError(f"{text!r} is not an integer")
        return int(text)
    if typ == "float":
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
        if not math.isfinite(value):  # nan, inf, 1e999: no value CQL can bind (caveql.bind)
            raise _NotFinite(f"{text!r} is not a finite number")
        return value
    if typ == "bool":
        low = text.lower()
        if low in ("true", "t", "yes", "1", "on"):
            return True
        if low in ("false", "f", "no", "0", "off"):
            return False
        raise ValueError(f"{text!r} is not a boolean (true/false)")
    if typ == "timestamp":
        try:
            return datetime.fromisoformat(_unquote(text))
        except ValueError:
            raise ValueError(f"{text!r} is not an ISO-8601 timestamp") from None
    return _unquote(text)


class _NotFinite(ValueError):
    """A number that is NaN or infinite (or overflows a double)."""


def _split_list(body: str) -> list[str]:
    parts, cur, quote = [], [], False
    for ch in body:
        if ch == "'":
            quote = not quote
        if ch == "," and not quote:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts]


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1].replace("''", "'")
    if len(text) >= 2 and text[0] == text[-1] == '"':
        try:
            value = pyast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text[1:-1]
        return str(value)
    return text


def coerce_param(value: Any, typ: str) -> Any:
    """Check a Python value against a declared type (ints stay ints; numpy/pandas accepted).

    >>> coerce_param(3, "float"), coerce_param([1, 2], "list[int]")
    (3.0, [1, 2])
    >>> coerce_param("x", "int")
    Traceback (most recent call last):
    ...
    TypeError: expected int, got str 'x'
    """
    if typ == "any":
        return value
    if typ.startswith("list["):
        if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
            value = [value]
        return [coerce_param(v, typ[5:-1]) for v in _tolist(value)]
    if hasattr(value, "item") and not isinstance(value, list):  # numpy scalars
        value = value.item()
    ok = {
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, int | float) and not isinstance(value, bool),
        "str": isinstance(value, str),
        "bool": isinstance(value, bool),
        "timestamp": isinstance(value, datetime),
    }.get(typ, True)
    if not ok:
        if typ == "timestamp" and isinstance(value, str):
            return parse_param_value(value, "timestamp")
        raise TypeError(f"expected {typ}, got {type(value).__name__} {value!r}")
    return float(value) if typ == "float" else value


def _tolist(value: Any) -> list[Any]:
    if hasattr(value, "tolist"):
        return list(value.tolist())
    return list(value)


def load_cql(path: str | os.PathLike[str]) -> CqlFile:
    """Load a ``.cql`` file (see :class:`CqlFile`).

    >>> import os, tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "q.cql")
    >>> with open(p, "w") as fh: _ = fh.write("-- name: demo\\nSHOW TABLES;\\n")
    >>> load_cql(p).meta
    {'name': 'demo'}
    """
    return CqlFile.load(path)
