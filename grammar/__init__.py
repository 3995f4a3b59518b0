"""The CQL grammar (``caveql.lark``), shipped as package data of caveql."""
