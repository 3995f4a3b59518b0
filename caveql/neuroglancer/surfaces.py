"""The Neuroglancer view on each user surface: ``\\ng`` in the REPL, ``--format neuroglancer`` /
``-o view.ng.json`` on the command line, ``%%cql --ng`` in Jupyter (``df.cql.neuroglancer`` and
``Result.to_neuroglancer`` call :func:`~caveql.neuroglancer.view.neuroglancer` directly).

>>> parse_words(["lines=pre_pt_position,post_pt_position"])
({'lines': ['pre_pt_position', 'post_pt_position']}, False, None)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from caveql.errors import ConfigError
from caveql.neuroglancer.view import View, neuroglancer

__all__ = ["cli_outputs", "notebook", "open_in_browser", "parse_words", "repl_command", "show"]


_WORD_OPTIONS = {"lines", "points", "segments", "description", "tags", "viewer", "resolution",
                 "image", "segmentation", "viewer_resolution"}


def parse_words(words: Sequence[str]) -> tuple[dict[str, Any], bool, str | None]:
    """The words of ``\\ng``, ``%%cql --ng=...``: ``open``, a ``.json`` file, ``key=value`` options
    (lists comma-separated); returns (options, open a browser, path).

    >>> parse_words(["open", "v.json", "tags=cell_type", "lines=true", "resolution=4,4,40"])
    ({'tags': 'cell_type', 'lines': True, 'resolution': [4.0, 4.0, 40.0]}, True, 'v.json')
    >>> parse_words(["colour=red"])
    Traceback (most recent call last):
    caveql.errors.ConfigError: unknown Neuroglancer option 'colour'; help: ...
    """
    options: dict[str, Any] = {}
    opened, path = False, None
    for word in words:
        key, eq, value = word.partition("=")
        if not eq:
            if word == "open":
                opened = True
            elif word.lower().endswith(".json"):
                path = os.path.expanduser(word)
            else:
                raise ConfigError(f"{word!r}: expected open, a .json file or key=value",
                                  hint="e.g. \\ng open tags=cell_type lines=true")
            continue
        if key not in _WORD_OPTIONS:
            raise ConfigError(f"unknown Neuroglancer option {key!r}",
                              hint="options: " + ", ".join(sorted(_WORD_OPTIONS)))
        items = [v.strip() for v in value.split(",") if v.strip()]
        if key == "lines":
            options[key] = (value.lower() in ("true", "on", "yes", "1") if len(items) < 2 else items)
        elif key in ("resolution", "viewer_resolution"):
            try:
                options[key] = [float(v) for v in items]
            except ValueError:
                raise ConfigError(f"{key}={value!r}: needs three numbers, e.g. {key}=4,4,40") from None
        elif key in ("points", "segments"):
            options[key] = items
        else:
            options[key] = value
    return options, opened, path


def show(answer: Any, words: Sequence[str], *, backend: Any = None) -> tuple[View, bool]:
    """:func:`neuroglancer` of ``answer`` with :func:`parse_words` options; returns the view and
    whether a browser was asked for (``open``)."""
    options, opened, path = parse_words(words)
    return neuroglancer(answer, path=path, backend=backend, **options), opened


def open_in_browser(view: View) -> bool:
    """Open the view's link in the default browser (nothing when it has none)."""
    if view.url is None:
        return False
    import webbrowser

    return webbrowser.open(view.url)


def repl_command(session: Any, arg: str) -> None:
    """``\\ng [open] [file.json] [key=value ...]`` of the REPL: the last answer's link."""
    import shlex

    try:
        words = shlex.split(arg)
    except ValueError as exc:
        raise ConfigError(f"\\ng: {exc}") from exc
    last = getattr(session, "last_result", None)
    frame = getattr(session, "last_frame", None)
    if frame is None:
        raise ConfigError("no result to look at yet", hint="run a query, then \\ng")
    answer = last if last is not None and getattr(last, "frame", None) is frame else frame
    view, opened = show(answer, words, backend=_backend(session.connection))
    for line in (view.url or view.message, f"Wrote the Neuroglancer state to {view.path}."
                 if view.path and view.url else ""):
        if line:
            (session.print_lines([line]) if line == view.url else session.info(line))
    if opened and not open_in_browser(view):
        session.info("No browser opened: " + (view.message or "no browser found"))


def cli_outputs(session: Any, output: str | None) -> None:
    """``--format neuroglancer`` / ``-o view.ng.json``: each result becomes a state, written to
    the ``-o`` file (when given) and its link printed on stdout (too big: said on stderr)."""
    def show_frame(df: Any, *, full: bool = False) -> None:
        last = getattr(session, "last_result", None)
        answer = last if last is not None and getattr(last, "frame", None) is df else df
        view = neuroglancer(answer, path=session.output_file or None,
                            backend=_backend(session.connection))
        if view.url is not None:
            session.out.write(view.url + "\n")
            session.out.flush()
        else:
            session.info(view.message)
        if view.path and view.url:
            session.info(f"Wrote the Neuroglancer state to {view.path}.")

    session.show_frame = show_frame


def notebook(answer: Any, spec: str, *, backend: Any = None) -> View:
    """``%%cql --ng[=options]``: display the answer's link (IPython HTML) and return the view."""
    from IPython.display import HTML, display

    view, opened = show(answer, spec.split(), backend=backend)
    display(HTML(view._repr_html_()))
    if opened:
        open_in_browser(view)
    return view


def _backend(connection: Any) -> Any:
    return getattr(getattr(connection, "engine", None), "backend", None)
