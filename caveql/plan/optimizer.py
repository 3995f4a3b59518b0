"""The rule driver: :data:`RULES` in order, each given only the keywords it declares.

>>> [r.__name__ for r in RULES]
['normalize', 'float32_compare', 'spatial_box', 'pushdown_filters', 'join_order', 'prune_columns',
 'pushdown_limit', 'pushdown_count']
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from caveql.analyze.catalog import Catalog
from caveql.backends.base import Capabilities
from caveql.logical import Query
from caveql.plan.rules.float32 import float32_compare
from caveql.plan.rules.join_order import join_order
from caveql.plan.rules.normalize import normalize
from caveql.plan.rules.prune_columns import prune_columns
from caveql.plan.rules.pushdown_count import pushdown_count
from caveql.plan.rules.pushdown_filters import pushdown_filters
from caveql.plan.rules.pushdown_limit import pushdown_limit
from caveql.plan.rules.spatial_box import spatial_box

__all__ = ["RULES", "optimize"]

Rule = Callable[..., Query]

#: The planner's rules, in the order they run.
RULES: tuple[Rule, ...] = (
    normalize, float32_compare, spatial_box, pushdown_filters, join_order, prune_columns, pushdown_limit,
    pushdown_count,
)


def optimize(plan: Query, *, catalog: Catalog, capabilities: Capabilities,
             rules: tuple[Rule, ...] = RULES) -> Query:
    """Run ``rules`` over the logical plan."""
    available: dict[str, Any] = {"catalog": catalog, "capabilities": capabilities}
    for rule in rules:
        kwargs = {k: v for k, v in available.items() if k in _keywords(rule)}
        plan = rule(plan, **kwargs)
    return plan


@functools.lru_cache(maxsize=64)
def _keywords(rule: Rule) -> frozenset[str]:
    """The parameter names of a rule (cached: ``inspect.signature`` costs ~5 us a call)."""
    return frozenset(inspect.signature(rule).parameters)
