"""The CQL front end: text -> AST (:func:`parse`) and AST -> canonical text (:func:`format_cql`).

>>> from caveql.syntax import parse, format_cql
>>> format_cql("select cell_type, count(*) n from cells group by cell_type")
'SELECT cell_type, COUNT(*) AS n FROM cells GROUP BY cell_type;\\n'
"""

from caveql.syntax.parser import needs_more_input, parse
from caveql.syntax.printer import format_cql, print_ast

__all__ = ["format_cql", "needs_more_input", "parse", "print_ast"]
