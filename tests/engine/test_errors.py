"""Bad input gives a CaveqlError naming what is wrong and where, never a traceback."""

from __future__ import annotations

import pytest

from caveql.errors import (
    AggregateError,
    AmbiguousColumnError,
    CaveqlError,
    CqlTypeError,
    ParameterError,
    UnknownColumnError,
    UnknownTableError,
)

CASES = [
    ("SELECT id FROM cels", UnknownTableError, "cels", "cells"),
    ("SELECT cel_type FROM cells", UnknownColumnError, "cel_type", "cell_type"),
    ("SELECT c.cel_type FROM cells c", UnknownColumnError, "c.cel_type", "cell_type"),
    ("SELECT id FROM cells WHERE cell_type = 5", CqlTypeError, "5", None),
    ("SELECT id FROM cells WHERE id = 'x'", CqlTypeError, "'x'", None),
    ("SELECT id FROM synapses WHERE size ~ '1'", CqlTypeError, "size", None),
    ("SELECT id FROM synapses WHERE COUNT(*) > 1", AggregateError, "COUNT(*)", None),
    ("SELECT pre_pt_root_id, size, COUNT(*) FROM synapses GROUP BY pre_pt_root_id",
     AggregateError, "size", None),
    ("SELECT id FROM synapses WHERE pre_pt_root_id = :root", ParameterError, ":root", None),
    ("SELECT id FROM synapses s JOIN cells c ON s.pre_pt_root_id = c.pt_root_id", AmbiguousColumnError,
     "id", None),
    ("SELECT pt_position FROM cells WHERE pt_position = 3", CqlTypeError, "pt_position", None),
    ("SELECT id FROM cells WHERE id IN (SELECT id, cell_type FROM cells)", CaveqlError, None, None),
    ("SELECT id FROM cells LIMIT -1", CaveqlError, "-1", None),
    ("SELECT FOO(id) FROM cells", CaveqlError, "FOO(id)", None),
]


@pytest.mark.parametrize(("cql", "cls", "where", "suggest"), CASES)
def test_error_has_class_span_and_hint(engine, cql, cls, where, suggest):
    with pytest.raises(cls) as info:
        engine.execute(cql)
    err = info.value
    if where is not None:
        assert err.span is not None
        assert cql[err.span.start:err.span.end] == where
    if suggest is not None:
        assert suggest in (err.hint or "")
    rendered = err.render()
    assert err.code in rendered and "^" in rendered or err.span is None


def test_unknown_table_names_the_version_that_has_it(engine):
    with pytest.raises(UnknownTableError) as info:
        engine.execute("SELECT * FROM cell_types AT VERSION 1")
    assert "version 2" in (info.value.hint or "")
