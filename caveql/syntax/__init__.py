"""The CQL front end: text -> AST (:func:`parse`) and AST -> canonical text (:func:`format_cql`).

>>> from caveql.syntax import parse
>>> parse("SHOW TABLES").statements[0].what
'TABLES'
"""

from caveql.syntax.parser import needs_more_input, parse

__all__ = ["needs_more_input", "parse"]
