"""Identity through time: the CQL functions that follow a cell's root ids (issue 13).

``LATEST_ROOTS``, ``IS_LATEST``, ``ROOT_AT``, ``PAST_IDS``, ``ROOT_CREATED``,
``ROOT_SUPERSEDED`` and ``NUCLEUS_ROOT`` are answered by the backend's segmentation graph
(:mod:`caveql.backends.graph`) and, for ``NUCLEUS_ROOT``, by the datastack's soma table:

- :mod:`caveql.identity.fold` evaluates every call whose arguments are constants once, before
  analysis, so ``WHERE pt_root_id IN LATEST_ROOTS(864691135...)`` is pushed to the service as an
  IN filter (EXPLAIN notes where the ids came from);
- :mod:`caveql.identity.resolve` evaluates the rest (column arguments) in the local DuckDB step,
  through Python UDFs, one graph call per batch of distinct values.

>>> from caveql.identity import IDENTITY_FUNCTIONS
>>> IDENTITY_FUNCTIONS[0]
'LATEST_ROOTS'
"""

from caveql.identity.resolve import GRAPH_FUNCTIONS, IDENTITY_FUNCTIONS, Resolver, active, bound

__all__ = ["GRAPH_FUNCTIONS", "IDENTITY_FUNCTIONS", "Resolver", "active", "bound"]
