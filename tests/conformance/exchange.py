"""One HTTP exchange sent to the genuine engine and to ``caveql serve``, and what differs.

:func:`replay` sends a captured request (method, path, query, JSON body) to a deployment;
:func:`differences` lists every difference of two replies that a client can see: status,
the ``Warning``, ``dataframe_resolution`` and ``column_names`` headers, the content type,
JSON bodies, and for Arrow answers the schema (types, field order, pandas metadata) and
the rows as a multiset (the genuine server has no ORDER BY).
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from typing import Any

import httpx
import pandas as pd
import pyarrow as pa

# pandas metadata keys that name the writer's library versions, not the answer
_CREATOR_KEYS = ("creator", "pandas_version")


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def is_arrow(self) -> bool:
        return self.status == 200 and "arrow" in self.headers.get("content-type", "")

    def arrow(self) -> pa.Table:
        return pa.ipc.open_stream(self.body).read_all()

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return self.body.decode(errors="replace")


def target(deployment: Any, path: str) -> str:
    """The base URL serving ``path``: materialize routes on the engine, the rest on the front."""
    if path.startswith("/materialize"):
        return deployment.url
    return getattr(deployment, "global_url", deployment.url)


def replay(client: httpx.Client, deployment: Any, request: dict[str, Any]) -> Reply:
    """Send one captured request (``method``, ``path``, ``query``, ``body``) to ``deployment``."""
    url = target(deployment, request["path"]) + request["path"]
    body = request.get("body")
    r = client.request(request["method"], url, params=request.get("query") or {},
                       content=None if body is None else json.dumps(body).encode(),
                       headers={"Content-Type": "application/json"} if body is not None else {})
    headers = {k.lower(): v for k, v in r.headers.multi_items() if k.lower() != "warning"}
    warnings = r.headers.get_list("warning")
    if warnings:
        headers["warning"] = " | ".join(warnings)
    return Reply(r.status_code, headers, r.content)


def pandas_metadata(schema: pa.Schema) -> dict[str, Any]:
    """The schema's pandas metadata without the writer's version keys."""
    raw = (schema.metadata or {}).get(b"pandas")
    if raw is None:
        return {}
    meta = json.loads(raw)
    # pandas >= 2.1 writes an empty "attributes" (DataFrame.attrs): the writer's version again
    return {k: v for k, v in meta.items() if k not in _CREATOR_KEYS and not (k == "attributes" and not v)}


def canonical_rows(table: pa.Table) -> pd.DataFrame:
    """Rows in a canonical order (every column, as text where Arrow cannot sort them)."""
    frame = table.to_pandas(types_mapper=pd.ArrowDtype)
    frame = frame.drop(columns=[c for c in frame.columns if str(c).startswith("__index_level_")], errors="ignore")
    keys = frame.astype(str)
    order = keys.sort_values(list(keys.columns), kind="stable").index if len(keys.columns) else keys.index
    return frame.loc[order].reset_index(drop=True)


def json_diff(a: Any, b: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """The paths where two JSON values differ (dicts key by key, lists item by item)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b), key=str) for d in json_diff(a.get(k), b.get(k), f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in json_diff(x, y, f"{path}[{i}]")]
    return [] if a == b else [(path, a, b)]


HEADERS = ("warning", "dataframe_resolution", "column_names")

# Differences caveql serve keeps on purpose (docs/remote.md, "Deliberate differences of caveql
# serve"); the comparison sets each aside in one named place:
#  - "microseconds": version datetimes always carry microseconds (caveclient 8.2.1 parses them
#    with %f; the engine's isoformat() drops zero microseconds and caveclient then fails);
#  - "traceback": an HTTP 500's traceback is the engine's stack; code and message must agree;
#  - "string sets": unique string values are sorted (the engine's SELECT DISTINCT has no order);
#  - "block order": a join's column blocks without select_column_map follow a Python set's
#    order in the engine (hash seed); blocks are compared by name, not position.
_NO_MICROSECONDS = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.000000$")


def _normal_json(value: Any, path: str, status: int) -> Any:
    if isinstance(value, dict):
        return {k: _normal_json(v, f"{path}.{k}", status) for k, v in value.items()
                if not (status >= 500 and k == "traceback")}
    if isinstance(value, list):
        items = [_normal_json(v, path, status) for v in value]
        if path.startswith("unique_string_values.") and all(isinstance(v, str) for v in items):
            return sorted(items)
        return items
    if isinstance(value, str):
        m = _NO_MICROSECONDS.match(value)
        return m.group(1) if m else value
    return value


def _column_blocks(header: str | None) -> Any:
    try:
        return ast.literal_eval(header) if header else header
    except (ValueError, SyntaxError):
        return header


def differences(genuine: Reply, served: Reply, *, kind: str = "") -> list[str]:
    """Every visible difference between the genuine engine's reply and caveql serve's.

    ``kind`` names the endpoint where a deliberate difference applies: ``"join"`` (block
    order), ``"unique_string_values"`` (string sets).
    """
    out: list[str] = []
    if genuine.status != served.status:
        out.append(f"status {genuine.status} vs {served.status}: {genuine.body[:300]!r} vs {served.body[:300]!r}")
        return out
    blocks = kind == "join" and isinstance(_column_blocks(genuine.headers.get("column_names")), dict)
    for h in HEADERS:
        a, b = genuine.headers.get(h), served.headers.get(h)
        if h == "column_names" and blocks:
            a, b = _column_blocks(a), _column_blocks(b)  # dicts: equal whatever their order
        if a != b:
            out.append(f"header {h}: {a!r} vs {b!r}")
    if genuine.is_arrow != served.is_arrow:
        out.append(f"content-type {genuine.headers.get('content-type')!r} vs {served.headers.get('content-type')!r}")
        return out
    if not genuine.is_arrow:
        ja = _normal_json(genuine.json(), kind + ".", genuine.status)
        jb = _normal_json(served.json(), kind + ".", served.status)
        out += [f"body{path}: {x!r:.300} vs {y!r:.300}" for path, x, y in json_diff(ja, jb)]
        return out
    a, b = genuine.arrow(), served.arrow()
    fields_a = [(f.name, str(f.type)) for f in a.schema]
    fields_b = [(f.name, str(f.type)) for f in b.schema]
    if blocks and sorted(fields_a) == sorted(fields_b):
        b = b.select(a.column_names)  # same fields, blocks in another order
        fields_b = fields_a
    if fields_a != fields_b:
        out.append(f"schema {fields_a} vs {fields_b}")
        return out
    meta_a, meta_b = pandas_metadata(a.schema), pandas_metadata(served.arrow().schema)
    if blocks:
        meta_a["columns"] = sorted(meta_a.get("columns", []), key=lambda c: str(c.get("name")))
        meta_b["columns"] = sorted(meta_b.get("columns", []), key=lambda c: str(c.get("name")))
    if meta_a != meta_b:
        out.append(f"pandas metadata {meta_a} vs {meta_b}")
    if a.num_rows != b.num_rows:
        out.append(f"rows {a.num_rows} vs {b.num_rows}")
        return out
    ra, rb = canonical_rows(a), canonical_rows(b)
    if not ra.equals(rb):
        for col in ra.columns:
            if not ra[col].equals(rb[col]):
                bad = (ra[col].astype(str) != rb[col].astype(str)).to_numpy().nonzero()[0][:3]
                out.append(f"column {col}: rows {list(bad)}: {ra[col].iloc[bad].tolist()} vs {rb[col].iloc[bad].tolist()}")
    return out


def kind_of(request: dict[str, Any]) -> str:
    """The endpoint kind of a request, for :func:`differences`."""
    path = request["path"]
    if path.endswith("/unique_string_values"):
        return "unique_string_values"
    body = request.get("body") or {}
    if path.endswith("/query") and isinstance(body, dict) and "tables" in body and "select_column_map" not in body:
        return "join"
    return ""


def rows_within(limited: Reply, whole: Reply) -> bool:
    """Whether a LIMIT answer's rows are a sub-multiset of the unlimited answer's (no ORDER BY)."""
    part, full = canonical_rows(limited.arrow()).astype(str), canonical_rows(whole.arrow()).astype(str)
    if list(part.columns) != list(full.columns):
        return False
    pool: dict[tuple, int] = {}
    for row in full.itertuples(index=False):
        pool[tuple(row)] = pool.get(tuple(row), 0) + 1
    for row in part.itertuples(index=False):
        if pool.get(tuple(row), 0) == 0:
            return False
        pool[tuple(row)] -= 1
    return True


def check_exchange(client: httpx.Client, genuine: Any, served: Any, request: dict[str, Any]) -> list[str]:
    """Send ``request`` to both deployments; the differences (see :func:`differences`).

    A LIMIT without ORDER BY may pick other rows on each side ("limit rows"): when the
    row sets differ, each side's rows must lie within the unlimited answer.
    """
    a, b = replay(client, genuine, request), replay(client, served, request)
    diff = differences(a, b, kind=kind_of(request))
    body = request.get("body")
    if diff and a.is_arrow and b.is_arrow and isinstance(body, dict) and body.get("limit") \
            and all(d.startswith("column ") for d in diff):
        whole = replay(client, served, {**request, "body": {k: v for k, v in body.items() if k != "limit"}})
        if rows_within(a, whole) and rows_within(b, whole):
            return []
        diff.append("LIMIT rows not within the unlimited answer")
    return diff
