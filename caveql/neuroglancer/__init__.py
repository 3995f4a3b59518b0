"""Neuroglancer states of query answers: look at any answer with positions or root ids.

Entry points (all offline: nothing is contacted to build a state):

- :func:`state` ``(frame, *, info=None, resolution=None, points=None, lines=False,
  segments=None, description=None, tags=None, image=None, segmentation=None,
  viewer_resolution=None) -> dict``: the Neuroglancer state (a JSON-ready dict);
- :func:`url` ``(state, viewer=DEFAULT_VIEWER) -> str`` and :func:`write` ``(state, path)``;
- :func:`neuroglancer` ``(answer, *, path=None, viewer=None, **state_options) -> View``: both at
  once, as ``df.cql.neuroglancer(...)``, ``Result.to_neuroglancer(...)``, ``\\ng`` in the REPL,
  ``--format neuroglancer`` / ``-o view.ng.json`` on the command line and ``%%cql --ng`` call it.

The state is what nglui 4.x's ``ViewerState`` builds from the same frame (tests/api/
test_neuroglancer.py compares them layer by layer), written directly because nglui is a heavy
dependency and slow on 100,000 rows (benchmarks/neuroglancer.py):

- the datastack's image and segmentation layers (``aligned_volume.image_source``,
  ``segmentation_source``, ``viewer_resolution_*`` of its info). A local datastack (the demo,
  whose sources name the host ``local``) has no volume to show: its layers get the
  placeholders :data:`DEMO_IMAGE` / :data:`DEMO_SEGMENTATION` (a ``.invalid`` host, which never
  resolves), so the annotations still link to a segmentation layer; pass ``image=`` /
  ``segmentation=`` for real sources;
- one point annotation layer per position column (an array column, or ``<p>_x/_y/_z``), named
  after it, linked to the segmentation layer; its ``segments`` are the row's root ids
  (``pre_pt_position`` takes ``pre_pt_root_id``; a position with no root id column of its own
  takes every root id column), its ``description`` the column ``description=``, its tags the
  values of the categorical column ``tags=`` (bool annotation properties, as nglui encodes them
  for Spelunker and Neuroglancer main). ``lines=True`` draws the two position columns of each row
  (a synapse's pre and post) as one line layer instead;
- coordinates converted from the answer's resolution to the viewer's;
- annotation ids derived from the rows (a hash of what the annotation shows, plus ``-2``,
  ``-3``... for repeats), so the same answer gives the same state;
- root ids alone (no position column): the segmentation layer with those segments selected.

Rows whose position is null (an outer join's missing side) are left out of that layer.

>>> import pandas as pd
>>> df = pd.DataFrame({"pt_position": [[10, 20, 3]], "pt_root_id": [864691135000000001],
...                    "cell_type": ["BC"]})
>>> info = {"aligned_volume": {"image_source": "precomputed://gs://bucket/em"},
...         "segmentation_source": "graphene://https://cave.example.org/segmentation/table/x",
...         "viewer_resolution_x": 4, "viewer_resolution_y": 4, "viewer_resolution_z": 40}
>>> s = state(df, info=info, resolution=(8, 8, 40), tags="cell_type")
>>> [layer["name"] for layer in s["layers"]]
['imagery', 'segmentation', 'pt_position']
>>> anno = s["layers"][2]["annotations"][0]
>>> anno["point"], anno["segments"], anno["props"]
([20.0, 40.0, 3.0], [['864691135000000001']], [True])
>>> url(s).startswith("https://spelunker.cave-explorer.org/#!%7B%22dimensions%22")
True
"""

from __future__ import annotations

from caveql.neuroglancer.build import DEMO_IMAGE, DEMO_SEGMENTATION, context, state
from caveql.neuroglancer.surfaces import (cli_outputs, notebook, open_in_browser, parse_words,
                                          repl_command, show)
from caveql.neuroglancer.view import DEFAULT_VIEWER, MAX_URL_CHARS, View, neuroglancer, url, write

__all__ = [
    "DEFAULT_VIEWER",
    "DEMO_IMAGE",
    "DEMO_SEGMENTATION",
    "MAX_URL_CHARS",
    "View",
    "cli_outputs",
    "context",
    "neuroglancer",
    "notebook",
    "open_in_browser",
    "parse_words",
    "repl_command",
    "show",
    "state",
    "url",
    "write",
]
