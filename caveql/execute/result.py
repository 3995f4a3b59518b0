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
    SELECT (rows, bytes, ms), as EXPLAIN ANALYZE prints them.
    """

    kind: str
    frame: pd.DataFrame | None = None
    message: str | None = None
    statement: Any = None
    elapsed: float = 0.0
    stats: dict[str, Any] = field(default_factory=dict, repr=False)
