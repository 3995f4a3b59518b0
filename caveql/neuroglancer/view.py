"""A built state as a link, a file, or both (:func:`neuroglancer`).

>>> import pandas as pd
>>> v = neuroglancer(pd.DataFrame({"pt_root_id": [7]}), image="", segmentation="precomputed://gs://b/s",
...                  viewer_resolution=(4, 4, 40))
>>> v.url.startswith(DEFAULT_VIEWER + "#!")
True
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from caveql.errors import ConfigError
from caveql.neuroglancer.build import _no_gc, state

__all__ = ["DEFAULT_VIEWER", "MAX_URL_CHARS", "View", "neuroglancer", "url", "write"]

#: The viewer a link opens in unless told otherwise: the CAVE Spelunker (any Neuroglancer works).
DEFAULT_VIEWER = "https://spelunker.cave-explorer.org/"
#: The longest link made (nglui's limit): a bigger state is written as JSON instead.
MAX_URL_CHARS = 1_750_000
# neuroglancer.url_state's safe characters; everything else is percent-encoded
_SAFE = "~@#$&()*!+=:;,.?/'"
_QUOTE = {c: (chr(c) if (chr(c).isalnum() or chr(c) in _SAFE + "_.-") else f"%{c:02X}")
          for c in range(128)}


# --------------------------------------------------------------------------------- the view
@dataclass(frozen=True)
class View:
    """A built state: ``state`` (the dict), ``url`` (``None`` when the state is too big for a
    link: then ``path`` holds its JSON and ``message`` says so), ``path`` (where the JSON was
    written, if it was).

    >>> v = View(state={}, url="https://viewer/#!%7B%7D")
    >>> print(v)
    https://viewer/#!%7B%7D
    >>> v._repr_html_()
    '<a href="https://viewer/#!%7B%7D" target="_blank">Open in Neuroglancer</a>'
    """

    state: dict[str, Any] = field(repr=False)
    url: str | None = None
    path: str | None = None
    message: str = ""

    def __str__(self) -> str:
        return self.url if self.url is not None else self.message

    def _repr_html_(self) -> str:
        import html

        if self.url is None:
            return f"<p>{html.escape(self.message)}</p>"
        return f'<a href="{html.escape(self.url)}" target="_blank">Open in Neuroglancer</a>'


def neuroglancer(answer: Any, *, path: str | os.PathLike[str] | None = None, viewer: str | None = None,
                 **options: Any) -> View:
    """The :class:`View` of ``answer`` (a DataFrame or a :class:`~caveql.execute.result.Result`):
    its :func:`state` (``options`` are :func:`state`'s), a link for ``viewer`` and, when ``path``
    is given, the JSON written there. A state too big for a link (:data:`MAX_URL_CHARS`) is
    written to ``path`` (default ``neuroglancer-<digest>.json`` here) and the view says so.

    >>> import pandas as pd, tempfile, os
    >>> df = pd.DataFrame({"pt_root_id": [1001, 1002]})
    >>> v = neuroglancer(df, image="precomputed://gs://b/em", segmentation="precomputed://gs://b/seg",
    ...                  viewer_resolution=(4, 4, 40), viewer="https://neuroglancer-demo.appspot.com/")
    >>> v.url.startswith("https://neuroglancer-demo.appspot.com/#!"), v.state["layers"][1]["segments"]
    (True, ['1001', '1002'])
    >>> out = os.path.join(tempfile.mkdtemp(), "view.json")
    >>> neuroglancer(df, path=out, image="", segmentation="precomputed://gs://b/seg",
    ...              viewer_resolution=(4, 4, 40)).path == out
    True
    """
    url({}, viewer)  # a wrong viewer is refused before anything is built
    with _no_gc():
        built = state(answer, **options)
        text = _dumps(built)
    link: str | None = url(built, viewer, _text=text) if len(text) <= MAX_URL_CHARS else None
    message = ""
    if link is None or (len(link) > MAX_URL_CHARS):
        link = None
        if path is None:
            path = f"neuroglancer-{hashlib.blake2b(text.encode(), digest_size=6).hexdigest()}.json"
        message = (f"the state is too big for a link ({len(text):,} characters of JSON; a link "
                   f"holds {MAX_URL_CHARS:,}): written to {path}; open it in Neuroglancer "
                   f"(drag the file onto the viewer, or paste it into its JSON state editor)")
    written = write(built, path, _text=text) if path is not None else None
    return View(state=built, url=link, path=written, message=message)


def url(state: Mapping[str, Any], viewer: str | None = None, *, _text: str | None = None) -> str:
    """A link that opens ``state`` in ``viewer`` (default :data:`DEFAULT_VIEWER`), encoded as
    neuroglancer's own ``to_url`` does. It can exceed :data:`MAX_URL_CHARS`: :func:`neuroglancer`
    checks.

    >>> url({"layers": []}, "https://neuroglancer-demo.appspot.com")
    'https://neuroglancer-demo.appspot.com#!%7B%22layers%22:%5B%5D%7D'
    """
    base = (viewer or DEFAULT_VIEWER).split("#", 1)[0]
    if not re.match(r"^https?://[^/\s]+", base):
        raise ConfigError(f"viewer {viewer!r} is not an http(s) URL of a Neuroglancer deployment",
                          hint=f"for example {DEFAULT_VIEWER}")
    text = _text if _text is not None else _dumps(state)
    # the JSON is ASCII (ensure_ascii): one C-speed translate instead of urllib's per-byte quote
    return base + "#!" + text.translate(_QUOTE)


def write(state: Mapping[str, Any], path: str | os.PathLike[str], *, _text: str | None = None) -> str:
    """Write ``state`` as JSON to ``path``; returns the path written.

    >>> import tempfile, os, pathlib
    >>> p = write({"layers": []}, os.path.join(tempfile.mkdtemp(), "v.json"))
    >>> pathlib.Path(p).read_text()
    '{"layers":[]}'
    """
    target = Path(path)
    try:
        target.write_text(_text if _text is not None else _dumps(state), encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write the Neuroglancer state to {target}: {exc.strerror}") from exc
    return str(target)


def _dumps(state: Mapping[str, Any]) -> str:
    # (a state has no cycles: skipping the C encoder's cycle check saves a fifth of its time)
    return json.dumps(state, separators=(",", ":"), ensure_ascii=True, allow_nan=False,
                      check_circular=False)
