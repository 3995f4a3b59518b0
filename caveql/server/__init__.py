"""``caveql serve``: the CAVE materialization REST API over a local datastack.

Unmodified caveclient 8.2.1 works against it (``CAVEclient(ds, server_address=url,
auth_token=...)``): info service discovery, materialize v2/v3 metadata and query
routes, the schema service's JSON. See :mod:`caveql.server.app`.
"""

from caveql.server.app import QUERY_LIMIT_SIZE, create_app
from caveql.server.run import ServerThread, serve

__all__ = ["QUERY_LIMIT_SIZE", "ServerThread", "create_app", "serve"]
