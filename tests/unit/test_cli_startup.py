"""Drivers and executors start without importing the operator (kopf, the Kubernetes client):
a second of imports each, paid again by every restart a driver recovers from."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import sys
from kubestream.cli import main
try:
    main([{command!r}, "--help"])
except SystemExit:
    pass
print("kubestream_operator" in sys.modules, "kopf" in sys.modules)
"""


@pytest.mark.parametrize(
    ("command", "imported"),
    [("run", False), ("driver", False), ("executor", False), ("operator", True)],
)
def test_only_a_plugin_command_imports_its_plugin(command: str, imported: bool) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(command=command)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert done.stdout.split()[-2:] == [str(imported)] * 2
