"""The one pandas accessor of caveql: ``df.cql``.

Every DataFrame method caveql adds lives here, on :class:`CqlAccessor`, registered once under the
name ``cql`` (pandas warns when a name is registered twice, so no other module registers one;
add a method here instead). The methods are thin: each imports its implementation only when
called, so ``import caveql`` pulls in neither matplotlib nor the Neuroglancer code.

``import caveql`` registers the accessor (caveql/__init__.py imports this module). The modules
the methods call (caveql.plot, caveql.neuroglancer) must not import this one: that would be an
import circle (tests/test_imports.py).

- ``df.cql.plot_matrix(...)``, ``df.cql.plot_scatter(...)``, ``df.cql.plot_hist(...)``:
  :mod:`caveql.plot` (matplotlib, the ``caveql[plot]`` extra);
- ``df.cql.neuroglancer(...)``: :mod:`caveql.neuroglancer`.

>>> import pandas as pd
>>> import caveql.accessor
>>> df = pd.DataFrame({"pre": ["BC", "23P"], "post": ["23P", "23P"], "n": [3, 5]})
>>> type(df.cql).__name__
'CqlAccessor'
"""

from __future__ import annotations

from typing import Any

import pandas as pd

__all__ = ["CqlAccessor"]


@pd.api.extensions.register_dataframe_accessor("cql")
class CqlAccessor:
    """``df.cql``: caveql's plots and Neuroglancer view of a query's answer.

    >>> import pandas as pd
    >>> pd.DataFrame({"x": [1]}).cql.frame.shape
    (1, 1)
    """

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame

    def plot_matrix(self, *args: Any, **kwargs: Any) -> Any:
        """:func:`caveql.plot.matrix` of this frame; returns the matplotlib Figure."""
        from caveql import plot

        return plot.matrix(self.frame, *args, **kwargs)

    def plot_scatter(self, *args: Any, **kwargs: Any) -> Any:
        """:func:`caveql.plot.scatter` of this frame; returns the matplotlib Figure."""
        from caveql import plot

        return plot.scatter(self.frame, *args, **kwargs)

    def plot_hist(self, *args: Any, **kwargs: Any) -> Any:
        """:func:`caveql.plot.hist` of this frame; returns the matplotlib Figure."""
        from caveql import plot

        return plot.hist(self.frame, *args, **kwargs)

    def neuroglancer(self, *args: Any, **kwargs: Any) -> Any:
        """:mod:`caveql.neuroglancer`'s view of this frame (its ``neuroglancer`` function)."""
        from caveql import neuroglancer

        return neuroglancer.neuroglancer(self.frame, *args, **kwargs)

