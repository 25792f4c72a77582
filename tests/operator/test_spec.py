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
    assert s.checkpoint.interval_seconds is None
    assert not s.reliability.write_ahead_log
    assert not s.flow_control.backpressure
    assert s.flow_control.max_rate_per_receiver is None


def test_reliability_flow_control_and_checkpoint_interval_are_read() -> None:
    s = parse_spec(
        spec(
            checkpoint={"intervalSeconds": 30},
            reliability={"writeAheadLog": True},
            flowControl={"backpressure": True, "maxRatePerReceiver": 5000},
        )
    )
    assert s.checkpoint.interval_seconds == 30.0
    assert s.reliability.write_ahead_log
    assert s.flow_control.backpressure
    assert s.flow_control.max_rate_per_receiver == 5000


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
        ({"autoscaling": {"mode": "Sometimes"}}, "autoscaling.mode"),
        ({"autoscaling": {"targetUtilization": 0.9}}, "autoscaling.targetUtilization"),
        ({"autoscaling": {"catchUpSeconds": 1}}, "autoscaling.catchUpSeconds"),
        ({"autoscaling": {"maxStepPercent": -1}}, "autoscaling.maxStepPercent"),
        (
            {"checkpoint": {"existingClaim": "c", "storageClassName": "s"}},
            "checkpoint.storageClassName",
        ),
        ({"checkpoint": {"intervalSeconds": 0}}, "checkpoint.intervalSeconds"),
        (
            {"checkpoint": {"intervalSeconds": 2}, "batchIntervalSeconds": 5},
            "checkpoint.intervalSeconds",
        ),
        ({"reliability": {"writeAheadLog": "yes"}}, "reliability.writeAheadLog"),
        ({"flowControl": {"backpressure": 1}}, "flowControl.backpressure"),
        ({"flowControl": {"maxRatePerReceiver": 0}}, "flowControl.maxRatePerReceiver"),
        ({"flowControl": {"maxRatePerReceiver": 2.5}}, "flowControl.maxRatePerReceiver"),
        ({"restartPolicy": {"type": "Sometimes"}}, "restartPolicy.type"),
        (
            {"restartPolicy": {"backoffSeconds": 60, "maxBackoffSeconds": 10}},
            "restartPolicy.backoffSeconds",
        ),
        ({"driver": {"env": [{"name": "KUBESTREAM_APP", "value": "x"}]}}, "driver.env[0].name"),
        ({"secretRefs": [{"env": "PW", "secretName": "s"}]}, "secretRefs[0].key"),
        ({"secretMounts": [{"mountPath": "/s"}]}, "secretMounts[0].secretName"),
        ({"secretMounts": [{"secretName": "s"}]}, "secretMounts[0].mountPath"),
        (
            {"secretMounts": [{"secretName": "Kafka_TLS", "mountPath": "/s"}]},
            "secretMounts[0].secretName",
        ),
        ({"secretMounts": [{"secretName": "s", "mountPath": "s"}]}, "secretMounts[0].mountPath"),
        (
            {"secretMounts": [{"secretName": "s", "mountPath": "/a/../tmp"}]},
            "secretMounts[0].mountPath",
        ),
        (
            {"secretMounts": [{"secretName": "s", "mountPath": "/checkpoint/s"}]},
            "secretMounts[0].mountPath",
        ),
        ({"secretMounts": [{"secretName": "s", "mountPath": "/etc"}]}, "secretMounts[0].mountPath"),
        (
            {
                "secretMounts": [
                    {"secretName": "a", "mountPath": "/var/run/secrets/a"},
                    {"secretName": "b", "mountPath": "/var/run/secrets/a"},
                ]
            },
            "secretMounts[1].mountPath",
        ),
        (
            {
                "secretMounts": [
                    {"secretName": "s", "mountPath": "/s", "items": [{"key": "k", "path": "../k"}]}
                ]
            },
            "secretMounts[0].items[0].path",
        ),
        ({"executors": {"kafkaConsumerPoolSize": 0}}, "executors.kafkaConsumerPoolSize"),
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


def test_autoscaling_target_defaults_to_0_7_inside_the_band_else_its_middle() -> None:
    assert parse_spec(spec()).autoscaling.target_utilization == 0.7
    narrow = {"scaleUpThreshold": 0.6, "scaleDownThreshold": 0.2}
    assert parse_spec(spec(autoscaling=narrow)).autoscaling.target_utilization == 0.4


def test_secret_mounts_keep_their_paths_and_chosen_keys() -> None:
    parsed = parse_spec(
        spec(
            secretMounts=[
                {"secretName": "kafka-tls", "mountPath": "/var/run/secrets/kafka-tls"},
                {"secretName": "cassandra", "mountPath": "/etc/cassandra-auth",
                 "items": [{"key": "ca.crt", "path": "ca/ca.pem"}, {"key": "password"}]},
            ]
        )
    )  # fmt: skip
    first, second = parsed.secret_mounts
    assert (first.secret_name, first.mount_path, first.items) == (
        "kafka-tls",
        "/var/run/secrets/kafka-tls",
        (),
    )
    assert second.items == (("ca.crt", "ca/ca.pem"), ("password", "password"))
