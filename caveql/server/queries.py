"""The steps the four query routes share: the body, the cap, the sample, the filter checks,
the backend's request, the service's frame and its HTTP response (utils.py ``create_query_response``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from starlette.requests import Request
from starlette.responses import Response

from caveql.backends.base import QueryRequest
from caveql.backends.wire import ARROW_CONTENT_TYPE, content_digest
from caveql.server import genuine as g
from caveql.server.catalog import Model, ServiceBase
from caveql.server.errors import _BadJson

# the filter dicts in the order QueryManager applies them (common.py:315-327); the service reads
# "filter_out_dict" (never in a valid body) where caveclient sends "filter_notin_dict"
_FILTER_ORDER = ("in", "notin", "equal", "greater", "less", "greater_equal", "less_equal", "spatial", "regex")
_REFILTER = ("in", "equal", "greater", "less", "greater_equal", "less_equal")


class QueryBase(ServiceBase):
    """The query routes' shared steps (the routes: :mod:`caveql.server.frozen`, :mod:`caveql.server.live`)."""

    async def _body(self, request: Request) -> Any:
        raw = await request.body()
        try:
            return json.loads(raw)
        except ValueError as exc:
            # werkzeug's get_json(force=True): a BadRequest, raised out of flask-accepts
            return _BadJson(f"Failed to decode JSON object: {exc}")

    def _limit(self, body: Mapping[str, Any]) -> int | None:
        """``min(data.get("limit", QUERY_LIMIT_SIZE), QUERY_LIMIT_SIZE)`` (common.py:267-271)."""
        if self.row_cap is None:
            return body.get("limit")
        return min(body.get("limit", self.row_cap), self.row_cap)

    def _sample_percent(self, version: int, table: str, n: int | None) -> float | None:
        """common.py:290-301: ``100 * n / row_count``; none when ``n >= row_count``."""
        if n is None:
            return None
        rows = self._row_count(version, table)
        if rows is None:
            raise TypeError("'>=' not supported between instances of 'int' and 'NoneType'")
        if n >= rows:
            return None
        return 100.0 * n / rows

    def _query(self, req: QueryRequest, sample: float | None) -> pa.Table:
        if sample is not None:
            try:
                return self.backend.query(req, sample_percent=sample).table  # type: ignore[call-arg]
            except TypeError as exc:
                if "sample_percent" not in str(exc):
                    raise
        return self.backend.query(req).table

    @staticmethod
    def _check_filters(body: Mapping[str, Any], models: Mapping[str, Model], split: bool,
                       joined: Sequence[str]) -> None:
        """QueryManager.apply_* (query_manager.py:263-334): the filter's table must be a model
        of the query (split layout: ``self._models[table]``, a KeyError), its column one of
        the model's (KeyError; a view: AttributeError), a regex a String column, a box
        ``min < max`` (query.py:193-199)."""
        for kind in _FILTER_ORDER:
            if kind == "notin":
                continue  # the service reads filter_out_dict, absent from every valid body
            spec = body.get(f"filter_{kind}_dict")
            if not spec:
                continue
            for table, cols in spec.items():
                if table not in joined:
                    if split:
                        raise KeyError(table)
                    raise RuntimeError(f"filter_{kind}_dict names table {table!r}, which is not part of the "
                                       "query (the service would add it to FROM: a cartesian product)")
                if not isinstance(cols, Mapping):
                    raise AttributeError(f"'{type(cols).__name__}' object has no attribute 'items'")
                model = models[table]
                for col, value in cols.items():
                    if col not in model.types:
                        if model.view:
                            raise AttributeError(col)
                        raise KeyError(col)
                    if kind == "regex" and not (pa.types.is_string(model.types[col]) and col not in model.positions):
                        raise ValueError("Regex filter is only supported on string columns")
                    if kind == "spatial" and col in model.positions:
                        _check_box(value)

    @staticmethod
    def _backend_filters(body: Mapping[str, Any], models: Mapping[str, Model],
                         tables: Sequence[str]) -> dict[str, Any]:
        types = {t: m.types for t, m in models.items()}
        try:
            conv = g.coerce_filters(body, types, [k for k in _FILTER_ORDER if k != "notin"])
        except g.PgError as exc:
            raise RuntimeError(f"Execution failed on sql: {exc}") from None
        if body.get("filter_notin_dict"):
            # never read by the service (it reads filter_out_dict); passed on for --honor-notin
            conv["notin"] = body["filter_notin_dict"]
        out: dict[str, Any] = {}
        for kind, spec in conv.items():
            out[f"filter_{kind}"] = {t: dict(c) if isinstance(c, Mapping) else c for t, c in spec.items()
                                     if t in tables}
        return out

    def _frame(self, table: pa.Table, sel: g.Selection, models: Mapping[str, Model], *, split: bool,
               keep_phantoms: bool) -> pd.DataFrame:
        """The answer as the service's frame, its columns in the selection's order; a phantom
        (selected, not stored: a split table's ``deleted``) is an all-null timestamp column when
        ``keep_phantoms``, else left out (the service drops it anyway)."""
        view = any(m.view for m in models.values())
        coalesce = [name for t, k, name, _pos in sel.output_columns()
                    if split and not view and (k.endswith("_root_id") or k.endswith("_supervoxel_id"))]
        layout: list[tuple[str, bool]] = []  # (column, phantom)
        for t, k, name, pos in sel.output_columns():
            cols = [f"{name}_{a}" for a in "xyz"] if pos else [name]
            layout += [(c, k in models[t].phantom) for c in cols]
        stored = [c for c, ph in layout if not ph]
        missing = [c for c in stored if c not in table.column_names]
        if missing:
            raise RuntimeError(f"the backend's answer lacks {missing}")
        df = g.genuine_frame(table.select(stored), view=view, coalesce=coalesce)
        if not keep_phantoms:
            return df
        for i, (c, ph) in enumerate(layout):
            if ph:
                df.insert(i, c, pd.Series(pd.NaT, index=df.index, dtype="datetime64[ns, UTC]"))
        return df

    @staticmethod
    def _one_column(sel: g.Selection, models: Mapping[str, Model]) -> None:
        if sel.sql_width() == 1:
            ((t, k, name, _pos),) = sel.output_columns()
            raise g.one_column_error(name, models[t].types[k], view=models[t].view)

    def _respond(self, request: Request, args: Mapping[str, Any], df: pd.DataFrame, warnings: Sequence[str],
                 resolution: Sequence[float] | None, column_names: str, *, api: int) -> Response:
        """utils.py:84-129 ``create_query_response``."""
        if api == 2 and self.v2_queries_fail:
            raise KeyError("ipc_compress")
        # (a client strips a header value's surrounding whitespace; h11 refuses to send it)
        warn = [w.replace("\n", " ").strip() for w in warnings]
        if args["return_pyarrow"]:
            if not args["arrow_format"]:
                warn = [g.IPC_FORMAT_WARNING]  # replaces the others (a dict key set twice)
            body = g.encode_frame(df, request.headers.get("accept-encoding"),
                                  compress=args.get("ipc_compress", True))
            response = Response(body, media_type=None)
            response.headers["Content-Type"] = ARROW_CONTENT_TYPE
            if "gzip" not in request.headers.get("accept-encoding", "").lower():
                # not in the genuine service: lets a client see a body damaged in transit (only
                # when no gzip will be applied on top: the digest is of the bytes sent)
                response.headers["Content-Digest"] = content_digest(body)
        else:
            response = Response(df.to_json(orient="records"), media_type="application/json")
        for w in warn:
            response.headers.append("Warning", w)
        if resolution is not None:
            for r in resolution:
                response.headers.append("dataframe_resolution", str(float(r)))
        response.headers.append("column_names", column_names)
        return response


def _check_box(value: Any) -> None:
    try:
        arr = np.array(value)
        ok = bool((arr[0] < arr[1]).all())
    except Exception as exc:  # noqa: BLE001 - numpy's own failure, as the service raises it
        raise type(exc)(str(exc)) from None
    if not ok:
        raise Exception(f"min bounds: {arr[0]} must be less than max bounds: {arr[1]}")  # noqa: TRY002


def _res(desired: Sequence[float] | None) -> tuple[float, float, float] | None:
    if desired is None:
        return None
    x, y, z = (float(v) for v in desired)
    return (x, y, z)


async def _in_thread(fn: Callable[..., Response], *args: Any) -> Response:
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(fn, *args)
