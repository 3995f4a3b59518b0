"""Hypothesis strategy for the analytic constructs of issue 10, over the demo (or any datastack
the oracle reads): see :func:`analytic_cases` and the families in ``analytic_exprs.py``,
``analytic_rels.py``, ``analytic_local.py``.

Like ``statements.py`` every case is a CQL statement and the oracle's SQL for the same
question, built side by side; every CAVE source is anchored (``generator.anchor``) so that the
capped run (row cap 1,000) stays a handful of calls per case. Cases are drawn at the default
version and resolution (the older families cover versions, resolutions and positions; the
cross-version set operation names its versions itself).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from tests.differential.analytic_exprs import expr_family, groupall_family, window_family
from tests.differential.analytic_local import local_family
from tests.differential.analytic_rels import (
    cte_family, derived_family, exists_family, pivot_family, setop_family,
)
from tests.differential.generator import Case, _Ctx
from tests.differential.oracle import Domain

__all__ = ["ANALYTIC_FAMILIES", "analytic_cases"]

#: every analytic family: name -> builder (``local`` also takes the folder its files go in)
ANALYTIC_FAMILIES: dict[str, Callable[..., Case]] = {
    "expr": expr_family,
    "window": window_family,
    "groupall": groupall_family,
    "cte": cte_family,
    "setop": setop_family,
    "derived": derived_family,
    "exists": exists_family,
    "pivot": pivot_family,
    "local": local_family,
}


@st.composite
def analytic_cases(draw: Callable[[st.SearchStrategy[Any]], Any], domain: Domain, families: Sequence[str],
                   workdir: Path | None = None) -> Case:
    """A random analytic :class:`Case` over ``domain`` from ``families`` (``local`` needs
    ``workdir``, where its files are written)."""
    family = draw(st.sampled_from(list(families)))
    ctx = _Ctx(draw, domain, domain.default_version, None)
    build = ANALYTIC_FAMILIES[family]
    if family == "local":
        if workdir is None:
            raise ValueError("the local family needs a workdir for its files")
        build = partial(build, workdir=workdir)
    return build(ctx)
