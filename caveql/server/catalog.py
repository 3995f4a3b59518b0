"""The service's state and its view of the datastack's catalog, shared by every route.

:class:`ServiceBase` holds the backend, the row cap and the token, and answers the catalog
questions the genuine handlers ask the database: which versions and tables exist, whether a
version is split, a table's or view's model (:class:`Model`), its row count. The route
handlers (:mod:`caveql.server.metadata`, :mod:`caveql.server.queries` and the query modules)
subclass it; :class:`caveql.server.app.Service` puts them together.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from typing import Any

import pyarrow as pa
from starlette.requests import Request

from caveql.backends.base import Backend
from caveql.server import genuine as g
from caveql.server.errors import Abort, _Returned

#: The service's per-call row cap (config ``QUERY_LIMIT_SIZE``).
QUERY_LIMIT_SIZE = 200_000


def schema_types() -> dict[str, Any]:
    """EMAnnotationSchemas' JSON schemas by type name (package data; see caveql/data/README.md).

    >>> sorted(schema_types())[:3]
    ['bound_2tag', 'bound_2tag_user', 'bound_double_tag']
    """
    text = resources.files("caveql").joinpath("data/emannotationschemas.json").read_text()
    return json.loads(text)["types"]


@dataclass
class Model:
    """A table's or view's columns as the service's model has them."""

    name: str
    keys: list[str]
    positions: set[str]
    types: dict[str, pa.DataType]  # key -> Arrow type (a position: int32)
    phantom: set[str]              # in the model, not stored locally (a split table's ``deleted``)
    view: bool

    def stored(self, keys: Sequence[str]) -> tuple[str, ...]:
        return tuple(k for k in keys if k not in self.phantom)


class ServiceBase:
    """The routes' state: the backend, the cap, the optional token."""

    def __init__(self, backend: Backend, *, row_cap: int | None = QUERY_LIMIT_SIZE, token: str | None = None,
                 datastack: str | None = None, api_versions: tuple[int, ...] = (2, 3)) -> None:
        self.backend = backend
        self.row_cap = row_cap
        self.token = token
        self.datastack = datastack or str(backend.info().get("datastack_name") or "")
        # 5.26.4's v2 query handlers read args["ipc_compress"], which the v2 parser does not
        # define (common.py:379, api.py:63-103): every v2 query fails after running. A server
        # offering only v2 mimics an older deployment, whose v2 queries worked.
        self.v2_queries_fail = 3 in api_versions

    @cached_property
    def schemas(self) -> dict[str, Any]:
        return schema_types()

    # ------------------------------------------------------------------ catalog

    def _all_versions(self) -> list[int]:
        every = getattr(self.backend, "all_versions", None)
        return list(every()) if callable(every) else list(self.backend.versions())

    def _split(self, version: int) -> bool:
        """``not analysisversion.is_merged`` (the model's default is merged)."""
        try:
            return self.backend.version_metadata(version).get("is_merged", True) is False
        except Exception:  # noqa: BLE001 - no metadata: the model's default
            return False

    def _check_ds(self, request: Request) -> None:
        ds = request.path_params.get("ds")
        if ds is not None and ds != self.datastack:
            # info_client.get_datastack_info: the InfoService's 404 (materialization-server.md §0)
            raise RuntimeError(f"datastack {ds} info not returned 404 Client Error: NOT FOUND for url: "
                               f"{str(request.base_url).rstrip('/')}/info/api/v2/datastack/full/{ds}")

    def _path_version(self, request: Request) -> int:
        """The ``<int(signed=True):version>`` converter (v2: ``<int:version>``): no match is
        Flask's 404 page."""
        raw = request.path_params["version"]
        signed = not request.url.path.startswith("/materialize/api/v2/")
        text = raw[1:] if signed and raw.startswith("-") else raw
        if not text.isdigit() or not text.isascii():
            raise _Returned({"message": "The requested URL was not found on the server. If you entered the URL "
                                        "manually please check your spelling and try again."}, 404)
        return int(raw)

    def _validate_datastack(self, request: Request, version: int | None = None) -> int:
        """datastack.py:299-364 (``validate_datastack``); returns the version."""
        self._check_ds(request)
        v = self._path_version(request) if version is None else version
        every = self._all_versions()
        if v == -1:
            return v
        if v == 0:
            if not every:
                raise Abort(404, f"version {v} not found in {self.datastack}")
            return v
        if v not in every:
            raise Abort(404, f"version {v} not found in {self.datastack}")
        return v

    def _validate_tables(self, tables: Sequence[str], version: int) -> None:
        """common.py:220-240 (``validate_table_args``): the table must be in the version's
        ``analysistables`` (valid or not)."""
        for t in tables:
            if version not in self._all_versions():
                raise Abort(404, f"Analysis version {version} not found for datastack {self.datastack}")
            if t not in self.backend.tables(version):
                raise Abort(404, f"Analysis table '{t}' not found for version {version} in datastack "
                                 f"{self.datastack}")

    def _any_version_with(self, name: str, *, view: bool = False) -> int | None:
        for v in sorted(self._all_versions(), reverse=True):
            names = self.backend.views(v) if view else self.backend.tables(v)
            if name in names:
                return v
        return None

    def _live_metadata(self, table: str) -> dict[str, Any] | None:
        """The live database's ``annotation_table_metadata`` row: the newest version's."""
        v = self._any_version_with(table)
        return None if v is None else dict(self.backend.table_metadata(v, table))

    def _view_metadata(self, view: str) -> dict[str, Any]:
        """``get_view_metadata`` (``.one()`` on ``analysisviews``; cache.py:266-279)."""
        v = self._any_version_with(view, view=True)
        if v is None:
            raise RuntimeError("No row was found for one()")
        return {**self.backend.views(v)[view], "table_name": view}

    def _model(self, version: int, name: str, *, view: bool = False) -> Model:
        schema = self.backend.table_columns(version, name)
        cols = g.model_columns(schema)
        keys = [k for k, _p in cols]
        positions = {k for k, p in cols if p}
        types = {k: (pa.int32() if p else schema.field(k).type) for k, p in cols}
        phantom: set[str] = set()
        if not view and self._split(version) and "created" in keys and "deleted" not in keys:
            # a split version's annotation model: id, created, deleted, superceded_id, valid, ...
            keys.insert(keys.index("created") + 1, "deleted")
            types["deleted"] = pa.timestamp("ns")
            phantom.add("deleted")
        if not view and not self._split(version):
            keys = _flat_keys(keys)
            types = {k: types[k] for k in keys}
        return Model(name, keys, positions, types, phantom, view)

    @staticmethod
    def _resolution(meta: Mapping[str, Any]) -> list[float]:
        return [float(meta[f"voxel_resolution_{a}"]) for a in "xyz"]

    def _row_count(self, version: int, table: str) -> int | None:
        """``materializedmetadata.row_count`` (the valid rows frozen), None without a row."""
        if table not in self.backend.tables(version):
            return None
        return int(self.backend.table_count(version, table))

    def _catalog_version(self, version: int) -> int | None:
        """Version 0 (and -1) reads the live database's catalog: the newest version's here."""
        if version in (0, -1):
            every = self._all_versions()
            return max(every) if every else None
        return version

    def _view_table(self, version: int, view: str) -> Model:
        """``get_view_table`` (reflection; an unknown view fails as SQLAlchemy does)."""
        v = self._catalog_version(version)
        if v is None or view not in self.backend.views(v):
            raise RuntimeError(f"Could not reflect: requested table(s) not available in "
                               f"Engine(postgresql://***@localhost/{self.datastack}__mat{version}): ({view})")
        return self._model(v, view, view=True)


_CRUD = ("created", "deleted", "superceded_id")


def _flat_keys(keys: list[str]) -> list[str]:
    """A merged version's flat model (EMAnnotationSchemas ``make_flat_model``): ``id, valid``,
    the annotation fields, each position followed by its supervoxel and root ids; no crud columns
    (the materialization's merge step leaves them out)."""
    segmentation = {k for k in keys if k.endswith(("_supervoxel_id", "_root_id"))}
    out = [k for k in ("id", "valid") if k in keys]
    for k in keys:
        if k in out or k in _CRUD or k in segmentation:
            continue
        out.append(k)
        if k.endswith("_position"):
            base = k[: -len("position")]
            out += [c for c in (base + "supervoxel_id", base + "root_id") if c in segmentation]
    # segmentation columns without a position of their own keep their place at the end
    return out + [k for k in keys if k in segmentation and k not in out]


def _api(request: Request) -> int:
    """The API version a request's path names (2 or 3)."""
    return 2 if request.url.path.startswith("/materialize/api/v2/") else 3
