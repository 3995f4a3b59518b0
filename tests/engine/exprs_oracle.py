"""Shared harness of the expression tests (functions, CASE/CAST, windows): caveql vs DuckDB.

Each case is a CQL statement and the same question as plain DuckDB SQL over the demo
datastack's files (tests/differential/oracle.py: no caveql code). Both must give the same
rows, through caveql uncapped and through caveql at a row cap of 1,000 (its calls split).
``{syn}`` / ``{ct}`` in the SQL stand for the synapse and cell-type relations at version 661.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from caveql.backends.local import LocalBackend
from caveql.engine import Engine
from tests.differential.compare import compare
from tests.differential.oracle import Oracle

SYN = "synapses_pni_2"
CT = "aibs_soma_nuc_metamodel_preds_v117"
SEED = 864691135808473885  # 1,498 synapses out of it on the demo: more than one capped call
CAP = 1000


@pytest.fixture(scope="module")
def oracle(demo_path: Path) -> Oracle:
    return Oracle(demo_path)


@pytest.fixture(scope="module")
def engines(demo_path: Path) -> Iterator[tuple[Engine, Engine]]:
    """(uncapped, capped at 1,000 rows) engines over the demo."""
    plain, capped = LocalBackend(demo_path), LocalBackend(demo_path, row_cap=CAP)
    yield Engine(plain), Engine(capped)
    plain.close()
    capped.close()


def same_answer(engines: tuple[Engine, Engine], oracle: Oracle, cql: str, sql: str,
                mode: str = "set") -> list[tuple]:
    """Assert caveql (uncapped and capped) answers ``cql`` as DuckDB answers ``sql``; the rows."""
    sql = sql.format(syn=f"({oracle.relation_sql(661, SYN, None)})",
                     ct=f"({oracle.relation_sql(661, CT, None)})")
    columns, types, rows = oracle.run(sql)
    assert rows, f"the oracle's answer is empty, so the case tests nothing: {sql}"
    for eng in engines:
        frame = eng.execute(cql).frame
        diff = compare(frame, columns, types, rows, mode=mode)
        assert diff is None, f"{cql}\n{diff}"
    return rows
