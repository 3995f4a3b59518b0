"""The DataFrame a statement gives back through the Python API, with its ``attrs``.

One entry, :func:`result_frame`. The frame itself is the engine's (caveclient's shape: see
:mod:`caveql.execute.local`); this module adds ``frame.attrs``:

- when the statement ran as one remote call that caveclient makes with one method
  (``query_table``, ``synapse_query``, ``query_view``, ``live_live_query``, a reference table's
  merged query), the keys caveclient's ``_assemble_attributes`` sets for that call, with the
  same value types (``datastack_name``, ``join_query``, ``table_*`` — the table's metadata —,
  ``dataframe_resolution``, ``filters``, ``select_columns``, ``offset``, ``limit``,
  ``live_query``, ``timestamp``, ``materialization_version``; ``tables`` for a merged reference;
  ``remove_autapses`` for ``synapse_query``). ``column_names`` (a verbatim response header in
  caveclient) is not set.
- always, ``attrs["caveql"]``: the statement's CQL text, the datastack, its version or
  timestamp, the server (or local path), and one summary per remote call the execution issued
  (endpoint, table, filters, how many requests, rows, bytes, milliseconds).

Attrs stay small and JSON-like, as pandas deep-copies them on many operations: a list of more
than :data:`MAX_LIST` values (an IN filter of 10,000 ids) is summarized as
``{"count": n, "head": [first values]}``, and CQL text longer than :data:`MAX_TEXT` characters
is cut (``cql_chars`` gives its length).

>>> import tempfile, caveql
>>> from caveql.datastack.tiny import build_tiny
>>> db = caveql.connect(path=build_tiny(tempfile.mkdtemp()))
>>> df = db.query("SELECT id, pt_position FROM cells WHERE cell_type = 'BC'")
>>> df.attrs["table_name"], df.attrs["dataframe_resolution"], df.attrs["filters"]["equal"]
('cells', [4.0, 4.0, 40.0], {'cell_type': 'BC'})
>>> df.attrs["caveql"]["requests"][0]["call"], df.attrs["caveql"]["requests"][0]["requests"]
('query_table', 1)
>>> db.close()
"""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from typing import Any

import numpy as np
import pandas as pd

from caveql.errors import CaveqlError

__all__ = ["MAX_LIST", "MAX_TEXT", "result_frame"]

#: Lists longer than this are summarized in attrs (``{"count": n, "head": [...]}``).
MAX_LIST = 20
#: Values kept in a summarized list's ``head``.
HEAD = 5
#: CQL text longer than this is cut in ``attrs["caveql"]["cql"]``.
MAX_TEXT = 2000

# caveclient's names of the filter kinds in attrs["filters"] (its _assemble_attributes callers)
_FILTER_NAMES = (("in", "inclusive"), ("notin", "exclusive"), ("equal", "equal"),
                 ("greater", "greater"), ("less", "less"), ("greater_equal", "greater_equal"),
                 ("less_equal", "less_equal"), ("spatial", "spatial"), ("regex", "regex"))


def result_frame(result: Any, *, text: str, datastack: str, backend: Any = None,
                 settings: Any = None) -> pd.DataFrame:
    """The frame of ``result`` (a one-column ``message`` frame for statements without rows)
    with its ``attrs`` (see the module docstring). ``text`` is the CQL that ran.

    >>> from caveql.execute.result import Result
    >>> df = result_frame(Result(kind="message", message="version = 2"), text="SET version = 2",
    ...                   datastack="tiny")
    >>> df.message[0], df.attrs["caveql"]["cql"], df.attrs["caveql"]["requests"]
    ('version = 2', 'SET version = 2', [])
    """
    frame = result.frame
    if frame is None:
        frame = pd.DataFrame({"message": [result.message or ""]})
    plan = getattr(result, "plan", None)
    stats = getattr(result, "stats", None) or {}
    attrs: dict[str, Any] = {}
    mine = _caveql_attrs(result, plan, stats, text, datastack, backend, settings)
    if plan is not None and backend is not None:
        try:
            attrs.update(_caveclient_attrs(plan, backend, datastack))
        except CaveqlError as err:
            # the answer is right; only its description could not be fetched: say so in attrs
            mine["attrs_error"] = f"caveclient's attrs are missing: {err.message}"
    attrs["caveql"] = mine
    frame.attrs = _jsonable(attrs)
    return frame


# ------------------------------------------------------------------------- caveclient's keys
def _caveclient_attrs(plan: Any, backend: Any, datastack: str) -> dict[str, Any]:
    """caveclient's attrs of the one call ``plan`` makes, or ``{}`` when it makes more than one
    (caveclient has no one call for that statement)."""
    if len(plan.calls) != 1 or plan.subplans:
        return {}
    call = plan.calls[0]
    req = call.request
    label = str(call.label)
    live = req.kind == "live"
    attrs: dict[str, Any] = {"datastack_name": datastack}
    # a live call names no version: caveclient reads metadata at its client's version, the one
    # the statement's catalog is (the version current at the timestamp)
    version = req.version if req.version is not None else getattr(plan.logical, "version", None)
    if req.kind == "join":
        # a reference table's merged query: caveclient's query_table assembles join attrs
        # without suffixes, so with its defaults _x, _y
        attrs["join_query"] = True
        attrs["tables"] = {}
        resolutions = []
        for (table, column), suffix in zip(req.join, ("_x", "_y"), strict=True):
            meta = _prefixed(_table_metadata(backend, version, table))
            attrs["tables"][table] = {**meta, "join_column": column, "suffix": suffix}
            resolutions.append(meta.get("table_voxel_resolution"))
        # the service's dataframe_resolution of a join: the last table's voxels (API v3)
        default = resolutions[-1]
        if _api_version(backend) < 3:  # no header: caveclient's own rule
            same = all(r == resolutions[0] for r in resolutions)
            default = list(resolutions[0]) if same else "mixed_resolutions"
    else:
        attrs["join_query"] = False
        if req.kind == "view":
            meta = _view_metadata(backend, version, req.table)
            default = [meta.get(f"voxel_resolution_{a}") for a in "xyz"]
        else:
            meta = _table_metadata(backend, version, req.table)
            default = meta["voxel_resolution"]
        attrs.update(_prefixed(meta))
    attrs["dataframe_resolution"] = _frame_resolution(plan, call, default, _api_version(backend) >= 3)
    single = req.table if req.kind != "join" else req.join[0][0]
    attrs["filters"] = {name: _unnested(getattr(req, f"filter_{kind}"), single)
                        for kind, name in _FILTER_NAMES}
    attrs["select_columns"] = _unnested(req.select_columns, single, as_list=True)
    attrs["offset"], attrs["limit"] = req.offset, req.limit
    attrs["live_query"] = live
    attrs["timestamp"] = _caveclient_time(req.timestamp) if live else None
    attrs["materialization_version"] = None if live else req.version
    if label.startswith("synapse_query"):
        # synapse_query always passes its in and equal dicts to query_table, empty or not
        for name in ("inclusive", "equal"):
            if attrs["filters"][name] is None:
                attrs["filters"][name] = {}
        attrs["remove_autapses"] = "remove_autapses=True" in label
    return attrs


def _table_metadata(backend: Any, version: int | None, table: str) -> dict[str, Any]:
    """A table's metadata as caveclient's ``get_table_metadata`` returns it (the three
    ``voxel_resolution_*`` folded into ``voxel_resolution``)."""
    meta = dict(backend.table_metadata(version, table))
    vx, vy, vz = (meta.pop(f"voxel_resolution_{a}", None) for a in "xyz")
    meta["voxel_resolution"] = [vx, vy, vz]
    return meta


def _view_metadata(backend: Any, version: int | None, view: str) -> dict[str, Any]:
    """A view's metadata as the service's view metadata endpoint answers (caveclient does not
    fold its resolution)."""
    fetch = getattr(backend, "view_metadata", None)
    if fetch is not None:
        return dict(fetch(version, view))
    return {**backend.views(version)[view], "table_name": view}


def _prefixed(meta: dict[str, Any]) -> dict[str, Any]:
    """caveclient's ``table_`` prefix on every metadata key that does not start with ``table``."""
    return {(k if k.startswith("table") else f"table_{k}"): v for k, v in meta.items()}


def _api_version(backend: Any) -> int:
    """The service's API version (a local datastack answers as API v3 does)."""
    version = getattr(backend, "api_version", 3)
    return version if isinstance(version, int) else 3


def _frame_resolution(plan: Any, call: Any, default: Any, header: bool = True) -> Any:
    """The resolution the frame's positions are in, as caveclient parses the service's
    ``dataframe_resolution`` header (three floats); without the header (API v2), the table's
    voxel resolution as its metadata gives it."""
    rescale = getattr(call, "rescale", None)
    for res in (getattr(rescale, "target", None), call.request.desired_resolution,
                getattr(plan.logical, "resolution", None)):
        if res is not None:
            return [float(v) for v in res]
    if not header or isinstance(default, str) or default is None or None in default:
        return default
    return [float(v) for v in default]


def _unnested(value: Any, table: str | None, as_list: bool = False) -> Any:
    """A request's ``{table: {...}}`` as caveclient's single-table attrs hold it (the inner
    dict), ``None`` when empty; nested when other tables are filtered too."""
    if not value:
        return None
    if set(value) == {table}:
        inner = value[table]
        return list(inner) if as_list else dict(inner)
    return {t: (list(v) if as_list else dict(v)) for t, v in value.items()}


def _caveclient_time(ts: datetime | None) -> str | None:
    """caveclient's ``string_format_timestamp`` of a UTC timestamp (naive: UTC)."""
    if ts is None:
        return None
    if ts.tzinfo is not None:
        ts = ts.astimezone(timezone.utc)
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%f")


# ---------------------------------------------------------------------------- caveql's keys
def _caveql_attrs(result: Any, plan: Any, stats: dict[str, Any], text: str, datastack: str,
                  backend: Any, settings: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"cql": text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + " …"}
    if len(text) > MAX_TEXT:
        out["cql_chars"] = len(text)
    out["datastack"] = datastack
    version = timestamp = None
    if plan is not None:
        version = getattr(plan.logical, "version", None)
        timestamp = getattr(plan.logical, "timestamp", None)
    elif settings is not None:
        version, timestamp = settings.version, settings.timestamp
    out["version"] = version
    out["timestamp"] = timestamp.isoformat() if isinstance(timestamp, datetime) else timestamp
    server = getattr(backend, "server", None)
    out["server"] = str(server) if server is not None else None
    path = getattr(backend, "path", None)
    if server is None and path is not None:
        out["path"] = str(path)
    out["requests"] = _summaries(plan, stats) if plan is not None else []
    if stats.get("replanned"):
        out["replanned_for_row_caps"] = list(stats["replanned"])
    out["elapsed_ms"] = round(float(getattr(result, "elapsed", 0.0)) * 1000, 1)
    if getattr(result, "notices", None):  # e.g. a string value the column never holds
        out["notices"] = [str(n) for n in result.notices]
    if result.frame is not None:
        # what df.cql.neuroglancer() needs offline: the positions' resolution, the viewer sources
        from caveql.neuroglancer import context

        out["neuroglancer"] = context(plan, backend)
    return out


def _summaries(plan: Any, stats: dict[str, Any]) -> list[dict[str, Any]]:
    """One summary per remote call of ``plan`` (its subqueries' first), with the figures the
    execution recorded (``stats``, as EXPLAIN ANALYZE reads them)."""
    out: list[dict[str, Any]] = []
    for sub, sub_stats in zip(plan.subplans, stats.get("subplans", []), strict=False):
        out += _summaries(sub_stats.get("plan", sub), sub_stats)
    figures = stats.get("calls", {})
    for call in plan.calls:
        req = call.request
        entry: dict[str, Any] = {"call": str(call.label), "endpoint": req.kind}
        if req.kind == "join" and req.join is not None:
            entry["tables"] = [t for t, _c in req.join]
        else:
            entry["table"] = req.table
        if req.kind == "live":
            entry["timestamp"] = _caveclient_time(req.timestamp)
        else:
            entry["version"] = req.version
        filters = {kind: getattr(req, f"filter_{kind}") for kind, _n in _FILTER_NAMES
                   if getattr(req, f"filter_{kind}")}
        if filters:
            entry["filters"] = filters
        if call.feeds:
            entry["fed_by"] = [f"{f.source}.{f.column} -> {f.table}.{f.target}" for f in call.feeds]
        for key in ("limit", "offset", "desired_resolution"):
            if getattr(req, key) is not None:
                entry[key] = getattr(req, key)
        if req.count:
            entry["count"] = True
        # figures of a call not made (its key feed was empty) are absent: zero requests
        entry.update({"requests": 0, "rows": 0, "bytes": 0, "ms": 0.0})
        done = figures.get(call.alias, {})
        entry.update({k: done[k] for k in ("requests", "rows", "bytes") if k in done})
        entry["ms"] = round(float(done.get("ms", 0.0)), 1)
        out.append(entry)
    return out


# ------------------------------------------------------------------------------- JSON-like
def _jsonable(value: Any) -> Any:
    """``value`` as JSON types (lists, not tuples; ISO strings for datetimes; Python numbers),
    with long lists summarized (:data:`MAX_LIST`)."""
    return json.loads(json.dumps(_compact(value), default=_encode))


def _compact(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _compact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset, np.ndarray)):
        items = list(value)
        if len(items) > MAX_LIST:
            return {"count": len(items), "head": [_compact(v) for v in items[:HEAD]]}
        return [_compact(v) for v in items]
    return value


def _encode(value: Any) -> Any:
    if isinstance(value, (datetime, date, pd.Timestamp)):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    return str(value)
