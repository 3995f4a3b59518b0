"""A quiet progress line for long fetches: shown only on a terminal, only after a short delay.

>>> import io
>>> out = io.StringIO()                       # not a terminal: nothing is written
>>> with Progress("fetch", total=3, stream=out) as p:
...     p.update(rows=10)
>>> out.getvalue()
''
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    """``label: done/total calls, rows, bytes, seconds`` on one rewritten stderr line.

    ``enabled=None`` means "when ``stream`` is a terminal"; ``False`` silences it.
    Thread-safe: parallel fetches update one line.
    """

    def __init__(self, label: str, total: int | None = None, *, stream: TextIO | None = None,
                 enabled: bool | None = None, delay: float = 0.5) -> None:
        self.label = label
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        tty = bool(isatty and isatty())
        self.enabled = tty if enabled is None else (enabled and tty)
        self.delay = delay
        self.done = 0
        self.rows = 0
        self.bytes = 0
        self._start = time.monotonic()
        self._shown = False
        self._lock = threading.Lock()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, calls: int = 1, *, rows: int = 0, nbytes: int = 0) -> None:
        """Count finished calls, rows and bytes; redraw if it is time."""
        with self._lock:
            self.done += calls
            self.rows += rows
            self.bytes += nbytes
            if self.enabled and time.monotonic() - self._start >= self.delay:
                self._draw()

    def _draw(self) -> None:
        total = f"/{self.total}" if self.total is not None else ""
        mb = self.bytes / 1e6
        text = (f"\r{self.label}: {self.done}{total} calls, {self.rows:,} rows, {mb:,.1f} MB, "
                f"{time.monotonic() - self._start:.1f}s")
        self.stream.write(text)
        self.stream.flush()
        self._shown = True

    def close(self) -> None:
        """Erase the line if one was drawn."""
        with self._lock:
            if self._shown:
                self.stream.write("\r\x1b[K")
                self.stream.flush()
                self._shown = False
