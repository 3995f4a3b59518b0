"""The frozen (materialized version) query routes: a table, a join, a view.

``generate_simple_query_dataframe``, ``generate_complex_query_dataframe`` (common.py) and
``assemble_view_dataframe`` (api2.py), step by step; the shared steps are in
:mod:`caveql.server.queries`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from starlette.requests import Request
from starlette.responses import Response

from caveql.backends.base import QueryRequest
from caveql.server import genuine as g
from caveql.server.catalog import Model, _api
from caveql.server.errors import Abort, _raise_bad_json
from caveql.server.queries import QueryBase, _in_thread, _res
from caveql.server.validate import ARGS_V2, ARGS_V3, load_complex, load_simple, parse_args


class FrozenQueries(QueryBase):
    """``/table/{table}/query``, ``/query`` (a join) and ``/views/{view}/query`` of a version."""

    # ------------------------------------------------------------------ frozen table query

    async def table_query(self, request: Request) -> Response:
        raw = await self._body(request)
        return await _in_thread(self._table_query, request, raw)

    def _table_query(self, request: Request, raw: Any) -> Response:
        """common.py:243-380 ``generate_simple_query_dataframe`` (+ api2.py:1054-1149)."""
        api = _api(request)
        version = self._validate_datastack(request)
        body = load_simple(_raise_bad_json(raw))
        args = parse_args(request.query_params, ARGS_V3 if api == 3 else ARGS_V2, v2=api == 2)
        table = request.path_params["table"]
        self._validate_tables([table], version)
        meta = self.backend.table_metadata(version, table)
        limit = self._limit(body)
        count = bool(args["count"])
        if count:
            limit = None
        desired = (body.get("desired_resolution") or self._resolution(meta)) if api == 3 else None
        sample = self._sample_percent(version, table, args["random_sample"])
        split = self._split(version)
        model = self._model(version, table)
        self._check_filters(body, {table: model}, split, [table])
        requested = {table: body["select_columns"]} if body.get("select_columns") else None
        sel = g.Selection.build([(table, model.keys, model.positions)], requested)
        offset = body.get("offset", 0)
        req = QueryRequest(kind="table", table=table, version=version,
                           **self._backend_filters(body, {table: model}, [table]),
                           select_columns={table: model.stored(sel.keys(table))}, offset=offset or None,
                           limit=limit, desired_resolution=_res(desired), count=count)
        answer = self._query(req, sample)
        if count:
            n = int(answer.column("count")[0].as_py())
            df = pd.DataFrame({"count": [max(0, n - offset) if offset and offset > 0 else n]})
        else:
            self._one_column(sel, {table: model})
            df = self._frame(answer, sel, {table: model}, split=split, keep_phantoms=False)
            df = df.drop(columns=[c for c in ("deleted", "superceded") if c in df.columns])
        warnings: list[str] = []
        if limit is not None and len(df) == limit:
            warnings.append(f'201 - "Limited query to {limit} rows')
        if meta.get("notice_text") is not None:
            warnings.append(f"Table Owner Notice on {table}: {meta['notice_text']}")
        if not args.get("direct_sql_pandas", False) and self.v2_queries_fail:
            warnings.append(g.SQL_QUERY_WARNING)  # (a v2-only deployment predates the flag)
        return self._respond(request, args, df, warnings, desired, sel.column_names_header(), api=api)

    # ------------------------------------------------------------------ frozen join

    async def join_query(self, request: Request) -> Response:
        raw = await self._body(request)
        return await _in_thread(self._join_query, request, raw)

    def _join_query(self, request: Request, raw: Any) -> Response:
        """common.py:383-583 ``generate_complex_query_dataframe``."""
        api = _api(request)
        version = self._validate_datastack(request)
        body = load_complex(_raise_bad_json(raw))
        args = parse_args(request.query_params, ARGS_V3 if api == 3 else ARGS_V2, v2=api == 2)
        entries = body["tables"]
        names = [t for t, _c in entries]
        self._validate_tables(names, version)
        warnings: list[str] = []
        metas = {}
        for t in names:
            metas[t] = self.backend.table_metadata(version, t)
            if metas[t].get("notice_text") is not None:
                warnings.append(f"Table Owner Notice on {t}: {metas[t]['notice_text']}")
        limit = self._limit(body)
        if "suffixes" in body:
            warnings.append(g.JOIN_SUFFIXES_WARNING)
            uniq = list(dict.fromkeys(names))
            suffixes: dict[str, str] | None = dict(zip(uniq, body["suffixes"], strict=False))
        else:
            suffixes = body.get("suffix_map")
        if not args.get("direct_sql_pandas", False) and self.v2_queries_fail:
            warnings.append(g.JOIN_NON_PANDAS_WARNING)
        sample = self._sample_percent(version, names[0], args["random_sample"])
        if suffixes is not None and len(set(suffixes.values())) != len(suffixes):
            raise ValueError(f"Duplicate suffixes set in {suffixes}")
        desired = (body.get("desired_resolution") or self._resolution(metas[names[-1]])) if api == 3 else None
        if len(entries) < 2:
            raise IndexError("list index out of range")
        (t1, c1), (t2, c2) = entries[0], entries[1]
        split = self._split(version)
        models = {t: self._model(version, t) for t in dict.fromkeys(names)}
        for t, c in ((t2, c2), (t1, c1)):  # get_column(model2, column2) first
            if c not in models[t].types:
                raise KeyError(c)
        joined = [t1, t2]
        extra = [t for t in dict.fromkeys(names) if t not in joined]
        self._check_filters(body, models, split, joined + ([] if split else extra))
        if extra and split:
            raise KeyError(extra[0])  # the valid filter on a table that was never added (common.py:505-507)
        sel = self._join_selection(body, models, joined, warnings, split)
        sel.suffixes = dict(suffixes or {})
        if not any(sel.selected.values()):
            raise ValueError("need at least one array to concatenate")
        crud = {(t, k) for t in sel.order for k in sel.keys(t) if k in ("deleted", "superceded_id")}
        offset = body.get("offset", 0)
        factor = 1
        for t in extra:  # a merged version: each extra table multiplies the rows (FROM t1 JOIN t2, t3)
            factor *= self._cross_count(version, t, body, models)
        fetch_limit, fetch_offset = limit, offset or None
        if extra:
            fetch_offset = None
            fetch_limit = None if limit is None else (0 if factor == 0 else -(-(limit + (offset or 0)) // factor))
        req = QueryRequest(kind="join", join=((t1, c1), (t2, c2)), version=version,
                           **self._backend_filters(body, models, joined),
                           select_columns={t: models[t].stored(sel.keys(t)) for t in joined},
                           suffix_map={t: (sel.suffix(t) if t in sel.order else "") for t in joined},
                           offset=fetch_offset, limit=fetch_limit, desired_resolution=_res(desired))
        answer = self._query(req, sample)
        if extra:
            idx = np.repeat(np.arange(answer.num_rows), factor)
            start = offset or 0
            idx = idx[start: None if limit is None else start + limit]
            answer = answer.take(pa.array(idx, pa.int64()))
        self._one_column(sel, models)
        df = self._frame(answer, sel, models, split=split, keep_phantoms=False)
        drop = [n for t, k, name, pos in sel.output_columns() if (t, k) in crud
                for n in ([f"{name}_{a}" for a in "xyz"] if pos else [name]) if n in df.columns]
        df = df.drop(columns=drop)
        if limit is not None and len(df) == limit:
            warnings.append(f'201 - "Limited query to {limit} rows')
        return self._respond(request, args, df, warnings, desired, sel.column_names_header(), api=api)

    def _join_selection(self, body: Mapping[str, Any], models: Mapping[str, Model], joined: list[str],
                        warnings: list[str], split: bool) -> g.Selection:
        t1, t2 = joined
        info = [(t, models[t].keys, models[t].positions) for t in joined]
        if body.get("select_columns"):
            warnings.append(g.JOIN_SELECT_COLUMNS_WARNING)
            requested: dict[str, list[str]] = {}
            order: list[str] = []
            for column in body["select_columns"]:
                for t in joined:  # the service walks a set (its order varies between processes)
                    if column in models[t].keys:
                        requested.setdefault(t, []).append(column)
                        order.append(t)
                        break
                else:
                    raise Abort(400, f"column {column} not found in any table referenced")
            return g.Selection.build(info, {t: requested[t] for t in dict.fromkeys(order)})
        cmap = body.get("select_column_map")
        if cmap:
            sel = g.Selection(order=[], selected={}, positions={})
            for table, columns in cmap.items():
                if table not in joined:
                    raise KeyError(table) if split else RuntimeError(
                        f"select_column_map names table {table!r}, which is not part of the query (the service "
                        "would add it to FROM: a cartesian product)")
                if not isinstance(columns, list):
                    raise TypeError(f"'{type(columns).__name__}' object is not iterable")
                for column in columns:
                    if table not in sel.order:
                        sel.order.append(table)
                        sel.selected[table] = []
                        sel.positions[table] = set(models[table].positions)
                    try:
                        g.Selection.select_column(sel.selected[table], models[table].keys, table, column)
                    except ValueError:
                        raise Abort(400, f"column {column} not found in {table}") from None
            return sel
        # every column of both tables, in the order of a Python set of the two names (not
        # stable across processes); a reference merge comes target first, as the seed page shows
        first, second = (t2, t1) if _reference_merge(body) else (t1, t2)
        return g.Selection.build([(t, models[t].keys, models[t].positions) for t in (first, second)], None)

    def _cross_count(self, version: int, table: str, body: Mapping[str, Any], models: Mapping[str, Model]) -> int:
        req = QueryRequest(kind="table", table=table, version=version, count=True,
                           **self._backend_filters(body, models, [table]))
        return int(self.backend.query(req).table.column("count")[0].as_py())

    # ------------------------------------------------------------------ views

    async def view_query(self, request: Request) -> Response:
        raw = await self._body(request)
        return await _in_thread(self._view_query, request, raw)

    def _view_query(self, request: Request, raw: Any) -> Response:
        """api2.py:3186-3274 ``assemble_view_dataframe``."""
        version = self._validate_datastack(request)
        body = load_simple(_raise_bad_json(raw))
        args = parse_args(request.query_params)
        view = request.path_params["view"]
        limit = self._limit(body)
        count = bool(args["count"])
        if count:
            limit = None
        md = self._view_metadata(view)
        desired = body.get("desired_resolution") or self._resolution(md)
        model = self._view_table(version, view)
        v = self._catalog_version(version)
        self._check_filters(body, {view: model}, False, [view])
        requested = {view: body["select_columns"]} if body.get("select_columns") else None
        sel = g.Selection.build([(view, model.keys, model.positions)], requested)
        offset = body.get("offset", 0)
        req = QueryRequest(kind="view", table=view, version=v,
                           **self._backend_filters(body, {view: model}, [view]),
                           select_columns={view: model.stored(sel.keys(view))}, offset=offset or None,
                           limit=limit, desired_resolution=_res(desired), count=count)
        answer = self._query(req, None)
        if count:
            n = int(answer.column("count")[0].as_py())
            df = pd.DataFrame({"count": [max(0, n - offset) if offset and offset > 0 else n]})
        else:
            self._one_column(sel, {view: model})
            df = self._frame(answer, sel, {view: model}, split=False, keep_phantoms=False)
            df = df.drop(columns=[c for c in ("deleted", "superceded") if c in df.columns])
        warnings: list[str] = []
        if not args.get("direct_sql_pandas", False):
            warnings.append(g.SQL_QUERY_WARNING)
        if limit is not None and len(df) == limit:
            warnings.append(f'201 - "Limited query to {limit} rows')
        if md.get("notice_text") is not None:
            warnings.append(f"Table Owner Notice on {view}: {md['notice_text']}")
        return self._respond(request, args, df, warnings, desired, sel.column_names_header(), api=3)


def _reference_merge(body: Mapping[str, Any]) -> bool:
    entries = body["tables"]
    return len(entries) >= 2 and (entries[0][1], entries[1][1]) == ("target_id", "id")
