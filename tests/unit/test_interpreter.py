"""The interpreter settings the executor and driver commands start with."""

from __future__ import annotations

import subprocess
import sys

from kubestream.interpreter import SWITCH_INTERVAL_SECONDS, YOUNG_GENERATION_THRESHOLD

PROBE = (
    "import gc, sys; from kubestream.interpreter import tune_for_batches; "
    "before = gc.get_threshold(); tune_for_batches(); "
    "print(gc.get_threshold()[0], gc.get_threshold()[1:] == before[1:], gc.get_freeze_count() > 0,"
    " sys.getswitchinterval())"
)


def test_the_young_generation_is_collected_less_often_and_threads_switch_sooner() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == [str(YOUNG_GENERATION_THRESHOLD), "True", "True", str(SWITCH_INTERVAL_SECONDS)]
