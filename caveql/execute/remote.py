"""Running remote calls completely: key batches, id-range splits, parallel requests.

A call whose keys come from an earlier result gets them as IN filters in batches
of at most ``max_in_batch``. A request that may pass the backend's row cap is
counted first (``count=True``) and split by ``id`` ranges until every piece fits;
an answer that still comes back capped (``Warning: 201``, or as many rows as the
cap) is split again, and where it cannot be split a :class:`TruncatedResultError`
is raised — never a silently short answer. Never by offset: the service does not
order rows.

The cap notice names the limit the service applied. Below the limit a request asked
for (or without one) it is the deployment's row cap; when that is below the cap the
plan was made for, :class:`RowCapLearned` stops the run so that the statement is
planned again for the real cap (a limit pushed to the service may no longer fit, the
splits must be smaller): an answer cut short is never taken as whole.

>>> batches([1, 2, 3, 4, 5], 2)
[[1, 2], [3, 4], [5]]
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pyarrow as pa

from caveql import cancel
from caveql.backends.base import Backend, Capabilities, QueryRequest, QueryResult
from caveql.backends.endpoints import cap_notice, cut_at_cap
from caveql.errors import ExecutionError, TransportError, TruncatedResultError
from caveql.plan.physical import RemoteCall

__all__ = ["CallStats", "RowCapLearned", "batches", "run_call", "split_candidates"]

_I64 = (-(2**63), 2**63)  # half-open id range covering every int64
_MAX_DEPTH = 80


class RowCapLearned(Exception):  # noqa: N818 - a signal to the executor, not an error
    """An answer was cut at ``cap`` rows, below the row cap the plan assumed: plan again.

    >>> RowCapLearned(1000).cap
    1000
    """

    def __init__(self, cap: int) -> None:
        super().__init__(f"the service caps answers at {cap:,} rows")
        self.cap = cap


def batches(values: Sequence[Any], size: int) -> list[list[Any]]:
    """``values`` cut into lists of at most ``size``."""
    size = max(1, size)
    return [list(values[i:i + size]) for i in range(0, len(values), size)]


class CallStats:
    """Rows, bytes, requests and milliseconds of one call (thread-safe enough: += under the GIL
    on distinct attributes from worker threads is guarded by the executor's lock)."""

    def __init__(self) -> None:
        import threading
        self.lock = threading.Lock()
        self.rows = 0
        self.bytes = 0
        self.requests = 0
        self.ms = 0.0

    def add(self, res: QueryResult) -> None:
        with self.lock:
            self.requests += 1
            self.bytes += res.bytes_read or res.table.nbytes

    def as_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "bytes": self.bytes, "requests": self.requests, "ms": self.ms}


def _with_in(req: QueryRequest, table: str, column: str, values: list[Any]) -> QueryRequest:
    f = {t: dict(c) for t, c in req.filter_in.items()}
    f.setdefault(table, {})[column] = list(values)
    return replace(req, filter_in=f)


def _with_range(req: QueryRequest, table: str, column: str, lo: int, hi: int) -> QueryRequest:
    ge = {t: dict(c) for t, c in req.filter_greater_equal.items()}
    lt = {t: dict(c) for t, c in req.filter_less.items()}
    cur_lo = ge.get(table, {}).get(column)
    cur_hi = lt.get(table, {}).get(column)
    new_lo = lo if cur_lo is None else max(lo, cur_lo)
    new_hi = hi if cur_hi is None else min(hi, cur_hi)
    if new_lo > _I64[0]:
        ge.setdefault(table, {})[column] = new_lo
    if new_hi < _I64[1]:
        lt.setdefault(table, {})[column] = new_hi
    return replace(req, filter_greater_equal=ge, filter_less=lt)


class _Runner:
    def __init__(self, backend: Backend, call: RemoteCall, caps: Capabilities, stats: CallStats,
                 pool: ThreadPoolExecutor | None) -> None:
        self.backend = backend
        self.call = call
        self.caps = caps
        self.stats = stats
        self.pool = pool
        # requests a split may still make: granted from the counts that start each split, so a
        # damaged or inconsistent count cannot turn one request into thousands
        self.budget: int | None = None

    def query(self, req: QueryRequest) -> QueryResult:
        cancel.check()  # before every request: a cancelled statement sends no more
        if self.budget is not None and self.stats.requests >= self.budget:
            raise TransportError(
                f"splitting {self.call.label} on {self.call.alias} took {self.stats.requests:,} requests, "
                f"more than its counts allow: the service's counts do not add up",
                hint="run the statement again; if it repeats, the service is answering inconsistently")
        res = self.backend.query(req)
        self.stats.add(res)
        cut = cut_at_cap(req, res.warnings)
        if cut is not None and (self.caps.row_cap is None or cut < self.caps.row_cap):
            raise RowCapLearned(cut)  # the plan's splits and pushed limit assume a larger cap
        return res

    def countable(self, req: QueryRequest) -> bool:
        """Whether :meth:`count` can size this request (a join only if it splits on its first table)."""
        if not self.caps.count or req.kind not in ("table", "view", "join"):
            return False
        if req.kind == "join":
            # the first table's count bounds the join's rows; it is only a useful bound when
            # no filter narrows the second table (else fetch and look)
            first = req.join[0][0] if req.join is not None else None
            return first is not None and self.call.id_column is not None \
                and self.call.id_column[0] == first \
                and all(set(f) <= {first} for f in req.filters().values())
        return True

    def count(self, req: QueryRequest) -> int:
        """Rows of ``req``; for a join, an upper bound: the rows of its first table that pass that
        table's filters (each joins at most one row of the second, keyed by its unique id)."""
        if req.kind == "join" and req.join is not None:
            first = req.join[0][0]
            only = {f"filter_{k}": {first: v[first]} for k, v in req.filters().items() if first in v}
            req = QueryRequest(kind="table", table=first, version=req.version, **only)
        res = self.query(replace(req, count=True, limit=None, offset=None, select_columns=None))
        t = res.table
        if t.num_rows != 1 or "count" not in t.column_names:
            raise ExecutionError(f"the backend answered a count request with {t.num_rows} rows")
        n = t.column("count")[0].as_py()
        if not isinstance(n, int) or n < 0:
            raise TransportError(f"the backend counted {n!r} rows of {self.call.alias}: a count cannot be that")
        return n

    def _grant(self, n: int) -> None:
        """Allow the requests splitting ``n`` rows takes: per ~70% of a cap, a count and a fetch,
        and a sample, halvings and empty ranges on the way (a healthy split uses far fewer)."""
        cap = self.caps.row_cap or 1
        with self.stats.lock:
            self.budget = (self.budget if self.budget is not None else self.stats.requests) \
                + 64 + 8 * (n // cap + 1)

    def _allow(self, k: int) -> None:
        """Allow ``k`` more requests once a split has started the budget: for the count and fetch
        of each IN-list half and each batch, which the request's own size bounds (not a count)."""
        with self.stats.lock:
            if self.budget is not None:
                self.budget += k

    def _capped(self, req: QueryRequest, res: QueryResult) -> bool:
        """Whether rows of ``req`` are missing from ``res`` (the service cut it at its cap)."""
        if req.count:
            return False  # a count answer is one row
        if cut_at_cap(req, res.warnings) is not None:
            return True
        rows = res.table.num_rows
        short = req.limit is None or rows < req.limit  # else it stopped at the limit we asked for
        if cap_notice(res.warnings) is None and res.capped:
            return short  # a cap notice without its number
        cap = self.caps.row_cap
        # a backend that does not say: an answer of the cap's size may have been cut
        return cap is not None and rows >= cap and short

    def complete(self, req: QueryRequest, depth: int = 0) -> list[pa.Table]:
        """Every row of ``req``, in as many requests as the row cap needs."""
        if depth == 0:
            self._allow(2)  # a batch of a long IN list, begun after another batch split
        cap = self.caps.row_cap
        if cap is None or req.count:  # a count answer is one row
            res = self.query(req)  # (a cap notice with its number has raised RowCapLearned)
            if self._capped(req, res):
                raise TruncatedResultError(
                    f"the backend capped the answer of {self.call.label} on {self.call.alias} without "
                    f"saying at how many rows", hint="add filters that select fewer rows")
            return [res.table]
        if self.call.may_exceed_cap and self.countable(req) \
                and req.limit is None:
            # a request on a table bigger than the cap: a count is far cheaper than a capped
            # fetch thrown away, so count first and split before fetching
            n = self.count(req)
            if n >= cap:
                return self.split(req, depth, n)
        res = self.query(req)
        if not self._capped(req, res):
            return [res.table]
        return self.split(req, depth)

    def split(self, req: QueryRequest, depth: int, n: int | None = None) -> list[pa.Table]:
        if depth >= _MAX_DEPTH:
            raise TruncatedResultError(f"a request on {self.call.alias} still reaches the row cap "
                                       f"after {depth} splits")
        # a long IN list halves first; then id ranges
        for t, cols in req.filter_in.items():
            for col, vals in cols.items():
                if len(vals) > 1:
                    mid = len(vals) // 2
                    self._allow(4)  # each half: a count and a fetch
                    return (self.complete(_with_in(req, t, col, vals[:mid]), depth + 1)
                            + self.complete(_with_in(req, t, col, vals[mid:]), depth + 1))
        if self.call.id_column is None and req.kind == "view" and req.limit is None and self.countable(req):
            return self.split_view(req, depth, n)
        if self.call.id_column is None or req.limit is not None:
            raise TruncatedResultError(
                f"the backend capped the answer of {self.call.label} on {self.call.alias} at "
                f"{self.caps.row_cap:,} rows and the request cannot be split (no id column)",
                hint="add filters that select fewer rows")
        lo, hi = self._range(req)
        if self.countable(req):
            if n is None:
                n = self.count(_with_range(req, *self.call.id_column, lo, hi))
            self._grant(n)
            return self.by_counts(req, lo, hi, n, depth)
        return self.by_ranges(req, lo, hi, None, depth)

    def split_view(self, req: QueryRequest, depth: int, n: int | None) -> list[pa.Table]:
        """A view past the row cap: its ids may repeat (or it has none), so it is cut into ranges
        of the first integer column that can cut it under the cap — the most distinct in a
        sample first — and holds no NULL (a count of ``col >= -2**63`` equals the view's: a NULL
        lies in no range and would be missing). A column with a value holding more rows than the
        cap cannot cut it: the next is tried. (The view endpoint's offset pages are unordered:
        never used.)"""
        t = req.table or ""
        cap = self.caps.row_cap or 1
        candidates = split_candidates(self.backend.table_columns(req.version, t))  # type: ignore[arg-type]
        failures: list[str] = []
        if candidates:
            if n is None:
                n = self.count(req)
            self._grant(n)
            sample = self.query(replace(req, limit=max(2, min(1000, cap - 1)), offset=None)).table

            def spread(col: str) -> int:
                if col not in sample.column_names:
                    return -1
                values = sample.column(col)
                return len(set(values.to_pylist())) - values.null_count

            for col in sorted(candidates, key=spread, reverse=True):
                bounds = req.filter_greater_equal.get(t, {})
                if col not in bounds:  # (a bound of the statement's own keeps no NULL already)
                    at_least = {**req.filter_greater_equal, t: {**bounds, col: _I64[0]}}
                    if self.count(replace(req, filter_greater_equal=at_least)) != n:
                        failures.append(f"by {col}: it holds NULLs")
                        continue
                by = _Runner(self.backend, replace(self.call, id_column=(t, col), id_local=col), self.caps,
                             self.stats, self.pool)
                by.budget = self.budget
                try:
                    return by.split(req, depth, n)
                except TruncatedResultError as exc:
                    failures.append(f"by {col}: {exc.message}")
                    self.budget = by.budget
        raise TruncatedResultError(
            f"the backend capped the answer of {self.call.label} on {self.call.alias} at {cap:,} rows "
            f"and no integer column without NULLs cuts the view into ranges under the cap"
            + (f" ({'; '.join(failures)})" if failures else ""),
            hint="add filters that select fewer rows")

    def by_counts(self, req: QueryRequest, lo: int, hi: int, n: int | None, depth: int,
                  bound: tuple[int, int, int] | None = None) -> list[pa.Table]:
        """Rows of ``req`` with id in [lo, hi), using counts: a small sample shows where the ids
        are, then consecutive ranges sized to hold about 70% of the cap are counted and fetched.
        ``bound``: ``(rows, lo, hi)`` of the range this one lies in (a part holds no more)."""
        assert self.call.id_column is not None
        t, c = self.call.id_column
        cap = self.caps.row_cap or 1
        piece = _with_range(req, t, c, lo, hi)
        if n is None:
            n = self.count(piece)
        if bound is not None and n > bound[0]:
            self._inconsistent(n, lo, hi, *bound)
        if n == 0:
            return []
        if n <= cap:
            res = self.query(piece)
            # the count says how many rows there are: an answer holding all of them is whole,
            # also one of exactly the cap's size (which a cut answer has too: without the count,
            # a value of a non-unique split column holding exactly the cap's rows could never
            # be fetched)
            if res.table.num_rows == n or not self._capped(piece, res):
                return [res.table]
        if depth >= _MAX_DEPTH or hi - lo <= 1:
            raise TruncatedResultError(f"cannot split {self.call.alias} below the row cap of "
                                       f"{cap:,} ({n:,} rows in id range [{lo}, {hi}))")
        k = max(2, min(cap - 1, 1000))
        # the ids and one cheap column beside them: the service fails on a lone column
        spare = self.call.spare
        sample = self.query(replace(piece, limit=k, offset=None, select_columns=(
            {t: (c, spare)} if req.kind in ("table", "view") and spare is not None else req.select_columns)))
        bounds = self._sample_bounds(sample, lo, hi, allow_full=True)
        if bounds is None:
            mid = lo + (hi - lo) // 2
            return (self.by_counts(req, lo, mid, None, depth + 1, (n, lo, hi))
                    + self.by_counts(req, mid, hi, None, depth + 1, (n, lo, hi)))
        s_lo, s_hi = bounds
        density = sample.table.num_rows / max(1, s_hi - s_lo)
        width = max(1, int(cap * 0.7 / density))
        out: list[pa.Table] = []
        got = 0
        if s_lo > lo:
            left = self.by_counts(req, lo, s_lo, None, depth + 1, (n, lo, hi))
            out += left
            got += sum(x.num_rows for x in left)
        x = s_lo
        while x < hi and got < n:
            y = min(hi, x + width)
            part = _with_range(req, t, c, x, y)
            cnt = self.count(part)
            if cnt > n - got:  # a part of a range holds at most the range's rows not yet fetched
                self._inconsistent(cnt, x, y, n, lo, hi)
            if cnt >= cap and y - x > 1:
                width = max(1, (y - x) // 2)
                continue
            if cnt:
                out += self.by_counts(req, x, y, cnt, depth + 1)
                got += cnt
            x = y
            if cnt < cap // 4:
                width *= 2
        return out

    def _inconsistent(self, n: int, lo: int, hi: int, whole: int, w_lo: int, w_hi: int) -> None:
        raise TransportError(
            f"the backend counted {n:,} rows of {self.call.alias} in id range [{lo}, {hi}) but "
            f"{whole:,} in [{w_lo}, {w_hi}), which holds it: the service's counts do not add up",
            hint="run the statement again; if it repeats, the service is answering inconsistently")

    def _range(self, req: QueryRequest) -> tuple[int, int]:
        assert self.call.id_column is not None
        t, c = self.call.id_column
        lo = req.filter_greater_equal.get(t, {}).get(c, _I64[0])
        hi = req.filter_less.get(t, {}).get(c, _I64[1])
        return int(lo), int(hi)

    def by_ranges(self, req: QueryRequest, lo: int, hi: int, n: int | None, depth: int) -> list[pa.Table]:
        """Rows of ``req`` with id in [lo, hi) without counts: fetch; when capped, fetch below
        the answer's id span, bisect inside it, and go on above it (a loop: the depth grows only
        inside a span, so a long table does not recurse once per cap of rows)."""
        assert self.call.id_column is not None
        t, c = self.call.id_column
        cap = self.caps.row_cap or 1
        out: list[pa.Table] = []
        while lo < hi:
            if depth >= _MAX_DEPTH:
                raise TruncatedResultError(f"cannot split {self.call.alias} below the row cap of "
                                           f"{cap:,} (id range [{lo}, {hi}))")
            piece = _with_range(req, t, c, lo, hi)
            res = self.query(piece)
            if not self._capped(piece, res):
                out.append(res.table)
                break
            if hi - lo <= 1:
                raise TruncatedResultError(f"cannot split {self.call.alias} below the row cap of "
                                           f"{cap:,}: {res.table.num_rows:,} rows share id {lo}")
            bounds = self._sample_bounds(res, lo, hi)
            if bounds is None:
                mid = lo + (hi - lo) // 2
                out += self.by_ranges(req, lo, mid, None, depth + 1)
                lo = mid
                continue
            s_lo, s_hi = bounds
            mid = s_lo + (s_hi - s_lo) // 2
            for a_, b_ in ((lo, s_lo), (s_lo, mid), (mid, s_hi)):
                if a_ < b_:
                    out += self.by_ranges(req, a_, b_, None, depth + 1)
            lo = s_hi
        return out

    def _sample_bounds(self, res: QueryResult | None, lo: int, hi: int,
                       allow_full: bool = False) -> tuple[int, int] | None:
        """``(min, max + 1)`` of the split column in a capped answer, when it narrows [lo, hi)."""
        local = self.call.id_local
        name = None
        if res is not None and local is not None:
            name = self.call.answer_names(res.table.column_names).get(local, local)
        if res is None or name is None or name not in res.table.column_names or res.table.num_rows < 2:
            return None
        import pyarrow.compute as pc
        mm = pc.min_max(res.table.column(name)).as_py()
        if mm["min"] is None:
            return None
        s_lo, s_hi = int(mm["min"]), int(mm["max"]) + 1
        if not lo <= s_lo < s_hi <= hi or (s_hi - s_lo < 2 and not allow_full) or (
                s_lo == lo and s_hi == hi and not allow_full):
            return None
        return s_lo, s_hi


def split_candidates(schema: pa.Schema) -> list[str]:
    """The columns of a view's answer that ranges may cut it by: its integer columns, not the
    components of a split position (the service filters a point, not its axes).

    >>> split_candidates(pa.schema([("n", pa.int64()), ("p_x", pa.int32()), ("p_y", pa.int32()),
    ...                             ("p_z", pa.int32()), ("s", pa.string())]))
    ['n']
    """
    names = set(schema.names)
    trios = {f"{c[:-2]}_{a}" for c in names if c.endswith("_x") for a in "xyz"
             if {f"{c[:-2]}_y", f"{c[:-2]}_z"} <= names}
    return [f.name for f in schema if pa.types.is_integer(f.type) and f.name not in trios]


def run_call(backend: Backend, call: RemoteCall, caps: Capabilities,
             keys: Callable[[str, str], list[Any]], pool: ThreadPoolExecutor | None
             ) -> tuple[pa.Table | None, CallStats]:
    """Run a call to completion; ``keys(source, column)`` gives a feed's values."""
    t0 = time.perf_counter()
    stats = CallStats()
    runner = _Runner(backend, call, caps, stats, pool)
    req = call.request
    for feed in call.feeds:
        vals = keys(feed.source, feed.column)
        existing = req.filter_in.get(feed.table, {}).get(feed.target)
        if existing is not None:
            allowed = set(existing)
            vals = [v for v in vals if v in allowed]
        req = _with_in(req, feed.table, feed.target, vals)
    # every IN list longer than a batch is cut; pieces are independent (disjoint keys)
    pieces = [req]
    for t, cols in req.filter_in.items():
        for col, vals in cols.items():
            if len(vals) > caps.max_in_batch:
                pieces = [_with_in(p, t, col, b) for p in pieces for b in batches(vals, caps.max_in_batch)]
    if pool is not None and len(pieces) > 1:
        token = cancel.current()

        def complete(piece: QueryRequest) -> list[pa.Table]:
            with cancel.activate(token):  # the statement's token, in the pool's thread
                return runner.complete(piece)

        parts = list(pool.map(complete, pieces))
    else:
        parts = [runner.complete(p) for p in pieces]
    tables = [t for part in parts for t in part]
    table = _concat(tables) if tables else None
    stats.rows = table.num_rows if table is not None else 0
    stats.ms = (time.perf_counter() - t0) * 1000
    return table, stats


def _concat(tables: list[pa.Table]) -> pa.Table:
    if len(tables) == 1:
        return tables[0]
    try:
        return pa.concat_tables(tables)
    except pa.ArrowInvalid:
        return pa.concat_tables(tables, promote_options="permissive")
