"""Manifest builders: ownership, configuration by env, no key material in pods."""

import json
import os
import shlex
from dataclasses import replace
from typing import Any

import hypothesis
import pytest
from hypothesis import strategies as st

from kubestream.cli import build_parser
from kubestream.driver.api_auth import read_token
from kubestream_operator import manifests as m
from kubestream_operator.spec import JobSpec, SpecError, parse_spec

JOB = m.JobRef(name="wc", namespace="team", uid="uid-1")


def spec(**fields: Any) -> JobSpec:
    base: dict[str, Any] = {
        "image": "registry.example.com/team/wc:1.0",
        "application": {"module": "wc.app", "function": "build", "arguments": ["a b", "c"]},
        "secretRefs": [{"env": "KAFKA_PASSWORD", "secretName": "kafka", "key": "password"}],
    }
    base.update(fields)
    return parse_spec(base)


def env_of(pod: dict[str, Any]) -> dict[str, Any]:
    return {
        e["name"]: e.get("value", e.get("valueFrom")) for e in pod["spec"]["containers"][0]["env"]
    }


def test_every_child_is_owned_by_the_job() -> None:
    s = spec()
    children = [
        m.build_secret(JOB, "p" * 40, "s" * 40),
        m.build_service_account(JOB),
        m.build_config_map(JOB, s),
        m.build_service(JOB),
        m.build_network_policy(JOB),
        m.build_driver_pod(JOB, s, "keys-1"),
        m.build_executor_pod(JOB, s, 0, "keys-1"),
    ]
    for child in children:
        assert child["metadata"]["ownerReferences"] == [m.owner_reference(JOB)]
        assert child["metadata"]["namespace"] == "team"


def test_network_policy_admits_only_own_pods_to_zeromq_ports() -> None:
    spec = m.build_network_policy(JOB, ("kubestream-system", "monitoring"))["spec"]
    assert spec["podSelector"] == {"matchLabels": {m.JOB_LABEL: "wc"}}
    zmq_rule, ui_rule = spec["ingress"]
    assert zmq_rule["from"] == [{"podSelector": {"matchLabels": {m.JOB_LABEL: "wc"}}}]
    assert zmq_rule["ports"] == [
        {"protocol": "TCP", "port": 7077},
        {"protocol": "TCP", "port": 7078},
    ]
    by_name = "kubernetes.io/metadata.name"
    assert ui_rule == {
        "from": [
            {"namespaceSelector": {"matchLabels": {by_name: "kubestream-system"}}},
            {"namespaceSelector": {"matchLabels": {by_name: "monitoring"}}},
        ],
        "ports": [{"protocol": "TCP", "port": 4040}],
    }


def test_network_policy_without_ui_namespaces_admits_no_pod_to_the_ui_port() -> None:
    """No rule names 4040 then: only `kubectl port-forward` (through the kubelet) gets in."""
    rules = m.build_network_policy(JOB)["spec"]["ingress"]
    assert all(port["port"] != 4040 for rule in rules for port in rule["ports"])


def test_driver_pod_mounts_the_tls_secret_and_probes_healthz_over_https() -> None:
    pod = m.build_driver_pod(JOB, spec(ui={"tls": {"secretName": "wc-tls"}}), "k")
    container = pod["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["KUBESTREAM_UI_TLS_CERT"] == f"{m.TLS_PATH}/tls.crt"
    assert env["KUBESTREAM_UI_TLS_KEY"] == f"{m.TLS_PATH}/tls.key"
    assert {"name": "tls", "secret": {"secretName": "wc-tls"}} in pod["spec"]["volumes"]
    assert container["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"


def test_the_operators_certificate_comes_from_the_jobs_secret_without_its_keys() -> None:
    """``tls: {}``: HTTPS with the operator's certificate: only tls.crt and tls.key of the
    job's Secret are mounted (no CURVE key as a file), without subPath (renewals reach it)."""
    pod = m.build_driver_pod(JOB, spec(ui={"tls": {}}), "k")
    container = pod["spec"]["containers"][0]
    env = env_of(pod)
    assert env["KUBESTREAM_UI_TLS_CERT"] == f"{m.TLS_PATH}/tls.crt"
    assert env["KUBESTREAM_UI_TLS_KEY"] == f"{m.TLS_PATH}/tls.key"
    items = [{"key": "tls.crt", "path": "tls.crt"}, {"key": "tls.key", "path": "tls.key"}]
    volume = {"name": "tls", "secret": {"secretName": m.secret_name(JOB), "items": items}}
    assert volume in pod["spec"]["volumes"]
    assert all("subPath" not in mount for mount in container["volumeMounts"])
    assert container["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    plain = m.build_driver_pod(JOB, spec(), "k")
    assert "KUBESTREAM_UI_TLS_CERT" not in env_of(plain)
    assert all(v["name"] != "tls" for v in plain["spec"]["volumes"])


def test_operator_tls_changes_the_pods_but_not_the_hash_of_jobs_without_it() -> None:
    """The hashes of jobs with other ui settings are those computed before operator TLS."""
    assert m.spec_hash(spec(ui={"tls": {}})) != m.spec_hash(spec())
    assert m.spec_hash(spec(ui={"readAccess": "token"})) == "4b8d023c137d8a70"
    assert m.spec_hash(spec(ui={"tls": {"secretName": "x"}})) == "54302437f68f68bf"


def test_every_pod_reads_the_read_permission_and_the_scrape_token_file_alike() -> None:
    """The scrape token and the token generation come as files of the job's Secret (those
    keys only; optional), which the kubelet updates on rotation, never as variables fixed
    at start."""
    s = spec(ui={"readAccess": "token"})
    for pod in (m.build_driver_pod(JOB, s, "k"), m.build_executor_pod(JOB, s, 0, "k")):
        env = env_of(pod)
        assert env["KUBESTREAM_UI_READ_ACCESS"] == "token"
        assert env["KUBESTREAM_UI_SCRAPE_TOKEN_FILE"] == f"{m.ACCESS_PATH}/ui-scrape-token"
        assert "KUBESTREAM_UI_SCRAPE_TOKEN" not in env
        generation_file = f"{m.ACCESS_PATH}/ui-token-generation"
        assert env["KUBESTREAM_UI_TOKEN_GENERATION_FILE"] == generation_file
        items = [
            {"key": "ui-scrape-token", "path": "ui-scrape-token"},
            {"key": "ui-token-generation", "path": "ui-token-generation"},
        ]
        volume = {"secretName": "wc-curve", "items": items, "optional": True}
        assert {"name": "access", "secret": volume} in pod["spec"]["volumes"]
        mount = {"name": "access", "mountPath": m.ACCESS_PATH, "readOnly": True}
        assert mount in pod["spec"]["containers"][0]["volumeMounts"]


def test_the_secret_carries_the_read_token_the_driver_derives() -> None:
    secret = m.build_secret(JOB, "P" * 40, "S" * 40, "scrape")["stringData"]
    assert secret[m.READ_TOKEN_KEY] == read_token("S" * 40)
    assert secret[m.SCRAPE_TOKEN_KEY] == "scrape"
    assert m.SCRAPE_TOKEN_KEY not in m.build_secret(JOB, "P" * 40, "S" * 40)["stringData"]
    assert secret[m.TOKEN_GENERATION_KEY] == "0"
    assert "annotations" not in m.build_secret(JOB, "P" * 40, "S" * 40)["metadata"]
    made = m.build_secret(JOB, "P" * 40, "S" * 40, rotated_for="asked")["metadata"]
    assert made["annotations"] == {m.ROTATE_UI_TOKENS_ANNOTATION: "asked"}


def test_a_token_generations_data_holds_that_generations_read_token() -> None:
    assert m.ui_token_data("S" * 40, 7) == {
        m.TOKEN_GENERATION_KEY: "7",
        m.READ_TOKEN_KEY: read_token("S" * 40, 7),
    }
    assert read_token("S" * 40, 7) != read_token("S" * 40, 6)


def test_claim_is_owned_only_when_not_retained() -> None:
    assert "ownerReferences" not in m.build_claim(JOB, spec())["metadata"]
    dropped = spec(checkpoint={"retainOnDelete": False, "size": "5Gi", "storageClassName": "fast"})
    claim = m.build_claim(JOB, dropped)
    assert claim["metadata"]["ownerReferences"] == [m.owner_reference(JOB)]
    assert claim["spec"]["storageClassName"] == "fast"
    assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"


def test_driver_pod_is_configured_by_the_runtime_env_vars() -> None:
    pod = m.build_driver_pod(JOB, spec(), "keys-1")
    env = env_of(pod)
    assert pod["spec"]["containers"][0]["command"] == ["kubestream", "driver"]
    assert env["KUBESTREAM_APP"] == "wc.app:build"
    assert shlex.split(env["KUBESTREAM_APP_ARGS"]) == ["a b", "c"]
    assert env["KUBESTREAM_BATCH_INTERVAL"] == "1"
    assert env["KUBESTREAM_CHECKPOINT"] == m.CHECKPOINT_PATH
    assert env["KUBESTREAM_UI_PORT"] == "4040"
    assert env["KUBESTREAM_CURVE_SECRET_KEY"] == {
        "secretKeyRef": {"name": "wc-curve", "key": m.SECRET_KEY}
    }
    assert env["KAFKA_PASSWORD"] == {"secretKeyRef": {"name": "kafka", "key": "password"}}


RELIABLE = {
    "checkpoint": {"intervalSeconds": 30},
    "reliability": {"writeAheadLog": True},
    "flowControl": {"backpressure": True, "maxRatePerReceiver": 5000},
}


def test_reliability_flow_control_and_checkpoint_interval_reach_the_driver_only() -> None:
    env = env_of(m.build_driver_pod(JOB, spec(**RELIABLE), "k"))
    assert env["KUBESTREAM_WRITE_AHEAD_LOG"] == "true"
    assert env["KUBESTREAM_BACKPRESSURE"] == "true"
    assert env["KUBESTREAM_MAX_RATE"] == "5000"
    assert env["KUBESTREAM_CHECKPOINT_INTERVAL"] == "30"
    defaults = env_of(m.build_driver_pod(JOB, spec(), "k"))
    assert defaults["KUBESTREAM_WRITE_AHEAD_LOG"] == defaults["KUBESTREAM_BACKPRESSURE"] == "false"
    assert "KUBESTREAM_MAX_RATE" not in defaults
    assert "KUBESTREAM_CHECKPOINT_INTERVAL" not in defaults
    executor = env_of(m.build_executor_pod(JOB, spec(**RELIABLE), 0, "k"))
    assert not {"KUBESTREAM_WRITE_AHEAD_LOG", "KUBESTREAM_MAX_RATE"} & set(executor)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, (None, False, False, None)),
        (RELIABLE, (30.0, True, True, 5000.0)),
    ],
)
def test_kubestream_driver_reads_its_settings_from_the_pod_env(
    monkeypatch: pytest.MonkeyPatch, fields: dict[str, Any], expected: tuple[Any, ...]
) -> None:
    """The names and values the operator writes are the ones the runtime's flags read."""
    pod = m.build_driver_pod(JOB, spec(**fields), "k")
    container = pod["spec"]["containers"][0]
    for name in [n for n in os.environ if n.startswith("KUBESTREAM_")]:
        monkeypatch.delenv(name)
    for var in container["env"]:
        if "value" in var:
            monkeypatch.setenv(var["name"], var["value"])
    args = build_parser().parse_args(container["command"][1:])
    assert args.checkpoint == m.CHECKPOINT_PATH
    got = (args.checkpoint_interval, args.write_ahead_log, args.backpressure, args.max_rate)
    assert got == expected


def test_executor_pod_knows_its_id_and_the_driver_address() -> None:
    pod = m.build_executor_pod(JOB, spec(), 3, "keys-1")
    env = env_of(pod)
    assert pod["metadata"]["name"] == "wc-executor-3"
    assert pod["metadata"]["labels"][m.EXECUTOR_ID_LABEL] == "3"
    assert pod["metadata"]["annotations"][m.KEYS_ANNOTATION] == "keys-1"
    assert env["KUBESTREAM_EXECUTOR_ID"] == "3"
    assert env["KUBESTREAM_DRIVER_HOST"] == "wc-driver.team.svc"
    assert env["KUBESTREAM_DRIVER_PORT"] == "7077"
    assert env["KUBESTREAM_BLOCK_PORT"] == "7078"
    assert env["KUBESTREAM_ADVERTISE_HOST"] == {"fieldRef": {"fieldPath": "status.podIP"}}


def test_driver_and_executors_share_the_checkpoint_claim() -> None:
    """Executors write the receivers' write-ahead log there and read a directory source on it."""
    for s, claim in ((spec(), "wc-checkpoint"), (spec(checkpoint={"existingClaim": "c"}), "c")):
        for pod in (m.build_driver_pod(JOB, s, "k"), m.build_executor_pod(JOB, s, 0, "k")):
            claims = [v for v in pod["spec"]["volumes"] if "persistentVolumeClaim" in v]
            assert claims == [{"name": "checkpoint", "persistentVolumeClaim": {"claimName": claim}}]
            mounts = pod["spec"]["containers"][0]["volumeMounts"]
            assert {"name": "checkpoint", "mountPath": m.CHECKPOINT_PATH} in mounts


def test_driver_finishes_its_graceful_stop_before_the_grace_period_ends() -> None:
    """The kubelet kills at the end of the grace period; the final checkpoint comes after
    the driver's own deadline, so that deadline must come first."""
    for grace, deadline in ((60, 55.0), (10, 8.0), (1, 0.8)):
        pod = m.build_driver_pod(JOB, replace(spec(), graceful_stop_seconds=grace), "k")
        assert pod["spec"]["terminationGracePeriodSeconds"] == grace
        assert float(env_of(pod)["KUBESTREAM_GRACEFUL_TIMEOUT"]) == deadline


def test_readiness_is_asked_over_http_not_on_the_curve_ports() -> None:
    """A bare TCP probe of a CURVE port fails the handshake and logs a warning every period."""
    pods = (m.build_driver_pod(JOB, spec(), "k"), m.build_executor_pod(JOB, spec(), 0, "k"))
    for pod in pods:
        container = pod["spec"]["containers"][0]
        probe = container["readinessProbe"]
        assert probe["httpGet"]["port"] == "ui"
        # /metrics may need the read token, on every pod; /healthz never does.
        assert probe["httpGet"]["path"] == "/healthz"
        assert {"name": "ui", "containerPort": m.UI_PORT} in container["ports"]


def test_pods_are_locked_down_and_carry_no_key_material() -> None:
    public, secret = "P" * 40, "S" * 40
    for pod in (
        m.build_driver_pod(JOB, spec(), "keys-1"),
        m.build_executor_pod(JOB, spec(), 0, "keys-1"),
    ):
        text = json.dumps(pod)
        assert public not in text
        assert secret not in text
        pod_spec = pod["spec"]
        assert pod_spec["automountServiceAccountToken"] is False
        assert pod_spec["serviceAccountName"] == "wc-job"
        assert pod_spec["securityContext"]["runAsNonRoot"] is True
        ctx = pod_spec["containers"][0]["securityContext"]
        assert ctx == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        }
    assert m.build_service_account(JOB)["automountServiceAccountToken"] is False


def test_spec_hash_changes_with_what_a_pod_is_not_with_how_many() -> None:
    base = spec()
    assert m.spec_hash(base) == m.spec_hash(replace(base, replicas=5, suspend=True))
    assert m.spec_hash(base) != m.spec_hash(replace(base, image="other:2"))
    assert m.spec_hash(base) != m.spec_hash(replace(base, configuration={"k": "v"}))
    for fields in (
        {"checkpoint": {"intervalSeconds": 30}},
        {"reliability": {"writeAheadLog": True}},
        {"flowControl": {"backpressure": True}},
        {"flowControl": {"maxRatePerReceiver": 100}},
    ):
        assert m.spec_hash(spec(**fields)) != m.spec_hash(base), fields


def test_spec_hash_of_an_unchanged_job_survives_an_operator_upgrade() -> None:
    """Fields added since 0.1.0 count only once set: a job that sets none keeps the hash
    its pods were started with (this value, computed before they existed), so an
    upgrade restarts nothing."""
    assert m.spec_hash(spec()) == "f422bfaf45915d6d"


def test_user_settings_reach_the_pod() -> None:
    s = spec(
        executors={
            "replicas": 1,
            "min": 1,
            "max": 2,
            "resources": {"requests": {"cpu": "1"}},
            "env": [{"name": "LOG_LEVEL", "value": "debug"}],
            "nodeSelector": {"pool": "stream"},
            "tolerations": [{"key": "dedicated", "operator": "Exists"}],
        }
    )
    pod = m.build_executor_pod(JOB, s, 0, "keys-1")
    assert pod["spec"]["containers"][0]["resources"] == {"requests": {"cpu": "1"}}
    assert env_of(pod)["LOG_LEVEL"] == "debug"
    assert pod["spec"]["nodeSelector"] == {"pool": "stream"}
    assert pod["spec"]["tolerations"] == [{"key": "dedicated", "operator": "Exists"}]
    assert "nodeSelector" not in m.build_driver_pod(JOB, s, "keys-1")["spec"]


SEGMENT = st.sampled_from(["tmp", "checkpoint", "etc", "kubestream", "config", "tls", "var", "s"])


@hypothesis.given(st.lists(SEGMENT, min_size=1, max_size=4))
def test_an_accepted_secret_mount_never_hides_or_lies_in_a_directory_the_pod_uses(
    segments: list[str],
) -> None:
    """Checked against the pods as built (with every optional mount), not against the
    operator's list of reserved paths."""
    path = "/" + "/".join(segments)
    try:
        parsed = spec(secretMounts=[{"secretName": "s", "mountPath": path}])
    except SpecError as e:
        assert e.field == "secretMounts[0].mountPath"
        clean = spec(ui={"tls": {"secretName": "ui-tls"}})
        own = {
            mount["mountPath"]
            for pod in (
                m.build_driver_pod(JOB, clean, "k"),
                m.build_executor_pod(JOB, clean, 0, "k"),
            )
            for mount in pod["spec"]["containers"][0]["volumeMounts"]
        }
        # Refused: it overlaps a mount, or lies in the operator's own directory of them.
        own.add(os.path.commonpath([m.CONFIG_PATH, m.TLS_PATH]))
        assert any(o == path or o.startswith(path + "/") or path.startswith(o + "/") for o in own)
        return
    parsed = replace(parsed, ui=replace(parsed.ui, tls_secret="ui-tls"))
    for pod in (m.build_driver_pod(JOB, parsed, "k"), m.build_executor_pod(JOB, parsed, 0, "k")):
        others = [
            mount["mountPath"]
            for mount in pod["spec"]["containers"][0]["volumeMounts"]
            if mount["mountPath"] != path
        ]
        for other in others:
            assert not (path.startswith(other + "/") or other.startswith(path + "/")), other


def test_secret_mounts_reach_driver_and_executors_read_only_by_reference() -> None:
    s = spec(
        secretMounts=[
            {"secretName": "kafka-tls", "mountPath": "/etc/kafka-tls"},
            {
                "secretName": "cassandra",
                "mountPath": "/var/run/secrets/cassandra",
                "items": [{"key": "ca.crt", "path": "ca.pem"}],
            },
        ]
    )
    for pod in (m.build_driver_pod(JOB, s, "k"), m.build_executor_pod(JOB, s, 3, "k")):
        volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
        mounts = {v["mountPath"]: v for v in pod["spec"]["containers"][0]["volumeMounts"]}
        tls = mounts["/etc/kafka-tls"]
        assert tls["readOnly"] is True
        assert volumes[tls["name"]]["secret"] == {"secretName": "kafka-tls", "defaultMode": 0o440}
        cassandra = mounts["/var/run/secrets/cassandra"]
        assert cassandra["readOnly"] is True
        assert volumes[cassandra["name"]]["secret"]["items"] == [
            {"key": "ca.crt", "path": "ca.pem"}
        ]
    assert m.spec_hash(s) != m.spec_hash(spec())


def test_the_kafka_consumer_pool_size_reaches_executors_only() -> None:
    s = spec(executors={"kafkaConsumerPoolSize": 200})
    assert (
        env_of(m.build_executor_pod(JOB, s, 0, "k"))["KUBESTREAM_KAFKA_CONSUMER_POOL_SIZE"] == "200"
    )
    assert "KUBESTREAM_KAFKA_CONSUMER_POOL_SIZE" not in env_of(m.build_driver_pod(JOB, s, "k"))
    assert m.spec_hash(s) != m.spec_hash(spec())
    assert m.spec_hash(spec(executors={"kafkaConsumerPoolSize": 64})) == m.spec_hash(spec())
