"""caveql: CQL, a SQL-flavoured query language and engine for CAVE connectomes.

>>> import caveql
>>> caveql.__version__ >= "0.1"
True
"""

from caveql._version import __version__
from caveql.errors import CaveqlError

__all__ = ["CaveqlError", "__version__"]
