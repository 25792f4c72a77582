"""Every job name the CRD admits gives children names and labels Kubernetes accepts.

The rule lives twice: in the CRD (what ``kubectl apply`` refuses) and in
``names`` (what the operator checks for jobs admitted before the rule). These
tests hold the two together and prove the rule is enough, over generated names.
"""

import re
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubestream_operator import manifests as m
from kubestream_operator import names
from kubestream_operator.spec import parse_spec

REPO = Path(__file__).resolve().parents[2]
SCHEMA = yaml.safe_load((REPO / "crds" / "streamingjob.yaml").read_text())["spec"]["versions"][0][
    "schema"
]["openAPIV3Schema"]
(NAME_RULE,) = SCHEMA["x-kubernetes-validations"]
# The CEL rule is `self.metadata.name.size() <= N && self.metadata.name.matches('PATTERN')`.
CRD_LIMIT = int(re.search(r"size\(\) <= (\d+)", NAME_RULE["rule"]).group(1))  # type: ignore[union-attr]
CRD_PATTERN = re.search(r"matches\('(.*)'\)", NAME_RULE["rule"]).group(1)  # type: ignore[union-attr]

SPEC = parse_spec(
    {
        "image": "registry.example.com/team/wc:1.0",
        "application": {"module": "wc", "function": "build"},
        "secretRefs": [{"env": "PASSWORD", "secretName": "kafka", "key": "password"}],
    }
)


def crd_admits(name: str) -> bool:
    return len(name) <= CRD_LIMIT and re.search(CRD_PATTERN, name) is not None


admitted = st.from_regex(CRD_PATTERN, fullmatch=True).filter(lambda n: len(n) <= CRD_LIMIT)
# Names the API server itself lets through as an object name (a DNS-1123
# subdomain, up to 253 characters) and more: dots, digits first, capitals, '_'.
any_name = st.text(alphabet="abcxyz0129-._AZ", min_size=1, max_size=120)
# Correctness, not speed: a loaded CI machine must not fail these on time.
relaxed = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


def children(job: m.JobRef) -> list[m.Manifest]:
    return [
        m.build_secret(job, "public", "secret"),
        m.build_service_account(job),
        m.build_config_map(job, SPEC),
        m.build_service(job),
        m.build_network_policy(job),
        m.build_claim(job, SPEC),
        m.build_driver_pod(job, SPEC, "keys-uid"),
        m.build_executor_pod(job, SPEC, 0, "keys-uid"),
        m.build_executor_pod(job, SPEC, 10**9, "keys-uid"),
    ]


def label_values(manifest: m.Manifest) -> list[str]:
    """Every label value a child carries or selects on."""
    spec: dict[str, Any] = manifest.get("spec") or {}
    found = list(manifest["metadata"]["labels"].values())
    found += list((spec.get("selector") or {}).values())
    found += list(((spec.get("podSelector") or {}).get("matchLabels") or {}).values())
    for rule in spec.get("ingress") or []:
        for peer in rule.get("from") or []:
            found += list(peer["podSelector"]["matchLabels"].values())
    return found


def test_the_crd_states_the_operators_rule_and_limit() -> None:
    assert CRD_LIMIT == names.MAX_JOB_NAME_LENGTH
    assert f"^{names.DNS1035_LABEL}$" == CRD_PATTERN
    assert NAME_RULE["message"] == names.JOB_NAME_RULE
    assert NAME_RULE["fieldPath"] == ".metadata.name"


@relaxed
@given(admitted, st.integers(min_value=0, max_value=10**9))
def test_every_admitted_name_gives_valid_child_names_and_labels(name: str, eid: int) -> None:
    assert names.job_name_problem(name) is None
    job = m.JobRef(name=name, namespace="team", uid="uid-1")
    assert names.is_dns1035_label(m.service_name(job))
    for child in [*children(job), m.build_executor_pod(job, SPEC, eid, "keys-uid")]:
        assert names.is_dns1123_subdomain(child["metadata"]["name"]), child["kind"]
        for value in label_values(child):
            assert names.is_label_value(value), (child["kind"], value)
    assert names.is_dns1123_subdomain(m.claim_name(job, SPEC))
    for term in m.executor_selector(job).split(","):
        assert names.is_label_value(term.split("=", 1)[1])


@relaxed
@given(any_name)
def test_the_operator_and_the_crd_refuse_the_same_names(name: str) -> None:
    problem = names.job_name_problem(name)
    assert (problem is None) == crd_admits(name)
    if problem is not None:
        assert problem.startswith(names.JOB_NAME_RULE)
        assert repr(name) in problem


def test_the_limit_is_the_longest_name_whose_driver_service_is_valid() -> None:
    longest = "a" * names.MAX_JOB_NAME_LENGTH
    assert names.is_dns1035_label(m.service_name(m.JobRef(longest, "team", "u")))
    assert not names.is_dns1035_label(m.service_name(m.JobRef(longest + "a", "team", "u")))
    for refused in (longest + "a", "job.v2", "1st-job", "job-", "Job", "job_1"):
        assert names.job_name_problem(refused) is not None, refused
