"""Evaluating the identity functions through the backend's segmentation graph.

One :class:`Resolver` per statement run: it pins "now" once, maps version numbers to their
``time_stamp``, asks the graph (:class:`caveql.backends.graph.SegmentationGraph`) one call per
batch of distinct values at one instant, caches the answers, checks them (one value per id, of
the right type) and translates foreign failures into :class:`~caveql.errors.BackendError`.

Column arguments are evaluated by DuckDB Python UDFs (``caveql_latest_roots`` ...), registered
once on the process-wide local database (:func:`register_udfs`). A UDF runs on DuckDB's threads,
where no context variable of the statement is set, so it finds its statement's resolver by name:
the local step sets the cursor's DuckDB variable ``caveql_identity`` to :attr:`Resolver.name`
(:func:`bound` makes the resolver current in the executor's thread and registers its name).
An error inside a UDF comes out of DuckDB wrapped in its own exception; the resolver keeps the
original (:attr:`Resolver.error`) for the executor to raise instead.

The ``at`` argument reaches a UDF as text: ``v<version>``, ``t<microseconds since the epoch>``
(a NULL ``at`` is a NULL text, and the result NULL).

>>> import tempfile
>>> from caveql.backends.local import LocalBackend
>>> from caveql.datastack.tiny import build_tiny
>>> r = Resolver(LocalBackend(build_tiny(tempfile.mkdtemp())))
>>> r.evaluate("LATEST_ROOTS", [905, None], [None, None]), r.evaluate("IS_LATEST", [905], [None])
([[1005, 2001], None], [False])
"""

from __future__ import annotations

import contextvars
import numbers
import secrets
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa

from caveql import cancel
from caveql.backends.base import Backend, QueryRequest
from caveql.backends.local_live import version_time
from caveql.errors import (
    BackendError, CaveqlError, ConfigError, InvalidRootIdError, TruncatedResultError, UnsupportedError,
)

__all__ = [
    "GRAPH_FUNCTIONS", "IDENTITY_FUNCTIONS", "Resolver", "active", "bound", "decode_at", "register_udfs",
    "uses_identity",
]

#: The identity functions (the name each is written with), and those that need the graph.
IDENTITY_FUNCTIONS = ("LATEST_ROOTS", "IS_LATEST", "ROOT_AT", "PAST_IDS", "ROOT_CREATED",
                      "ROOT_SUPERSEDED", "NUCLEUS_ROOT")
GRAPH_FUNCTIONS = IDENTITY_FUNCTIONS[:-1]
#: The DuckDB variable holding the running statement's resolver name (see the module docstring).
VARIABLE = "caveql_identity"
_ROOT_ARG = ("LATEST_ROOTS", "PAST_IDS", "ROOT_CREATED", "ROOT_SUPERSEDED")  # 0 → NULL
_BATCH = 10_000  # ids per NUCLEUS_ROOT request: far below any row cap (one row per nucleus id)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_registry: dict[str, Resolver] = {}
_registry_lock = threading.Lock()
_active: contextvars.ContextVar[Resolver | None] = contextvars.ContextVar("caveql_identity", default=None)

At = int | datetime | None  # a version number, an instant, or None (now)


def decode_at(text: str | None) -> At:
    """The ``at`` a UDF receives as text (``v343``, ``t<µs>``, ``n``: now) as a value.

    >>> decode_at("v343"), decode_at("t0"), decode_at("n")
    (343, datetime.datetime(1970, 1, 1, 0, 0, tzinfo=datetime.timezone.utc), None)
    """
    if text is None or text == "n":
        return None
    if text[0] == "v":
        return int(text[1:])
    if text[0] == "t":
        return _EPOCH + timedelta(microseconds=int(text[1:]))
    raise ValueError(f"bad identity instant {text!r}")


def _graph_missing(fn: str, backend: Backend) -> UnsupportedError:
    return UnsupportedError(
        f"{fn}() needs the segmentation's proofreading graph, and the datastack "
        f"{getattr(backend, 'name', '')!s} has none (no proofreading history / ChunkedGraph)".replace("  ", " "),
        hint="root ids through time need a datastack with a history.parquet, or a service with a ChunkedGraph")


def check_graph(fn: str, backend: Backend) -> None:
    """Raise :class:`UnsupportedError` when ``fn`` needs a graph ``backend`` does not have."""
    if fn in GRAPH_FUNCTIONS and not backend.capabilities.graph:
        raise _graph_missing(fn, backend)


class Resolver:
    """The identity functions of one statement run over ``backend`` (see the module docstring)."""

    def __init__(self, backend: Backend, now: datetime | None = None) -> None:
        self.backend = backend
        self.now = now or datetime.now(UTC)
        self.name = secrets.token_hex(8)
        self.token = cancel.current()  # the UDFs run on DuckDB threads: the statement's token, kept
        self.error: CaveqlError | None = None
        self._graph: Any = None
        self._stamps: dict[int, datetime] = {}
        self._cache: dict[tuple[Any, ...], Any] = {}
        self._lock = threading.RLock()  # DuckDB may call a UDF from several threads at once

    # ------------------------------------------------------------------ context
    def graph(self, fn: str) -> Any:
        """The backend's graph, or :class:`UnsupportedError` naming ``fn``."""
        if self._graph is None:
            check_graph(fn, self.backend)
            g = self._call(fn, self.backend.graph)  # type: ignore[attr-defined]
            if g is None:
                raise _graph_missing(fn, self.backend)
            self._graph = g
        return self._graph

    def instant(self, at: At) -> datetime:
        """``at`` as an aware UTC instant: now (pinned), a version's ``time_stamp``, or itself."""
        if at is None:
            return self.now
        if isinstance(at, datetime):
            return at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)
        if isinstance(at, bool) or not isinstance(at, int):
            raise BackendError(f"an instant must be a version number or a timestamp, not {at!r}")
        got = self._stamps.get(at)
        if got is None:
            versions = self._call("versions", self.backend.versions)
            if at not in versions:
                raise ConfigError(f"version {at} is not available; versions: "
                                  + ", ".join(str(v) for v in sorted(versions)))
            got = version_time(self._call("version_metadata", lambda: self.backend.version_metadata(at)))
            if got is None:
                raise ConfigError(f"version {at} has no time stamp: it cannot name an instant",
                                  hint="give a timestamp instead")
            self._stamps[at] = got
        return got

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        """``fn()`` after a cancellation check; a foreign failure becomes a BackendError."""
        if self.token is not None:
            self.token.check()
        try:
            return fn()
        except CaveqlError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure of a graph or backend call, said in our terms
            raise BackendError(f"the segmentation graph failed answering {what}: {exc}") from exc

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, fn: str, values: Sequence[Any], ats: Sequence[At]) -> list[Any]:
        """``fn`` (an :data:`IDENTITY_FUNCTIONS` name) of each value at each ``at`` (None: now);
        None where the value is None. One graph call per instant and function for the ids not
        yet known."""
        if len(values) != len(ats):
            raise BackendError(f"{fn}(): {len(values)} values but {len(ats)} instants")
        with self._lock:
            out: list[Any] = [None] * len(values)
            groups: dict[Any, list[int]] = {}
            for i, (v, at) in enumerate(zip(values, ats, strict=True)):
                # root id 0 is "no segment" (a nucleus without a cell): NULL, not an invalid id
                if v is not None and not (v == 0 and fn in _ROOT_ARG):
                    groups.setdefault(at, []).append(i)
            for at, rows in groups.items():
                ids = list(dict.fromkeys(int(values[i]) for i in rows))
                key_at = at if isinstance(at, int) and fn == "NUCLEUS_ROOT" else (
                    None if fn in ("ROOT_CREATED", "ROOT_SUPERSEDED") else self.instant(at))
                missing = [x for x in ids if (fn, key_at, x) not in self._cache]
                if missing:
                    for x, ans in zip(missing, self._batch(fn, missing, key_at), strict=True):
                        self._cache[(fn, key_at, x)] = ans
                for i in rows:
                    out[i] = self._cache[(fn, key_at, int(values[i]))]
            return out

    def _batch(self, fn: str, ids: list[int], at: Any) -> list[Any]:
        if fn == "NUCLEUS_ROOT":
            return self._nucleus_roots(ids, at)
        g = self.graph(fn)
        if fn == "IS_LATEST":
            got = self._call("is_latest_roots", lambda: g.is_latest(ids, at))
            return [bool(x) for x in _checked(fn, ids, got, bool)]
        if fn == "ROOT_AT":
            got = self._call("get_roots", lambda: g.roots(ids, at))
            return [int(x) or None for x in _checked(fn, ids, got, int)]
        when = at if fn == "LATEST_ROOTS" else None
        # the roots current then are known and their own latest: the (per-id) states only for the rest
        current = _checked(fn, ids, self._call("is_latest_roots", lambda: g.is_latest(ids, when)), bool)
        others = [x for x, c in zip(ids, current, strict=True) if not c]
        got = _checked(fn, others, self._call("the root states", lambda: g.states(others, when)), object) \
            if others else []
        by_id = dict(zip(others, got, strict=True))
        states = [by_id.get(x) or _Current(x) for x in ids] if fn == "LATEST_ROOTS" or fn == "PAST_IDS" \
            else _checked(fn, ids, self._call("the root states", lambda: g.states(ids, None)), object)
        unknown = [s.root_id for s in states if not s.known]
        if unknown:
            shown = ", ".join(str(x) for x in unknown[:5]) + (", ..." if len(unknown) > 5 else "")
            raise InvalidRootIdError(
                f"{fn}(): root id{'s' if len(unknown) > 1 else ''} {shown} "
                f"{'are' if len(unknown) > 1 else 'is'} not a root id of this datastack at any time",
                root_ids=unknown, hint="a root id comes from a table's *_root_id column; "
                                       "ROOT_AT(supervoxel_id) gives a supervoxel's root")
        if fn == "LATEST_ROOTS":
            return [sorted(int(x) for x in s.latest) for s in states]
        if fn == "ROOT_CREATED":
            return [s.created for s in states]
        if fn == "ROOT_SUPERSEDED":
            return [s.superseded for s in states]
        if fn == "PAST_IDS":
            got = self._call("get_past_ids", lambda: g.past_ids(ids, at))
            if not isinstance(got, dict) or any(x not in got for x in ids):
                raise BackendError(f"{fn}(): the segmentation graph's past ids lack some of the ids asked")
            return [sorted(int(y) for y in got[x]) for x in ids]
        raise BackendError(f"{fn} is not an identity function")

    def _nucleus_roots(self, ids: list[int], at: Any) -> list[int | None]:
        """``pt_root_id`` of each nucleus id in the datastack's soma table: a frozen query at a
        version (``at`` an int), else a live query at the instant."""
        info = self._call("info", self.backend.info)
        soma = info.get("soma_table")
        if not soma:
            raise UnsupportedError("NUCLEUS_ROOT() needs the datastack's soma_table, and its info names none")
        found: dict[int, int | None] = {}
        for start in range(0, len(ids), _BATCH):
            part = ids[start:start + _BATCH]
            common: dict[str, Any] = {"filter_in": {soma: {"id": part}},
                                      "select_columns": {soma: ("id", "pt_root_id")}}
            if isinstance(at, int) and not isinstance(at, bool):
                self.instant(at)  # the version exists (a clear error otherwise)
                req = QueryRequest(kind="table", table=soma, version=at, **common)
            else:
                req = QueryRequest(kind="live", table=soma, timestamp=at, **common)
            res = self._call(f"NUCLEUS_ROOT's query of {soma}", lambda r=req: self.backend.query(r))
            if res.capped:
                raise TruncatedResultError(f"NUCLEUS_ROOT(): the service capped the answer for "
                                           f"{len(part):,} nucleus ids of {soma}")
            t = res.table
            if "id" not in t.column_names or "pt_root_id" not in t.column_names:
                raise BackendError(f"NUCLEUS_ROOT(): the answer for {soma} lacks id or pt_root_id")
            for i, r in zip(t.column("id").to_pylist(), t.column("pt_root_id").to_pylist(), strict=True):
                if i is not None:
                    found[int(i)] = None if r is None or int(r) == 0 else int(r)
        return [found.get(x) for x in ids]


class _Current:
    """The state of a root the graph says is current (known; its own latest root)."""

    known = True

    def __init__(self, root_id: int) -> None:
        self.root_id = root_id
        self.latest = (root_id,)


def _checked(fn: str, ids: Sequence[int], got: Any, kind: type) -> list[Any]:
    """The graph's answer as a list of one ``kind`` value per id, else a BackendError."""
    try:
        vals = list(got)
    except TypeError:
        raise BackendError(f"{fn}(): the segmentation graph answered {type(got).__name__}, not a list") from None
    if len(vals) != len(ids):
        raise BackendError(f"{fn}(): the segmentation graph answered {len(vals)} values for {len(ids)} ids")
    if kind is not object:
        for v in vals:
            is_bool = isinstance(v, (bool, np.bool_))
            if is_bool != (kind is bool) or not (is_bool or isinstance(v, numbers.Integral)):
                raise BackendError(f"{fn}(): the segmentation graph answered {v!r}, not {kind.__name__}")
    return vals


# ---------------------------------------------------------------------- the statement's resolver
def active() -> Resolver | None:
    """The resolver of the statement running in this thread (:func:`bound`), if any."""
    return _active.get()


@contextmanager
def bound(backend: Backend, now: datetime | None = None) -> Iterator[Resolver]:
    """A resolver for one run, current in this thread and findable by name from the UDFs."""
    r = Resolver(backend, now)
    with _registry_lock:
        _registry[r.name] = r
    reset = _active.set(r)
    try:
        yield r
    finally:
        _active.reset(reset)
        with _registry_lock:
            _registry.pop(r.name, None)


def uses_identity(sql: str) -> bool:
    """Whether a local statement calls an identity UDF.

    >>> uses_identity("SELECT caveql_is_latest(x, 'n', getvariable('caveql_identity'))")
    True
    """
    return f"getvariable('{VARIABLE}')" in sql


# ---------------------------------------------------------------------- the DuckDB UDFs
_UDF_TYPES: dict[str, str] = {
    "LATEST_ROOTS": "list", "IS_LATEST": "bool", "ROOT_AT": "int", "PAST_IDS": "list",
    "ROOT_CREATED": "time", "ROOT_SUPERSEDED": "time", "NUCLEUS_ROOT": "int",
}
_ARROW = {"list": pa.list_(pa.int64()), "bool": pa.bool_(), "int": pa.int64(),
          "time": pa.timestamp("us", tz="UTC")}


def udf_name(fn: str) -> str:
    """The DuckDB name of an identity function's UDF.

    >>> udf_name("LATEST_ROOTS")
    'caveql_latest_roots'
    """
    return "caveql_" + fn.lower()


def _udf(fn: str) -> Callable[[pa.Array, pa.Array, pa.Array], pa.Array]:
    def run(values: pa.Array, ats: pa.Array, names: pa.Array) -> pa.Array:
        name = next((n for n in names.to_pylist() if n is not None), None)
        with _registry_lock:
            r = _registry.get(name) if name is not None else None
        if r is None:
            raise RuntimeError(f"{fn}() ran outside a caveql statement")
        try:
            texts = ats.to_pylist()
            # a NULL value or instant gives NULL (the UDFs see NULLs: they may answer NULL too)
            vals = [None if t is None else v for v, t in zip(values.to_pylist(), texts, strict=True)]
            got = r.evaluate(fn, vals, [decode_at(t) for t in texts])
            return pa.array(got, _ARROW[_UDF_TYPES[fn]])
        except CaveqlError as err:
            r.error = r.error or err
            raise
        except (pa.ArrowException, ValueError, TypeError, OverflowError) as exc:
            err = BackendError(f"{fn}(): cannot hand the graph's answer to DuckDB: {exc}")
            err.__cause__ = exc
            r.error = r.error or err
            raise err from exc
    return run


def register_udfs(db: Any) -> None:
    """Register every identity UDF on the DuckDB connection ``db`` (once per database: the
    functions are visible to all its cursors)."""
    from duckdb import list_type
    from duckdb.sqltypes import BIGINT, BOOLEAN, TIMESTAMP_TZ, VARCHAR
    out = {"list": list_type(BIGINT), "bool": BOOLEAN, "int": BIGINT, "time": TIMESTAMP_TZ}
    for fn, kind in _UDF_TYPES.items():
        db.create_function(udf_name(fn), _udf(fn), [BIGINT, VARCHAR, VARCHAR], out[kind], type="arrow",
                           null_handling="special", side_effects=False)
