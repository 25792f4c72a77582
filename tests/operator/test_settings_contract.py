"""The settings contract between the CRD, the operator and the runtime.

Fails when the operator writes a variable the pod's command does not read, when a
command reads a setting the operator neither sets nor deliberately leaves to the
runtime's default, when a CRD field is neither a setting nor the operator's own,
or when a field's bounds, type or default differ from the setting's declaration.
Pure: no cluster.
"""

import os
import shlex
from pathlib import Path
from typing import Any
from unittest import mock

import hypothesis
import pytest
import yaml
from hypothesis import strategies as st

from kubestream import settings
from kubestream.cli import COMMANDS, build_parser
from kubestream.settings import Reader, Setting, Values
from kubestream_operator import manifests as m
from kubestream_operator.spec import SpecError, parse_spec
from kubestream_operator.spec_fields import (
    DERIVED_SETTINGS,
    LEFT_TO_RUNTIME,
    OPERATOR_FIELDS,
    SPEC_SETTINGS,
)

REPO = Path(__file__).resolve().parents[2]
CRD = yaml.safe_load((REPO / "crds" / "streamingjob.yaml").read_text())
SPEC = CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string"}
JOB = m.JobRef(name="wc", namespace="team", uid="uid-1")
BASE: dict[str, Any] = {
    "image": "registry.example.com/team/wc:1.0",
    "application": {"module": "wc.app", "function": "build", "arguments": ["a b", "c"]},
}
EVERY_OPTION: dict[str, Any] = {
    **BASE,
    "configuration": {"topic": "clicks"},
    "checkpoint": {"intervalSeconds": 30},
    "reliability": {"writeAheadLog": True},
    "flowControl": {"backpressure": True, "maxRatePerReceiver": 5000, "blockIntervalSeconds": 0.05},
    "ui": {"readAccess": "token", "changeAccess": "token", "tls": {"secretName": "wc-tls"}},
}


def leaves(node: dict[str, Any], path: str = "") -> dict[str, dict[str, Any]]:
    """Every field of the schema below ``node`` that has no sub-fields, by dotted path."""
    found: dict[str, dict[str, Any]] = {}
    for name, child in (node.get("properties") or {}).items():
        where = f"{path}.{name}" if path else name
        found.update(leaves(child, where) if "properties" in child else {where: child})
    return found


FIELDS = leaves(SPEC)


def pods(spec: dict[str, Any]) -> dict[Reader, dict[str, Any]]:
    parsed = parse_spec(spec)
    return {
        Reader.DRIVER: m.build_driver_pod(JOB, parsed, "k"),
        Reader.EXECUTOR: m.build_executor_pod(JOB, parsed, 0, "k"),
    }


def runtime_values(pod: dict[str, Any], reader: Reader) -> Values:
    """What `kubestream` parses from the pod's command and plain variables, alone in
    its environment (valueFrom variables stand for themselves)."""
    container = pod["spec"]["containers"][0]
    environ = {e["name"]: e.get("value", "from-" + e["name"]) for e in container["env"]}
    with mock.patch.dict(os.environ, environ, clear=True):
        args = build_parser().parse_args(container["command"][1:])
        assert args.reader == reader
        return Values.parsed(args, settings.read_by(reader))


def test_every_crd_field_is_a_setting_or_the_operators_own() -> None:
    tables = [set(SPEC_SETTINGS), set(DERIVED_SETTINGS), set(OPERATOR_FIELDS)]
    for i, table in enumerate(tables):
        for other in tables[i + 1 :]:
            assert not table & other, f"fields in two tables: {table & other}"
    known = set().union(*tables)
    assert not set(FIELDS) - known, (
        f"CRD fields with no setting: {sorted(set(FIELDS) - known)}; map each to a setting "
        "in spec_fields.SPEC_SETTINGS/DERIVED_SETTINGS or list it in OPERATOR_FIELDS"
    )
    assert not known - set(FIELDS), f"no such CRD fields: {sorted(known - set(FIELDS))}"


@pytest.mark.parametrize("field", sorted(SPEC_SETTINGS))
def test_crd_type_bounds_and_default_are_the_settings(field: str) -> None:
    node, setting = FIELDS[field], SPEC_SETTINGS[field]
    assert node["type"] == JSON_TYPES[setting.kind]
    assert (node.get("minimum"), node.get("maximum")) == setting.bounds
    assert node.get("exclusiveMinimum", False) == setting.exclusive_minimum
    assert node.get("default") == setting.default


@pytest.mark.parametrize("reader", [Reader.DRIVER, Reader.EXECUTOR])
def test_operator_sets_what_each_pod_reads_and_nothing_else(reader: Reader) -> None:
    pod = pods(EVERY_OPTION)[reader]
    container = pod["spec"]["containers"][0]
    assert COMMANDS[container["command"][1]] == reader
    written = [e["name"] for e in container["env"] if e["name"].startswith(settings.ENV_PREFIX)]
    assert len(written) == len(set(written)), written
    reads = {s.env for s in settings.read_by(reader)}
    left = {s.env for s in LEFT_TO_RUNTIME[reader]}
    command = " ".join(container["command"])
    assert not set(written) - reads, f"`{command}` never reads {sorted(set(written) - reads)}"
    assert not set(written) & left, f"set yet listed as left to the runtime: {set(written) & left}"
    unset = reads - set(written) - left
    assert not unset, f"`{command}` reads {sorted(unset)}, which the operator never sets"


def test_optional_settings_are_left_unset_when_their_field_is() -> None:
    """Unset fields leave the runtime's own default (an empty value would not parse)."""
    for reader, pod in pods(BASE).items():
        values = runtime_values(pod, reader)
        for setting in SPEC_SETTINGS.values():
            if reader & setting.read_by:
                assert values[setting] == setting.default, setting.name


def _in_bounds(setting: Setting[Any]) -> st.SearchStrategy[Any]:
    if setting.kind is bool:
        return st.booleans()
    if setting.choices:
        return st.sampled_from(setting.choices)
    low, high = setting.bounds
    if setting.kind is int:
        return st.integers(int(low or 0), int(high or 2**31))
    return st.floats(low or 0, high or 1e6, allow_nan=False)


def _with(spec: dict[str, Any], field: str, value: Any) -> dict[str, Any]:
    result = {**spec}
    *parents, leaf = field.split(".")
    node = result
    for name in parents:
        node[name] = {**node.get(name, {})}
        node = node[name]
    node[leaf] = value
    return result


@hypothesis.settings(max_examples=60, deadline=None)
@hypothesis.given(data=st.data())
def test_every_spec_setting_reaches_the_runtime_unchanged(data: st.DataObject) -> None:
    """Any in-bounds value of a field is what the pod's command parses from the pod."""
    spec = {**BASE, "gracefulStopTimeoutSeconds": 3600}
    interval = data.draw(_in_bounds(settings.BATCH_INTERVAL), "batchIntervalSeconds")
    spec["batchIntervalSeconds"] = interval
    drawn: dict[str, Any] = {"batchIntervalSeconds": interval}
    for field, setting in SPEC_SETTINGS.items():
        if field == "batchIntervalSeconds":
            continue
        value = data.draw(_in_bounds(setting), field)
        if field == "checkpoint.intervalSeconds":
            value = max(value, interval)  # the spec asks for at least one batch
        spec, drawn[field] = _with(spec, field, value), value
    for reader, pod in pods(spec).items():
        values = runtime_values(pod, reader)
        for field, setting in SPEC_SETTINGS.items():
            if reader & setting.read_by:
                assert values[setting] == drawn[field], (reader, field)


@pytest.mark.parametrize("field", sorted(SPEC_SETTINGS))
def test_operator_and_runtime_refuse_the_same_values(field: str) -> None:
    setting = SPEC_SETTINGS[field]
    low, high = setting.bounds
    outside = [v for v in (low if low is None else low - 1, high if high is None else high + 1)]
    for value in (setting.kind(v) for v in outside if v is not None):
        with pytest.raises(SpecError, match=field.replace(".", r"\.")):
            parse_spec(_with(BASE, field, value))
        with pytest.raises(ValueError, match="must be"):
            setting.parse(setting.format(value))


def test_derived_settings_reach_the_driver() -> None:
    driver = pods(EVERY_OPTION)[Reader.DRIVER]
    values = runtime_values(driver, Reader.DRIVER)
    assert values[settings.APP] == "wc.app:build"
    assert shlex.split(values[settings.APP_ARGS] or "") == ["a b", "c"]
    assert values[settings.CONFIG] == m.CONFIG_PATH
    config = m.build_config_map(JOB, parse_spec(EVERY_OPTION))
    assert config["data"] == {"topic": "clicks"}
    mounts = driver["spec"]["containers"][0]["volumeMounts"]
    assert {"name": "config", "mountPath": m.CONFIG_PATH, "readOnly": True} in mounts
    assert values[settings.GRACEFUL_TIMEOUT] == m.graceful_timeout(parse_spec(EVERY_OPTION))


def test_executors_get_no_configuration_volume() -> None:
    executor = pods(EVERY_OPTION)[Reader.EXECUTOR]
    assert all(v["name"] != "config" for v in executor["spec"]["volumes"])


def test_secret_settings_reach_pods_only_by_reference() -> None:
    secrets = {s.env for s in settings.RUNTIME if s.secret}
    assert secrets
    for pod in pods(EVERY_OPTION).values():
        for var in pod["spec"]["containers"][0]["env"]:
            if var["name"] in secrets:
                assert set(var) == {"name", "valueFrom"}, var
    with pytest.raises(ValueError, match="KUBESTREAM_CURVE_SECRET_KEY is secret"):
        m.setting_env([(settings.CURVE_SECRET_KEY, "S" * 40)])
