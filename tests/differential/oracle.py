"""The oracle: the service's tables as plain DuckDB SQL over a local datastack's files.

Written from docs/datastacks.md (the folder format), materialization-server.md §2
and the CQL spec only — it shares no code with caveql (not even its layout
reader), so an answer both agree on is very unlikely to be wrong twice.

What a source *is*, as the service defines it:

- a table at version ``v``: the rows of ``versions/<v>/tables/<t>.parquet`` (or the
  ``_storage`` files), root ids rewritten by ``root_id_map`` when there is one, and
  ``valid = true`` (every frozen query adds it);
- every float column of a table is returned as a 32-bit float (the service's ``Float``
  dtype), so the relations give it as ``FLOAT``; a view's float columns are returned as the
  doubles they are (the service reflects a view's columns: ``DOUBLE PRECISION`` → Float64);
- a position ``P`` is stored as ``P_x/_y/_z`` in the table's voxels; at a statement
  resolution ``r`` each component reads ``round_half_even(v) * vox / r`` exactly: an INTEGER
  where ``vox / r`` is a whole number, else a DOUBLE (CQL never truncates; docs/language.md,
  "Positions at a resolution");
- a reference table (metadata ``reference_table``) is merged with its target as the
  seed page shows: an inner join ``ref.target_id = target.id``, the target's columns
  under their names, the reference row's clashing names with ``_ref``.

Each relation exposes, for every position ``P``, ``P_x/_y/_z`` (at the statement
resolution) and ``P__vx/__vy/__vz`` (the stored voxels, for exact box tests).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property
from pathlib import Path
from typing import Any

import duckdb

__all__ = ["AXES", "Column", "Domain", "Oracle"]

AXES = ("x", "y", "z")


@dataclass(frozen=True)
class Column:
    """A column of a source as CQL sees it (``kind`` ``pos`` = one 3-vector column)."""

    name: str
    kind: str  # int | float | str | bool | ts | pos
    is_id: bool = False
    not_null: bool = True
    unique: bool = False
    computed: bool = False  # a view's float: a double in SQL and in the answer (Float64)


def _kind(duck_type: str) -> str:
    t = duck_type.upper()
    if t in ("BIGINT", "INTEGER", "SMALLINT", "TINYINT", "UBIGINT", "UINTEGER", "HUGEINT"):
        return "int"
    if t in ("FLOAT", "DOUBLE", "REAL") or t.startswith("DECIMAL"):
        return "float"
    if t == "BOOLEAN":
        return "bool"
    if t.startswith("TIMESTAMP") or t == "DATE":
        return "ts"
    if t == "VARCHAR":
        return "str"
    return "other"


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _s(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class _Table:
    name: str
    metadata: dict[str, Any]
    files: tuple[Path, ...]
    root_id_map: Path | None
    view_sql: str | None = None  # a view: its stored DuckDB SQL over the version's tables


class Oracle:
    """The datastack at ``root`` as DuckDB relations (see the module docstring)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.con = duckdb.connect()
        self.con.execute("SET threads TO 2")
        self.info = json.loads((self.root / "datastack.json").read_text())
        self._tables: dict[int, dict[str, _Table]] = {}
        self._remapped: set[tuple[int, str]] = set()
        for folder in sorted((self.root / "versions").iterdir()):
            if not folder.name.isdigit():
                continue
            tables = {}
            for meta_path in sorted((folder / "tables").glob("*.json")):
                meta = json.loads(meta_path.read_text())
                storage = meta.pop("_storage", None) or {}
                files = tuple(self.root / (f["path"] if isinstance(f, dict) else f)
                              for f in storage.get("files", ()))
                if not files:
                    files = (meta_path.with_suffix(".parquet"),)
                remap = storage.get("root_id_map")
                tables[meta_path.stem] = _Table(meta_path.stem, meta, files,
                                                self.root / remap if remap else None)
            for meta_path in sorted((folder / "views").glob("*.json")):
                meta = json.loads(meta_path.read_text())
                sql = meta.pop("sql")
                tables[meta_path.stem] = _Table(meta_path.stem, meta, (), None, sql)
            self._tables[int(folder.name)] = tables
        # schema v<version>: every table as its stored valid rows, every view as its SQL
        # (DuckDB binds a view's unqualified names in the view's own schema)
        self._remapped: set[tuple[int, str]] = set()
        for v, tables in self._tables.items():
            self.con.execute(f"CREATE SCHEMA v{v}")
            for t in tables.values():
                if t.root_id_map is not None:
                    # root ids rewritten once (a join per root column per query is slow)
                    cols = [n for n, _ in self.stored_columns(v, t.name)]
                    order = " ORDER BY pre_pt_root_id" if "pre_pt_root_id" in cols else ""
                    self.con.execute(f"CREATE TABLE v{v}.{_q('remapped__' + t.name)} AS "
                                     f"{self._remap_sql(v, t.name)}{order}")
                    self._remapped.add((v, t.name))
            for t in tables.values():
                if t.view_sql is None:
                    self.con.execute(f"CREATE VIEW v{v}.{_q(t.name)} AS {self._base_sql(v, t.name)}")
            for t in tables.values():
                if t.view_sql is not None:
                    self.con.execute(f"CREATE VIEW v{v}.{_q(t.name)} AS {t.view_sql}")

    # ------------------------------------------------------------------ metadata

    @property
    def versions(self) -> list[int]:
        return sorted(self._tables)

    def tables(self, version: int) -> list[str]:
        """Tables (not views) at ``version``."""
        return sorted(n for n, t in self._tables[version].items() if t.view_sql is None)

    def views(self, version: int) -> list[str]:
        return sorted(n for n, t in self._tables[version].items() if t.view_sql is not None)

    def metadata(self, version: int, table: str) -> dict[str, Any]:
        return self._tables[version][table].metadata

    def reference_target(self, version: int, table: str) -> str | None:
        return self.metadata(version, table).get("reference_table") or None

    def voxel_resolution(self, version: int, table: str) -> tuple[float, float, float]:
        """The voxel resolution positions of ``table`` are stored in (a merge: the target's)."""
        target = self.reference_target(version, table)
        meta = self.metadata(version, target or table)
        if "voxel_resolution" in meta:
            x, y, z = meta["voxel_resolution"]
        else:
            x, y, z = (meta.get(f"voxel_resolution_{a}", 1.0) for a in AXES)
        return (float(x), float(y), float(z))

    def stored_columns(self, version: int, table: str) -> list[tuple[str, str]]:
        """``[(name, duckdb type)]`` of the stored rows, in file order."""
        t = self._tables[version][table]
        src = f"v{version}.{_q(table)}" if t.view_sql else f"read_parquet({_s(str(t.files[0]))})"
        rel = self.con.sql(f"SELECT * FROM {src} LIMIT 0")
        return [(n, str(ty)) for n, ty in zip(rel.columns, rel.types)]

    @staticmethod
    def fold_positions(columns: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
        """Stored columns with each ``P_x, P_y, P_z`` integer trio folded into ``(P, "pos")``.

        >>> Oracle.fold_positions([("id", "BIGINT"), ("p_x", "INTEGER"), ("p_y", "INTEGER"),
        ...                        ("p_z", "INTEGER"), ("size", "FLOAT")])
        [('id', 'BIGINT'), ('p', 'pos'), ('size', 'FLOAT')]
        """
        out: list[tuple[str, str]] = []
        i = 0
        while i < len(columns):
            name, ty = columns[i]
            if (name.endswith("_x") and i + 2 < len(columns)
                    and columns[i + 1][0] == name[:-2] + "_y" and columns[i + 2][0] == name[:-2] + "_z"
                    and all(_kind(columns[i + k][1]) == "int" for k in range(3))):
                out.append((name[:-2], "pos"))
                i += 3
                continue
            out.append((name, ty))
            i += 1
        return out

    def merged_columns(self, version: int, table: str) -> list[tuple[str, str, str, str]]:
        """``[(out_name, kind_or_type, owner_table, stored_name)]`` of a source, in server
        order: a merge is the target's columns, then the reference row's (``_ref`` on clashes)."""
        target = self.reference_target(version, table)
        # the service drops crud columns: `deleted` from simple queries (`superceded_id`
        # survives through its "superceded" typo), both from joins (§2.1 step 7, §2.7)
        crud = ("deleted", "superceded_id") if target else ("deleted",)
        own = [(n, ty, table, n) for n, ty in self.fold_positions(self.stored_columns(version, table))
               if n not in crud]
        if not target:
            return own
        tcols = [(n, ty, target, n) for n, ty in self.fold_positions(self.stored_columns(version, target))
                 if n not in crud]
        taken = {c[0] for c in tcols}
        return tcols + [((n + "_ref") if n in taken else n, ty, owner, s) for n, ty, owner, s in own]

    # ------------------------------------------------------------------ relations

    def _base_sql(self, version: int, table: str) -> str:
        """The stored rows of one table at one version, root ids remapped, valid only
        (a view: its rows, no `valid` filter — §2.7)."""
        t = self._tables[version][table]
        if t.view_sql is not None:
            return f"SELECT * FROM v{version}.{_q(table)}"
        cols = [n for n, _ in self.stored_columns(version, table)]
        if (version, table) in self._remapped:
            src = f"SELECT * FROM v{version}.{_q('remapped__' + table)}"
        else:
            src = self._remap_sql(version, table)
        where = " WHERE valid" if "valid" in cols else ""
        return f"SELECT * FROM ({src}){where}"

    def _remap_sql(self, version: int, table: str) -> str:
        """The stored rows, every ``*_root_id`` rewritten through the version's root id map."""
        t = self._tables[version][table]
        files = "[" + ", ".join(_s(str(f)) for f in t.files[:1]) + "]"
        cols = [n for n, _ in self.stored_columns(version, table)]
        src = f"SELECT * FROM read_parquet({files})"
        if t.root_id_map is not None:
            remap = f"read_parquet({_s(str(t.root_id_map))})"
            items, joins = [], []
            for i, n in enumerate(cols):
                if n.endswith("_root_id"):
                    joins.append(f" LEFT JOIN {remap} AS m{i} ON m{i}.root_id = b.{_q(n)}")
                    items.append(f"coalesce(m{i}.version_root_id, b.{_q(n)}) AS {_q(n)}")
                else:
                    items.append(f"b.{_q(n)}")
            src = f"SELECT {', '.join(items)} FROM read_parquet({files}) AS b{''.join(joins)}"
        return src

    def relation_sql(self, version: int, table: str, resolution: Sequence[int] | None) -> str:
        """SQL of the source ``table`` at ``version`` as seen at ``resolution``."""
        # default resolution of a merge = its target's (the last table of caveclient's join);
        # each table's positions are scaled by its own voxels' ratio to it
        desired = tuple(map(float, resolution)) if resolution is not None else self.voxel_resolution(version, table)
        target = self.reference_target(version, table)
        aliases = {table: "r", **({target: "g"} if target else {})}
        items = []
        for out, ty, owner, stored in self.merged_columns(version, table):
            a = aliases[owner]
            if ty in ("DOUBLE", "FLOAT", "REAL") or ty.startswith("DECIMAL"):
                # the service returns a table's float columns as 32-bit floats, a view's as the
                # doubles (reflected DOUBLE PRECISION / NUMERIC: Float64)
                as_type = "DOUBLE" if self._tables[version][owner].view_sql is not None else "FLOAT"
                items.append(f"CAST({a}.{_q(stored)} AS {as_type}) AS {_q(out)}")
                continue
            if ty != "pos":
                items.append(f"{a}.{_q(stored)} AS {_q(out)}")
                continue
            vox = self.voxel_resolution(version, owner)
            for axis, ax in enumerate(AXES):
                v = f"{a}.{_q(stored + '_' + ax)}"
                items.append(f"{v} AS {_q(out + '__v' + ax)}")
                if desired[axis] == vox[axis]:
                    items.append(f"{v} AS {_q(out + '_' + ax)}")
                else:
                    ratio = Fraction(repr(float(vox[axis]))) / Fraction(repr(float(desired[axis])))
                    whole = f"CAST(round_even(CAST({v} AS DOUBLE), 0) * {ratio.numerator} AS DOUBLE)"
                    if ratio.denominator == 1:
                        items.append(f"CAST({whole} AS INTEGER) AS {_q(out + '_' + ax)}")
                    else:
                        items.append(f"{whole} / {ratio.denominator} AS {_q(out + '_' + ax)}")
        if target:
            body = (f"({self._base_sql(version, table)}) AS r JOIN ({self._base_sql(version, target)}) AS g "
                    f"ON r.\"target_id\" = g.\"id\"")
        else:
            body = f"({self._base_sql(version, table)}) AS r"
        return f"SELECT {', '.join(items)} FROM {body}"

    def run(self, sql: str) -> tuple[list[str], list[str], list[tuple[Any, ...]]]:
        """``(columns, duckdb types, rows)`` of a query."""
        rel = self.con.sql(sql)
        return list(rel.columns), [str(t) for t in rel.types], rel.fetchall()


class Domain:
    """What the generator needs to know about the demo, computed once by the oracle.

    Per version: the tables and their columns (kinds, nullability, uniqueness), a
    sample of each column's values, root ids of cells with a moderate number of
    synapses (anchors that keep synapse queries small), row counts.
    """

    SAMPLE = 60

    def __init__(self, oracle: Oracle, default_version: int | None = None) -> None:
        self.oracle = oracle
        self.versions = oracle.versions
        self.default_version = default_version or max(self.versions)
        self._columns: dict[tuple[int, str], tuple[Column, ...]] = {}
        self._samples: dict[tuple[int, str, str], list[Any]] = {}
        self._counts: dict[tuple[int, str], int] = {}
        self._anchors: dict[tuple[int, str], list[int]] = {}
        self._ids: dict[tuple[int, str], list[int]] = {}
        for v in self.versions:
            for t in self.sources(v):
                self._load(v, t)
        from tests.differential.generator import KNOWN_BUGS  # noqa: PLC0415 (generator imports us)

        if KNOWN_BUGS["ref_own_points"]:
            self.skip = frozenset((v, t) for v in self.versions for t in self.oracle.tables(v)
                                  if any(c.name == "pt_supervoxel_id_ref" for c in self.columns(v, t)))

    @cached_property
    def _synapse_table(self) -> str:
        return str(self.oracle.info.get("synapse_table") or "synapses_pni_2")

    def synapse_table(self, version: int) -> str:
        return self._synapse_table

    #: sources the generator leaves out (engine bugs being fixed; see generator.KNOWN_BUGS)
    skip: frozenset[tuple[int, str]] = frozenset()

    def tables(self, version: int) -> list[str]:
        return [t for t in self.oracle.tables(version) if (version, t) not in self.skip]

    def sources(self, version: int) -> list[str]:
        """Tables and views at ``version``."""
        return self.tables(version) + self.oracle.views(version)

    def is_view(self, version: int, table: str) -> bool:
        return table in self.oracle.views(version)

    def columns(self, version: int, table: str) -> tuple[Column, ...]:
        return self._columns[(version, table)]

    def star_columns(self, version: int, table: str, split: bool) -> list[Column]:
        """``*`` in caveclient's frame order: positions in place when split, else packed
        and moved to the end (caveclient's ``concatenate_position_columns``; the seed's frames)."""
        cols = list(self.columns(version, table))
        if split:
            return cols
        return [c for c in cols if c.kind != "pos"] + [c for c in cols if c.kind == "pos"]

    def voxel_resolution(self, version: int, table: str) -> tuple[float, float, float]:
        return self.oracle.voxel_resolution(version, table)

    def relation_sql(self, version: int, table: str, resolution: Sequence[int] | None) -> str:
        return self.oracle.relation_sql(version, table, resolution)

    def position_voxels(self, version: int, table: str, position: str) -> tuple[float, float, float]:
        """The voxels a position column of a source is stored in (its owner table's)."""
        for out, _ty, owner, _stored in self.oracle.merged_columns(version, table):
            if out == position:
                return self.oracle.voxel_resolution(version, owner)
        raise KeyError(position)

    def is_reference(self, version: int, table: str) -> bool:
        return self.oracle.reference_target(version, table) is not None

    def row_count(self, version: int, table: str) -> int:
        return self._counts[(version, table)]

    def samples(self, version: int, table: str, column: str) -> list[Any]:
        return self._samples.get((version, table, column), [])

    def anchor_roots(self, version: int, side: str) -> list[int]:
        return self._anchors[(version, side)]

    def root_tables(self, version: int) -> list[str]:
        """Tables (not the synapse table) with a ``pt_root_id`` column."""
        return [t for t in self.tables(version) if t != self.synapse_table(version)
                and any(c.name == "pt_root_id" for c in self.columns(version, t))]

    def has_nucleus_id(self, version: int, table: str) -> bool:
        """True when ``id`` is a nucleus id: the soma table and merges onto it."""
        soma = str(self.oracle.info.get("soma_table") or "nucleus_detection_v0")
        return table == soma or self.oracle.reference_target(version, table) == soma

    def rare_values(self, version: int, table: str, column: str) -> list[Any]:
        return self._samples.get((version, table, column + "#rare"), [])

    def id_window(self, version: int, table: str, seed: int, per_mille: int = 10) -> tuple[int, int]:
        """An ``id`` range holding ~``per_mille``/1000 of the rows (at least a few), picked by ``seed``."""
        ids = self._ids[(version, table)]
        i = seed % len(ids)
        j = min(len(ids) - 1, i + max(1, len(ids) * per_mille // 1000))
        return ids[i], ids[j]

    # ------------------------------------------------------------------ loading

    def _load(self, version: int, table: str) -> None:
        o = self.oracle
        rel = o.relation_sql(version, table, None)
        if table in o.views(version):
            # a view is computed once here, not once per question
            o.con.execute(f"CREATE OR REPLACE TEMP TABLE domain_view AS {rel}")
            rel = "SELECT * FROM domain_view"
        merged = o.merged_columns(version, table)
        is_syn = table == self._synapse_table
        if is_syn:
            self._load_anchors(version, rel)
        # positions: "not null" is about the x component; uniqueness matters for ids only
        scalar = [n + "_x" if ty == "pos" else n for n, ty, _o, _s in merged]
        stats = ", ".join(f"count({_q(n)}) = count(*), "
                          + (f"count(DISTINCT {_q(n)}) = count(*)" if n in ("id", "id_ref") else "FALSE")
                          for n in scalar)
        row = o.con.sql(f"SELECT count(*), {stats} FROM ({rel})").fetchall()[0]
        assert row is not None
        self._counts[(version, table)] = int(row[0])
        cols = []
        for i, (n, ty, _owner, _stored) in enumerate(merged):
            k = 1 + 2 * i
            not_null, unique = bool(row[k]), bool(row[k + 1])
            if ty == "pos":
                cols.append(Column(n, "pos", not_null=not_null))
                continue
            kind = _kind(ty)
            if kind == "other":
                continue
            cols.append(Column(n, kind, is_id=n == "id" or n.endswith("_id"), not_null=not_null,
                               unique=unique and self._counts[(version, table)] > 0,
                               computed=kind == "float" and table in o.views(version)))
        self._columns[(version, table)] = tuple(cols)
        # samples: for the synapse table, from the anchors' rows so filters meet real values
        if is_syn:
            roots = self._anchors[(version, "pre")] + self._anchors[(version, "post")]
            where = f" WHERE pre_pt_root_id IN ({', '.join(map(str, roots))}) OR " \
                    f"post_pt_root_id IN ({', '.join(map(str, roots))})"
        else:
            where = ""
        base = f"SELECT * FROM ({rel}){where}"
        sample = f"SELECT * FROM ({base}) USING SAMPLE reservoir({self.SAMPLE} ROWS) REPEATABLE (7)"
        names, _types, rows = o.run(sample)
        for c in cols:
            if c.kind == "pos":
                idx = [names.index(f"{c.name}__v{a}") for a in AXES]
                self._samples[(version, table, c.name)] = [
                    tuple(r[k] for k in idx) for r in rows if r[idx[0]] is not None]
                for a, k in zip(AXES, idx):
                    self._samples[(version, table, f"{c.name}_{a}")] = [r[k] for r in rows]
            else:
                self._samples[(version, table, c.name)] = [r[names.index(c.name)] for r in rows]
            if c.kind == "str":
                rare = o.con.sql(f"SELECT {_q(c.name)} FROM ({rel}) WHERE {_q(c.name)} IS NOT NULL "
                                 f"GROUP BY 1 HAVING count(*) <= 800 ORDER BY 1").fetchall()
                self._samples[(version, table, c.name + "#rare")] = [r[0] for r in rare]
        if any(c.name == "id" for c in cols) and not is_syn:
            ids = o.con.sql(f"SELECT id FROM ({rel}) ORDER BY id").fetchall()
            self._ids[(version, table)] = [r[0] for r in ids] or [0]
        o.con.execute("DROP TABLE IF EXISTS domain_view")

    def _load_anchors(self, version: int, rel: str) -> None:
        for side in ("pre", "post"):
            col = f"{side}_pt_root_id"
            rows = self.oracle.con.sql(
                f"SELECT {col} FROM ({rel}) WHERE {col} != 0 GROUP BY 1 "
                f"HAVING count(*) BETWEEN 2 AND 1500 ORDER BY hash({col}) LIMIT 40").fetchall()
            self._anchors[(version, side)] = sorted(r[0] for r in rows)
