"""The result of one statement.

>>> Result(kind="message", message="ok").message
'ok'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

__all__ = ["Result"]


@dataclass
class Result:
    """What a statement gives back.

    ``kind`` is ``"rows"`` (``frame`` holds a DataFrame; DESCRIBE also sets
    ``message`` to the table's metadata text) or ``"message"`` (``message`` holds
    the text: EXPLAIN, SET, USE). ``stats`` holds per-step figures of an executed
    SELECT (rows, bytes, ms), as EXPLAIN ANALYZE prints them; ``plan`` the physical plan that
    ran (the frame's provenance: :mod:`caveql.frames` describes its calls in ``frame.attrs``).
    """

    kind: str
    frame: pd.DataFrame | None = None
    message: str | None = None
    statement: Any = None
    elapsed: float = 0.0
    stats: dict[str, Any] = field(default_factory=dict, repr=False)
    plan: Any = field(default=None, repr=False)
    #: things a person should know about the answer, which is still the one asked for (a SELECT
    #: with no rows whose string test names a value the column never has: caveql.analyze.values)
    notices: list[str] = field(default_factory=list)

    def to_neuroglancer(self, **options: Any) -> Any:
        """:func:`caveql.neuroglancer.neuroglancer` of this answer: its state, link and file."""
        from caveql.neuroglancer import neuroglancer

        return neuroglancer(self, **options)
