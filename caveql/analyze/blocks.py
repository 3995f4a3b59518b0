"""Relations: a statement as a tree of SELECT blocks (WITH, derived tables, set operations,
EXISTS / scalar subqueries, local tables, RIGHT / FULL / CROSS joins and USING).

:func:`resolve_query` resolves any query expression (``Select``, ``SetOp``, ``With``) into a
:data:`caveql.logical.Block`; each SELECT block is resolved by :class:`caveql.analyze.resolve`'s
resolver at its own version, timestamp and resolution (a block without CAVE clauses inherits
the enclosing statement's), with its FROM sources built here: a CTE name, then a CAVE table or
view, then a registered local table; a file (``FROM 'cells.csv'``) or a ``:param`` table; a
derived table. A CTE used once is a derived table (the planner may inline it); one used more
than once is planned once (``Query.ctes`` of the statement) and read by name.

>>> RelInfo("x", "derived", (("a", "int"), ("p", "position"))).names()
['a', 'p', 'p_x', 'p_y', 'p_z']
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any

import pyarrow as pa

from caveql.analyze.catalog import Catalog, ColumnInfo
from caveql.analyze.settings import Settings
from caveql.errors import CqlSemanticError, CqlTypeError, Span, UnknownColumnError, UnknownTableError, \
    UnsupportedError, did_you_mean
from caveql.logical import (
    Block, Call, Col, Derived, Exists, Expr, JoinClause, LocalSource, OrderSpec, Output, Query, Scan,
    ScalarSub, SetOp, conjuncts, equi_pairs,
)
from caveql.syntax import ast

__all__ = ["Context", "RelInfo", "block_columns", "resolve_query", "root_select"]

_ARROW = {"int": pa.int64(), "float": pa.float64(), "string": pa.string(), "bool": pa.bool_(),
          "timestamp": pa.timestamp("us"), "position": pa.int64()}


class RelInfo:
    """A source that is not a CAVE table (a derived table, a CTE, a local table) as a scope sees
    it: the interface of :class:`caveql.analyze.catalog.SourceInfo` that name lookup uses."""

    def __init__(self, name: str, kind: str, columns: tuple[tuple[str, str], ...],
                 components: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.kind = kind
        self.target = None
        self.voxel_resolution = (1.0, 1.0, 1.0)
        self.columns = tuple(ColumnInfo(n, t, _ARROW.get(t, pa.null()), "", n) for n, t in columns)
        self._idx: dict[str, ColumnInfo] = {}
        for c in self.columns:
            self._idx[c.name] = c
            if c.type == "position":
                for a in "xyz":
                    n = f"{c.name}_{a}"
                    t = (components or {}).get(n, "int")
                    self._idx[n] = ColumnInfo(n, t, _ARROW[t], "", n)

    def column(self, name: str) -> ColumnInfo | None:
        return self._idx.get(name)

    def names(self) -> list[str]:
        return list(self._idx)

    def tables(self) -> tuple[str, ...]:
        return ()


@dataclass
class CteDef:
    """A CTE in scope: its block, columns, how often the rest of its WITH names it, and the
    name it is planned under when shared."""

    name: str
    block: Block
    columns: tuple[tuple[str, str], ...]
    uses: int
    key: str = ""


@dataclass
class Context:
    """What resolving one statement needs beyond one block's catalog."""

    catalog: Catalog  # the statement's (its root block's version)
    settings: Settings
    params: Mapping[str, Any]
    tables: Any = None  # caveql.analyze.local_tables.LocalTables
    catalogs: Callable[[int | None, datetime | None], Catalog] | None = None
    root: tuple[Any, Any] = (None, None)  # (version, timestamp) the statement's catalog is for
    root_node: Any = None  # the leftmost SELECT, whose options the statement computed (one AT LIVE "now")
    root_opts: Any = None
    # the SELECT resolver class (caveql.analyze.resolve._Resolver) and the CAVE-clause reader
    # (caveql.analyze.statement_options), given by the caller: this module imports neither
    make: Any = None
    options: Any = None
    ctes: list[dict[str, CteDef]] = field(default_factory=list)
    shared: dict[str, Block] = field(default_factory=dict)

    def catalog_for(self, version: int | None, timestamp: datetime | None, span: Span | None) -> Catalog:
        """The catalog a block at ``version`` / ``timestamp`` reads."""
        if (version, timestamp) == self.root or (timestamp is None and version == self.catalog.version):
            return self.catalog
        if self.catalogs is None:
            # (analysis called on its own: a version's catalog read through the same backend)
            base = getattr(self.catalog, "frozen", self.catalog)
            if version is None or timestamp is not None or not hasattr(base, "backend"):
                raise CqlSemanticError("this statement reads two versions or times; run it through "
                                       "the engine", span=span)
            self.catalogs = lambda v, _ts: Catalog(base.backend, v)
        return self.catalogs(version, timestamp)

    def cte(self, name: str) -> CteDef | None:
        for scope in reversed(self.ctes):
            hit = scope.get(name)
            if hit is not None:
                return hit
        return None

    def local_tables(self) -> Any:
        if self.tables is None:
            from caveql.analyze.local_tables import LocalTables
            self.tables = LocalTables()
        return self.tables


def root_select(node: ast.Node) -> ast.Select:
    """The SELECT whose CAVE clauses a statement runs at by default: the leftmost one.

    >>> s = ast.Select(items=(), source=None)
    >>> root_select(ast.SetOp("UNION", s, s)) is s
    True
    """
    while not isinstance(node, ast.Select):
        node = node.body if isinstance(node, ast.With) else node.left  # type: ignore[attr-defined]
    return node


def block_columns(b: Block) -> tuple[tuple[str, str], ...]:
    """``(name, type)`` of a block's output columns."""
    return tuple((o.name, o.expr.type) for o in b.outputs)


def _renamed(b: Block, names: tuple[str, ...], what: str, span: Span | None) -> Block:
    if not names:
        return b
    if len(names) != len(b.outputs):
        raise CqlSemanticError(f"{what} names {len(names)} column(s) but its query has "
                               f"{len(b.outputs)}", span=span)
    outs = tuple(replace(o, name=n) for o, n in zip(b.outputs, names, strict=True))
    return replace(b, outputs=outs)


def _unique(b: Block, what: str, span: Span | None) -> None:
    seen: set[str] = set()
    for n, t in block_columns(b):
        names = [n] + ([f"{n}_{a}" for a in "xyz"] if t == "position" else [])
        for x in names:
            if x in seen:
                raise CqlSemanticError(f"{what} has two columns named '{x}'; give one an alias", span=span)
            seen.add(x)


def _count_refs(node: Any, names: set[str], out: dict[str, int]) -> None:
    """How often each of ``names`` is named as a table in ``node`` (an AST subtree)."""
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, ast.TableRef):
            if n.name in names:
                out[n.name] = out.get(n.name, 0) + 1
            continue
        if isinstance(n, tuple):
            stack.extend(n)
        elif isinstance(n, ast.Node):
            for f in getattr(n, "__dataclass_fields__", {}):
                if f != "span":
                    v = getattr(n, f)
                    if isinstance(v, (ast.Node, tuple)):
                        stack.append(v)


def _options(s: ast.Select, settings: Settings, ctx: Context
             ) -> tuple[int | None, datetime | None, tuple[float, float, float] | None]:
    return ctx.options(s, settings, ctx.params)


def _inherit(settings: Settings, opts: tuple[Any, Any, Any]) -> Settings:
    version, timestamp, resolution = opts
    return replace(settings, version=version, timestamp=timestamp, resolution=resolution, live=False)


def resolve_query(node: ast.Node, ctx: Context, settings: Settings, *, outer: Any = None,
                  refs: list[Col] | None = None, in_sub: bool = False) -> Block:
    """A query expression as a block (see the module docstring). ``outer`` (a scope) and
    ``refs`` (the enclosing block's columns it reads, collected): a correlated subquery."""
    if isinstance(node, ast.With):
        if node.recursive:
            raise UnsupportedError("WITH RECURSIVE is not supported: CQL reads each table with "
                                   "remote calls planned before the statement runs", span=node.span)
        body_settings = _inherit(settings, _options(root_select(node.body), settings, ctx))
        names = {c.name for c in node.ctes}
        scope: dict[str, CteDef] = {}
        ctx.ctes.append(scope)
        try:
            for i, cte in enumerate(node.ctes):
                if cte.name in scope:
                    raise CqlSemanticError(f"the CTE name '{cte.name}' is used twice", span=cte.span)
                uses: dict[str, int] = {}
                _count_refs((tuple(c.query for c in node.ctes[i + 1:]), node.body), names, uses)
                blk = resolve_query(cte.query, ctx, body_settings, in_sub=in_sub)
                blk = _renamed(blk, cte.columns, f"the CTE {cte.name}", cte.span)
                _unique(blk, f"the CTE {cte.name}", cte.span)
                scope[cte.name] = CteDef(cte.name, blk, block_columns(blk), uses.get(cte.name, 0))
            return resolve_query(node.body, ctx, settings, outer=outer, refs=refs, in_sub=in_sub)
        finally:
            ctx.ctes.pop()
    if isinstance(node, ast.SetOp):
        left = resolve_query(node.left, ctx, settings, outer=outer, refs=refs, in_sub=in_sub)
        right = resolve_query(node.right, ctx, settings, outer=outer, refs=refs, in_sub=in_sub)
        op = SetOp(node.op, node.all, left, right, _set_outputs(node, left, right))
        if node.order_by or node.limit is not None or node.offset is not None:
            return wrap(op, ctx, settings, node.order_by, node.limit, node.offset)
        return op
    if not isinstance(node, ast.Select):
        raise CqlSemanticError(f"expected a query, not {type(node).__name__}", span=getattr(node, "span", None))
    if node is ctx.root_node:
        version, timestamp, resolution = ctx.root_opts
    else:
        version, timestamp, resolution = _options(node, settings, ctx)
    catalog = ctx.catalog_for(version, timestamp, node.cave.version.span if node.cave.version else node.span)
    own = catalog
    if timestamp is not None:
        catalog = catalog.for_live()
    r = ctx.make(catalog, ctx.params, [0], outer=outer, resolution=resolution, ctx=ctx,
                  settings=_inherit(settings, (version, timestamp, resolution)), refs=refs, in_sub=in_sub)
    q = r.select(node)
    q = _stamp(q, timestamp, resolution)
    if own is not ctx.catalog:
        q = replace(q, catalog=own)
    return q


def _stamp(q: Query, timestamp: Any, resolution: Any) -> Query:
    # (its subqueries carry their own instant and resolution: their own AT clauses, else this
    # block's, set where each was resolved)
    return replace(q, timestamp=timestamp, resolution=resolution)


def _set_outputs(node: ast.SetOp, left: Block, right: Block) -> tuple[Output, ...]:
    lc, rc = block_columns(left), block_columns(right)
    if len(lc) != len(rc):
        raise CqlSemanticError(f"the two sides of {node.op} have {len(lc)} and {len(rc)} columns; "
                               "they must have as many", span=node.span)
    outs = []
    for (name, lt), (rname, rt) in zip(lc, rc, strict=True):
        if lt == rt or "null" in (lt, rt):
            t = lt if lt != "null" else rt
        elif {lt, rt} <= {"int", "float", "float32"}:
            t = "float"
        else:
            raise CqlTypeError(f"{node.op} combines column '{name}' ({lt}) with '{rname}' ({rt})",
                               span=node.span)
        outs.append(Output(name, Col("", name, t)))
    return tuple(outs)


def wrap(op: SetOp, ctx: Context, settings: Settings, order_by: tuple[ast.OrderItem, ...] = (),
         limit: ast.Node | None = None, offset: ast.Node | None = None) -> Query:
    """A set operation as a block reading it (its ORDER BY, LIMIT and OFFSET applied there)."""
    alias = op.op.lower()
    cols = block_columns(op)
    r = ctx.make(ctx.catalog, ctx.params, [0], ctx=ctx, settings=settings)
    r.scope.add(alias, RelInfo(alias, "derived", cols), None)  # type: ignore[arg-type]
    outputs = [Output(n, Col(alias, n, t)) for n, t in cols]
    order = tuple(OrderSpec(r._order_item(o.expr, outputs), o.descending, o.nulls) for o in order_by)
    first = op.left
    while isinstance(first, SetOp):
        first = first.left
    return Query(scans=(), joins=(), outputs=tuple(outputs), order_by=order,
                 limit=r._count(limit, "LIMIT"), offset=r._count(offset, "OFFSET"),
                 derived=(Derived(alias, op, cols),), sources=(alias,),
                 version=ctx.catalog.version, datastack=ctx.catalog.datastack,
                 synapse_table=ctx.catalog.synapse_table, timestamp=first.timestamp,
                 resolution=first.resolution, star_tail=first.star_tail)


# ------------------------------------------------------------------ FROM


def _alias_of(ref: Any) -> str:
    if isinstance(ref, ast.TableRef):
        return ref.alias or ref.name
    if isinstance(ref, ast.FileRef):
        if ref.alias:
            return ref.alias
        return PurePosixPath(ref.path.replace("\\", "/")).name.split(".")[0] or "file"
    if isinstance(ref, ast.ParamTable):
        return ref.alias or ref.name
    if isinstance(ref, ast.Derived):
        return ref.alias
    if isinstance(ref, (ast.Pivot, ast.Unpivot)):
        return ref.alias or _alias_of(ref.source)
    return getattr(ref, "alias", None) or type(ref).__name__.lower()


def _source(r: Any, ref: Any, nullable: bool) -> tuple[str, Any, Any]:
    """``(alias, info for the scope, Scan | Derived | LocalSource)`` of one FROM/JOIN source."""
    ctx: Context = r.ctx
    alias = _alias_of(ref)
    if isinstance(ref, ast.TableRef):
        cte = ctx.cte(ref.name)
        if cte is not None:
            info = RelInfo(ref.name, "derived", cte.columns)
            if cte.uses > 1 and not r.in_sub:
                if not cte.key:
                    key = cte.name
                    while key in ctx.shared and ctx.shared[key] is not cte.block:
                        key += "_"
                    cte.key = key
                    ctx.shared[key] = cte.block
                return alias, info, Derived(alias, None, cte.columns, cte=cte.key, nullable=nullable)
            return alias, info, Derived(alias, cte.block, cte.columns, cte=cte.name, nullable=nullable)
        try:
            sinfo = r.catalog.source(ref.name, ref.span)
        except UnknownTableError:
            local = ctx.tables.get(ref.name) if ctx.tables is not None else None
            if local is None:
                raise
            return alias, RelInfo(local.name, "local", local.columns), LocalSource(alias, local, nullable=nullable)
        return alias, sinfo, Scan(alias, sinfo.name, sinfo.kind, sinfo.voxel_resolution, sinfo.target,
                                  nullable=nullable)
    if isinstance(ref, ast.FileRef):
        local = ctx.local_tables().file(ref.path, ref.function, dict(ref.options), ref.span, params=ctx.params)
        return alias, RelInfo(local.name, "local", local.columns), LocalSource(alias, local, nullable=nullable)
    if isinstance(ref, ast.ParamTable):
        if ref.name not in ctx.params:
            from caveql.errors import ParameterError
            raise ParameterError(f"parameter :{ref.name} has no value (a table: a DataFrame or an "
                                 "Arrow table)", span=ref.span)
        local = ctx.local_tables().param(ref.name, ctx.params[ref.name], ref.span)
        return alias, RelInfo(local.name, "local", local.columns), LocalSource(alias, local, nullable=nullable)
    if isinstance(ref, ast.Derived):
        blk = resolve_query(ref.query, ctx, r.settings, in_sub=r.in_sub)
        blk = _renamed(blk, ref.columns, f"the derived table {ref.alias}", ref.span)
        _unique(blk, f"the derived table {ref.alias}", ref.span)
        cols = block_columns(blk)
        return alias, RelInfo(alias, "derived", cols), Derived(alias, blk, cols, nullable=nullable)
    if isinstance(ref, (ast.Pivot, ast.Unpivot)):
        from caveql.analyze.pivot import pivot_query
        probe = ctx.make(r.catalog, ctx.params, [0], resolution=r.resolution, ctx=ctx,
                         settings=r.settings, in_sub=r.in_sub)
        _a, src, _o = _source(probe, ref.source, False)
        blk = resolve_query(pivot_query(ref, [c.name for c in src.columns]), ctx, r.settings,
                            in_sub=r.in_sub)
        cols = block_columns(blk)
        return alias, RelInfo(alias, "derived", cols), Derived(alias, blk, cols, nullable=nullable)
    raise UnsupportedError(f"{type(ref).__name__} is not supported as a source", span=getattr(ref, "span", None))


@dataclass
class From:
    """A block's sources, resolved."""

    scans: list[Scan] = field(default_factory=list)
    derived: list[Derived] = field(default_factory=list)
    locals: list[LocalSource] = field(default_factory=list)
    order: list[str] = field(default_factory=list)
    joins: list[JoinClause] = field(default_factory=list)
    using: dict[str, Expr] = field(default_factory=dict)  # USING columns by bare name
    hidden: set[tuple[str, str]] = field(default_factory=set)  # (alias, column) left out of *
    star: dict[tuple[str, str], Expr] = field(default_factory=dict)  # (alias, column) in * as this

    def sources(self) -> tuple[str, ...]:
        """``Query.sources``: empty when every source is a scan (the scans' order is FROM order)."""
        return () if not (self.derived or self.locals) else tuple(self.order)


def from_clause(r: Any, s: ast.Select) -> From:
    """The sources and joins of a SELECT, added to the resolver's scope."""
    out = From()
    refs = ([s.source] if s.source is not None else []) + [j.source for j in s.joins]
    n = len(refs)
    nullable = [False] * n
    for i, j in enumerate(s.joins, 1):
        # the side(s) a join null-extends: its right (LEFT), everything before (RIGHT), both (FULL)
        if j.kind == "LEFT":
            nullable[i] = True
        elif j.kind == "RIGHT":
            nullable[:i] = [True] * i
        elif j.kind == "FULL":
            nullable[:i + 1] = [True] * (i + 1)
    for i, ref in enumerate(refs):
        alias, info, obj = _source(r, ref, nullable[i])
        r.scope.add(alias, info, ref.span)
        out.order.append(alias)
        if isinstance(obj, Scan):
            out.scans.append(obj)
        elif isinstance(obj, Derived):
            out.derived.append(obj)
        else:
            out.locals.append(obj)
    for i, j in enumerate(s.joins):
        right = out.order[i + 1]
        r.context = "on"
        if j.kind == "CROSS" or (j.on is None and not j.using):
            out.joins.append(JoinClause("CROSS" if j.kind in ("CROSS", "INNER") else j.kind, right, (), ()))
            continue
        if j.using:
            cond = _using(r, j, right, out)
        else:
            cond = r.expr(j.on)
            r._want(cond, ("bool",), "JOIN ... ON", j.on.span or j.span)
        pairs, extra = equi_pairs(conjuncts(cond), right)
        out.joins.append(JoinClause(j.kind, right, pairs, extra))
    r.context = "select"
    return out


def _using(r: Any, j: ast.Join, right: str, out: From) -> Expr:
    """``USING (c, ...)`` as ``left.c = right.c AND ...``; a bare ``c`` later reads the merged column."""
    cond: Expr | None = None
    left_aliases = out.order[:out.order.index(right)]
    for name in j.using:
        hits = [a for a, info in r.scope.sources if a in left_aliases and info.column(name) is not None]
        if not hits:
            raise UnknownColumnError(f"USING column '{name}' is not in the sources before the join",
                                     span=j.span)
        if len(hits) > 1:
            raise CqlSemanticError(f"USING column '{name}' is in " + " and ".join(hits) + "; use ON",
                                   span=j.span)
        lc = r.scope.lookup(ast.Column(name, hits[0], span=j.span))
        rc = r.scope.lookup(ast.Column(name, right, span=j.span))
        if rc is None:
            raise UnknownColumnError(f"USING column '{name}' is not in {right}", span=j.span)
        r._comparable(lc, rc, j.span)
        eq = Call("=", (lc, rc), "bool", span=j.span)
        cond = eq if cond is None else Call("AND", (cond, eq), "bool", span=j.span)
        if j.kind == "FULL":
            out.using[name] = Call("COALESCE", (lc, rc), lc.type if lc.type != "null" else rc.type)
        else:
            out.using[name] = rc if j.kind == "RIGHT" else lc
        # in *: the column once, where the left source has it, holding the merged value
        out.hidden.add((right, name))
        if j.kind in ("RIGHT", "FULL"):
            out.star[(hits[0], name)] = out.using[name]
    assert cond is not None
    return cond


# ------------------------------------------------------------------ subqueries in expressions


def sub_block(r: Any, node: ast.Node, correlate: bool) -> tuple[Query, tuple[Col, ...]]:
    """A subquery's block (a set operation wrapped) and the enclosing block's columns it reads."""
    refs: list[Col] = []
    blk = resolve_query(node, r.ctx, r.settings, outer=r.scope if correlate else None,
                        refs=refs if correlate else None, in_sub=True)
    if isinstance(blk, SetOp):
        blk = wrap(blk, r.ctx, r.settings)
    return blk, tuple(dict.fromkeys(refs))


def exists_expr(r: Any, e: ast.Exists) -> Expr:
    """``[NOT] EXISTS (query)``."""
    q, outer = sub_block(r, e.query, correlate=True)
    if not outer and (q.limit is None or q.limit > 1):
        q = replace(q, limit=1)  # whether any row exists: one row answers it
    idx = len(r.subqueries)
    r.subqueries.append(q)
    return Exists(q, idx, e.negated, outer, span=e.span)


def scalar_expr(r: Any, e: ast.Subquery) -> Expr:
    """A scalar subquery: one column, at most one row."""
    q, outer = sub_block(r, e.select, correlate=True)
    if len(q.outputs) != 1 or q.outputs[0].expr.type == "position":
        raise CqlSemanticError("a scalar subquery must select exactly one column (not a position)",
                               span=e.span)
    idx = len(r.subqueries)
    r.subqueries.append(q)
    return ScalarSub(q, idx, q.outputs[0].expr.type, outer, span=e.span)


def unknown_source_hint(r: Any, name: str) -> list[str]:
    """Close names among CTEs and local tables, for an unknown table's error."""
    names = [n for scope in r.ctx.ctes for n in scope] if r.ctx is not None else []
    return did_you_mean(name, names)
