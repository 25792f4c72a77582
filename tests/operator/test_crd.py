"""The CRD file teaches every field and agrees with the operator's defaults."""

from pathlib import Path
from typing import Any

import yaml

from kubestream_operator.spec import parse_spec

REPO = Path(__file__).resolve().parents[2]
CRD = yaml.safe_load((REPO / "crds" / "streamingjob.yaml").read_text())
SCHEMA = CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def undescribed(node: dict[str, Any], path: str) -> list[str]:
    missing = []
    for name, child in (node.get("properties") or {}).items():
        where = f"{path}.{name}"
        if name not in ("apiVersion", "kind", "metadata") and not child.get("description"):
            missing.append(where)
        missing += undescribed(child, where)
        if isinstance(child.get("items"), dict):
            missing += undescribed(child["items"], f"{where}[]")
    return missing


def test_every_field_has_a_description() -> None:
    assert undescribed(SCHEMA, "") == []


def test_schema_defaults_equal_the_operators_defaults() -> None:
    spec = SCHEMA["properties"]["spec"]["properties"]
    parsed = parse_spec({"image": "app:1", "application": {"module": "app", "function": "build"}})
    executors = spec["executors"]["properties"]
    assert parsed.replicas == executors["replicas"]["default"]
    assert parsed.min_executors == executors["min"]["default"]
    assert parsed.max_executors == executors["max"]["default"]
    assert parsed.batch_interval == spec["batchIntervalSeconds"]["default"]
    assert parsed.graceful_stop_seconds == spec["gracefulStopTimeoutSeconds"]["default"]
    restart = spec["restartPolicy"]["properties"]
    assert parsed.restart.type == restart["type"]["default"]
    assert parsed.restart.limit == restart["limit"]["default"]
    assert parsed.restart.backoff_seconds == restart["backoffSeconds"]["default"]
    autoscaling = spec["autoscaling"]["properties"]
    assert parsed.autoscaling.scale_up_threshold == autoscaling["scaleUpThreshold"]["default"]
    assert parsed.autoscaling.max_step == autoscaling["maxStep"]["default"]
    assert parsed.autoscaling.max_step_percent == autoscaling["maxStepPercent"]["default"]
    assert parsed.autoscaling.catch_up_seconds == autoscaling["catchUpSeconds"]["default"]
    assert parsed.autoscaling.mode == autoscaling["mode"]["default"]
    reliability = spec["reliability"]["properties"]
    assert parsed.reliability.write_ahead_log == reliability["writeAheadLog"]["default"]
    flow = spec["flowControl"]["properties"]
    assert parsed.flow_control.backpressure == flow["backpressure"]["default"]
    assert "default" not in flow["maxRatePerReceiver"]
    assert "default" not in spec["checkpoint"]["properties"]["intervalSeconds"]


def test_examples_parse_as_specs() -> None:
    for path in sorted((REPO / "examples").glob("*-job.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            parse_spec(doc["spec"])
