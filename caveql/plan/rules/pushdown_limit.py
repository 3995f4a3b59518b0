"""Rule: push LIMIT/OFFSET into the only scan when no local step can drop or reorder rows.

That means one scan, no join, no residual WHERE, no aggregate, DISTINCT, window function,
QUALIFY or ORDER BY, no key feeds, and a limit below the backend's row cap (so the call is
never split). Otherwise LIMIT/OFFSET run locally after the deterministic sort (a window needs
every row of its partition: a LIMIT is never pushed below one).

>>> pushdown_limit.__name__
'pushdown_limit'
"""

from __future__ import annotations

from dataclasses import replace

from caveql.analyze.catalog import Catalog
from caveql.backends.base import Capabilities
from caveql.logical import Query, has_window

__all__ = ["pushdown_limit"]


def pushdown_limit(plan: Query, *, catalog: Catalog, capabilities: Capabilities) -> Query:
    """Set the scan's ``limit``/``offset`` when pushing them is exact."""
    subs = tuple(pushdown_limit(s, catalog=catalog, capabilities=capabilities) for s in plan.subqueries)
    plan = replace(plan, subqueries=subs)
    if plan.limit is None or not capabilities.limit:
        return plan
    if plan.offset and not capabilities.offset:
        return plan
    if (len(plan.scans) != 1 or plan.joins or plan.where or plan.aggregate or plan.distinct
            or plan.order_by or plan.subqueries):
        return plan
    if plan.qualify is not None or any(has_window(o.expr) for o in plan.outputs):
        return plan
    scan = plan.scans[0]
    if scan.feeds or scan.nullable:
        return plan
    # an answer of exactly cap rows is indistinguishable from a capped one (Warning: 201), so a
    # limit of cap or more is not pushed: the scan is fetched complete and limited locally
    if capabilities.row_cap is not None and plan.limit >= capabilities.row_cap:
        return plan
    big_in = any(f.kind == "in" and len(f.value) > capabilities.max_in_batch for f in scan.filters)
    if big_in:
        return plan
    return plan.with_scan(replace(scan, limit=plan.limit, offset=plan.offset or None))
