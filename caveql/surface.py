"""Which user surface is running, so that a help line names that surface's way of doing a thing.

The same mistake has a different fix on each surface: a wrong server is ``--server URL`` on the
command line but ``server=`` in Python; an unbound ``:param`` is ``--param NAME=VALUE`` on the
command line, ``\\set NAME VALUE`` in the REPL, a keyword argument in Python. Each surface says
which it is (:func:`set_surface`, :func:`using`); code that raises picks its help line with
:func:`hint`. Python is the default.

>>> hint(python="connect(..., server=URL)", cli="--server URL")
'connect(..., server=URL)'
>>> with using("cli"):
...     hint(python="connect(..., server=URL)", cli="--server URL")
'--server URL'
>>> with using("repl"):  # the REPL falls back to the command line's help
...     hint(python="connect(..., server=URL)", cli="--server URL")
'--server URL'
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["SURFACES", "current", "hint", "set_surface", "using"]

#: The surfaces: the Python API, the ``caveql`` command (one-shot), its REPL, the ``%cql`` magic.
SURFACES = ("python", "cli", "repl", "magic")

# process-wide, not a ContextVar: statements run on worker threads, which a ContextVar set on the
# calling thread would not reach; one process runs one surface (the magic sets it per cell)
_current = "python"


def current() -> str:
    """The surface running now (``"python"`` unless a surface said otherwise).

    >>> current() in SURFACES
    True
    """
    return _current


def set_surface(name: str) -> str:
    """Make ``name`` (one of :data:`SURFACES`) the current surface; returns the previous one.

    >>> previous = set_surface("cli"); set_surface(previous)
    'cli'
    """
    global _current
    if name not in SURFACES:
        raise ValueError(f"unknown surface {name!r}; one of {', '.join(SURFACES)}")
    previous, _current = _current, name
    return previous


@contextmanager
def using(name: str) -> Iterator[None]:
    """The surface is ``name`` inside the ``with`` block (restored after).

    >>> with using("magic"):
    ...     current()
    'magic'
    """
    previous = set_surface(name)
    try:
        yield
    finally:
        set_surface(previous)


def hint(*, python: str, cli: str | None = None, repl: str | None = None, magic: str | None = None) -> str:
    """The help line for the current surface: the REPL falls back to the command line's, the magic
    and the command line to Python's.

    >>> hint(python="x=1", cli="--x 1", repl="\\\\set x 1")
    'x=1'
    """
    by_surface = {"python": python, "cli": cli or python, "repl": repl or cli or python,
                  "magic": magic or python}
    return by_surface[_current]
