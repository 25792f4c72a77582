"""The autoscaler's pure parts: capacity fit, state in status, the decision's laws, the adapter."""

import math
from dataclasses import replace
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from kubestream_operator.autoscale import REPLICAS_ANNOTATION, evaluate, removed_after
from kubestream_operator.autoscaler import (
    Action,
    AutoscalerState,
    Batch,
    Executor,
    JobMetrics,
    Policy,
    Reason,
    decide,
    metrics_from_status,
)
from kubestream_operator.autoscaler.capacity import Capacity
from kubestream_operator.autoscaler.state import read_state, state_fields
from kubestream_operator.plan import REMOVED_EXECUTORS_ANNOTATION, executor_ids, parse_executor_ids
from kubestream_operator.spec import parse_spec
from tests.operator.test_lifecycle import job_manifest

INTERVAL = 2.0


def metrics(
    executors: int,
    seconds: float,
    records: int = 3000,
    batches: int = 30,
    queued: int = 0,
    now: float = 1000.0,
    draining: bool = False,
) -> JobMetrics:
    """Completed batches every INTERVAL up to ``now``, each taking ``seconds``."""
    done = tuple(
        Batch(t, records, t + 0.01, seconds, 0.01)
        for t in (now - INTERVAL * (batches - k) for k in range(batches))
    )
    arrivals = tuple((b.batch_time, b.records) for b in done) + tuple(
        (now + INTERVAL * (k + 1), records) for k in range(queued)
    )
    return JobMetrics(
        time=now,
        batch_interval=INTERVAL,
        batches=done,
        arrivals=arrivals,
        queued=(records,) * queued,
        scheduling_delay_trend=0.05 if queued else 0.0,
        pending_batches=queued,
        running_batches=0,
        executors=tuple(Executor(str(i), False, 0, 0) for i in range(executors)),
        draining=draining,
    )


def settled(executors: int, now: float = 1000.0) -> AutoscalerState:
    """State of an autoscaler that has watched ``executors`` for a long time and never acted."""
    policy = Policy(1, 16)
    return AutoscalerState(
        policy=policy.key(),
        owned_replicas=executors,
        executors=executors,
        executors_since=now - 600,
    )


def run(m: JobMetrics, state: AutoscalerState, replicas: int, now: float, policy: Policy) -> Any:
    """Evaluate every 10 s from ``now - 70`` on the same metrics until the first action."""
    decision = None
    for t in range(int(now) - 70, int(now) + 1, 10):
        decision, state = decide(replace(m, time=float(t)), policy, state, replicas, float(t))
        if decision.action is not Action.NONE:
            break
    return decision, state


def test_capacity_recovers_fixed_and_per_record_costs_from_batches_at_several_counts() -> None:
    fixed, per_record = 0.3, 0.002
    samples = [(r / n, fixed + per_record * r / n) for n in (2, 3, 5) for r in (2000, 2500, 3100)]
    model = Capacity().add(0.0, samples).model()
    assert model is not None
    assert abs(model.fixed - fixed) < 1e-6 and abs(model.per_record - per_record) < 1e-9
    assert model.executors_for(3000, 1.4) == 6  # 0.3 + 6/k <= 1.4
    assert model.executors_for(3000, 0.3) is None


@given(
    st.builds(
        AutoscalerState,
        policy=st.text(max_size=12),
        owned_replicas=st.none() | st.integers(0, 1000),
        pinned=st.booleans(),
        last_scale_up=st.none() | st.floats(0, 2e9),
        over_since=st.none() | st.floats(0, 2e9),
        executors=st.none() | st.integers(0, 1000),
        last_batch_time=st.none() | st.floats(0, 2e9),
        capacity=st.builds(
            Capacity,
            updated=st.none() | st.floats(0, 2e9),
            weight=st.floats(0, 1e6),
            sum_x=st.floats(0, 1e9),
            sum_xy=st.floats(0, 1e9),
        ),
        awaiting_effect=st.none() | st.floats(0, 10),
    )
)
def test_state_survives_the_trip_through_the_jobs_status(state: AutoscalerState) -> None:
    assert read_state(state_fields(state)) == state


def test_malformed_state_starts_afresh_instead_of_failing() -> None:
    assert read_state({"lastScaleUp": "yesterday", "capacity": [1], "pinned": "yes"}) == (
        AutoscalerState()
    )
    assert read_state(None) == AutoscalerState()


@settings(max_examples=300)
@given(
    executors=st.integers(1, 12),
    seconds=st.floats(0.01, 6.0),
    records=st.integers(0, 20000),
    batches=st.integers(0, 30),
    queued=st.integers(0, 40),
    draining=st.booleans(),
    lo=st.integers(1, 4),
    span=st.integers(0, 12),
    act=st.booleans(),
    pinned=st.booleans(),
    max_step=st.integers(1, 5),
    percent=st.integers(0, 200),
)
# An idle job just seen: two batches, no records, nothing to estimate capacity from.
@example(3, 0.1, 0, 2, 0, False, 1, 4, True, False, 2, 100)
def test_every_decision_keeps_the_policys_laws(
    executors: int,
    seconds: float,
    records: int,
    batches: int,
    queued: int,
    draining: bool,
    lo: int,
    span: int,
    act: bool,
    pinned: bool,
    max_step: int,
    percent: int,
) -> None:
    hi = lo + span
    replicas = min(max(executors, lo), hi)
    policy = Policy(lo, hi, max_step=max_step, max_step_percent=percent, act=act)
    state = replace(settled(replicas), policy=policy.key(), pinned=pinned)
    m = metrics(replicas, seconds, records, batches, queued=queued, draining=draining)
    d, after = run(m, state, replicas, 1000.0, policy)
    assert lo <= d.target <= hi
    assert abs(d.target - replicas) <= policy.step_limit(replicas)
    assert (d.action is Action.NONE) == (d.target == replicas)
    if d.action is Action.DOWN:
        assert queued == 0 and not draining
        assert d.reason is Reason.UNDERLOAD
    if d.action is Action.UP:
        assert d.reason in (Reason.OVERLOAD, Reason.BACKLOG, Reason.OVERDUE)
    assert d.applied == (d.action is not Action.NONE and act and not pinned)
    assert after.owned_replicas == (d.target if d.applied else replicas)


def test_overload_scales_up_in_one_step_to_the_models_count() -> None:
    # 3 executors, 0.2 s + 3 s / 3 = 1.2 s per 2 s batch... at twice the records: 2.2 s.
    state = settled(3)
    state = replace(state, capacity=Capacity().add(0.0, [(1000.0, 1.2), (1500.0, 1.7)] * 3))
    d, after = run(metrics(3, 2.2, records=6000, queued=5), state, 3, 1000.0, Policy(1, 16))
    assert d.action is Action.UP and d.reason is Reason.BACKLOG
    # 0.2 s + 6000 records * 1 ms / k <= 0.7 * 2 s -> k >= 5, which also works off the queue.
    assert d.target == 5
    assert d.predicted_ratio is not None and abs(d.predicted_ratio - 0.7) < 1e-6
    assert after.last_scale_up == 930.0  # the first evaluation: a backlog waits for no window


@given(
    running=st.floats(0.0, 3600.0),
    replicas=st.integers(1, 6),
    completed=st.integers(0, 30),
)
def test_a_batch_that_does_not_end_scales_up_without_waiting_for_completed_batches(
    running: float, replicas: int, completed: int
) -> None:
    """Spark's dynamic allocation waits for completed batches and hangs on a batch that
    takes minutes: here a batch still processing after the overdue limit is a lower bound
    of the processing ratio, and the count goes up in proportion to it."""
    policy = Policy(1, 16)
    m = replace(metrics(replicas, 0.5, batches=completed), running_since=1000.0 - running)
    d, _ = decide(m, policy, settled(replicas), replicas, 1000.0)
    limit = max(10 * INTERVAL, policy.stabilization_window)
    if running < limit:
        assert d.reason is not Reason.OVERDUE
        return
    ratio = running / INTERVAL
    expected = min(
        16,
        replicas + policy.step_limit(replicas),
        max(replicas + 1, math.ceil(replicas * ratio / policy.target_utilization)),
    )
    assert (d.action, d.reason, d.target) == (Action.UP, Reason.OVERDUE, expected), d
    assert f"processed for {running:.0f}s" in d.message


@given(delay=st.floats(0.0, 600.0))
def test_batches_completing_behind_a_backlog_still_count(delay: float) -> None:
    """The window holds batches by when they completed, not by their batch time: under a
    backlog every completed batch is older than the window by the scheduling delay, and a
    window by batch time was empty (NO_DATA) exactly when the job needed executors."""
    m = metrics(1, 1.9, records=1000, queued=20)
    behind = tuple(
        replace(b, batch_time=b.batch_time - delay, scheduling_delay=delay) for b in m.batches
    )
    m = replace(m, batches=behind, arrivals=tuple((t - delay, r) for t, r in m.arrivals))
    d, _ = run(m, settled(1), 1, 1000.0, Policy(1, 16))
    assert d.reason is not Reason.NO_DATA, d
    assert d.action is Action.UP, d


@given(seconds=st.floats(13.0, 120.0))
def test_batches_longer_than_the_window_still_make_a_decision(seconds: float) -> None:
    """Batches that each take longer than the stabilization window (10 s here) leave
    fewer than two completions in it: the newest completed batches stand in, or the job
    would warm up forever (the e2e story's slow job, one executor, 16 s batches)."""
    policy = Policy(1, 16, stabilization_window=10)
    done = tuple(
        Batch(1000.0 - 300 + k * seconds / 4, 1, 1000.0 - (k + 1) * seconds - 1, seconds, 60.0)
        for k in range(3)
    )[::-1]
    m = replace(metrics(1, seconds, queued=20), batches=done)
    d, _ = decide(m, policy, replace(settled(1), policy=policy.key()), 1, 1000.0)
    assert d.reason not in (Reason.WARMING_UP, Reason.NO_DATA), d
    assert d.action is Action.UP, d


def test_an_overdue_batch_keeps_the_cooldown_and_the_maximum() -> None:
    m = replace(metrics(4, 0.5, batches=0), running_since=700.0)
    cooling = replace(settled(4), last_scale_up=990.0)
    d, _ = decide(m, Policy(1, 16), cooling, 4, 1000.0)
    assert (d.action, d.reason) == (Action.NONE, Reason.COOLDOWN)
    d, _ = decide(m, Policy(1, 4), replace(settled(4), policy=Policy(1, 4).key()), 4, 1000.0)
    assert (d.action, d.reason) == (Action.NONE, Reason.AT_MAX)


def test_the_oldest_processing_batch_is_read_from_the_status_document() -> None:
    document = doc(2, 0.5, 100, 1000.0)
    document["batches"] += [
        {
            "batch_time": 1_000_002_000,
            "state": "processing",
            "num_records": 5,
            "processing_start": 990.0,
        },
        {
            "batch_time": 1_000_000_000,
            "state": "processing",
            "num_records": 5,
            "processing_start": 400.0,
        },
        {"batch_time": 1_000_004_000, "state": "queued", "num_records": 5},
    ]
    m = metrics_from_status(document)
    assert m is not None and m.running_since == 400.0
    assert metrics_from_status(doc(2, 0.5, 100, 1000.0)).running_since is None  # type: ignore[union-attr]


def test_a_load_more_executors_cannot_help_is_refused_with_its_reason() -> None:
    state = replace(settled(2), capacity=Capacity().add(0.0, [(500.0, 1.75), (1000.0, 1.8)] * 5))
    d, _ = run(metrics(2, 1.8, records=2000), state, 2, 1000.0, Policy(1, 16))
    assert d.action is Action.NONE and d.reason is Reason.OVERHEAD_BOUND
    assert "cannot help" in d.message


def test_no_scale_down_while_batches_queue_or_an_executor_drains() -> None:
    for m in (metrics(6, 0.2, queued=2), metrics(6, 0.2, draining=True)):
        d, _ = run(m, settled(6), 6, 1000.0, Policy(1, 16))
        assert d.action is not Action.DOWN, d


def test_cooldown_holds_across_an_operator_restart() -> None:
    policy = Policy(1, 16, scale_up_cooldown=300)
    d, state = run(metrics(6, 0.2, records=2000), settled(6), 6, 1000.0, policy)
    assert d.action is Action.DOWN and d.target < 6
    when = state.last_scale_down
    assert when is not None
    restarted = read_state(state_fields(state))  # what a new operator reads from the status
    overload = metrics(d.target, 3.0, records=9000, queued=10, now=when + 170)
    d2, _ = run(overload, restarted, d.target, when + 170, policy)
    assert d2.action is Action.NONE and d2.reason is Reason.COOLDOWN, d2
    assert d2.next_eligible == when + 300
    # Without the kept state the same overload would be acted on at once.
    forgot = replace(settled(d.target), policy=policy.key())
    d3, _ = run(overload, forgot, d.target, when + 170, policy)
    assert d3.action is Action.UP


def job(**spec: Any) -> dict[str, Any]:
    body = job_manifest(**spec)
    body["metadata"].update(namespace="ns", uid="u1", annotations={})
    return body


def doc(executors: int, seconds: float, records: int, now: float) -> dict[str, Any]:
    return {
        "api_version": "v1",
        "time": now,
        "batch_interval": INTERVAL,
        "summary": {"pending_batches": 0, "running_batches": 0, "scheduling_delay_trend": 0.0},
        "batches": [
            {
                "batch_time": int((now - INTERVAL * k) * 1000),
                "state": "completed",
                "num_records": records,
                "processing_start": now - INTERVAL * k + 0.01,
                "processing_time": seconds,
                "scheduling_delay": 0.01,
            }
            for k in range(30)
        ],
        "executors": [{"id": str(i), "state": "active", "blocks": 0} for i in range(executors)],
        "receivers": [{"stream_id": 0, "executor_id": "2"}],
    }


def test_status_document_becomes_metrics_and_bad_documents_become_none() -> None:
    m = metrics_from_status(doc(3, 0.5, 100, 1000.0))
    assert m is not None and m.active_executors == 3 and len(m.batches) == 30
    assert m.batches[0].batch_time < m.batches[-1].batch_time
    assert [e.receivers for e in m.executors] == [0, 0, 1]
    assert metrics_from_status({"api_version": "v2"}) is None
    assert metrics_from_status({"api_version": "v1", "batch_interval": "1"}) is None


def test_adapter_adopts_the_count_then_a_count_set_by_someone_else_pins_it() -> None:
    spec_body = {"executors": {"replicas": 3, "min": 1, "max": 8}, "autoscaling": {"enabled": True}}
    raw = job(**spec_body)
    spec = parse_spec(raw["spec"])
    first = evaluate(raw, spec, doc(3, 0.5, 100, 1000.0), 1000.0)
    assert first.owned == 3 and first.scale_to is None  # adopts the count it finds
    raw["metadata"]["annotations"][REPLICAS_ANNOTATION] = "3"
    raw["status"] = {"autoscaler": first.status}
    raw["spec"]["executors"]["replicas"] = 5  # kubectl scale
    spec = parse_spec(raw["spec"])
    pinned = evaluate(raw, spec, doc(5, 0.05, 10, 1010.0), 1010.0)
    assert pinned.status["pinned"] is True and pinned.scale_to is None and pinned.owned is None
    assert [e.reason for e in pinned.events][:1] == ["AutoscalerPinned"]
    raw["status"] = {"autoscaler": pinned.status}
    raw["spec"]["autoscaling"]["mode"] = "Recommend"  # any change of the policy releases it
    released = evaluate(raw, parse_spec(raw["spec"]), doc(5, 0.05, 10, 1020.0), 1020.0)
    assert released.status["pinned"] is False and released.owned == 5


def test_adapter_in_recommend_mode_records_and_announces_once_but_never_scales() -> None:
    raw = job(
        executors={"replicas": 6, "min": 1, "max": 8},
        autoscaling={"enabled": True, "mode": "Recommend", "stabilizationWindowSeconds": 0},
    )
    raw["metadata"]["annotations"][REPLICAS_ANNOTATION] = "6"
    spec = parse_spec(raw["spec"])
    events = []
    for now in range(1000, 1060, 10):
        done = evaluate(raw, spec, doc(6, 0.05, 100, float(now)), float(now))
        raw["status"] = {"autoscaler": done.status}
        assert done.scale_to is None
        events += [e.reason for e in done.events]
    assert done.decision.action is Action.DOWN and not done.decision.applied
    assert done.status["lastEvaluation"]["reason"] == "UNDERLOAD"
    assert events.count("AutoscalerRecommendation") == 1


def kafka_metrics(executors: int, seconds: float, partitions: int, **kw: Any) -> JobMetrics:
    return replace(metrics(executors, seconds, **kw), partitions=partitions)


def test_no_more_executors_than_a_batch_has_tasks() -> None:
    policy = Policy(1, 16)
    state = replace(settled(2), policy=policy.key())
    # 0.2 s + 6000 records * 1 ms / k: the model wants 5 executors, the topic has 3 partitions.
    state = replace(state, capacity=Capacity().add(0.0, [(1000.0, 1.2), (1500.0, 1.7)] * 3))
    d, _ = run(kafka_metrics(2, 3.2, 3, records=6000, queued=5), state, 2, 1000.0, policy)
    assert (d.action, d.reason, d.target) == (Action.UP, Reason.BACKLOG, 3)
    assert "capped at the 3 tasks of a batch's first stage" in d.message
    assert d.inputs.partitions == 3
    # At 3 executors every partition has one: it refuses, says why, and adds nothing.
    at_three = replace(state, owned_replicas=3, executors=3)
    d, _ = run(kafka_metrics(3, 2.2, 3, records=6000, queued=5), at_three, 3, 1000.0, policy)
    assert (d.action, d.reason, d.target) == (Action.NONE, Reason.PARALLELISM_BOUND, 3)
    assert "a batch has 3 tasks in its first stage" in d.message
    assert "more executors would stay idle" in d.message
    # Executors beyond the partitions are idle: surplus to remove, not capacity.
    idle = replace(settled(6), policy=policy.key())
    d, _ = run(kafka_metrics(6, 0.5, 2, records=600), idle, 6, 1000.0, policy)
    assert d.action is Action.DOWN and d.target <= 2


@settings(max_examples=200)
@given(
    executors=st.integers(1, 12),
    seconds=st.floats(0.01, 6.0),
    records=st.integers(0, 20000),
    queued=st.integers(0, 40),
    partitions=st.integers(1, 12),
)
def test_no_scale_up_beyond_the_tasks_of_a_batch(
    executors: int, seconds: float, records: int, queued: int, partitions: int
) -> None:
    policy = Policy(1, 16)
    state = replace(settled(executors), policy=policy.key())
    m = kafka_metrics(executors, seconds, partitions, records=records, queued=queued)
    d, _ = run(m, state, executors, 1000.0, policy)
    if d.action is Action.UP:
        assert d.target <= partitions
    if d.reason is Reason.PARALLELISM_BOUND:
        assert executors >= partitions and d.action is Action.NONE


def test_partitions_come_from_the_inputs_when_every_input_lists_them() -> None:
    base = doc(3, 0.5, 100, 1000.0)
    kafka = {"stream_id": 0, "kind": "DirectKafkaInputDStream", "lag": {"t-0": 5, "t-1": 0}}
    other = {"stream_id": 1, "kind": "FileInputDStream", "rate_limit": None}
    for inputs, partitions in (
        ([kafka], 2),
        ([kafka, kafka], 4),
        ([kafka, other], None),
        ([], None),
    ):
        m = metrics_from_status({**base, "inputs": inputs})
        assert m is not None and m.partitions == partitions, inputs


def scale(current: int, target: int, remove: tuple[str, ...]) -> Any:
    """A decision that moved the count from ``current`` to ``target``, naming ``remove``."""
    d, _ = decide(None, Policy(1, 64), AutoscalerState(), current, 0.0)
    action = Action.UP if target > current else Action.DOWN
    return replace(d, action=action, current=current, target=target, remove=remove)


def test_scale_down_skips_the_executors_the_decision_chose() -> None:
    assert executor_ids(2, removed_after(scale(3, 2, ("0",)), frozenset())) == (1, 2)
    # Then 2 -> 1 removing 2 keeps 1; a scale-up fills the lowest gap first.
    skip = removed_after(scale(2, 1, ("2",)), frozenset({0}))
    assert (executor_ids(1, skip), skip) == ((1,), {0})
    skip = removed_after(scale(1, 2, ()), skip)
    assert (executor_ids(2, skip), skip) == ((0, 1), frozenset())
    # Too few or unknown names: the highest-numbered make up the rest.
    assert executor_ids(2, removed_after(scale(4, 2, ("1", "x", "9")), frozenset())) == (0, 2)


@given(
    start=st.integers(0, 10),
    moves=st.lists(
        st.tuples(st.integers(0, 12), st.lists(st.integers(0, 14).map(str), max_size=4)),
        max_size=8,
    ),
)
def test_the_removed_executors_annotation_runs_exactly_the_executors_kept(
    start: int, moves: list[tuple[int, list[str]]]
) -> None:
    skip: frozenset[int] = frozenset()
    current = start
    for target, remove in moves:
        if target == current:
            continue
        before = executor_ids(current, skip)
        skip = removed_after(scale(current, target, tuple(remove)), skip)
        after = executor_ids(target, skip)
        assert len(after) == target
        assert max(skip, default=-1) < max(after, default=0)  # no gap above the last id
        if target < current:
            assert set(after) < set(before)
            gone = set(before) - set(after)
            named = [int(r) for r in dict.fromkeys(remove) if int(r) in before]
            assert gone >= set(named[: current - target])
        else:
            assert set(after) > set(before)
        current = target


def test_adapter_scales_down_around_the_executor_with_the_receiver() -> None:
    """The count and the ids it skips go in one patch: executor 2 keeps its receiver."""
    raw = job(
        executors={"replicas": 3, "min": 1, "max": 8},
        autoscaling={"enabled": True, "stabilizationWindowSeconds": 0},
    )
    raw["metadata"]["annotations"][REPLICAS_ANNOTATION] = "3"
    spec = parse_spec(raw["spec"])
    for now in range(1000, 1100, 10):
        done = evaluate(raw, spec, doc(3, 0.05, 100, float(now)), float(now))
        raw["status"] = {"autoscaler": done.status}
        if done.decision.applied:
            break
    assert (done.decision.action, done.scale_to, done.decision.remove) == (
        Action.DOWN,
        1,
        ("1", "0"),
    )
    assert done.annotations == {REPLICAS_ANNOTATION: "1", REMOVED_EXECUTORS_ANNOTATION: "0,1"}
    assert done.status["lastAction"]["removeExecutors"] == ["1", "0"]
    assert executor_ids(1, parse_executor_ids("0,1")) == (2,)


def test_a_job_whose_records_are_not_counted_is_sized_by_its_processing_time() -> None:
    """A directory input counts 0 records (its files are read on the executors): all of
    a batch's time is its work, shared; never a fixed cost that executors cannot help."""
    policy = Policy(1, 16)
    state = replace(settled(1), policy=policy.key())
    # 2.5 s for every 2 s batch on one executor, and batches queue: 2 take 1.25 s.
    m = replace(metrics(1, 2.5, records=0, queued=4), records_counted=False)
    d, after = run(m, state, 1, 1000.0, policy)
    assert (d.action, d.reason) == (Action.UP, Reason.BACKLOG), d
    assert d.target == 2 and d.predicted_ratio == 0.625
    assert "records not counted (a directory input)" in d.message
    assert d.inputs.records_counted is False and d.inputs.input_rate is None
    assert after.capacity == state.capacity  # nothing to fit a per-record cost from
    # Counted, the same zero-record batches would be all fixed cost: nothing to do.
    counted, _ = run(replace(m, records_counted=True), state, 1, 1000.0, policy)
    assert counted.reason is Reason.OVERHEAD_BOUND
    # And when its load falls, it scales down by the same measure.
    idle = replace(metrics(6, 0.2, records=0), records_counted=False)
    d, _ = run(idle, replace(settled(6), policy=policy.key()), 6, 1000.0, policy)
    assert d.action is Action.DOWN and d.target == 1


def test_a_directory_input_means_records_are_not_counted() -> None:
    base = doc(3, 0.5, 100, 1000.0)
    files = {"stream_id": 0, "kind": "FileInputDStream", "directory": "/in", "problem": None}
    m = metrics_from_status({**base, "inputs": [files]})
    assert m is not None and m.records_counted is False
    m = metrics_from_status({**base, "inputs": [{"stream_id": 0, "kind": "SocketInputDStream"}]})
    assert m is not None and m.records_counted is True
