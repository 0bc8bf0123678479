"""Shared test configuration: hypothesis profiles and the ``--regen-golden`` option.

Hypothesis profiles (one mechanism for the whole suite; register new
profiles here, next to these two):

- ``ci`` (the default): few examples, no deadline, so the suite stays fast
  on a shared machine.
- ``long``: many examples, for a soak run.

Pick one with the environment variable ``NETSPEC_PROFILE``:
``NETSPEC_PROFILE=long pytest tests/test_fuzz.py``.  A test that needs
fewer examples than the profile's caps itself with
``@settings(max_examples=min(N, settings().max_examples))``.

Golden files (``tests/golden``) are rewritten by ``pytest --regen-golden``
or ``NETSPEC_REGEN_GOLDEN=1``; review the diff before keeping it.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=25,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "long",
    max_examples=1000,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("NETSPEC_PROFILE", "ci"))


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--regen-golden``."""
    parser.addoption(
        "--regen-golden",
        action="store_true",
        default=False,
        help="rewrite the expected outputs in tests/golden (or set NETSPEC_REGEN_GOLDEN=1)",
    )


@pytest.fixture
def regen_golden(request: pytest.FixtureRequest) -> bool:
    """True when the golden files should be rewritten instead of compared."""
    return bool(request.config.getoption("--regen-golden")) or os.environ.get("NETSPEC_REGEN_GOLDEN") == "1"
