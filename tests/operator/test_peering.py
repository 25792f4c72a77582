"""Peering priorities: chosen from the flag, the environment or the pod name,
and two replicas of a Deployment (same flags, different pod names) peering for
real, one active and one standing by."""

import argparse
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from kubestream_operator.cli import add_arguments
from kubestream_operator.peering import choose_priority, derived_priority
from tests.operator.harness import REPO, Kube, OperatorProcess, wait_for
from tests.operator.test_lifecycle import job_manifest

# Pods of one ReplicaSet: the same prefix, a random five-character suffix.
POD_NAMES = [f"ks-kubestream-operator-7d9c6b5f4-{i:05x}" for i in range(2000)]
PEERING_LOGGER = "kopf._core.engines.peering"


def logged(replica: OperatorProcess, text: str) -> Callable[[], bool]:
    return lambda: text in replica.log.read_text()


def paused(replica: OperatorProcess) -> bool:
    """kopf starts paused and logs every change: paused unless it last said it resumes."""
    said = [line for line in replica.log.read_text().splitlines() if PEERING_LOGGER in line]
    return not said or "Resuming operations" not in said[-1]


def parse(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], *argv: str) -> argparse.Namespace:
    """``kubestream operator`` arguments as a process with exactly this environment sees them."""
    for name in ("KUBESTREAM_OPERATOR_PRIORITY", "KUBESTREAM_OPERATOR_POD_NAME", "HOSTNAME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_a_given_priority_wins_over_the_pod_name() -> None:
    for given in (0, 7, -3):
        chosen = choose_priority(given, POD_NAMES[0])
        assert chosen.value == given
        assert not chosen.shared
        assert "given" in chosen.reason


def test_pod_names_give_distinct_negative_priorities() -> None:
    chosen = [choose_priority(None, name) for name in POD_NAMES]
    values = [c.value for c in chosen]
    assert len(set(values)) == len(POD_NAMES)
    assert all(-(2**32) <= v <= -1 for v in values)
    assert not any(c.shared for c in chosen)
    assert repr(POD_NAMES[0]) in chosen[0].reason
    # Below 0: an operator started by hand with --priority 0 or more outranks them.
    assert max(values) < 0


def test_a_pod_keeps_its_priority_in_every_process() -> None:
    """sha256, not Python's per-process salted hash(): a restarted container agrees."""
    code = (
        "from kubestream_operator.peering import derived_priority; "
        f"print(derived_priority({POD_NAMES[1]!r}))"
    )
    for seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", code],
            env={"PYTHONHASHSEED": seed, "PYTHONPATH": str(REPO / "operator")},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert int(out) == derived_priority(POD_NAMES[1])


def test_without_a_priority_or_a_pod_name_every_replica_gets_0_and_is_warned() -> None:
    chosen = choose_priority(None, "")
    assert chosen.value == 0
    assert chosen.shared
    assert "pauses them all" in chosen.reason


def test_the_command_line_reads_priority_and_pod_name_from_flags_or_env(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    args = parse(monkeypatch, {})
    assert (args.priority, args.pod_name) == (None, "")
    args = parse(monkeypatch, {"HOSTNAME": "from-hostname"})
    assert (args.priority, args.pod_name) == (None, "from-hostname")
    env = {"HOSTNAME": "from-hostname", "KUBESTREAM_OPERATOR_POD_NAME": "from-downward-api"}
    assert parse(monkeypatch, env).pod_name == "from-downward-api"
    args = parse(monkeypatch, env | {"KUBESTREAM_OPERATOR_PRIORITY": "5"})
    assert args.priority == 5
    args = parse(monkeypatch, env, "--priority", "9", "--pod-name", "from-flag")
    assert (args.priority, args.pod_name) == (9, "from-flag")


def test_two_replicas_with_derived_priorities_one_works_the_other_stands_by(
    kube: Kube, namespace: str, operator_kubeconfig: Path, tmp_path: Path
) -> None:
    """Both replicas run the same command line, as a Deployment's pods do; only the
    pod name differs. With equal priorities kopf would pause both and no pod would appear."""
    names = sorted(POD_NAMES[:2], key=derived_priority)
    low, high = (
        OperatorProcess(
            operator_kubeconfig, namespace, tmp_path / f"{name}.log",
            "--peering", "kubestream", "--pod-name", name,
        )
        for name in names
    )  # fmt: skip

    def peers() -> int:
        found = kube.kubectl(
            "get", "kopfpeerings", "-n", namespace, "kubestream", "-o", "json", check=False
        )
        return len(json.loads(found.stdout).get("status") or {}) if found.returncode == 0 else 0

    low.start()
    high.start()
    try:
        for replica, name in zip((low, high), names, strict=True):
            line = (
                f"peering as 'kubestream', priority {derived_priority(name)}: "
                f"derived from pod name {name!r}"
            )
            wait_for(logged(replica, line), f"{name} logs its derived priority")
        wait_for(lambda: peers() == 2, "both replicas registered")
        wait_for(lambda: not paused(high) and paused(low), "high active, low standing by")

        kube.apply(namespace, job_manifest())
        wait_for(lambda: len(kube.pods(namespace)) == 3, "3 pods from the active replica")
        # The operator logs what it did after the API server has done it: the pods
        # can be listed before the line is written.
        wait_for(logged(high, "DriverCreated"), "the active replica logs the driver it created")
        assert "DriverCreated" not in low.log.read_text()
        for replica in (low, high):
            assert "Possibly conflicting operators" not in replica.log.read_text()

        # A rollout replaces the active pod: the standby takes over.
        high.stop()
        wait_for(lambda: not paused(low), "the standby resumes")
        kube.kubectl("scale", "-n", namespace, "sj/wc", "--replicas=3")
        wait_for(lambda: len(kube.pods(namespace, "executor")) == 3, "the standby scales the job")
    finally:
        high.stop()
        low.stop()
