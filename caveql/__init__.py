"""caveql: CQL, a SQL-flavoured query language and engine for CAVE connectomes.

>>> import caveql
>>> caveql.__version__ >= "0.1"
True
>>> caveql.format_cql("select * from cells where cell_type='BC'")
"SELECT * FROM cells WHERE cell_type = 'BC';\\n"
"""

from caveql._version import __version__
from caveql.errors import CaveqlError
from caveql.syntax import format_cql, parse

__all__ = ["CaveqlError", "__version__", "format_cql", "parse"]
