"""Planning: logical plan -> optimized logical plan -> physical plan; one entry, :func:`plan`.

>>> plan.__name__
'plan'
"""

from __future__ import annotations

from caveql.analyze.catalog import Catalog
from caveql.backends.base import Capabilities
from caveql.plan.logical import Query
from caveql.plan.optimizer import RULES, optimize
from caveql.plan.physical import PhysicalPlan, lower

__all__ = ["RULES", "PhysicalPlan", "plan"]


def plan(logical: Query, capabilities: Capabilities, catalog: Catalog) -> PhysicalPlan:
    """Optimize ``logical`` with :data:`RULES` and lower it to a :class:`PhysicalPlan`."""
    optimized = optimize(logical, catalog=catalog, capabilities=capabilities)
    return lower(optimized, capabilities, catalog)
