"""Session settings the analyzer reads (version, resolution, timestamp, live).

>>> Settings().live
False
>>> Settings(resolution=(1, 1, 1)).resolution
(1, 1, 1)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["Settings"]


@dataclass(frozen=True)
class Settings:
    """Defaults a statement's CAVE clauses override.

    ``version``: materialization version (``None``: the newest); ``resolution``:
    nm per unit of positions in results and spatial literals (``None``: each
    table's voxels); ``timestamp``: query live as of then; ``live``: query live now;
    ``allow_invalid_root_ids``: run a query naming a root id that is not current at its version
    or timestamp (a notice instead of :class:`~caveql.errors.InvalidRootIdError`).
    """

    version: int | None = None
    resolution: tuple[float, float, float] | None = None
    timestamp: datetime | None = None
    live: bool = False
    allow_invalid_root_ids: bool = False
