"""The discovery, metadata and schema-service routes (everything but the four queries).

Each handler follows its genuine MaterializationEngine 5.26.4 resource (api2.py for v3,
api.py for v2; the line numbers are in each docstring), its 404 bodies and its aborts included.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from starlette.requests import Request
from starlette.responses import JSONResponse

from caveql.server import genuine as g
from caveql.server.catalog import Model, ServiceBase, _api
from caveql.server.errors import Abort, KeyError_, _Returned
from caveql.server.validate import parse_args


class MetadataRoutes(ServiceBase):
    """Discovery (the info service), the materialize metadata routes and the schema service."""

    # ------------------------------------------------------------------ discovery

    def info(self, request: Request) -> Any:
        ds = request.path_params["ds"]
        if ds != self.datastack:
            return JSONResponse({"message": f"datastack {ds} not found"}, status_code=404)
        base = str(request.base_url).rstrip("/")
        info = dict(self.backend.info())
        res = [info.get(f"viewer_resolution_{a}", 1.0) for a in "xyz"]
        aligned = info.get("aligned_volume") or {}
        if isinstance(aligned, str):
            aligned = {"name": aligned}
        record = {
            "datastack_name": self.datastack, "description": info.get("description", ""),
            "local_server": base, "synapse_table": info.get("synapse_table"),
            "soma_table": info.get("soma_table"),
            "aligned_volume": {"id": 1, "name": aligned.get("name", self.datastack),
                               "description": aligned.get("description", ""),
                               "image_source": aligned.get("image_source", "")},
            "segmentation_source": f"graphene://{base}/segmentation/table/{_pcg_table_name(info)}",
            "analysis_database": None, "viewer_site": info.get("viewer_site", ""),
            "viewer_resolution_x": res[0], "viewer_resolution_y": res[1], "viewer_resolution_z": res[2],
            "skeleton_source": None,
        }
        return {**{k: v for k, v in info.items() if k not in record}, **record}

    # ------------------------------------------------------------------ metadata

    @staticmethod
    def _expired(request: Request) -> bool:
        return bool(parse_args(request.query_params, (("expired", "bool", False),))["expired"])

    def versions(self, request: Request) -> Any:
        """api2.py:716-747 (``?expired=true`` lists every version); api.py:112-140 (valid only)."""
        self._check_ds(request)
        if _api(request) == 3 and self._expired(request):
            return self._all_versions()
        return sorted(self.backend.versions())

    def version_metadata(self, request: Request) -> Any:
        """api2.py:750-785: any version, valid or not; else ``"No version found"``, 404."""
        self._check_ds(request)
        v = self._path_version(request)
        if v not in self._all_versions():
            raise _Returned("No version found", 404)
        return _version_dump(self.backend.version_metadata(v))

    def versions_metadata(self, request: Request) -> Any:
        """api2.py:846-880 / api.py:175-202."""
        self._check_ds(request)
        every = _api(request) == 3 and self._expired(request)
        versions = self._all_versions() if every else sorted(self.backend.versions())
        if not versions:
            raise _Returned("No valid versions found", 404)
        return [_version_dump(self.backend.version_metadata(v)) for v in versions]

    def tables(self, request: Request) -> Any:
        """api2.py:883-928: the version's ``analysistables`` with ``valid`` true; ``null``, 404
        for an unknown version or none. api.py:205-242: an unknown version aborts (500)."""
        self._check_ds(request)
        v = self._path_version(request)
        if v not in self._all_versions():
            if _api(request) == 2:
                raise Abort(404, f"version {v} does not exist for {self.datastack} ")
            raise _Returned(None, 404)
        names = [t for t in self.backend.tables(v) if self.backend.table_metadata(v, t).get("valid", True) is not False]
        if not names and _api(request) == 3:
            raise _Returned(None, 404)
        return names

    def _metadata(self, version: int, table: str, *, api: int) -> dict[str, Any]:
        """The AnalysisTable dump updated with ``get_table_metadata`` minus ``id``/``deleted``;
        v3 moves ``annotation_table`` into ``table_name`` (api2.py:1041-1050), v2 keeps both
        (the segmentation table's name in ``table_name``, api.py:280-288)."""
        meta = dict(self.backend.table_metadata(version, table))
        # the engine updates the version's row with the live database's metadata (one row per
        # table: the newest version's here), keeping only the version's id (api2.py:1033-1050)
        holding = [v for v in self._all_versions() if table in self.backend.tables(v)]
        if holding and max(holding) != version:
            live = self.backend.table_metadata(max(holding), table)
            meta.update({k: v for k, v in live.items() if k != "id"})
        meta.pop("deleted", None)
        if api == 3:
            ann = meta.pop("annotation_table", None)
            meta["table_name"] = ann or table
            return meta
        roots = any(n.endswith("_root_id") for n in self.backend.table_columns(version, table).names)
        pcg = meta.get("pcg_table_name")
        if roots and pcg:
            meta["table_name"] = f"{table}__{pcg}"
            meta["annotation_table"] = table
        else:
            meta.setdefault("table_name", table)
        return meta

    def table_metadata(self, request: Request) -> Any:
        """api2.py:992-1051 (404 string for a table not in the version); api.py:245-289 (500)."""
        version = self._validate_datastack(request)
        table = request.path_params["table"]
        if _api(request) == 2:
            self._validate_tables([table], version)
            meta = self._metadata(version, table, api=2)
            notice = meta.get("notice_text")
            resp = JSONResponse(meta)
            if notice is not None:
                resp.headers.append("Warning", f"Table Owner Notice on {table}: {notice}".replace("\n", " "))
            return resp
        if version not in self._all_versions() or table not in self.backend.tables(version):
            raise _Returned(f"No table named '{table}' found for version '{version}' in datastack "
                            f"'{self.datastack}'", 404)
        return self._metadata(version, table, api=3)

    def tables_metadata(self, request: Request) -> Any:
        """api2.py:931-989: every table of the version (valid or not); ``[]``, 404 if none."""
        version = self._validate_datastack(request)
        if version not in self._all_versions() or not self.backend.tables(version):
            raise _Returned([], 404)
        return [self._metadata(version, t, api=3) for t in self.backend.tables(version)]

    def count(self, request: Request) -> Any:
        """api2.py:788-832: ``materializedmetadata.row_count`` (null without a row)."""
        version = self._validate_datastack(request)
        table = request.path_params["table"]
        self._validate_tables([table], version)
        return self._row_count(version, table)

    def views(self, request: Request) -> Any:
        """api2.py:3098-3139: ``{name: analysisviews row without table_name}``."""
        version = self._validate_datastack(request)
        v = self._catalog_version(version)
        return {} if v is None else self.backend.views(v)

    def view_metadata(self, request: Request) -> Any:
        """api2.py:3142-3183: the aligned volume's ``analysisviews`` row (any version)."""
        self._validate_datastack(request)
        return self._view_metadata(request.path_params["view"])

    def view_schema(self, request: Request) -> Any:
        """api2.py:3494-3578 (``get_table_schema``)."""
        version = self._validate_datastack(request)
        model = self._view_table(version, request.path_params["view"])
        return _view_schema(model)

    def view_schemas(self, request: Request) -> Any:
        """api2.py:3581-3630: ``{}``, 404 when the version has no views."""
        version = self._validate_datastack(request)
        v = self._catalog_version(version)
        views = self.backend.views(v) if v is not None else {}
        if not views:
            raise _Returned({}, 404)
        return {name: _view_schema(self._model(v, name, view=True)) for name in views}  # type: ignore[arg-type]

    def unique_string_values(self, request: Request) -> Any:
        """api2.py:1628-1654 → DADB ``get_unique_string_values`` on the live database."""
        self._check_ds(request)
        table = request.path_params["table"]
        if self._any_version_with(table) is None:
            raise KeyError_(f"No table named '{table}' exists.")
        return self.backend.unique_string_values(table)

    # ------------------------------------------------------------------ schema service

    def schema_names(self, request: Request) -> Any:
        return sorted(self.schemas)

    def schema_type(self, request: Request) -> Any:
        name = request.path_params["schema"]
        if name not in self.schemas:
            return JSONResponse({"message": f"404 Not Found: unknown annotation type {name}"}, status_code=404)
        return self.schemas[name]

    def schema_all(self, request: Request) -> Any:
        return self.schemas


def _version_dump(meta: dict[str, Any]) -> dict[str, Any]:
    """Version metadata with its datetimes always carrying microseconds.

    caveclient parses ``time_stamp``/``expires_on`` with ``%Y-%m-%dT%H:%M:%S.%f``; the
    service's values practically always have a fraction, a hand-written datastack may not.

    >>> _version_dump({"version": 1, "expires_on": "2121-01-01T00:00:00"})["expires_on"]
    '2121-01-01T00:00:00.000000'
    """
    out = dict(meta)
    for key in ("time_stamp", "expires_on"):
        value = out.get(key)
        if isinstance(value, str) and len(value) == 19 and value[10] == "T":
            out[key] = value + ".000000"
    return out


def _view_schema(model: Model) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for k in model.keys:
        out[k] = _json_type(model.types[k], k in model.positions)
    return out


def _json_type(t: pa.DataType, position: bool) -> dict[str, str]:
    """api2.py:3494-3533: String, Integer, Float, DateTime, Boolean, Geometry, Numeric (in that order)."""
    if position:
        return {"type": "SpatialPoint"}
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return {"type": "string"}
    if pa.types.is_integer(t):
        return {"type": "integer"}
    if pa.types.is_floating(t):
        return {"type": "float"}
    if pa.types.is_timestamp(t):
        return {"type": "string", "format": "date-time"}
    if pa.types.is_boolean(t):
        return {"type": "boolean"}
    if pa.types.is_decimal(t):
        return {"type": "number"}
    raise ValueError(f"Unsupported column type: {t}")


def arrow_to_view_schema(schema: pa.Schema) -> dict[str, dict[str, str]]:
    """A view's ``{column: {"type": ...}}`` as the service derives it from SQL column types.

    >>> arrow_to_view_schema(pa.schema([("id", pa.int64()), ("pt_position_x", pa.int32()),
    ...     ("pt_position_y", pa.int32()), ("pt_position_z", pa.int32()), ("cell_type", pa.string())]))
    {'id': {'type': 'integer'}, 'pt_position': {'type': 'SpatialPoint'}, 'cell_type': {'type': 'string'}}
    """
    out: dict[str, dict[str, str]] = {}
    for key, pos in g.model_columns(schema):
        out[key] = _json_type(pa.int32() if pos else schema.field(key).type, pos)
    return out


def _pcg_table_name(info: dict[str, Any]) -> str:
    """The ChunkedGraph table the datastack names (the engine reads the last part of
    ``segmentation_source`` to find its ``{table}__{pcg}`` segmentation tables)."""
    if info.get("pcg_table_name"):
        return str(info["pcg_table_name"])
    source = str(info.get("segmentation_source") or "")
    return source.rstrip("/").rpartition("/")[2] or "caveql"
