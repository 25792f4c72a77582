"""Spec parsing: defaults, and errors that name the field."""

from typing import Any

import pytest

from kubestream_operator.spec import SpecError, parse_spec


def spec(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "image": "registry.example.com:5000/team/app:1.0",
        "application": {"file": "/app/wc.py", "function": "build"},
    }
    base.update(fields)
    return base


def test_defaults_match_the_crd() -> None:
    s = parse_spec(spec())
    assert s.app == "/app/wc.py:build"
    assert (s.replicas, s.min_executors, s.max_executors) == (2, 1, 10)
    assert s.batch_interval == 1.0
    assert s.restart.type == "OnFailure"
    assert s.checkpoint.retain_on_delete is True
    assert s.graceful_stop_seconds == 60
    assert not s.autoscaling.enabled


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"image": "Not An Image"}, "image"),
        ({"application": {"file": "/a.py", "module": "a", "function": "f"}}, "application"),
        ({"application": {"module": "a"}}, "application.function"),
        ({"batchIntervalSeconds": 0}, "batchIntervalSeconds"),
        ({"executors": {"min": 3, "max": 2, "replicas": 2}}, "executors.min"),
        ({"executors": {"min": 1, "max": 2, "replicas": 5}}, "executors.replicas"),
        (
            {"autoscaling": {"scaleUpThreshold": 0.2, "scaleDownThreshold": 0.5}},
            "autoscaling.scaleDownThreshold",
        ),
        ({"autoscaling": {"maxStep": 0}}, "autoscaling.maxStep"),
        (
            {"checkpoint": {"existingClaim": "c", "storageClassName": "s"}},
            "checkpoint.storageClassName",
        ),
        ({"restartPolicy": {"type": "Sometimes"}}, "restartPolicy.type"),
        (
            {"restartPolicy": {"backoffSeconds": 60, "maxBackoffSeconds": 10}},
            "restartPolicy.backoffSeconds",
        ),
        ({"driver": {"env": [{"name": "KUBESTREAM_APP", "value": "x"}]}}, "driver.env[0].name"),
        ({"secretRefs": [{"env": "PW", "secretName": "s"}]}, "secretRefs[0].key"),
        (
            {"gracefulStopTimeoutSeconds": 1, "batchIntervalSeconds": 5},
            "gracefulStopTimeoutSeconds",
        ),
    ],
)
def test_bad_fields_are_named(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_spec(spec(**fields))
    assert err.value.field == field
    assert str(err.value).startswith(f"spec.{field}: ")
