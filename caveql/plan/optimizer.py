"""The rule driver: :data:`RULES` in order, each given only the keywords it declares.

>>> [r.__name__ for r in RULES]
['normalize', 'float32_compare', 'spatial_box', 'pushdown_filters', 'join_order', 'prune_columns',
 'pushdown_limit', 'pushdown_count']
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import replace
from collections.abc import Callable
from typing import Any

from caveql.analyze.catalog import Catalog
from caveql.backends.base import Capabilities
from caveql.logical import Block, Query, SetOp
from caveql.plan.rules.blocks import restructure
from caveql.plan.rules.float32 import float32_compare
from caveql.plan.rules.join_order import join_order
from caveql.plan.rules.normalize import normalize
from caveql.plan.rules.prune_columns import prune_columns
from caveql.plan.rules.pushdown_count import pushdown_count
from caveql.plan.rules.pushdown_filters import pushdown_filters
from caveql.plan.rules.pushdown_limit import pushdown_limit
from caveql.plan.rules.spatial_box import spatial_box

__all__ = ["RULES", "block_catalog", "optimize"]

Rule = Callable[..., Query]

#: The planner's rules, in the order they run.
RULES: tuple[Rule, ...] = (
    normalize, float32_compare, spatial_box, pushdown_filters, join_order, prune_columns, pushdown_limit,
    pushdown_count,
)


def optimize(plan: Query, *, catalog: Catalog, capabilities: Capabilities,
             rules: tuple[Rule, ...] = RULES) -> Query:
    """Run the tree rules (:mod:`caveql.plan.rules.blocks`: view merging, push-down into and
    pruning through derived blocks), then ``rules`` over every block of the logical plan, each
    with its own catalog (a block at another version has its own)."""
    if plan.derived or plan.ctes or plan.subqueries:
        plan = restructure(plan)  # type: ignore[assignment]
    return _block(plan, catalog, capabilities, rules)  # type: ignore[return-value]


def block_catalog(q: Query, catalog: Catalog) -> Catalog:
    """The catalog block ``q`` reads (``catalog``: its enclosing block's)."""
    cat = q.catalog if q.catalog is not None else catalog
    return cat.for_live() if q.timestamp is not None else cat


def _block(b: Block, catalog: Catalog, capabilities: Capabilities, rules: tuple[Rule, ...]) -> Block:
    if isinstance(b, SetOp):
        return replace(b, left=_block(b.left, catalog, capabilities, rules),
                       right=_block(b.right, catalog, capabilities, rules))
    catalog = block_catalog(b, catalog)
    if b.derived or b.ctes or b.subqueries:
        b = _inner(b, catalog, capabilities, rules)
    if not b.scans and not b.subqueries and b.derived:
        return b  # a block over derived blocks only (a set operation's reader): no rule applies
    available: dict[str, Any] = {"catalog": catalog, "capabilities": capabilities}
    for rule in rules:
        kwargs = {k: v for k, v in available.items() if k in _keywords(rule)}
        b = rule(b, **kwargs)
    return b


def _inner(b: Query, catalog: Catalog, capabilities: Capabilities, rules: tuple[Rule, ...]) -> Query:
    """``b`` with the blocks below it optimized (its subqueries' own scans are left to the
    rules, which recurse into subqueries themselves)."""
    if not (b.derived or b.ctes or any(s.derived or s.ctes or s.subqueries for s in b.subqueries)):
        return b
    return replace(
        b, derived=tuple(replace(d, body=_block(d.body, catalog, capabilities, rules))
                         if d.body is not None else d for d in b.derived),
        ctes=tuple((n, _block(c, catalog, capabilities, rules)) for n, c in b.ctes),
        subqueries=tuple(_inner(s, block_catalog(s, catalog), capabilities, rules) for s in b.subqueries))


@functools.lru_cache(maxsize=64)
def _keywords(rule: Rule) -> frozenset[str]:
    """The parameter names of a rule (cached: ``inspect.signature`` costs ~5 us a call)."""
    return frozenset(inspect.signature(rule).parameters)
