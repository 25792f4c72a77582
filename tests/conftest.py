"""Test tiers, decided here and nowhere else.

Every test is `unit` (pure logic, in-process, no servers) or `integration` (real
processes, sockets, brokers or an API server). The folder decides: tests/unit is
unit; tests/integration and tests/chart are integration; in tests/operator a test
that needs the real control plane (the `kube` fixture, directly or through
another fixture) is integration and the operator's pure planner, spec and manifest
tests are unit. `make test-unit` runs `-m unit`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import settings

# Speed is measured in benchmarks, never asserted in tests: no per-example deadline, which
# a loaded machine would turn into failures that say nothing about the code.
settings.register_profile("kubestream", deadline=None)
settings.load_profile("kubestream")

TESTS = Path(__file__).parent
INTEGRATION_FOLDERS = {"integration", "chart"}


def tier(item: pytest.Item) -> str:
    folder = Path(str(item.path)).relative_to(TESTS).parts[0]
    if folder in INTEGRATION_FOLDERS:
        return "integration"
    if folder == "operator" and "kube" in getattr(item, "fixturenames", ()):
        return "integration"
    return "unit"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(getattr(pytest.mark, tier(item)))
