"""The live query route (``/datastack/{ds}/query``) over a local datastack.

``assemble_live_query_dataframe`` (api2.py) without a live database: the rows are those of the
version the service picks for the timestamp, root ids as of the timestamp when the datastack has
a proofreading history (the backend maps them), and a filter's root ids must be current then.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import Response

from caveql.backends.base import QueryRequest
from caveql.server import genuine as g
from caveql.server.errors import Abort, _raise_bad_json
from caveql.server.queries import QueryBase, _in_thread, _res
from caveql.server.validate import load_live, parse_args


class LiveQueries(QueryBase):
    """``live_live_query``: the table (and its joins) at a timestamp."""

    # ------------------------------------------------------------------ live

    async def live_query(self, request: Request) -> Response:
        raw = await self._body(request)
        return await _in_thread(self._live_query, request, raw)

    def _live_query(self, request: Request, raw: Any) -> Response:
        """api2.py:1657-1911 ``assemble_live_query_dataframe`` for a static datastack: no
        ChunkedGraph (root ids are valid at every time and never change) and no live database
        (the table's rows are those of the version the service picks)."""
        self._validate_datastack(request, version=0)
        body = load_live(_raise_bad_json(raw))
        args = parse_args(request.query_params)
        table = body["table"]
        limit = self.row_cap if self.row_cap is None else min(self.row_cap, body.get("limit", self.row_cap))
        if limit is None:
            limit = body.get("limit")
        ts: datetime = body["timestamp"]
        chosen = self._closest_version(ts)
        md = self._live_metadata(table)
        if md is None:
            raise TypeError("'NoneType' object is not subscriptable")  # check_read_permission
        if chosen is None:
            raise Abort(400, "there is no future or past version for this timestamp, is materialization broken?")
        self._check_root_ids(body, ts, args)
        desired = body.get("desired_resolution") or self._resolution(md)
        rows = self._row_count(chosen, table)
        n_sample = args["random_sample"]
        sample = None
        if n_sample is not None:  # api2.py:391-409
            if rows is None:
                raise TypeError("'<=' not supported between instances of 'NoneType' and 'int'")
            if rows > 0 and n_sample < rows:
                sample = 100.0 * n_sample / rows
        if not rows:
            # execute_materialized_query returns no frame; without a live-database frame
            # combine_queries aborts (api2.py:411, 651-652)
            raise Abort(400, f"This query on table {table} returned no results")
        split = self._split(chosen)
        joins = [list(j) for j in body.get("join_tables", [])]
        names = [table] + [t for j in joins for t in (j[0], j[2])]
        for t in names:
            if t not in self.backend.tables(chosen):
                raise RuntimeError(f'Execution failed on sql: relation "{t}" does not exist')
        models = {t: self._model(chosen, t) for t in dict.fromkeys(names)}
        for j in joins:
            for t, c in ((j[2], j[3]), (j[0], j[1])):
                if c not in models[t].types:
                    raise KeyError(c)
        requested = body.get("select_columns")
        if requested:
            for t in requested:
                if t not in models:
                    raise KeyError(t) if split else RuntimeError(
                        f"select_columns names table {t!r}, which is not part of the query")
            sel = g.Selection.build([(t, m.keys, m.positions) for t, m in models.items()],
                                    {t: list(c) for t, c in requested.items()})
        else:
            skip = ("valid", "superceded_id") if split else ()
            sel = g.Selection.build([(t, [k for k in m.keys if k not in skip], m.positions)
                                     for t, m in models.items()], None)
        sel.suffixes = dict(body.get("suffixes") or {})
        if not any(sel.selected.values()):
            raise ValueError("need at least one array to concatenate")
        self._check_filters(body, models, split, list(models))
        offset = body.get("offset") or None
        # configure_query ignores a falsy limit: QueryManager's default stays (no cap: no limit)
        qm_limit = limit if limit or limit is None else g.DEFAULT_LIMIT
        req = QueryRequest(kind="live", table=table, timestamp=ts.astimezone(UTC).replace(tzinfo=None),
                           live_joins=tuple((a, b, c, d) for a, b, c, d in joins),
                           **self._backend_filters(body, models, list(models)),
                           select_columns={t: models[t].stored(sel.keys(t)) for t in models},
                           suffix_map={t: (sel.suffix(t) if t in sel.order else "") for t in models},
                           offset=offset, limit=qm_limit, desired_resolution=_res(desired))
        answer = self._query(req, sample)
        self._one_column(sel, models)
        df = self._frame(answer, sel, models, split=split, keep_phantoms=True)
        mat_warnings: list[str] = []
        for sv in [c for c in df.columns if c.endswith("supervoxel_id")]:  # new_query.py:23-38
            ones = int((df[sv] == 1).sum())
            if ones:
                if not args["allow_missing_lookups"]:
                    raise Abort(406, g.missing_lookups_message(ones))
                mat_warnings.append(g.missing_lookups_message(ones))
                df = df[df[sv] != 1]
        if limit is not None and len(df) >= limit:
            mat_warnings.append(g.live_cap_warning(len(df), limit))
        if not args.get("direct_sql_pandas", False):
            mat_warnings.append(g.SQL_QUERY_WARNING)
        names_map = sel.column_names()
        if len(df):  # combine_queries: id becomes the index, then a column again (api2.py:647-727)
            df = df.set_index(names_map[table]["id"]).reset_index()
        df = g.live_refilter(df, body, names_map)
        if not args.get("direct_sql_pandas", False):
            mat_warnings.append(g.SQL_QUERY_WARNING)
        if body.get("select_columns") is not None:  # api2.py:1796-1804
            kept = {t: dict(m) for t, m in names_map.items()}
            for t, cmap in names_map.items():
                for key, out in cmap.items():
                    if key not in body["select_columns"][t]:
                        pos = key in models[t].positions
                        df = df.drop(columns=[f"{out}_{a}" for a in "xyz"] if pos else [out])
                        kept[t].pop(key)
            names_map = kept
        return self._respond(request, args, df, mat_warnings, desired, sel.column_names_header(names_map), api=3)

    def _check_root_ids(self, body: dict[str, Any], ts: datetime, args: dict[str, Any]) -> None:
        """new_query.py:185-222 ``map_filters``: a root id a filter names that is not current at
        the timestamp (the datastack's history, as the ChunkedGraph's ``is_latest_roots``) is a
        400, unless ``allow_invalid_root_ids`` (the engine then drops it with a warning; here it
        matches no row). ``filter_notin_dict`` is not read (the engine reads ``filter_out_dict``)."""
        history = getattr(self.backend, "history", None)
        if history is None or args.get("allow_invalid_root_ids"):
            return
        ids: list[int] = []
        for key in ("filter_in_dict", "filter_equal_dict", "filter_greater_dict", "filter_less_dict",
                    "filter_greater_equal_dict", "filter_less_equal_dict"):
            for cols in (body.get(key) or {}).values():
                for col, val in (cols or {}).items():
                    if col.endswith("root_id"):
                        ids += list(val) if isinstance(val, (list, tuple)) else [val]
        if ids:
            uniq = np.unique(np.array(ids, dtype=np.int64))
            current = np.asarray(history.is_latest(uniq, ts), dtype=bool)
            if not current.all():
                raise Abort(400, f"Some root_ids passed are not valid at the query timestamp: {uniq[~current]}")

    def _closest_version(self, ts: datetime) -> int | None:
        """api2.py:295-334: the newest valid version at or before ``ts``, else the oldest after."""
        naive = ts.astimezone(UTC).replace(tzinfo=None)
        stamps = {}
        for v in self.backend.versions():
            raw_ts = self.backend.version_metadata(v).get("time_stamp")
            if raw_ts is None:
                continue
            t = raw_ts if isinstance(raw_ts, datetime) else datetime.fromisoformat(str(raw_ts))
            stamps[v] = t.astimezone(UTC).replace(tzinfo=None) if t.tzinfo else t
        past = [v for v, t in stamps.items() if t <= naive]
        if past:
            return max(past, key=lambda v: stamps[v])
        future = [v for v, t in stamps.items() if t >= naive]
        return min(future, key=lambda v: stamps[v]) if future else None
