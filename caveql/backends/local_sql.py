"""SQL of the local backend: one QueryRequest → one parameterised DuckDB statement.

The catalog types (:class:`Col`, :class:`Source`) and the statement builder of
:class:`caveql.backends.local.LocalBackend`; see that module for the semantics.

>>> q('pre_pt_root_id')
'"pre_pt_root_id"'
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

import pyarrow as pa

from caveql.backends.base import FILTER_KINDS, QueryRequest
from caveql.errors import ServiceError, did_you_mean

if TYPE_CHECKING:
    from caveql.datastack.layout import VersionEntry

__all__ = ["CRUD_JOIN", "CRUD_SIMPLE", "Builder", "Col", "Source", "Tables", "error", "fields_of", "q",
           "suggest"]

_OPS = {"greater": ">", "less": "<", "greater_equal": ">=", "less_equal": "<="}
CRUD_SIMPLE = ("deleted",)
CRUD_JOIN = ("deleted", "superceded_id")
_MAX_INLINE_IN = 2000  # longer IN lists are bound as one list parameter
_INT64 = (-(2**63), 2**63 - 1)


@dataclass(frozen=True)
class Col:
    """A model column: a plain value, or a position stored as three int columns."""

    name: str
    position: bool
    type: pa.DataType  # output type (a position's component type)
    cast: bool = True  # a position whose stored components are not int32 (so need a CAST)


@dataclass(frozen=True)
class Source:
    """A table or view at one version, as the query builder sees it."""

    name: str
    version: int
    view: bool
    relation: str  # DuckDB relation of the primary copy (a table function or a subquery)
    copies: tuple[tuple[str, str], ...]  # (sort column, relation) of alternative copies
    columns: tuple[Col, ...]
    resolution: tuple[float, float, float]
    remap: bool  # root ids rewritten through a root_id_map
    notice: str | None
    # a live source's stored root ids that can map to given values (local_live.LiveMaps)
    stored: Callable[[str, list[Any]], list[int]] | None = None

    def col(self, name: str) -> Col:
        for c in self.columns:
            if c.name == name:
                return c
        raise error(f"column '{name}' not in table '{self.name}'",
                    hint=suggest(name, [c.name for c in self.columns]), status=500)


def suggest(name: str, choices: Sequence[str]) -> str | None:
    found = did_you_mean(name, choices)
    return f"did you mean {', '.join(repr(f) for f in found)}?" if found else None


def error(message: str, *, hint: str | None = None, status: int = 500) -> ServiceError:
    return ServiceError(message, status=status, detail=message, hint=hint)


def q(name: str) -> str:
    """A quoted SQL identifier (names are checked against the catalog before this)."""
    return '"' + name.replace('"', '""') + '"'


def fields_of(cols: Sequence[Col], rename: Mapping[str, str]) -> list[pa.Field]:
    out: list[pa.Field] = []
    for c in cols:
        name = rename.get(c.name, c.name)
        if c.position:
            out += [pa.field(f"{name}_{a}", pa.int32()) for a in "xyz"]
        else:
            out.append(pa.field(name, c.type))
    return out


def _scale_sql(expr: str, ratio: float, params: list[Any]) -> str:
    """``trunc(v * ratio)`` with the service's arithmetic: PostgreSQL multiplies the integer
    by the ratio's decimal literal exactly (numeric), pandas then goes through float64."""
    exact = Decimal(repr(ratio))
    if exact == Decimal(ratio):  # binary-exact ratio: the double product is the exact one
        params.append(ratio)
        return f"CAST(trunc(CAST({expr} AS DOUBLE) * ${len(params)}) AS INTEGER)"
    scale = max(0, -exact.as_tuple().exponent)  # type: ignore[operator]
    if scale > 18 or exact.adjusted() > 8:
        params.append(ratio)
        return f"CAST(trunc(CAST({expr} AS DOUBLE) * ${len(params)}) AS INTEGER)"
    params.append(str(exact))
    return (f"CAST(trunc(CAST(CAST({expr} AS DECIMAL(10,0)) * CAST(${len(params)} AS "
            f"DECIMAL(28,{scale})) AS DOUBLE)) AS INTEGER)")


class Tables(Protocol):
    """What :class:`Builder` needs of its backend (:class:`caveql.backends.local.LocalBackend`
    is one); a protocol, so this module does not import the backend that imports it."""

    row_cap: int | None
    ignore_notin: bool
    server_compat: bool
    _inverse: dict[tuple[int, str], dict[int, list[int]]]
    _remapped: dict[tuple[int, str], set[int]]

    def live_version(self, timestamp: datetime | None) -> int: ...

    def _version(self, version: int | None) -> VersionEntry: ...

    def _source(self, version: int, name: str, *, view: bool = False) -> Source: ...

    def _live_source(self, version: int, name: str, timestamp: datetime | None) -> Source: ...


class Builder:
    """Turns one QueryRequest into one parameterised DuckDB statement."""

    def __init__(self, backend: Tables, request: QueryRequest, sample_percent: float | None = None) -> None:
        self.b = backend
        self.r = request
        self.params: list[Any] = []
        if sample_percent is not None and not (math.isfinite(sample_percent) and 0 < sample_percent <= 100):
            raise error(f"random sample percentage must be in (0, 100], not {sample_percent!r}")
        self.sample = sample_percent

    def p(self, value: Any) -> str:
        self.params.append(value)
        return f"${len(self.params)}"

    def build(self) -> tuple[str, list[Any], list[pa.Field], tuple[float, float, float],
                             list[str], int | None]:
        r = self.r
        b = self.b
        if r.kind not in ("table", "join", "view", "live"):
            raise error(f"unknown query kind {r.kind!r}")
        if r.kind == "live":
            version = b.live_version(r.timestamp)
        else:
            version = b._version(r.version).version
        names = self._names()
        if r.kind == "live":  # the frozen version's rows with their roots as of the timestamp
            srcs = [b._live_source(version, n, r.timestamp) for n in names]
        else:
            srcs = [b._source(version, n, view=r.kind == "view") for n in names]
        if len(set(names)) != len(names):
            raise error(f"a table appears twice in the query: {names}")
        aliases = {n: f"t{i}" for i, n in enumerate(names)}
        conds, filtered = self._filters(srcs, aliases)
        from_sql = self._from(srcs, aliases, filtered)
        joined = len(srcs) > 1
        desired = self._desired(srcs)
        warnings = [f"Table Owner Notice on {s.name}: {s.notice}".replace("\n", " ")
                    for s in srcs if s.notice]
        where = " AND ".join(conds) if conds else "TRUE"
        if r.count and r.kind in ("table", "view"):
            sql = f"SELECT count(*) AS {q('count')} FROM {from_sql} WHERE {where}"
            return sql, self.params, [pa.field("count", pa.int64())], desired, warnings, None
        proj, fields = self._projection(srcs, aliases, desired, joined)
        keyed = srcs
        if r.kind == "join" and r.join is not None and (r.join[0][1], r.join[1][1]) == ("target_id", "id"):
            # a reference merge: the merged row's id is the target's (the seed's frames), so rows
            # follow it, then the reference's id; a pushed LIMIT then takes the rows an ORDER BY
            # id would (caveql serve puts the target first for caveclient: same rows)
            keyed = [srcs[1], srcs[0]]
        order = ", ".join(f"{aliases[s.name]}.{q('id')}" for s in keyed if any(
            c.name == "id" for c in s.columns))
        limit = self._limit()
        sql = f"SELECT {proj} FROM {from_sql} WHERE {where}"
        # a view without an id is ordered by all its columns, so the answer is deterministic
        sql += f" ORDER BY {order}" if order else " ORDER BY ALL"
        if limit is not None:
            sql += f" LIMIT {self.p(limit)}"
        if r.offset:
            if not isinstance(r.offset, int) or isinstance(r.offset, bool) or r.offset < 0:
                raise error(f"OFFSET must be a non-negative integer, not {r.offset!r}")
            sql += f" OFFSET {self.p(r.offset)}"
        return sql, self.params, fields, desired, warnings, limit

    def _names(self) -> list[str]:
        r = self.r
        if r.kind == "join":
            if r.join is None or len(r.join) != 2 or any(len(j) != 2 for j in r.join):
                raise error("a join needs tables=[[table1, column1], [table2, column2]]")
            return [r.join[0][0], r.join[1][0]]
        if not r.table:
            raise error(f"a {r.kind} query needs a table")
        if r.kind == "live":
            return list(r.tables())
        return [r.table]

    def _limit(self) -> int | None:
        lim = self.r.limit
        if lim is not None and (not isinstance(lim, int) or isinstance(lim, bool) or lim < 0):
            raise error(f"LIMIT must be a non-negative integer, not {lim!r}")
        cap = self.b.row_cap
        if lim is None:
            return cap
        return lim if cap is None else min(lim, cap)

    def _desired(self, srcs: list[Source]) -> tuple[float, float, float]:
        d = self.r.desired_resolution
        if d is None:
            # frozen join: the last table's resolution (§2.6); otherwise the (first) table's
            return srcs[-1].resolution if self.r.kind == "join" else srcs[0].resolution
        try:
            vals = tuple(float(v) for v in d)
        except (TypeError, ValueError) as exc:
            raise error(f"desired_resolution must be three numbers, not {d!r}") from exc
        if len(vals) != 3 or not all(math.isfinite(v) and v > 0 for v in vals):
            raise error(f"desired_resolution must be three positive numbers, not {d!r}")
        return vals  # type: ignore[return-value]

    # -- FROM with the sorted copy that suits the filters ----------------------------------

    def _from(self, srcs: list[Source], aliases: dict[str, str],
              filtered: dict[str, dict[str, set[str]]]) -> str:
        def rel(s: Source) -> str:
            # a copy sorted by a column with an equality/IN filter reads a few row groups; else
            # a copy sorted by a position (its x) when a spatial filter applies; else a copy
            # sorted by a column with a range (its matches are contiguous there, spread elsewhere)
            used = filtered.get(s.name, {})
            for col, relation in s.copies:
                if col in used.get("eq", ()):
                    return relation
            boxes = used.get("box", set())
            if boxes:
                spatial = [(c, r) for c, r in s.copies if any(x.name == c and x.position for x in s.columns)]
                for col, relation in spatial:
                    if col in boxes:
                        return relation
                if spatial:
                    return spatial[0][1]
            for col, relation in s.copies:
                if col in used.get("range", ()):
                    return relation
            return s.relation

        first = srcs[0]
        head = rel(first)
        if self.sample is not None:
            # TABLESAMPLE SYSTEM: blocks of the first table, before the filters and the limit
            head = f"(SELECT * FROM {head} USING SAMPLE {float(self.sample)!r} PERCENT (system))"
        out = f"{head} AS {aliases[first.name]}"
        r = self.r
        if r.kind == "join":
            (t1, c1), (t2, c2) = r.join  # type: ignore[misc]
            s1, s2 = srcs
            k1, k2 = s1.col(c1), s2.col(c2)
            self._check_join_cols(s1, k1, s2, k2)
            out += f" JOIN {rel(s2)} AS t1 ON t0.{q(c1)} = t1.{q(c2)}"
        elif r.kind == "live":
            seen = {first.name}
            by_name = {s.name: s for s in srcs}
            for t1, c1, t2, c2 in r.live_joins:
                for t in (t1, t2):
                    if t not in by_name:
                        raise error(f"join table {t} is not part of the query")
                new = t2 if t2 not in seen else t1
                if new in seen:
                    raise error(f"join [{t1}, {c1}, {t2}, {c2}] joins no new table")
                k1, k2 = by_name[t1].col(c1), by_name[t2].col(c2)
                self._check_join_cols(by_name[t1], k1, by_name[t2], k2)
                out += (f" JOIN {rel(by_name[new])} AS {aliases[new]} ON "
                        f"{aliases[t1]}.{q(c1)} = {aliases[t2]}.{q(c2)}")
                seen.add(new)
        return out

    @staticmethod
    def _check_join_cols(s1: Source, k1: Col, s2: Source, k2: Col) -> None:
        if k1.position or k2.position:
            raise error(f"cannot join on a position column ({s1.name}.{k1.name} = {s2.name}.{k2.name})")
        kinds = {_kind(k1.type), _kind(k2.type)}
        if len(kinds) != 1:
            raise error(f"cannot join {s1.name}.{k1.name} ({k1.type}) to {s2.name}.{k2.name} ({k2.type})")

    # -- projection -------------------------------------------------------------------------

    def _projection(self, srcs: list[Source], aliases: dict[str, str],
                    desired: tuple[float, float, float], joined: bool) -> tuple[str, list[pa.Field]]:
        r = self.r
        chosen: list[tuple[Source, list[Col]]] = []
        sel = r.select_columns
        if sel is not None and not isinstance(sel, Mapping):
            raise error("select_columns must map table names to column lists")
        for key in sel or {}:
            if key not in aliases:
                raise error(f"select_columns names table {key!r}, which is not part of the query",
                            hint=suggest(str(key), list(aliases)))
        for s in srcs:
            if sel is None:
                crud = () if s.view else (CRUD_JOIN if joined else CRUD_SIMPLE)
                chosen.append((s, [c for c in s.columns if c.name not in crud]))
                continue
            wanted = sel.get(s.name, ())
            if isinstance(wanted, str):
                raise error(f"select_columns for {s.name} must be a list of names")
            cols: list[Col] = []
            for name in wanted:
                c = s.col(name) if isinstance(name, str) else s.col(repr(name))
                if c in cols:
                    continue
                # exactly the columns asked for: the seed page's real output (select_columns
                # pt_position, pt_root_id) has no pt_supervoxel_id, although the server source
                # reads as if it added one before a root id (materialization-server.md §2.4)
                cols.append(c)
            chosen.append((s, cols))
        counts: dict[str, int] = {}
        for _s, cols in chosen:
            for c in cols:
                counts[c.name] = counts.get(c.name, 0) + 1
        suffix_map = dict(r.suffix_map or {})
        exprs: list[str] = []
        fields: list[pa.Field] = []
        for idx, (s, cols) in enumerate(chosen):
            a = aliases[s.name]
            suffix = suffix_map.get(s.name, ["x", "y", "z", "xx", "yy", "zz"][idx % 6])
            ratios = [tr / dr for tr, dr in zip(s.resolution, desired, strict=True)]
            scale = any(x != 1.0 for x in ratios)
            for c in cols:
                name = c.name + suffix if counts[c.name] > 1 else c.name
                if c.position:
                    for axis, ratio in zip("xyz", ratios, strict=True):
                        stored = f"{a}.{q(c.name + '_' + axis)}"
                        e = (_scale_sql(stored, ratio, self.params) if scale
                             else f"CAST({stored} AS INTEGER)" if c.cast else stored)
                        exprs.append(f"{e} AS {q(name + '_' + axis)}")
                        fields.append(pa.field(f"{name}_{axis}", pa.int32()))
                else:
                    exprs.append(f"{a}.{q(c.name)} AS {q(name)}")
                    fields.append(pa.field(name, c.type))
        names = [f.name for f in fields]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise error(f"duplicate output columns {dup}: give the tables different suffixes")
        return (", ".join(exprs) if exprs else "NULL AS __none"), fields

    # -- filters -----------------------------------------------------------------------------

    def _filters(self, srcs: list[Source], aliases: dict[str, str]
                 ) -> tuple[list[str], dict[str, dict[str, set[str]]]]:
        """The WHERE conjuncts, and per table the columns filtered by equality/IN (``eq``), a
        box (``box``) or a bound (``range``): they choose the sorted copy to read."""
        conds: list[str] = []
        filtered: dict[str, dict[str, set[str]]] = {}
        by_name = {s.name: s for s in srcs}
        for s in srcs:
            if not s.view:
                conds.append(f"{aliases[s.name]}.{q('valid')} = TRUE" if any(
                    c.name == "valid" for c in s.columns) else "TRUE")
        for kind in FILTER_KINDS:
            spec = getattr(self.r, f"filter_{kind}")
            if not spec:
                continue
            if not isinstance(spec, Mapping):
                raise error(f"filter_{kind}_dict must map table names to {{column: value}}")
            if kind == "notin" and self.b.ignore_notin:
                continue  # the service reads filter_out_dict and so ignores these (§2.3)
            for table, cols in spec.items():
                if table not in by_name:
                    raise error(f"filter_{kind}_dict names table {table!r}, which is not part of "
                                f"the query", hint=suggest(str(table), list(by_name)))
                if not isinstance(cols, Mapping):
                    raise error(f"filter_{kind}_dict[{table!r}] must be a {{column: value}} object")
                s = by_name[table]
                for name, value in cols.items():
                    c = s.col(str(name))
                    conds.append(self._cond(kind, s, aliases[s.name], c, value))
                    use = ("eq" if kind in ("in", "equal") else "box" if kind == "spatial"
                           else "range" if kind in _OPS else None)
                    if use is not None and (use == "box") == c.position:
                        filtered.setdefault(s.name, {}).setdefault(use, set()).add(c.name)
        return conds, filtered

    def _cond(self, kind: str, s: Source, a: str, c: Col, value: Any) -> str:
        col = f"{a}.{q(c.name)}"
        what = f"filter_{kind}_dict {s.name}.{c.name}"
        if kind == "spatial":
            return self._spatial(a, c, value, what)
        if c.position:
            raise error(f"{what}: a position column takes only filter_spatial_dict",
                        hint=f"use a box on {c.name}, e.g. [[x0, y0, z0], [x1, y1, z1]]")
        if kind == "regex":
            if not pa.types.is_string(c.type):
                raise error(f"{what}: regex filters apply to string columns only ({c.type})")
            if not isinstance(value, str):
                raise error(f"{what}: the regex must be a string, not {value!r}")
            if self.b.server_compat:
                # PostgreSQL's `~` (an ARE) lets `.` match a newline; RE2 does not unless told
                value = "(?s)" + value
            return f"regexp_matches({col}, {self.p(value)})"
        if kind in ("in", "notin"):
            if hasattr(value, "tolist") and not isinstance(value, str):
                value = value.tolist()  # numpy arrays, pandas Series
            if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence | set | frozenset):
                raise error(f"{what}: needs a list of values, not {value!r}")
            vals: list[Any] = []
            for v in value:
                ok, conv = self._value(what, c, "equal", v)
                if ok and conv is not None:
                    vals.append(conv)
            if kind == "notin":
                if any(v is None for v in value):
                    return "FALSE"  # x NOT IN (..., NULL) is never true in SQL
                return f"({col} NOT IN {self._in_list(vals)})" if vals else "TRUE"
            if not vals:
                return "FALSE"  # the service renders an empty IN as 1 != 1
            cond = f"({col} IN {self._in_list(vals)}"
            cand = self._stored_candidates(s, c, vals)
            if cand is not None:
                cond += f" AND {a}.{q('__stored_' + c.name)} IN (SELECT unnest({self.p(cand)}))"
            return cond + ")"
        if kind == "equal":
            if value is None:
                return f"{col} IS NULL"
            ok, conv = self._value(what, c, kind, value)
            if not ok:
                return conv  # type: ignore[no-any-return]
            cand = self._stored_candidates(s, c, [conv])
            extra = f" AND {a}.{q('__stored_' + c.name)} IN (SELECT unnest({self.p(cand)}))" if cand else ""
            return f"({col} = {self.p(conv)}{extra})"
        op = _OPS[kind]
        if value is None:
            return "FALSE"  # a comparison with NULL is never true
        ok, conv = self._value(what, c, kind, value)
        if not ok:
            return f"{col} IS NOT NULL" if conv == "NOTNULL" else conv  # type: ignore[no-any-return]
        if isinstance(conv, tuple):  # a non-integral bound on an integer column
            conv, op = conv
        return f"{col} {op} {self.p(conv)}"

    def _in_list(self, vals: list[Any]) -> str:
        if len(vals) <= _MAX_INLINE_IN:
            return "(" + ", ".join(self.p(v) for v in vals) + ")"
        return f"(SELECT unnest({self.p(vals)}))"

    def _stored_candidates(self, s: Source, c: Col, vals: list[Any]) -> list[int] | None:
        """For a remapped root id column: the stored ids that map to ``vals`` (lets the scan
        prune row groups although the rewritten column cannot be pushed down)."""
        key = (s.version, s.name)
        if s.stored is not None and c.name.endswith("_root_id"):
            return s.stored(c.name, vals)
        if not s.remap or not c.name.endswith("_root_id") or key not in self.b._inverse:
            return None
        inv, moved = self.b._inverse[key], self.b._remapped[key]
        out: list[int] = []
        for v in vals:
            if isinstance(v, int):
                if v not in moved:
                    out.append(v)
                out.extend(inv.get(v, ()))
        return out

    def _spatial(self, a: str, c: Col, value: Any, what: str) -> str:
        if not c.position:
            raise error(f"{what}: spatial filters apply to position columns only")
        try:
            (lo, hi) = value
            lo = [_num(_py(v)) for v in lo]
            hi = [_num(_py(v)) for v in hi]
            if len(lo) != 3 or len(hi) != 3:
                raise ValueError
        except (TypeError, ValueError) as exc:
            raise error(f"{what}: a box is [[x0, y0, z0], [x1, y1, z1]], not {value!r}") from exc
        for axis, l, h in zip("xyz", lo, hi, strict=True):
            if not l < h:
                raise error(f"{what}: the box needs min < max on every axis ({axis}: {l} >= {h})")
        return " AND ".join(
            f"{a}.{q(c.name + '_' + axis)} BETWEEN {self.p(l)} AND {self.p(h)}"
            for axis, l, h in zip("xyz", lo, hi, strict=True))

    def _value(self, what: str, c: Col, kind: str, v: Any) -> tuple[bool, Any]:
        """Check ``v`` against the column type. Returns (True, bound value) or
        (False, constant SQL) when the comparison's outcome does not depend on the row."""
        t = c.type
        v = _py(v)
        if v is None:
            return True, None
        if pa.types.is_boolean(t):
            if not isinstance(v, bool):
                raise error(f"{what}: a boolean column compares with true/false, not {v!r}")
            return True, v
        if pa.types.is_string(t):
            if not isinstance(v, str):
                raise error(f"{what}: a string column compares with strings, not {v!r}")
            return True, v
        if pa.types.is_timestamp(t):
            if isinstance(v, str):
                try:
                    v = datetime.fromisoformat(v)
                except ValueError as exc:
                    raise error(f"{what}: not an ISO timestamp: {v!r}") from exc
            if not isinstance(v, datetime):
                raise error(f"{what}: a timestamp column compares with timestamps, not {v!r}")
            return True, (v.astimezone(UTC).replace(tzinfo=None) if v.tzinfo else v)
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise error(f"{what}: a numeric column compares with numbers, not {v!r}")
        if pa.types.is_floating(t):
            return True, float(v) if isinstance(v, float) else v
        return _int_bound(kind, v)


def _py(v: Any) -> Any:
    """numpy/pandas scalars as Python values (the engine passes ids taken from frames)."""
    if type(v).__name__ in ("NAType", "NaTType"):
        return None
    item = getattr(v, "item", None)
    if item is not None and type(v).__module__ == "numpy":
        return item()
    return v


def _num(v: Any) -> float | int:
    if isinstance(v, bool) or not isinstance(v, int | float) or (isinstance(v, float) and math.isnan(v)):
        raise ValueError(v)
    return v


def _kind(t: pa.DataType) -> str:
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return "number"
    return str(t)


def _int_bound(kind: str, v: int | float) -> tuple[bool, Any]:
    """Compare an integer column with ``v`` exactly (never through float64, which would
    merge neighbouring 18-digit root ids). Non-integral and out-of-range values become
    the equivalent integer bound or a constant condition."""
    not_null = "NOTNULL"  # true for every row whose value is not NULL
    if isinstance(v, float):
        if math.isnan(v):
            # PostgreSQL orders NaN above every number
            return (False, "FALSE") if kind in ("equal", "greater", "greater_equal") else (False, not_null)
        if math.isinf(v):
            big = v > 0
            if kind == "equal":
                return False, "FALSE"
            return False, ("FALSE" if (kind in ("greater", "greater_equal")) == big else not_null)
        if not v.is_integer():
            if kind == "equal":
                return False, "FALSE"
            return True, (math.floor(v), ">") if kind in ("greater", "greater_equal") else (
                math.ceil(v), "<")
        v = int(v)
    if _INT64[0] <= v <= _INT64[1]:
        return True, v
    if kind == "equal":
        return False, "FALSE"
    above = v > _INT64[1]
    if kind in ("greater", "greater_equal"):
        return False, "FALSE" if above else not_null
    return False, not_null if above else "FALSE"
