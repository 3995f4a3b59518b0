"""What is known, before running, of the rows a plan fetches from the service, and its requests.

No guessed selectivities: a remote call's rows are bounded only by facts — the table's row
count (the service's ``table_count``), a pushed LIMIT, an equality or IN list on the id column
(ids are unique: one row per value at most), a closed range of ids (at most as many rows as
ids in it), a ``count=True`` call (one row). Filters of unknown selectivity (a root id, a cell
type, a box, a regex) leave the table's count as the bound and say so (``narrowed``): the
engine may ask the service to count such a call before fetching it (see
:meth:`caveql.engine.Engine.check_fetch`). A call fed keys by an earlier call is bounded only by
its table (``fed``): how many keys arrive is known when that call has run.

>>> f = call_fetch([("equal", "t", "id", 7)], count=1_000, id_column=("t", "id"), limit=None,
...                row_cap=500, max_in_batch=100)
>>> f.rows, f.requests, f.exact, f.describe()
(1, 1, False, 'at most 1 (ids are unique: 1 value)')
>>> whole = call_fetch([], count=1_000, id_column=("t", "id"), limit=None, row_cap=500, max_in_batch=100)
>>> whole.rows, whole.exact, whole.requests, whole.describe()
(1000, True, 16, 'exactly 1,000 (the table count)')
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Fetch", "PlanFetch", "call_fetch", "requests_for", "total"]

_RANGE = ("greater", "greater_equal", "less", "less_equal")


@dataclass(frozen=True)
class Fetch:
    """What is known of the rows one remote call fetches.

    ``rows``: at most this many (``None``: no bound is known — a view without a count);
    ``exact``: ``rows`` is the number itself (a whole table, a count call); ``basis``: why;
    ``narrowed``: pushed filters of unknown selectivity cut ``rows`` by an unknown amount;
    ``fed``: keys from an earlier call restrict it by an unknown amount; ``requests``: about
    how many requests fetching ``rows`` rows takes (``None`` when fed or unbounded).
    """

    rows: int | None
    exact: bool
    basis: str
    narrowed: bool = False
    fed: bool = False
    requests: int | None = None
    about: bool = False  # ``rows`` is neither exact nor a bound (a live query: rows changed since)

    def describe(self) -> str:
        """The EXPLAIN wording: the number, how it is known, what may make it smaller."""
        if self.rows is None:
            return "unknown (the service gives no row count for it)"
        word = "exactly" if self.exact else "about" if self.about else "at most"
        cuts = " and ".join(x for x, on in (("its filters", self.narrowed),
                                            ("the keys it is fed", self.fed)) if on)
        return f"{word} {self.rows:,} ({self.basis}" + (f"; {cuts} keep an unknown share)" if cuts else ")")


def requests_for(rows: int, row_cap: int | None, in_batches: int = 1) -> int:
    """About how many requests fetch ``rows`` rows (the executor's way, caveql.execute.remote).

    Up to the row cap: one per IN batch. Above it: a count and an id sample, then id ranges
    aimed at 70% of the cap, every range counted and then fetched. Fitted to the demo's 2,000,000
    synapses fetched whole at row caps of 50,000 to 1,000,000 (actual 134, 42, 20, 14 requests;
    this gives 132, 40, 22, 16): ranges hold about 65% of the cap, and ~6 requests go to the
    sample, halvings and empty ranges.

    >>> requests_for(10, 200_000), requests_for(337_000_000, 200_000)
    (1, 5194)
    """
    if row_cap is None or rows < row_cap:
        return max(1, in_batches)
    pieces = math.ceil(rows / (0.65 * row_cap))
    return 8 + 2 * pieces


def _id_values(value: Any) -> int | None:
    if isinstance(value, (list, tuple)):
        return len(set(value))
    return None if value is None else 1


def call_fetch(filters: Iterable[tuple[str, str, str, Any]], *, count: int | None,
               id_column: tuple[str, str] | None, limit: int | None, row_cap: int | None,
               max_in_batch: int, counted: bool = False, fed: bool = False,
               count_is: str = "exact") -> Fetch:
    """The :class:`Fetch` of a call with pushed ``filters`` ``[(kind, table, column, value)]``.

    ``count``: the table's rows (``None``: unknown); ``count_is``: what ``count`` is to the
    call's rows — ``"exact"`` (a table), ``"bound"`` (a reference table merged with its target:
    a row whose target is gone drops out), ``"about"`` (a live query: the materialized count);
    ``id_column``: the (table, column) unique per answer row, if any; ``limit``: the pushed
    LIMIT; ``counted``: a ``count=True`` call.
    """
    filters = list(filters)
    batches = 1
    for kind, _t, _c, value in filters:
        if kind == "in" and isinstance(value, (list, tuple)):
            batches *= max(1, math.ceil(len(value) / max(1, max_in_batch)))
    if counted:
        return Fetch(1 * batches, batches == 1, "a count", requests=batches)
    rows, exact, basis = count, count is not None and count_is == "exact", "the table count"
    about = count_is == "about"
    if about:
        basis = "the materialized table count; live rows may differ"
    narrowed = False
    lo: float = -math.inf
    hi: float = math.inf
    for kind, table, column, value in filters:
        on_id = id_column is not None and (table, column) == id_column
        if on_id and kind in ("equal", "in") and _id_values(value) is not None:
            n = _id_values(value)
            assert n is not None
            if rows is None or n <= rows or about:
                rows, exact, about = n, False, False
                basis = f"ids are unique: {n:,} value{'s' if n != 1 else ''}"
            continue
        if on_id and kind in _RANGE and isinstance(value, (int, float)) and not isinstance(value, bool):
            if kind == "greater":
                lo = max(lo, math.floor(value) + 1)
            elif kind == "greater_equal":
                lo = max(lo, math.ceil(value))
            elif kind == "less":
                hi = min(hi, math.ceil(value) - 1)
            else:
                hi = min(hi, math.floor(value))
            continue
        narrowed = True
    if lo > -math.inf and hi < math.inf:
        n = max(0, int(hi - lo + 1))
        if rows is None or n <= rows or about:
            rows, exact, about, basis = n, False, False, f"ids in [{int(lo)}, {int(hi)}]"
    elif lo > -math.inf or hi < math.inf:
        narrowed = True  # one-sided: where the ids lie is not known
    if limit is not None and (rows is None or limit <= rows or about):
        rows, exact, about, basis = limit, False, False, "the pushed LIMIT"
    if exact and (narrowed or fed):
        exact = False
    requests = None if rows is None or fed else requests_for(rows, row_cap, batches)
    return Fetch(rows, exact, basis, narrowed=narrowed and basis != "the pushed LIMIT",
                 fed=fed, requests=requests, about=about)


@dataclass(frozen=True)
class PlanFetch:
    """A plan's calls together: ``rows``/``requests`` summed over the calls with a bound that
    are not fed keys; ``exact``: every one of them is exact; ``narrowed`` names the calls whose
    bound is their table's count cut by filters of unknown selectivity, ``fed`` the calls fed
    keys by earlier calls (known when those have run), ``unbounded`` the calls without a bound.
    """

    rows: int
    requests: int
    exact: bool = True
    narrowed: tuple[str, ...] = ()
    fed: tuple[str, ...] = ()
    unbounded: tuple[str, ...] = ()
    about: bool = False  # a live call's rows: the materialized count (neither exact nor a bound)

    def describe(self) -> str:
        """One line for EXPLAIN and the fetch guard's message.

        >>> PlanFetch(1_000, 5, False, ("s",)).describe()
        'at most 1,000 rows in about 5 requests (scan s: fewer, how many is known once counted)'
        """
        word = "exactly" if self.exact else "about" if self.about else "at most"
        head = (f"{word} {self.rows:,} rows "
                f"in {'at least' if self.fed or self.unbounded else 'about'} {self.requests:,} "
                f"request{'s' if self.requests != 1 else ''}")
        notes = []
        if self.narrowed:
            notes.append(f"scan {', '.join(self.narrowed)}: fewer, how many is known once counted")
        if self.fed:
            notes.append(f"plus scan {', '.join(self.fed)}: fed keys, rows known when it runs")
        if self.unbounded:
            notes.append(f"plus scan {', '.join(self.unbounded)}: no row count")
        return head + (f" ({'; '.join(notes)})" if notes else "")


def total(fetches: Sequence[tuple[str, Fetch]]) -> PlanFetch:
    """The :class:`PlanFetch` of ``[(alias, fetch)]``: a plan's calls and its subplans' calls.

    >>> total([("a", Fetch(10, True, "the table count", requests=1)),
    ...        ("b", Fetch(None, False, ""))]).describe()
    'exactly 10 rows in at least 2 requests (plus scan b: no row count)'
    """
    rows = requests = 0
    exact, about = True, False
    narrowed, fed, unbounded = [], [], []
    for alias, f in fetches:
        requests += f.requests if f.requests is not None else 1
        if f.fed:
            fed.append(alias)
        elif f.rows is None:
            unbounded.append(alias)
        else:
            rows += f.rows
            exact = exact and f.exact
            about = about or f.about
            if f.narrowed:
                narrowed.append(alias)
    return PlanFetch(rows, requests, exact, tuple(narrowed), tuple(fed), tuple(unbounded), about)
