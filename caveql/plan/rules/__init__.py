"""Planner rules: pure functions ``rule(plan, *, catalog, capabilities) -> plan``, one per module.

They are listed, in the order they run, in :data:`caveql.plan.optimizer.RULES`.
"""
