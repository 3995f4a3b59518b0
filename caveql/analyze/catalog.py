"""The catalog: what a datastack holds at one version, read through the Backend protocol.

A :class:`Catalog` answers the analyzer's questions — which sources exist, their
columns and types, which table owns a column of a merged reference table, the
voxel resolution — and caches every answer (metadata does not change within a
version). Columns are described as CQL sees them:

- a position is one column of type ``position`` (the backend's ``P_x/P_y/P_z``
  triple); its components ``P_x``, ``P_y``, ``P_z`` are ``int`` columns too;
- a reference table is merged with its target as caveclient's table manager
  returns it: the target's columns keep their names, the reference row's clashing
  columns get ``_ref`` (``id_ref``, ``valid_ref``), then the reference's own columns;
- a live statement (AT TIMESTAMP, AT LIVE) reads tables through
  :meth:`Catalog.for_live`: the columns of a live answer, i.e. without the
  ``valid`` and ``superceded_id`` bookkeeping columns (see :data:`LIVE_ABSENT`).

>>> from caveql.analyze.catalog import split_positions
>>> import pyarrow as pa
>>> s = pa.schema([("id", pa.int64()), ("pt_position_x", pa.int32()),
...                ("pt_position_y", pa.int32()), ("pt_position_z", pa.int32())])
>>> [(c.name, c.type) for c in split_positions(s)]
[('id', 'int'), ('pt_position', 'position')]
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from caveql.backends.base import Backend
from caveql.backends.wire import fold_positions
from caveql.errors import BackendError, UnknownTableError, did_you_mean

__all__ = ["LIVE_ABSENT", "Catalog", "ColumnInfo", "LiveCatalog", "SourceInfo", "arrow_type_name",
           "live_source", "split_positions"]

#: Suffix of a reference row's columns that clash with its target's (caveclient's table manager).
REF_SUFFIX = "_ref"

#: A table's columns that a live answer does not have. The live endpoint answers a split version
#: (every public deployment's) with ``id, created, deleted, <fields>``: it skips ``valid`` and
#: ``superceded_id`` (query_manager.py ``select_all_columns(table, ['valid', 'superceded_id'])``),
#: and drops ``deleted`` again when it merges rows of the live database (api2.py
#: ``combine_queries``). Every live row is valid at the query time anyway, so CQL's live tables
#: are the same on every layout and backend: their frozen columns without these (``deleted``
#: is never a CQL column).
LIVE_ABSENT = ("valid", "superceded_id", "deleted")


@dataclass(frozen=True, slots=True)
class ColumnInfo:
    """One column of a source as CQL sees it.

    ``type`` is one of ``int``, ``float``, ``string``, ``bool``, ``timestamp``,
    ``position``; ``arrow`` is the backend's Arrow type (for positions, the type of
    one component). ``owner``/``owner_column`` name the table and column the
    service knows it by (differs from ``name`` for ``_ref`` columns).
    """

    name: str
    type: str
    arrow: pa.DataType
    owner: str
    owner_column: str


@dataclass(frozen=True)
class SourceInfo:
    """A table or view at one version, with its CQL columns in catalog order."""

    name: str
    kind: str  # "table" | "view" | "reference"
    columns: tuple[ColumnInfo, ...]
    voxel_resolution: tuple[float, float, float]
    metadata: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    target: str | None = None  # reference tables: the target table

    def column(self, name: str) -> ColumnInfo | None:
        """The column called ``name`` (positions and their ``_x/_y/_z`` components)."""
        return self._index.get(name)

    @property
    def _index(self) -> dict[str, ColumnInfo]:
        idx = self.__dict__.get("_idx")
        if idx is None:
            idx = {}
            for c in self.columns:
                idx[c.name] = c
                if c.type == "position":
                    for axis in "xyz":
                        idx[f"{c.name}_{axis}"] = ColumnInfo(
                            f"{c.name}_{axis}", "int", c.arrow, c.owner, c.owner_column)
            self.__dict__["_idx"] = idx
        return idx

    def names(self) -> list[str]:
        """Every name a query may use, components included (for "did you mean")."""
        return list(self._index)

    def tables(self) -> tuple[str, ...]:
        """The service tables behind this source (reference first, then target)."""
        return (self.name,) if self.target is None else (self.name, self.target)


def arrow_type_name(t: pa.DataType) -> str:
    """The CQL type of an Arrow type.

    >>> arrow_type_name(pa.int64()), arrow_type_name(pa.string()), arrow_type_name(pa.float32())
    ('int', 'string', 'float')
    """
    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "float"
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return "timestamp"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t):
        return "string"
    return "other"


def split_positions(schema: pa.Schema, owner: str = "") -> list[ColumnInfo]:
    """Columns of a backend schema, each consecutive integer ``P_x, P_y, P_z`` trio
    folded into one ``position`` column named ``P`` (as caveclient packs them)."""
    out: list[ColumnInfo] = []
    for n, position, i in fold_positions(schema):
        t = schema.field(i).type
        out.append(ColumnInfo(n, "position" if position else arrow_type_name(t), t, owner, n))
    return out


def live_source(info: SourceInfo) -> SourceInfo:
    """``info`` as a live statement sees it: a table's (or merged reference's) columns without
    :data:`LIVE_ABSENT`, whichever table owns them; a view as it is.

    >>> cols = tuple(ColumnInfo(n, "int", pa.int64(), "t", n) for n in ("id", "valid", "size"))
    >>> [c.name for c in live_source(SourceInfo("t", "table", cols, (1.0, 1.0, 1.0))).columns]
    ['id', 'size']
    """
    if info.kind == "view":
        return info
    cols = tuple(c for c in info.columns if c.owner_column not in LIVE_ABSENT)
    if len(cols) == len(info.columns):
        return info
    return SourceInfo(info.name, info.kind, cols, info.voxel_resolution, info.metadata, info.target)


class Catalog:
    """The sources of one datastack at one version, read lazily and cached.

    >>> from caveql.analyze.catalog import Catalog
    >>> Catalog.__name__
    'Catalog'
    """

    #: whether sources are seen as a live statement sees them (:meth:`for_live`)
    live = False

    def __init__(self, backend: Backend, version: int | None,
                 on_call: Callable[[str], None] | None = None) -> None:
        self.backend = backend
        self.version = version
        self._lock = threading.RLock()
        self._tables: list[str] | None = None
        self._views: dict[str, dict[str, Any]] | None = None
        self._sources: dict[str, SourceInfo] = {}
        self._counts: dict[str, int] = {}
        self._info: dict[str, Any] | None = None
        self._live: LiveCatalog | None = None

    def for_live(self) -> Catalog:
        """This catalog as a live statement (AT TIMESTAMP, AT LIVE) sees it: the same tables,
        views, counts and metadata (shared caches); each table's columns those of a live answer
        (:func:`live_source`)."""
        with self._lock:
            if self._live is None:
                self._live = LiveCatalog(self)
            return self._live

    # ------------------------------------------------------------------ listings
    def info(self) -> dict[str, Any]:
        """The datastack's info record (cached)."""
        if self._info is None:
            self._info = dict(self.backend.info())
        return self._info

    @property
    def datastack(self) -> str:
        """The datastack's name."""
        return str(self.info().get("datastack_name") or getattr(self.backend, "name", "datastack"))

    @property
    def synapse_table(self) -> str | None:
        """The datastack's synapse table, if it names one."""
        value = self.info().get("synapse_table")
        return str(value) if value else None

    def tables(self) -> list[str]:
        """Table names at this version, in the backend's order."""
        with self._lock:
            if self._tables is None:
                self._tables = list(self.backend.tables(self._v()))
            return list(self._tables)

    def views(self) -> list[str]:
        """View names at this version."""
        return list(self._view_meta())

    def _view_meta(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            if self._views is None:
                try:
                    self._views = dict(self.backend.views(self._v()))
                except BackendError:
                    raise
                except Exception:  # noqa: BLE001 - a backend without views has none
                    self._views = {}
            return self._views

    def _v(self) -> int:
        if self.version is None:
            raise BackendError("no materialization version is selected")
        return self.version

    # ------------------------------------------------------------------ sources
    def has(self, name: str) -> bool:
        """Whether a table or view called ``name`` exists at this version."""
        return name in self.tables() or name in self._view_meta()

    def source(self, name: str, span: Any = None) -> SourceInfo:
        """The :class:`SourceInfo` of a table or view; :class:`UnknownTableError` if none."""
        with self._lock:
            hit = self._sources.get(name)
            if hit is not None:
                return hit
            if name in self.tables():
                info = self._table_source(name)
            elif name in self._view_meta():
                info = self._view_source(name)
            else:
                raise self.unknown_table(name, span)
            self._sources[name] = info
            return info

    def unknown_table(self, name: str, span: Any = None) -> UnknownTableError:
        """The error for a missing table, with close names and the versions that have it."""
        names = self.tables() + self.views()
        hint = None
        elsewhere: list[int] = []
        try:
            for v in self.backend.versions():
                if v != self.version and name in self.backend.tables(v):
                    elsewhere.append(v)
        except Exception:  # noqa: BLE001 - the hint is best effort; the error stands
            elsewhere = []
        cands = did_you_mean(name, names)
        if elsewhere:
            vs = ", ".join(str(v) for v in sorted(elsewhere))
            hint = f"table '{name}' exists at version {vs} (use AT VERSION {max(elsewhere)})"
            if cands:
                hint += f"; or did you mean '{cands[0]}'?"
        return UnknownTableError(
            f"unknown table '{name}' at version {self.version}", span=span, candidates=cands,
            **({"hint": hint} if hint else {}))

    def _metadata(self, name: str) -> dict[str, Any]:
        return dict(self.backend.table_metadata(self._v(), name))

    @staticmethod
    def _resolution(meta: dict[str, Any]) -> tuple[float, float, float]:
        if "voxel_resolution" in meta and meta["voxel_resolution"] is not None:
            x, y, z = meta["voxel_resolution"]
        else:
            x, y, z = (meta.get(f"voxel_resolution_{a}") or 1.0 for a in "xyz")
        return (float(x), float(y), float(z))

    def _table_source(self, name: str) -> SourceInfo:
        meta = self._metadata(name)
        cols = split_positions(self.backend.table_columns(self._v(), name), owner=name)
        target = meta.get("reference_table") or None
        if not target:
            return SourceInfo(name, "table", tuple(cols), self._resolution(meta), meta)
        # caveclient's table manager: target columns as they are, then the reference
        # row's columns, a clash renamed with "_ref".
        tmeta = self._metadata(target)
        tcols = split_positions(self.backend.table_columns(self._v(), target), owner=target)
        # a join answer drops the crud columns of both tables (materialization-server.md §2.7)
        crud = ("deleted", "superceded_id")
        tcols = [c for c in tcols if c.name not in crud]
        cols = [c for c in cols if c.name not in crud]
        taken = {c.name for c in tcols}
        merged = list(tcols)
        for c in cols:
            new = c.name + REF_SUFFIX if c.name in taken else c.name
            merged.append(ColumnInfo(new, c.type, c.arrow, name, c.owner_column))
        return SourceInfo(name, "reference", tuple(merged), self._resolution(tmeta), meta, target=target)

    def _view_source(self, name: str) -> SourceInfo:
        meta = dict(self._view_meta()[name])
        cols = split_positions(self.backend.table_columns(self._v(), name), owner=name)
        return SourceInfo(name, "view", tuple(cols), self._resolution(meta), meta)

    def count(self, table: str) -> int | None:
        """Row count of a service table (``None`` if the backend cannot say)."""
        with self._lock:
            if table not in self._counts:
                if table in self._view_meta():
                    return None  # views have no /count (asking costs an error and its suggestions)
                try:
                    self._counts[table] = int(self.backend.table_count(self._v(), table))
                except Exception:  # noqa: BLE001 - views and some backends have no count
                    return None
            return self._counts[table]

    def columns(self, name: str) -> list[tuple[str, str]]:
        """``[(column, type)]`` of a source in catalog order (the engine's interface)."""
        return [(c.name, c.type) for c in self.source(name).columns]


class LiveCatalog(Catalog):
    """A :class:`Catalog` as a live statement sees it (made by :meth:`Catalog.for_live`): every
    listing, count and metadata comes from the frozen catalog, each source through
    :func:`live_source`."""

    live = True

    def __init__(self, frozen: Catalog) -> None:  # noqa: D107 - shares the frozen catalog's state
        self.frozen = frozen
        self.backend = frozen.backend
        self.version = frozen.version
        self._lock = frozen._lock
        self._sources = {}
        self._live = self

    def for_live(self) -> Catalog:
        return self

    def info(self) -> dict[str, Any]:
        return self.frozen.info()

    def tables(self) -> list[str]:
        return self.frozen.tables()

    def _view_meta(self) -> dict[str, dict[str, Any]]:
        return self.frozen._view_meta()

    def source(self, name: str, span: Any = None) -> SourceInfo:
        with self._lock:
            hit = self._sources.get(name)
            if hit is None:
                hit = self._sources[name] = live_source(self.frozen.source(name, span))
            return hit

    def count(self, table: str) -> int | None:
        return self.frozen.count(table)
