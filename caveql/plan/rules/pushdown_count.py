"""Rule: a bare ``SELECT COUNT(*) ... WHERE <all pushed>`` asks the service to count.

When the only scan is a table or view (not a merged reference, not live), every
WHERE conjunct was pushed, there is no join, grouping, HAVING or DISTINCT and every
output is ``COUNT(*)``, the call becomes a ``count=True`` request (one row per
request; key batches are summed locally) instead of fetching every row.

>>> pushdown_count.__name__
'pushdown_count'
"""

from __future__ import annotations

from dataclasses import replace

from caveql.backends.base import Capabilities
from caveql.logical import Agg, Query

__all__ = ["pushdown_count"]


def pushdown_count(plan: Query, *, capabilities: Capabilities) -> Query:
    """Mark the scan ``count`` when the service's count answers the query exactly."""
    subs = tuple(pushdown_count(s, capabilities=capabilities) for s in plan.subqueries)
    plan = replace(plan, subqueries=subs)
    if not capabilities.count or plan.timestamp is not None:
        return plan
    if len(plan.scans) != 1 or plan.joins or plan.where or plan.group_by or plan.having is not None \
            or plan.distinct or not plan.outputs:
        return plan
    scan = plan.scans[0]
    if scan.kind not in ("table", "view") or scan.feeds or scan.limit is not None:
        return plan
    if not all(isinstance(o.expr, Agg) and o.expr.name == "COUNT" and o.expr.arg is None
               and o.expr.filter is None for o in plan.outputs):
        return plan
    if any(not isinstance(o.expr, Agg) or o.expr.filter is not None for o in plan.order_by):
        return plan
    return plan.with_scan(replace(scan, count=True, columns=None))
