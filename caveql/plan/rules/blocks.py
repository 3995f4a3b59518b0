"""Rules over the tree of blocks: view merging, filters into derived blocks, pruning through them.

- ``merge_views``: a derived table or CTE used once that is a plain SELECT (no aggregate,
  DISTINCT, window, QUALIFY, LIMIT/OFFSET, subquery, set operation; same version, timestamp
  and resolution) joined as the FROM source or by an INNER/CROSS join of a block without
  RIGHT/FULL joins is inlined into the outer block: its scans become the outer block's, its
  WHERE joins the outer WHERE, its output expressions replace the outer references. Every
  per-block rule (filter push-down, pruning, feeds, join order, spatial box, count push-down)
  then sees one flat block, exactly as if the query had been written flat.
- ``pushdown_derived``: an outer WHERE conjunct that reads one derived source only moves into
  that block's WHERE when it is the same there: any column of a plain or DISTINCT block, only
  grouping keys of an aggregate one, never through LIMIT/OFFSET, a window or QUALIFY; into
  every branch of a set operation (by column position).
- ``prune_derived``: a derived block (not DISTINCT, not a set operation) keeps only the outputs
  its reader uses, so its own scans fetch only those columns.

A CTE used more than once is planned once (``Query.ctes``): nothing is merged into or pushed
through it, since its other readers need all its rows.

>>> from caveql.logical import Query
>>> restructure(Query(scans=(), joins=(), outputs=())).outputs
()
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from caveql.logical import (
    Agg, Block, Box, Call, Col, Derived, Exists, Expr, InSub, JoinClause, Lit, OrderSpec, Output,
    Query, ScalarSub, SetOp, Window, columns_of, equi_pairs, map_children, walk,
)

__all__ = ["deep_map", "restructure"]

def deep_map(v: Any, fn: Any) -> Any:
    """``v`` (an expression, a tuple of them, an Output, OrderSpec or JoinClause) with ``fn``
    applied to every :class:`Col`; blocks are not entered (a correlated subquery's ``outer``
    columns are). The same object where nothing changed."""
    if isinstance(v, Col):
        return fn(v)
    if v is None or isinstance(v, Lit):
        return v
    if isinstance(v, tuple):
        out = tuple(deep_map(x, fn) for x in v)
        return v if all(a is b for a, b in zip(out, v, strict=True)) else out
    if isinstance(v, (Output, OrderSpec)):
        e = deep_map(v.expr, fn)
        return v if e is v.expr else replace(v, expr=e)
    if isinstance(v, JoinClause):
        pairs, extra = deep_map(v.pairs, fn), deep_map(v.extra, fn)
        return v if pairs is v.pairs and extra is v.extra else replace(v, pairs=pairs, extra=extra)
    if isinstance(v, (InSub, Box)):
        name = "expr" if isinstance(v, InSub) else "col"
        e = deep_map(getattr(v, name), fn)
        return v if e is getattr(v, name) else replace(v, **{name: e})
    if isinstance(v, Call):
        args = deep_map(v.args, fn)
        return v if args is v.args else replace(v, args=args)
    if isinstance(v, (Exists, ScalarSub)):
        outer = deep_map(v.outer, fn)
        return v if outer is v.outer else replace(v, outer=outer)
    return map_children(v, lambda x: deep_map(x, fn))


_EXPR_FIELDS = ("outputs", "where", "group_by", "having", "order_by", "joins", "qualify")


def _map_block(q: Query, fn: Any) -> Query:
    """Every expression of a block's own clauses mapped (not its sources' blocks)."""
    changes = {}
    for name in _EXPR_FIELDS:
        old = getattr(q, name)
        new = deep_map(old, fn)
        if new is not old:
            changes[name] = new
    return replace(q, **changes) if changes else q


def _block_cols(q: Query) -> list[Col]:
    out: list[Col] = []
    for name in _EXPR_FIELDS:
        deep_map(getattr(q, name), lambda c: out.append(c) or c)
    return out


def _special(e: Any) -> bool:
    """Whether an expression holds something that must stay where it was written."""
    return any(isinstance(n, (Window, Exists, ScalarSub, InSub)) for n in walk(e))


def _correlated(q: Query) -> bool:
    return any(isinstance(n, (Exists, ScalarSub)) and n.outer for c in _block_exprs(q) for n in walk(c))


def _block_exprs(q: Query) -> list[Any]:
    exprs: list[Any] = [o.expr for o in q.outputs] + list(q.where) + list(q.group_by)
    exprs += [o.expr for o in q.order_by] + [x for j in q.joins for x in j.extra]
    if q.having is not None:
        exprs.append(q.having)
    if q.qualify is not None:
        exprs.append(q.qualify)
    return exprs


def _output_for(body: Block, name: str, typ: str) -> Expr | None:
    """The expression of ``body``'s output ``name`` (a position component through its Col)."""
    for o in body.outputs:
        if o.name == name:
            return o.expr
    if name[-2:] in ("_x", "_y", "_z"):
        for o in body.outputs:
            if o.name == name[:-2] and isinstance(o.expr, Col) and o.expr.type == "position":
                return Col(o.expr.source, o.expr.name + name[-2:], typ)
    return None


# ------------------------------------------------------------------ merging


def _mergeable(q: Query, d: Derived, i: int) -> bool:
    body = d.body
    if not isinstance(body, Query) or d.nullable or not body.from_order():
        return False
    if (body.aggregate or body.distinct or body.limit is not None or body.offset or body.subqueries
            or body.qualify is not None or body.ctes or body.catalog is not None
            or body.version != q.version or body.timestamp != q.timestamp or body.resolution != q.resolution):
        return False
    if any(_special(o.expr) for o in body.outputs):
        return False
    if any(j.kind in ("RIGHT", "FULL") for j in q.joins):
        return False
    if i > 0:
        join = next(j for j in q.joins if j.alias == d.alias)
        if join.kind not in ("INNER", "CROSS") or any(j.kind not in ("INNER", "CROSS") for j in body.joins):
            return False
    return not _correlated(q)


def _merge(q: Query, d: Derived) -> Query:
    body = d.body
    assert isinstance(body, Query)
    order = list(q.from_order())
    i = order.index(d.alias)
    taken = set(order) - {d.alias}
    rename: dict[str, str] = {}
    inner = body.from_order()
    if len(inner) == 1 and inner[0] != d.alias and d.alias not in inner:
        rename[inner[0]] = d.alias  # one source: it keeps the name the outer query gives it
    for a in inner:
        if a in rename:
            taken.add(rename[a])
            continue
        if a in taken:
            new = f"{d.alias}_{a}"
            while new in taken or new in body.from_order():
                new += "_"
            rename[a] = new
        taken.add(rename.get(a, a))
    if rename:
        body = _map_block(body, lambda c: replace(c, source=rename[c.source]) if c.source in rename else c)
        body = replace(
            body, scans=tuple(replace(s, alias=rename.get(s.alias, s.alias)) for s in body.scans),
            derived=tuple(replace(x, alias=rename.get(x.alias, x.alias)) for x in body.derived),
            locals=tuple(replace(x, alias=rename.get(x.alias, x.alias)) for x in body.locals),
            joins=tuple(replace(j, alias=rename.get(j.alias, j.alias)) for j in body.joins),
            sources=tuple(rename.get(a, a) for a in body.sources))

    def sub(c: Col) -> Any:
        if c.source != d.alias:
            return c
        e = _output_for(body, c.name, c.type)
        assert e is not None, c
        return e

    outer = _map_block(q, sub)
    inner_order = list(body.from_order())
    new_order = order[:i] + inner_order + order[i + 1:]
    joins: list[JoinClause] = []
    for j in outer.joins:
        if j.alias != d.alias:
            joins.append(j)
            continue
        # the join that read the derived table: its first source joins as that join did (no
        # condition yet), the condition goes to the last of its sources, when all are there
        conds = [Call("=", (a, b), "bool") for a, b in j.pairs] + list(j.extra)
        first = inner_order[0]
        inner_joins = list(body.joins)
        if not inner_joins:
            pairs, extra = equi_pairs(conds, first)
            joins.append(JoinClause("INNER" if conds else j.kind, first, pairs, extra))
        else:
            joins.append(JoinClause("CROSS" if not conds else "INNER", first, (), ()))
            last = inner_joins[-1]
            lp, le = equi_pairs([Call("=", (a, b), "bool") for a, b in last.pairs] + list(last.extra) + conds,
                            last.alias)
            inner_joins[-1] = replace(last, kind="INNER" if last.kind == "CROSS" and (lp or le) else last.kind,
                                      pairs=lp, extra=le)
        joins.extend(inner_joins)
    if i == 0:
        joins = list(body.joins) + joins
    scans = {s.alias: s for s in outer.scans + body.scans}
    derived = {x.alias: x for x in outer.derived if x.alias != d.alias}
    derived.update((x.alias, x) for x in body.derived)
    locals_ = {x.alias: x for x in outer.locals + body.locals}
    only_scans = all(a in scans for a in new_order)
    return replace(
        outer, scans=tuple(scans[a] for a in new_order if a in scans), joins=tuple(joins),
        where=tuple(body.where) + tuple(outer.where),
        derived=tuple(derived[a] for a in new_order if a in derived),
        locals=tuple(locals_[a] for a in new_order if a in locals_),
        sources=() if only_scans else tuple(new_order))


def merge_views(q: Query) -> Query:
    """Inline every mergeable derived source (see the module docstring)."""
    while True:
        order = q.from_order()
        hit = next((d for d in q.derived if _mergeable(q, d, order.index(d.alias))), None)
        if hit is None:
            return q
        q = _merge(q, hit)


# ------------------------------------------------------------------ pushing into derived blocks

_HOLE = "\0"


def _push_into(b: Block, template: Expr) -> tuple[Block, bool]:
    """``b`` with ``template`` (columns ``Col(_HOLE, "<index>", ...)``: ``b``'s outputs by
    position) added to its WHERE, and whether it went in (else ``b`` unchanged)."""
    if isinstance(b, SetOp):
        left, ok_l = _push_into(b.left, template)
        right, ok_r = _push_into(b.right, template)
        # a filter on a set operation's rows is the same filter on each branch's rows
        return replace(b, left=left, right=right), ok_l and ok_r
    if b.limit is not None or b.offset or b.qualify is not None or b.ctes:
        return b, False
    if any(isinstance(n, Window) for o in b.outputs for n in walk(o.expr)):
        return b, False
    ok = True

    def sub(c: Col) -> Any:
        nonlocal ok
        if c.source != _HOLE:
            return c
        idx, comp = c.name.split("|")
        o = b.outputs[int(idx)].expr
        if comp:
            if not (isinstance(o, Col) and o.type == "position"):
                ok = False
                return c
            o = Col(o.source, f"{o.name}_{comp}", c.type)
        if _special(o) or any(isinstance(n, Agg) for n in walk(o)):
            ok = False
        elif b.aggregate and not any(o == g for g in b.group_by) and not (
                isinstance(o, Col) and any(isinstance(g, Col) and g.source == o.source
                                           and g.name == o.name.rsplit("_", 1)[0] for g in b.group_by)):
            ok = False  # an aggregate block: only its grouping keys are the same before grouping
        return o

    e = deep_map(template, sub)
    if not ok:
        return b, False
    return replace(b, where=tuple(b.where) + (e,)), True


def _template(w: Expr, d: Derived) -> Expr | None:
    names = {n: i for i, (n, _t) in enumerate(d.columns)}

    def sub(c: Col) -> Any:
        if c.name in names:
            return Col(_HOLE, f"{names[c.name]}|", c.type)
        base = c.name[:-2]
        if c.name[-2:] in ("_x", "_y", "_z") and base in names:
            return Col(_HOLE, f"{names[base]}|{c.name[-1]}", c.type)
        raise KeyError(c.name)

    try:
        return deep_map(w, sub)
    except KeyError:
        return None


def pushdown_derived(q: Query) -> Query:
    """Move outer conjuncts into the derived blocks they read (see the module docstring)."""
    if not q.derived or not q.where:
        return q
    derived = {d.alias: d for d in q.derived}
    keep: list[Expr] = []
    for w in q.where:
        srcs = {c.source for c in columns_of(w)}
        d = derived.get(next(iter(srcs))) if len(srcs) == 1 else None
        if d is None or d.body is None or d.nullable or _special(w):
            keep.append(w)
            continue
        t = _template(w, d)
        if t is None:
            keep.append(w)
            continue
        body, ok = _push_into(d.body, t)
        derived[d.alias] = replace(d, body=body)
        if not ok:
            keep.append(w)  # (a set operation's branch that could not take it: filtered here too)
    return replace(q, where=tuple(keep), derived=tuple(derived[d.alias] for d in q.derived))


def prune_derived(q: Query) -> Query:
    """Drop the outputs of derived blocks their reader never uses (see the module docstring)."""
    if not q.derived:
        return q
    used: dict[str, set[str]] = {d.alias: set() for d in q.derived}
    for c in _block_cols(q):
        if c.source in used:
            used[c.source].add(c.name)
            if c.name[-2:] in ("_x", "_y", "_z"):
                used[c.source].add(c.name[:-2])
    out = []
    for d in q.derived:
        body = d.body
        if not isinstance(body, Query) or body.distinct:
            out.append(d)
            continue
        keep = [i for i, (n, _t) in enumerate(d.columns) if n in used[d.alias]] or [0]
        if len(keep) == len(d.columns):
            out.append(d)
            continue
        body = replace(body, outputs=tuple(body.outputs[i] for i in keep), star_tail=())
        out.append(replace(d, body=body, columns=tuple(d.columns[i] for i in keep)))
    return replace(q, derived=tuple(out))


def restructure(b: Block) -> Block:
    """The tree rules over a whole block tree: merges bottom-up, then push-down and pruning
    top-down (each block's conjuncts reach as deep as they may)."""
    return _push_pass(_merge_pass(b))


def _merge_pass(b: Block) -> Block:
    if isinstance(b, SetOp):
        return replace(b, left=_merge_pass(b.left), right=_merge_pass(b.right))
    if not (b.derived or b.ctes or b.subqueries):
        return b
    derived = tuple(_same(d, body=_merge_pass(d.body)) if d.body is not None else d for d in b.derived)
    ctes = tuple((n, _merge_pass(c)) for n, c in b.ctes)
    subs = tuple(_merge_pass(s) for s in b.subqueries)
    b = _same(b, derived=derived, ctes=ctes, subqueries=subs)
    return merge_views(b) if b.derived else b


def _same(obj: Any, **fields: Any) -> Any:
    """``replace(obj, **fields)``, or ``obj`` itself when every field is already that object."""
    if all(all(x is y for x, y in zip(getattr(obj, k), v, strict=True)) and len(getattr(obj, k)) == len(v)
           if isinstance(v, tuple) else getattr(obj, k) is v for k, v in fields.items()):
        return obj
    return replace(obj, **fields)


def _push_pass(b: Block) -> Block:
    if isinstance(b, SetOp):
        return replace(b, left=_push_pass(b.left), right=_push_pass(b.right))
    if not (b.derived or b.ctes or b.subqueries):
        return b
    b = prune_derived(pushdown_derived(b))
    return _same(b, derived=tuple(_same(d, body=_push_pass(d.body)) if d.body is not None else d
                                  for d in b.derived),
                 ctes=tuple((n, _push_pass(c)) for n, c in b.ctes),
                 subqueries=tuple(_push_pass(s) for s in b.subqueries))


__all__ += ["merge_views", "prune_derived", "pushdown_derived"]
