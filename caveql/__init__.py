"""caveql: CQL, a SQL-flavoured query language and engine for CAVE connectomes.

>>> import caveql
>>> caveql.__version__ >= "0.1"
True
>>> caveql.format_cql("select * from cells where cell_type='BC'")
"SELECT * FROM cells WHERE cell_type = 'BC';\\n"
>>> import tempfile; from caveql.datastack.tiny import build_tiny
>>> with caveql.connect(path=build_tiny(tempfile.mkdtemp())) as db:
...     db.query("SELECT COUNT(*) AS n FROM synapses WHERE pre_pt_root_id = :root_id", root_id=1001)
   n
0  4

In Jupyter: ``%load_ext caveql``, then ``%cql`` / ``%%cql`` (see :mod:`caveql.magic`).
"""

from caveql import accessor as _accessor  # noqa: F401  (registers the df.cql pandas accessor)
from caveql._version import __version__
from caveql.api import Connection, connect, query
from caveql.cqlfile import CqlFile, load_cql
from caveql.errors import CaveqlError
from caveql.syntax import format_cql, parse

__all__ = [
    "CaveqlError",
    "Connection",
    "CqlFile",
    "__version__",
    "connect",
    "format_cql",
    "load_cql",
    "load_ipython_extension",
    "parse",
    "query",
]


def load_ipython_extension(ipython: object) -> None:
    """``%load_ext caveql``: register the ``%cql`` / ``%%cql`` magics."""
    from caveql.magic import load_ipython_extension as load

    load(ipython)
