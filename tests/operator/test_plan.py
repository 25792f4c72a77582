"""The reconcile decisions, driven pass by pass over an in-memory world.

``World`` keeps what the API server would (children, pods, status) and applies
each plan the way ``reconcile`` does; tests play the kubelet by setting pod
phases and move time by hand. No cluster, no sleeping.
"""

import itertools
from dataclasses import replace
from typing import Any

import pytest

from kubestream_operator import manifests as m
from kubestream_operator.certificates import LIFETIME, Validity
from kubestream_operator.plan import (
    CLAIM,
    CONFIG_MAP,
    NETWORK_POLICY,
    SECRET,
    SERVICE,
    SERVICE_ACCOUNT,
    DriverReport,
    Observed,
    Plan,
    PodState,
    TokenRotation,
    plan,
    plan_stop,
    read_status,
)
from kubestream_operator.spec import SpecError, parse_spec

JOB = m.JobRef(name="wc", namespace="team", uid="uid-1")
LIFE = LIFETIME.total_seconds()
_uids = itertools.count(1)


def spec_dict(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "image": "registry.example.com/team/wc:1.0",
        "application": {"module": "wc", "function": "build"},
        "executors": {"replicas": 2, "min": 1, "max": 4},
        "restartPolicy": {"backoffSeconds": 10, "maxBackoffSeconds": 300, "limit": 2},
        "gracefulStopTimeoutSeconds": 30,
    }
    base.update(fields)
    return base


class World:
    """An API server's memory of one job, updated by applying plans."""

    def __init__(self, **fields: Any) -> None:
        self.raw_spec = spec_dict(**fields)
        self.generation = 1
        self.now = 1000.0
        self.status: dict[str, Any] = {}
        self.children: set[str] = set()
        self.config: dict[str, str] | None = None
        self.claim_owned: bool | None = None
        self.pods: dict[str, PodState] = {}
        self.missing_secrets: tuple[str, ...] = ()
        self.keys_id = ""
        self.ui_namespaces: tuple[str, ...] = ("kubestream-system",)
        self.policy: dict[str, Any] | None = None
        self.report: DriverReport | None = None
        self.certificate: Validity | None = None
        self.scrape_token_stale = False
        # The job's rotate-ui-tokens annotation; its Secret's generation, rotated-for
        # annotation and whether its ui-read-token is out of step.
        self.rotate_ui_tokens = ""
        self.rotated_for = ""
        self.token_generation: int | None = 0
        self.read_token_stale = False
        self.removed: frozenset[int] = frozenset()
        self.last: Plan = Plan()

    def change_spec(self, **fields: Any) -> None:
        self.raw_spec.update(fields)
        self.generation += 1

    def observe(self) -> Observed:
        try:
            spec: Any = parse_spec(self.raw_spec)
        except SpecError as err:
            spec = err
        pods = sorted(self.pods.values(), key=lambda p: p.name)
        return Observed(
            job=JOB,
            generation=self.generation,
            spec=spec,
            status=read_status(self.status),
            now=self.now,
            children=frozenset(self.children),
            config_data=self.config,
            claim_owned=self.claim_owned,
            missing_secrets=self.missing_secrets,
            keys_id=self.keys_id,
            ui_namespaces=self.ui_namespaces,
            network_policy_spec=self.policy,
            driver=next((p for p in pods if p.executor_id is None), None),
            executors=tuple(p for p in pods if p.executor_id is not None),
            driver_report=self.report,
            ui_certificate=self.certificate,
            scrape_token_stale=self.scrape_token_stale,
            rotate_ui_tokens=self.rotate_ui_tokens,
            ui_tokens_rotated_for=self.rotated_for,
            ui_token_generation=self.token_generation,
            read_token_stale=self.read_token_stale,
            removed_executors=self.removed,
        )

    def step(self) -> Plan:
        """One reconcile: like ``reconcile``, plans again at once after creating keys."""
        todo = self.step_once()
        events = todo.events
        if todo.create_keys:
            todo = self.step_once()
            events += todo.events
        self.last = replace(todo, events=events)
        return self.last

    def step_once(self) -> Plan:
        todo = plan(self.observe())
        if todo.create_keys:
            self.children.add(SECRET)
            self.keys_id = f"keys-{next(_uids)}"
        if todo.ui_tokens is not None:
            self.token_generation = todo.ui_tokens.generation
            self.rotated_for = todo.ui_tokens.rotated_for
            self.read_token_stale = False
        if todo.issue_certificate:
            self.certificate = Validity(self.now - 300, self.now + LIFE)
        for obj in todo.create:
            if obj["kind"] == "Pod":
                meta = obj["metadata"]
                eid = meta["labels"].get(m.EXECUTOR_ID_LABEL)
                self.pods[meta["name"]] = PodState(
                    name=meta["name"],
                    uid=f"pod-{next(_uids)}",
                    phase="Pending",
                    ready=False,
                    spec_hash=meta["annotations"][m.SPEC_HASH_ANNOTATION],
                    deleting=False,
                    executor_id=int(eid) if eid is not None else None,
                    keys_id=meta["annotations"][m.KEYS_ANNOTATION],
                )
            else:
                self.children.add(obj["kind"])
                if obj["kind"] == CLAIM:
                    self.claim_owned = "ownerReferences" in obj["metadata"]
                if obj["kind"] == CONFIG_MAP:
                    self.config = obj["data"]
                if obj["kind"] == NETWORK_POLICY:
                    self.policy = obj["spec"]
        if todo.update_network_policy is not None:
            self.policy = todo.update_network_policy["spec"]
        if todo.update_config is not None:
            self.config = todo.update_config["data"]
        if todo.set_claim_owned is not None:
            self.claim_owned = todo.set_claim_owned[1]
        for gone in todo.delete:
            if self.pods.get(gone.name) and self.pods[gone.name].uid == gone.uid:
                del self.pods[gone.name]
        self.status.update(todo.status)
        return todo

    def set_phase(self, name: str, phase: str, message: str = "") -> None:
        self.pods[name] = replace(
            self.pods[name], phase=phase, ready=phase == "Running", message=message
        )

    def run_all(self) -> None:
        for name in list(self.pods):
            self.set_phase(name, "Running")

    @property
    def phase(self) -> str:
        return str(self.status["phase"])

    def condition(self, kind: str) -> dict[str, Any]:
        return next(c for c in self.status["conditions"] if c["type"] == kind)

    def reasons(self) -> list[str]:
        return [e.reason for e in self.last.events]


def test_a_network_policy_open_to_every_pod_is_narrowed_and_then_left_alone() -> None:
    """A policy of an older operator (4040 open to all) or other UI namespaces is replaced."""
    w = World()
    w.step()
    assert w.last.update_network_policy is None
    w.policy = {**(w.policy or {}), "ingress": [{"ports": [{"protocol": "TCP", "port": 4040}]}]}
    fixed = w.step()
    assert fixed.update_network_policy is not None
    assert w.policy == m.build_network_policy(JOB, ("kubestream-system",))["spec"]
    assert w.step().update_network_policy is None
    w.ui_namespaces = ("kubestream-system", "monitoring")
    assert w.step().update_network_policy is not None
    assert w.step().update_network_policy is None


def test_new_job_creates_every_child_then_a_second_pass_does_nothing() -> None:
    w = World()
    keys = w.step_once()
    assert keys.create_keys
    kinds = [o["kind"] for o in keys.create]
    assert kinds == [SERVICE_ACCOUNT, CONFIG_MAP, SERVICE, NETWORK_POLICY, CLAIM]
    pods = w.step_once()
    assert [o["metadata"]["name"] for o in pods.create] == [
        "wc-driver",
        "wc-executor-0",
        "wc-executor-1",
    ]
    assert {p.keys_id for p in w.pods.values()} == {w.keys_id}
    assert w.phase == "Starting"
    again = w.step()
    assert not again.create_keys
    assert again.create == ()
    assert again.delete == ()
    assert again.events == ()
    assert again.status == pods.status


def test_replaced_key_secret_restarts_every_pod_with_the_new_keys() -> None:
    w = World()
    w.step()
    w.run_all()
    w.step()
    w.children.discard(SECRET)
    todo = w.step()
    assert [e.reason for e in todo.events if e.reason == "KeysChanged"] == ["KeysChanged"]
    assert [d.name for d in todo.delete] == ["wc-driver"]
    w.step()
    w.step()
    assert len(w.pods) == 3
    assert {p.keys_id for p in w.pods.values()} == {w.keys_id}


def test_the_operators_certificate_is_made_with_the_keys_and_renewed_once_in_its_last_third() -> (
    None
):
    w = World(ui={"tls": {}})
    first = w.step_once()
    assert first.create_keys and first.issue_certificate
    w.step()
    w.run_all()
    w.step()
    made = w.certificate
    assert made is not None
    w.now = made.not_before + LIFE * 0.6
    assert not w.step().issue_certificate
    w.now = made.not_before + LIFE * 0.7
    renewal = w.step()
    assert renewal.issue_certificate and not renewal.create_keys
    assert w.reasons() == ["CertificateRenewed"]
    assert renewal.delete == () and renewal.create == ()  # the driver reloads it, running
    assert not w.step().issue_certificate


def test_a_certificate_is_made_when_tls_is_turned_on_and_never_without_it() -> None:
    w = World()
    w.step()
    w.run_all()
    w.step()
    w.now += 200 * 86400
    assert not w.step().issue_certificate
    assert w.certificate is None
    w.change_spec(ui={"tls": {}})
    todo = w.step()
    assert todo.issue_certificate and "CertificateIssued" in w.reasons()
    w.change_spec(ui={"tls": {"secretName": "mine"}})  # the user's: the operator makes none
    w.certificate = None
    assert not w.step().issue_certificate


def test_a_rotated_scrape_token_is_written_into_the_secret_without_restarting_a_pod() -> None:
    w = World()
    w.step()
    w.run_all()
    w.step()
    w.scrape_token_stale = True
    todo = w.step()
    assert todo.update_scrape_token and w.reasons() == ["ScrapeTokenRotated"]
    assert todo.delete == () and todo.create == ()
    w.scrape_token_stale = False
    assert not w.step().update_scrape_token


def test_a_rotate_annotation_raises_the_token_generation_once_without_restarting_a_pod() -> None:
    w = World()
    w.rotate_ui_tokens = "made-with-it"  # a job created with the annotation: nothing to do
    assert plan(w.observe()).ui_tokens == TokenRotation(0, "made-with-it")  # the new Secret's
    w.step()
    assert (w.token_generation, w.rotated_for) == (0, "made-with-it")
    assert "UITokensRotated" not in w.reasons()
    w.run_all()
    assert w.step().ui_tokens is None and w.token_generation == 0
    for request, generation in (("2026-11-30", 1), ("again", 2)):
        w.rotate_ui_tokens = request
        todo = w.step()
        assert todo.ui_tokens == TokenRotation(generation, request)
        assert w.reasons() == ["UITokensRotated"] and todo.delete == () and todo.create == ()
        (note,) = w.last.events
        assert note.type == "Normal" and f"generation {generation} (asked by" in note.message
        assert w.step().ui_tokens is None  # carried out: the Secret records the request
    w.rotate_ui_tokens = ""  # the annotation removed is a request too
    assert w.step().ui_tokens == TokenRotation(3, "")
    assert w.step().ui_tokens is None


def test_the_secrets_read_token_is_kept_in_step_and_a_malformed_generation_replaced() -> None:
    w = World()
    w.step()
    w.run_all()
    w.step()
    w.token_generation, w.rotated_for, w.read_token_stale = 4, "asked", True
    w.rotate_ui_tokens = "asked"
    todo = w.step()  # a ui-read-token not the generation's (a hand-edited Secret)
    assert todo.ui_tokens == TokenRotation(4, "asked") and w.reasons() == []
    w.token_generation = None
    todo = w.step()
    assert todo.ui_tokens == TokenRotation(1, "asked")
    assert [(e.type, e.reason) for e in w.last.events] == [("Warning", "UITokensRotated")]
    assert w.step().ui_tokens is None


def test_running_job_is_ready_and_keeps_condition_times() -> None:
    w = World()
    w.step()
    w.run_all()
    w.now += 5
    w.step()
    assert w.phase == "Running"
    assert w.status["executors"] == "2/2"
    ready = w.condition("Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Running")
    w.now += 60
    w.step()
    assert w.condition("Ready")["lastTransitionTime"] == ready["lastTransitionTime"]
    assert w.condition("Progressing")["status"] == "False"


def test_failed_driver_is_recreated_after_doubling_backoff_then_job_fails() -> None:
    w = World()
    w.step()
    w.run_all()
    w.step()
    for attempt, delay in ((1, 10), (2, 20)):
        w.set_phase("wc-driver", "Failed", "container driver exited with code 2")
        w.step()
        assert w.phase == "Recovering"
        assert w.status["driverRestarts"] == attempt
        assert "DriverFailed" in w.reasons()
        assert "wc-driver" not in w.pods
        w.now += delay - 1
        w.step()
        assert "wc-driver" not in w.pods, "recreated before the backoff ended"
        assert "exited with code 2" in w.condition("Degraded")["message"]
        assert w.status["lastDriverFailure"] == "container driver exited with code 2"
        w.now += 1
        w.step()
        assert w.phase == "Starting"
        assert "wc-driver" in w.pods
    w.set_phase("wc-driver", "Failed", "container driver exited with code 2")
    w.step()
    assert w.phase == "Failed"
    degraded = w.condition("Degraded")
    assert degraded["reason"] == "DriverFailed"
    assert "exited with code 2" in degraded["message"]
    assert "restartPolicy.limit is 2" in degraded["message"]
    w.step()
    assert w.pods == {}
    assert "exited with code 2" in w.condition("Degraded")["message"]


def test_a_failed_driver_seen_twice_counts_once() -> None:
    w = World()
    w.step()
    w.set_phase("wc-driver", "Failed")
    failed = w.pods["wc-driver"]
    w.step()
    w.pods["wc-driver"] = failed  # the deletion is not visible yet, or the operator crashed
    w.step()
    assert w.status["driverRestarts"] == 1


def test_restart_policy_never_fails_at_once_and_clean_exit_completes() -> None:
    w = World(restartPolicy={"type": "Never"})
    w.step()
    w.set_phase("wc-driver", "Failed")
    w.step()
    assert w.phase == "Failed"
    done = World()
    done.step()
    done.set_phase("wc-driver", "Succeeded")
    done.step()
    assert done.phase == "Succeeded"
    done.step()
    assert done.pods == {}


def test_clean_exit_restarts_under_policy_always() -> None:
    w = World(restartPolicy={"type": "Always", "backoffSeconds": 1, "maxBackoffSeconds": 5})
    w.step()
    w.set_phase("wc-driver", "Succeeded")
    w.step()
    assert w.phase == "Recovering"


def test_driver_deleted_by_hand_counts_as_a_failure() -> None:
    w = World()
    w.step()
    w.run_all()
    w.step()
    del w.pods["wc-driver"]
    w.step()
    assert w.phase == "Recovering"
    assert "DriverLost" in w.reasons()


def test_spec_change_restarts_driver_gracefully_then_executors() -> None:
    w = World()
    w.step()
    w.run_all()
    w.step()
    old = {n: p.uid for n, p in w.pods.items()}
    w.change_spec(image="registry.example.com/team/wc:2.0")
    todo = w.step()
    assert w.phase == "Restarting"
    assert [(d.name, d.grace) for d in todo.delete] == [("wc-driver", 30)]
    w.step()  # new driver; executors are stale and go now
    w.step()  # executors come back
    assert sorted(w.pods) == sorted(old)
    assert all(w.pods[n].uid != old[n] for n in old)
    assert len({p.spec_hash for p in w.pods.values()}) == 1
    assert w.status["driverRestarts"] == 0


def test_spec_change_gives_a_failed_job_a_fresh_start() -> None:
    w = World(restartPolicy={"type": "Never"})
    w.step()
    w.set_phase("wc-driver", "Failed")
    w.step()
    assert w.phase == "Failed"
    w.change_spec(image="registry.example.com/team/wc:fixed")
    w.step()
    assert w.phase == "Starting"
    assert "Retrying" in w.reasons()
    assert w.status["driverRestarts"] == 0


def test_suspend_stops_driver_before_executors_and_resume_restarts() -> None:
    w = World()
    w.step()
    w.run_all()
    w.step()
    w.change_spec(suspend=True)
    todo = w.step()
    assert [d.name for d in todo.delete] == ["wc-driver"]
    assert w.phase == "Suspending"
    todo = w.step()
    assert sorted(d.name for d in todo.delete) == ["wc-executor-0", "wc-executor-1"]
    w.step()
    assert w.phase == "Suspended"
    assert CLAIM in w.children
    w.change_spec(suspend=False)
    w.step()
    assert w.phase == "Starting"
    assert len(w.pods) == 3


def test_scaling_adds_and_removes_the_highest_executors() -> None:
    w = World()
    w.step()
    w.change_spec(executors={"replicas": 4, "min": 1, "max": 4})
    w.step()
    assert sorted(w.pods) == ["wc-driver"] + [f"wc-executor-{i}" for i in range(4)]
    w.change_spec(executors={"replicas": 1, "min": 1, "max": 4})
    todo = w.step()
    assert sorted(d.name for d in todo.delete) == [f"wc-executor-{i}" for i in (1, 2, 3)]
    assert w.status["desiredExecutors"] == 1


def test_scaling_skips_the_executors_named_removed() -> None:
    """The autoscaler names the executors to remove; the count runs the lowest ids left."""
    w = World(executors={"replicas": 3, "min": 1, "max": 4})
    w.step()
    w.run_all()
    w.step()
    w.report = DriverReport(frozenset({"0", "1", "2"}))
    w.change_spec(executors={"replicas": 2, "min": 1, "max": 4})
    w.removed = frozenset({0})
    todo = w.step()
    assert (todo.drain, todo.create) == (("0",), ())
    w.report = DriverReport(frozenset({"1", "2"}), {"0": "decommissioned"})
    w.set_phase("wc-executor-0", "Succeeded")
    w.step()
    w.step()
    assert sorted(w.pods) == ["wc-driver", "wc-executor-1", "wc-executor-2"]
    assert w.last.create == () and w.last.delete == ()
    # Scaling up with the gap still named adds above it; without it, fills it.
    w.change_spec(executors={"replicas": 3, "min": 1, "max": 4})
    assert [p["metadata"]["name"] for p in w.step().create] == ["wc-executor-3"]
    w.change_spec(executors={"replicas": 4, "min": 1, "max": 4})
    w.removed = frozenset()
    assert [p["metadata"]["name"] for p in w.step().create] == ["wc-executor-0"]


def test_lost_executor_is_replaced() -> None:
    w = World()
    w.step()
    w.run_all()
    w.step()
    w.set_phase("wc-executor-1", "Failed", "OOMKilled")
    w.step()
    assert "ExecutorLost" in w.reasons()
    assert "wc-executor-1" not in w.pods
    w.step()
    assert "wc-executor-1" in w.pods


def scaled_down_to_one() -> World:
    """A running job of two executors, both registered with the driver, scaled to one."""
    w = World()
    w.step()
    w.run_all()
    w.step()
    w.report = DriverReport(frozenset({"0", "1"}))
    w.change_spec(executors={"replicas": 1, "min": 1, "max": 4})
    return w


def removal(w: World) -> str:
    return next(e.message for e in w.last.events if e.reason == "ExecutorRemoved")


def test_scale_down_drains_through_the_driver_then_deletes_the_pod() -> None:
    w = scaled_down_to_one()
    todo = w.step()
    assert todo.drain == ("1",)
    assert "wc-executor-1" in w.pods
    assert w.reasons() == ["ExecutorDraining"]
    assert w.status["drainingExecutors"] == [
        {"pod": "wc-executor-1", "since": "1970-01-01T00:16:40Z"}
    ]
    # The driver has begun: not asked again, no second Event, the start time is kept.
    w.report = DriverReport(frozenset({"0", "1"}), {"1": "draining"})
    w.now += 5
    todo = w.step()
    assert (todo.drain, todo.delete, w.reasons()) == ((), (), [])
    assert w.status["drainingExecutors"][0]["since"] == "1970-01-01T00:16:40Z"
    # Decommissioned: the executor exits 0, which is not a lost executor to replace.
    w.report = DriverReport(frozenset({"0"}), {"1": "decommissioned"})
    w.set_phase("wc-executor-1", "Succeeded")
    todo = w.step()
    assert [(d.name, d.grace) for d in todo.delete] == [("wc-executor-1", 0)]
    assert w.reasons() == ["ExecutorRemoved"]
    assert removal(w) == "scaled down: deleting executor pod wc-executor-1 after draining"
    assert w.status["drainingExecutors"] is None
    w.step()
    assert sorted(w.pods) == ["wc-driver", "wc-executor-0"]


def test_a_drain_still_running_after_the_graceful_stop_time_ends_in_deletion() -> None:
    w = scaled_down_to_one()
    w.step()
    w.report = DriverReport(frozenset({"0", "1"}), {"1": "draining"})
    w.now += 29
    assert w.step().delete == ()
    w.now += 1
    todo = w.step()
    assert [(d.name, d.grace) for d in todo.delete] == [("wc-executor-1", 30)]
    assert w.last.events[0].type == "Warning"
    assert "longer than gracefulStopTimeoutSeconds (30s)" in removal(w)


@pytest.mark.parametrize(
    ("report", "phase", "why", "warning"),
    [
        (None, "Running", "the driver is not running or does not answer", False),
        (
            DriverReport(frozenset({"0"})),
            "Running",
            "the executor is not registered with the driver",
            False,
        ),
        (
            DriverReport(frozenset({"0", "1"}), {"1": "failed: timed out"}),
            "Running",
            "draining failed: timed out",
            True,
        ),
        (DriverReport(frozenset({"0", "1"})), "Succeeded", "it had ended (Succeeded)", False),
    ],
)
def test_scale_down_deletes_without_draining_when_it_cannot_drain(
    report: DriverReport | None, phase: str, why: str, warning: bool
) -> None:
    w = scaled_down_to_one()
    w.report = report
    w.set_phase("wc-executor-1", phase)
    todo = w.step()
    assert todo.drain == ()
    assert [d.name for d in todo.delete] == ["wc-executor-1"]
    assert w.reasons() == ["ExecutorRemoved"]
    assert removal(w) == f"scaled down: deleting executor pod wc-executor-1 without draining: {why}"
    assert w.last.events[0].type == ("Warning" if warning else "Normal")
    w.step()
    assert "wc-executor-1" not in w.pods


def test_a_drain_the_driver_lost_track_of_warns_and_deletes() -> None:
    w = scaled_down_to_one()
    w.step()
    w.report = None
    w.step()
    assert "wc-executor-1" not in w.pods
    assert w.last.events[0].type == "Warning"


def test_an_executor_pod_without_an_id_is_deleted_without_draining() -> None:
    w = scaled_down_to_one()
    w.change_spec(executors={"replicas": 2, "min": 1, "max": 4})
    obs = w.observe()
    stray = PodState("wc-executor-x", "pod-x", "Running", True, "", False)
    todo = plan(replace(obs, executors=(*obs.executors, stray)))
    assert [d.name for d in todo.delete] == ["wc-executor-x"]
    assert todo.events[0].message.endswith("without draining: it has no executor id")


def test_scaling_back_up_while_draining_forgets_the_drain() -> None:
    w = scaled_down_to_one()
    w.step()
    w.change_spec(executors={"replicas": 2, "min": 1, "max": 4})
    todo = w.step()
    assert (todo.drain, todo.delete, w.status["drainingExecutors"]) == ((), (), None)


def test_missing_secret_blocks_the_start_with_a_degraded_condition() -> None:
    w = World(secretRefs=[{"env": "PW", "secretName": "kafka", "key": "password"}])
    w.missing_secrets = ("kafka/password",)
    w.step()
    assert w.pods == {}
    assert w.phase == "Pending"
    degraded = w.condition("Degraded")
    assert degraded["reason"] == "SecretNotFound"
    assert "spec.secretRefs" in degraded["message"]
    assert "kafka/password" in degraded["message"]
    w.missing_secrets = ()
    w.step()
    assert "wc-driver" in w.pods
    assert w.condition("Degraded")["status"] == "False"


def test_missing_existing_claim_is_reported() -> None:
    w = World(checkpoint={"existingClaim": "shared"})
    w.step()
    assert w.condition("Degraded")["reason"] == "ClaimNotFound"
    assert w.pods == {}


def test_invalid_spec_is_degraded_and_creates_nothing() -> None:
    w = World(image="Bad Image!")
    todo = w.step()
    assert todo.create == ()
    degraded = w.condition("Degraded")
    assert degraded["reason"] == "InvalidSpec"
    assert degraded["message"].startswith("spec.image: ")
    assert [e.reason for e in todo.events] == ["InvalidSpec"]


def test_configuration_and_retain_policy_changes_update_children() -> None:
    w = World()
    w.step()
    w.change_spec(configuration={"topic": "clicks"}, checkpoint={"retainOnDelete": False})
    todo = w.step()
    assert todo.update_config is not None
    assert todo.update_config["data"] == {"topic": "clicks"}
    assert todo.set_claim_owned == ("wc-checkpoint", True)


def test_a_long_stable_run_forgets_old_failures() -> None:
    w = World()
    w.step()
    w.set_phase("wc-driver", "Failed")
    w.step()
    w.now += 10
    w.step()
    w.run_all()
    w.step()
    assert w.status["driverRestarts"] == 1
    w.now += 601
    w.step()
    assert w.status["driverRestarts"] == 0


def stop_plan(w: World) -> Any:
    obs = w.observe()
    return plan_stop(obs.driver, obs.executors, 30)


@pytest.mark.parametrize("driver_deleting", [False, True])
def test_stop_deletes_the_driver_first(driver_deleting: bool) -> None:
    w = World()
    w.step()
    w.pods["wc-driver"] = replace(w.pods["wc-driver"], deleting=driver_deleting)
    deletions, done = stop_plan(w)
    assert not done
    assert [d.name for d in deletions] == ([] if driver_deleting else ["wc-driver"])
    del w.pods["wc-driver"]
    deletions, done = stop_plan(w)
    assert sorted(d.name for d in deletions) == ["wc-executor-0", "wc-executor-1"]
    assert not done
    w.pods.clear()
    assert stop_plan(w) == ((), True)


def test_a_job_whose_name_children_cannot_use_gets_nothing_but_a_condition() -> None:
    w = World()
    obs = replace(w.observe(), name_problem="metadata.name must be short")
    todo = plan(obs)
    assert not todo.create_keys and todo.create == () and todo.delete == ()
    degraded = next(c for c in todo.status["conditions"] if c["type"] == "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "InvalidName")
    assert degraded["message"] == "metadata.name must be short"
    assert "selector" not in todo.status
    assert [(n.type, n.reason) for n in todo.events] == [("Warning", "InvalidName")]


STALLED = (
    "BatchStalled",
    "the driver reports batch 5000 stalled (tasks_running): batch 5000 has made no "
    "progress for 31 s: 1 task(s) running and none ended",
)
CHECKPOINT_FAILING = (
    "CheckpointFailing",
    "the driver cannot write checkpoints to /checkpoint: /checkpoint/metadata-5000.0: "
    "OSError: [Errno 28] No space left on device (3 failed writes; ...)",
)


def test_what_the_running_driver_reports_wrong_makes_the_job_degraded_until_it_clears() -> None:
    w = World()
    w.step()
    w.run_all()
    w.step()
    w.report = DriverReport(frozenset({"0", "1"}), problems=(STALLED,))
    w.step()
    degraded = w.condition("Degraded")
    assert (degraded["status"], degraded["reason"], degraded["message"]) == ("True", *STALLED)
    assert w.reasons() == ["BatchStalled"]
    assert w.phase == "Running" and w.condition("Ready")["status"] == "True"
    since = degraded["lastTransitionTime"]
    # Still stalled, a few seconds on: the message follows, no second Event.
    later = (STALLED[0], STALLED[1].replace("31 s", "36 s"))
    w.report = DriverReport(frozenset({"0", "1"}), problems=(later, CHECKPOINT_FAILING))
    w.now += 5
    w.step()
    assert w.reasons() == ["CheckpointFailing"]
    degraded = w.condition("Degraded")
    assert degraded["reason"] == "BatchStalled"
    assert degraded["message"] == f"{later[1]}; {CHECKPOINT_FAILING[1]}"
    assert degraded["lastTransitionTime"] == since
    w.now += 5
    w.step()
    assert w.reasons() == []
    # Pods are not held back by it: a lost executor is still replaced.
    w.set_phase("wc-executor-1", "Failed", "OOMKilled")
    w.step()
    assert "ExecutorLost" in w.reasons()
    w.report = DriverReport(frozenset({"0", "1"}))
    w.step()
    assert w.condition("Degraded")["status"] == "False"
    # A driver that does not answer reports nothing, wrong or right.
    w.report = None
    w.step()
    assert w.condition("Degraded")["status"] == "False"
