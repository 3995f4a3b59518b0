"""The invalid-root check: a query naming a root id that is not a current root at its version or
timestamp gets an error that says so, instead of an empty answer without a word.

A root id names a cell only until the next edit: at version 343 a cell has one root id, at 661
another, and the first names nothing at 661. The service answers such a query with no rows (the
genuine one refuses it unless ``allow_invalid_root_ids=True``); :func:`check_roots` asks the
segmentation's proofreading graph (``backend.graph()``, when ``capabilities.graph``) before any
row is fetched. What is checked: the literal ids of each remote call's equality and IN filters on
``*_root_id`` columns (ids fed from other calls' rows at run time are the data's own, and 0 means
"no segment"); at the instant the call reads — a frozen table, join or view at its version's
``time_stamp``, a live call at its ``timestamp`` (``None``: now). One ``is_latest`` question per
instant; the ids that are not valid are then described (:func:`caveql.backends.graph.describe`:
when each stopped being current, its latest roots). ``allow_invalid=True`` turns the error into
notices and the statement runs.

>>> import tempfile
>>> from caveql.backends.local import LocalBackend
>>> from caveql.datastack.tiny import build_tiny
>>> from caveql.engine import Engine
>>> eng = Engine(LocalBackend(build_tiny(tempfile.mkdtemp())))
>>> eng.execute("SELECT id FROM cells WHERE pt_root_id = 905")
Traceback (most recent call last):
caveql.errors.InvalidRootIdError: cells.pt_root_id: root id 905 is not current at version 2 ...
>>> _ = eng.execute("SET allow_invalid_root_ids = true")
>>> res = eng.execute("SELECT id FROM cells WHERE pt_root_id IN (905, 1001)")
>>> res.frame.id.tolist()
[1]
>>> print(res.notices[0])
cells.pt_root_id: root id 905 is not current at version 2 (2023-04-06 20:17:09.199182+00:00): it stopped being current at 2022-08-01 00:00:00+00:00; its latest roots are 1005, 2001
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from caveql.backends.graph import RootState, describe
from caveql.backends.local_live import version_time
from caveql.errors import BackendError, InvalidRootIdError, ServiceError, TransportError
from caveql.plan.physical import PhysicalPlan

__all__ = ["MAX_NAMED", "check_roots", "root_filters"]

#: How many non-valid ids a message describes one by one ("and N more" for the rest).
MAX_NAMED = 5


def root_filters(request: Any) -> list[tuple[str, int]]:
    """``(table.column, id)`` for each literal root id of a request's equality and IN filters
    on ``*_root_id`` columns, in order (0, negatives and non-integers left out).

    >>> from caveql.backends.base import QueryRequest
    >>> root_filters(QueryRequest(kind="table", table="s", filter_equal={"s": {"pre_pt_root_id": 5}},
    ...                           filter_in={"s": {"post_pt_root_id": [0, 7], "id": [1]}}))
    [('s.post_pt_root_id', 7), ('s.pre_pt_root_id', 5)]
    """
    out: list[tuple[str, int]] = []
    for kind in ("in", "equal"):
        for table, cols in (getattr(request, f"filter_{kind}", None) or {}).items():
            for col, value in cols.items():
                if not str(col).endswith("_root_id"):
                    continue
                values = value if kind == "in" else [value]
                out += [(f"{table}.{col}", v) for v in values
                        if isinstance(v, int) and not isinstance(v, bool) and 0 < v < 2**64]
    return out


def _instant(request: Any, backend: Any, stamps: dict[int, datetime | None]
             ) -> tuple[tuple[str, Any], datetime | None, str] | None:
    """``(group key, timestamp, words)`` of the instant a request reads; None: not checked."""
    if request.kind == "live":
        t = request.timestamp
        if t is not None:  # (the planner's timestamps are UTC, naive or not)
            t = t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
        return ("t", t), t, "now" if t is None else f"at {t}"
    v = request.version
    if v is None or request.kind not in ("table", "join", "view"):
        return None
    if v not in stamps:
        try:
            stamps[v] = version_time(backend.version_metadata(v))
        except (BackendError, ValueError, TypeError):
            stamps[v] = None  # a version the backend cannot describe: the call itself will say
    t = stamps[v]
    if t is None:
        return None
    return ("v", v), t, f"at version {v} ({t})"


def check_roots(plan: PhysicalPlan, backend: Any, *, allow_invalid: bool) -> list[str]:
    """Check the root ids ``plan``'s calls name (see the module docstring).

    Raises :class:`~caveql.errors.InvalidRootIdError` naming each id that is not current (the
    first :data:`MAX_NAMED`, "and N more"), its column, the version or timestamp, when it stopped
    being current and its latest roots; with ``allow_invalid`` returns those sentences as
    notices instead. No graph (``capabilities.graph`` false): nothing is checked.
    """
    if not getattr(backend.capabilities, "graph", False):
        return []
    graph = backend.graph()
    if graph is None:
        return []
    groups: dict[tuple[str, Any], tuple[datetime | None, str, dict[int, list[str]]]] = {}
    stamps: dict[int, datetime | None] = {}
    for _alias, call in plan.fetches():
        named = root_filters(call.request)
        if not named:
            continue
        found = _instant(call.request, backend, stamps)
        if found is None:
            continue
        key, t, where = found
        ids = groups.setdefault(key, (t, where, {}))[2]
        for column, rid in named:
            cols = ids.setdefault(rid, [])
            if column not in cols:
                cols.append(column)
    bad: list[tuple[int, list[str], str, RootState | None]] = []
    try:
        for t, where, ids in groups.values():
            order = list(ids)
            flags = graph.is_latest(order, t)
            wrong = [r for r, ok in zip(order, flags, strict=True) if not ok]
            if not wrong:
                continue
            room = max(0, MAX_NAMED - len(bad))
            states = {s.root_id: s for s in graph.states(wrong[:room], t)} if room else {}
            bad += [(r, ids[r], where, states.get(r)) for r in wrong]
    except (TransportError, ServiceError) as exc:
        # the graph cannot answer (down, or no such ChunkedGraph): the statement still runs —
        # an archive may answer it — and says its root ids were not checked
        n = len({r for _t, _w, ids in groups.values() for r in ids})
        return [f"the {n} root id{'s' if n != 1 else ''} the statement names were not checked against "
                f"the proofreading graph: {exc.message}"]
    if not bad:
        return []
    sentences = [f"{', '.join(cols)}: {describe(state, where) or f'root id {r} is not current {where}'}"
                 for r, cols, where, state in bad[:MAX_NAMED] if state is not None]
    rest = [r for r, _c, _w, _s in bad[MAX_NAMED:]]
    if rest:
        shown = ", ".join(str(r) for r in rest[:10]) + (", ..." if len(rest) > 10 else "")
        sentences.append(f"and {len(rest)} more root id{'s' if len(rest) > 1 else ''} not current "
                         f"then: {shown}")
    if allow_invalid:
        return sentences
    raise InvalidRootIdError(
        "\n".join(sentences) if len(bad) == 1 else
        f"{len(bad)} root ids the statement names are not current:\n" + "\n".join(f"- {s}" for s in sentences),
        root_ids=list(dict.fromkeys(r for r, *_ in bad)), hint=_hint(bad[0][0], bad[0][3]))


def _hint(root_id: int, state: RootState | None) -> str:
    """The next step for the first id that is not valid."""
    anyway = "SET allow_invalid_root_ids = true to run anyway"
    if state is not None and not state.known:
        return f"check the id (a typo, or another datastack's?) — or {anyway}"
    if state is not None and not state.latest:
        return f"it was made later: query a later version, AT TIMESTAMP or AT LIVE — or {anyway}"
    return f"query its latest roots: SELECT LATEST_ROOTS({root_id}) — or {anyway}"
