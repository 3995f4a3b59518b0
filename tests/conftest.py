"""Shared fixtures. Area-specific fixtures live in the conftest.py of each tests/ subfolder."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# CI profile: enough examples to mean something, no deadline flakiness on a 2-core machine.
settings.register_profile(
    "ci", deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
settings.register_profile(
    "fuzz", deadline=None, max_examples=20_000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("fuzz" if os.environ.get("CAVEQL_FUZZ") else "ci")


# --- local datastacks (owned by H2) -------------------------------------------------------

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_datastack(tmp_path_factory: pytest.TempPathFactory):
    """Path of the tiny hand-made datastack (caveql.datastack.tiny), built once per session."""
    from caveql.datastack.tiny import build_tiny

    return build_tiny(tmp_path_factory.mktemp("tiny"))
