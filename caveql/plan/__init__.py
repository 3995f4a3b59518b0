"""Planning: logical plan -> optimized logical plan -> physical plan; one entry, :func:`plan`.

>>> plan.__name__
'plan'
"""

from __future__ import annotations

from dataclasses import replace

from caveql.analyze.catalog import Catalog
from caveql.backends.base import Capabilities
from caveql.logical import Query
from caveql.plan.optimizer import RULES, optimize
from caveql.plan.physical import PhysicalPlan
from caveql.plan.tree import lower_plan

__all__ = ["RULES", "PhysicalPlan", "plan"]


def plan(logical: Query, capabilities: Capabilities, catalog: Catalog) -> PhysicalPlan:
    """Optimize ``logical`` with :data:`RULES` and lower it to a :class:`PhysicalPlan`.

    The plan can plan itself again for a smaller row cap (``PhysicalPlan.replan``): the
    executor does when the service turns out to cap answers below ``capabilities.row_cap``.
    """
    if logical.timestamp is not None:
        catalog = catalog.for_live()  # the tables as a live answer has them (as analyzed)
    optimized = optimize(logical, catalog=catalog, capabilities=capabilities)

    def replan(row_cap: int) -> PhysicalPlan:
        return plan(logical, replace(capabilities, row_cap=row_cap), catalog)

    return replace(lower_plan(optimized, capabilities, catalog), replan=replan)
