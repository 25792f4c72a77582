"""A function the executors cannot load fails each job that uses it with the loading error
itself, every time: not with a lookup error from the second job on."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from kubestream.errors import JobFailedError
from tests.integration.conftest import Cluster


def test_a_module_only_the_driver_has_fails_every_job_with_its_name(
    cluster: Cluster, tmp_path: Path
) -> None:
    (tmp_path / "driver_only_helpers.py").write_text("def double(x):\n    return 2 * x\n")
    sys.path.insert(0, str(tmp_path))
    try:
        helpers = importlib.import_module("driver_only_helpers")
        for _ in range(3):
            with pytest.raises(JobFailedError) as failed:
                cluster.engine.parallelize(list(range(8)), 4).map(helpers.double).collect()
            message = str(failed.value)
            assert "No module named 'driver_only_helpers'" in message
            assert "KeyError" not in message
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("driver_only_helpers", None)
    assert sorted(cluster.engine.parallelize(list(range(8)), 4).map(abs).collect()) == list(
        range(8)
    )
