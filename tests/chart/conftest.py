"""Fixtures for the Helm chart tests.

``helm`` is the pinned helm from hack/build-helm.sh, built at collection time
(the first build takes a minute or two, longer than a test may). The tests that
talk to an API server reuse the operator tests' real control plane (``kube``).
"""

import subprocess
from pathlib import Path

import pytest

from tests.chart.chart import Chart
from tests.operator.conftest import control_plane, kube
from tests.operator.conftest import (
    pytest_collection_modifyitems as build_control_plane_binaries,
)
from tests.operator.harness import REPO

__all__ = ["chart", "control_plane", "kube"]

BUILD_HELM = REPO / "hack" / "build-helm.sh"


def _build_helm() -> str:
    result = subprocess.run([str(BUILD_HELM)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.exit(f"{BUILD_HELM} failed:\n{result.stderr[-4000:]}", returncode=1)
    return result.stdout.strip().splitlines()[-1]


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Build helm, and the control plane's binaries, before the first chart test runs."""
    if not any("chart" in getattr(item, "fixturenames", ()) for item in items):
        return
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line("chart tests: build-helm.sh")
    _build_helm()
    build_control_plane_binaries(config, items)


@pytest.fixture(scope="session")
def chart() -> Chart:
    return Chart(Path(_build_helm()), REPO / "charts" / "kubestream")
