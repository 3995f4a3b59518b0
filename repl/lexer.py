"""A Pygments lexer for CQL, registered as the ``cql`` lexer entry point.

The keyword list mirrors the keyword terminals of grammar/caveql.lark (a test
checks that every keyword of the grammar is here), so highlighting and the
parser agree. Root ids and other integers are one Number token however long.

>>> from pygments.token import Keyword, Name
>>> toks = [(t, v) for t, v in CqlLexer().get_tokens("SELECT cell_type FROM t AT RESOLUTION 1,1,1")
...         if v.strip()]
>>> toks[0], toks[1][0] in Name, toks[4]
((Token.Keyword, 'SELECT'), True, (Token.Keyword, 'AT'))
"""

from __future__ import annotations

from pygments.lexer import RegexLexer, bygroups, words
from pygments.token import (
    Comment,
    Keyword,
    Name,
    Number,
    Operator,
    Punctuation,
    String,
    Text,
    Whitespace,
)

from caveql.analyze.functions import names as _function_names

__all__ = ["FUNCTIONS", "KEYWORDS", "CqlLexer"]

#: Reserved words of CQL (statements, clauses, CAVE clauses, operators spelt as words).
KEYWORDS = (
    "ALL", "ANALYZE", "AND", "AS", "ASC", "AT", "BETWEEN", "BOX", "BY", "DATASTACK", "DESC",
    "DESCRIBE", "DISTINCT", "EXPLAIN", "FALSE", "FROM", "GROUP", "HAVING", "IN", "INNER", "IS",
    "JOIN", "LEFT", "LIKE", "LIMIT", "LIVE", "NOT", "NULL", "NULLS", "FIRST", "LAST", "OFFSET",
    "ON", "OR", "ORDER", "POSITIONS", "RESOLUTION", "SELECT", "SET", "SHOW", "SPLIT", "TABLES",
    "TIMESTAMP", "TRUE", "USE", "VERSION", "VERSIONS", "VIEWS", "WHERE", "WITHIN", "CASE",
    "WHEN", "THEN", "ELSE", "END", "CAST", "ILIKE", "OUTER", "RIGHT", "FULL", "CROSS",
    "UNION", "EXCEPT", "INTERSECT", "WITH", "COLUMNS", "TRY_CAST", "EXISTS", "OVER", "FILTER",
    "PARTITION", "ROWS", "RANGE", "GROUPS", "UNBOUNDED", "PRECEDING", "FOLLOWING", "CURRENT",
    "ROW", "EXCLUDE", "TIES", "NO", "OTHERS", "WINDOW", "QUALIFY", "RECURSIVE", "USING", "PIVOT",
    "UNPIVOT", "FOR", "INCLUDE",
)

#: Every function of the function table (caveql/analyze/functions.py: names and aliases),
#: highlighted as builtins when followed by ``(`` and offered by completion.
FUNCTIONS = tuple(_function_names())


class CqlLexer(RegexLexer):
    """Pygments lexer for CQL (``.cql`` files, the REPL, docs)."""

    name = "CQL"
    aliases = ["cql", "caveql"]
    filenames = ["*.cql"]
    mimetypes = ["text/x-cql"]
    flags = __import__("re").IGNORECASE

    tokens = {
        "root": [
            (r"\s+", Whitespace),
            (r"--[^\n]*", Comment.Single),
            (r"/\*", Comment.Multiline, "comment"),
            (r"\\[A-Za-z?]+", Keyword.Pseudo),  # REPL backslash commands
            (r"'", String.Single, "string"),
            (r'"(""|[^"])*"', Name.Quoted),
            (r":[A-Za-z_][A-Za-z0-9_]*", Name.Variable),
            (r"\{[A-Za-z_][A-Za-z0-9_]*\}", Name.Variable),
            (r"[0-9]+\.[0-9]*([eE][+-]?[0-9]+)?|\.[0-9]+([eE][+-]?[0-9]+)?|[0-9]+[eE][+-]?[0-9]+",
             Number.Float),
            (r"[0-9]+", Number.Integer),
            (words(FUNCTIONS, suffix=r"(?=\s*\()"), Name.Builtin),
            (words(KEYWORDS, suffix=r"\b"), Keyword),
            (r"([A-Za-z_][A-Za-z0-9_]*)(\.)", bygroups(Name, Punctuation)),
            (r"[A-Za-z_][A-Za-z0-9_]*", Name),
            (r"<>|!=|<=|>=|[=<>~+\-*/%]", Operator),
            (r"[(),;.]", Punctuation),
            (r".", Text),
        ],
        "string": [
            (r"''", String.Escape),
            (r"[^']+", String.Single),
            (r"'", String.Single, "#pop"),
        ],
        "comment": [
            (r"[^*/]+", Comment.Multiline),
            (r"\*/", Comment.Multiline, "#pop"),
            (r"[*/]", Comment.Multiline),
        ],
    }
