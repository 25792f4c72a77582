"""kubestream's autoscaler against Spark's dynamic allocation and an HPA-style rule.

The same load traces run through the three rules on the simulated job of
``autoscaler_sim`` (deterministic: seeded noise). The assertions are the goals
of issue 11, on outcomes (actions, delay, executor counts), not on timings;
docs/autoscaling.md holds the table this produces.
"""

import functools
import itertools
import re

import pytest

from tests.operator.autoscaler_sim import (
    HOUR,
    REPO_DOC,
    TRACES,
    Outcome,
    Trace,
    compare,
    kubestream_policy,
    table,
)

POLICY = kubestream_policy()
BY_NAME = {t.name: t for t in TRACES}


@functools.cache
def outcomes(name: str) -> tuple[Outcome, Outcome, Outcome]:
    ours, spark, hpa = compare(BY_NAME[name])
    return ours, spark, hpa


def _right_sized(trace: Trace, outcome: Outcome) -> bool:
    """Whether a rule ends no more than one executor above the best count."""
    end = trace.seconds
    best = trace.model.best(trace.rate(end), POLICY.target_utilization, POLICY.max_executors)
    return outcome.final_executors <= best + 1


@pytest.mark.parametrize("name", list(BY_NAME))
def test_delay_no_worse_than_either_rule(name: str) -> None:
    ours, *others = outcomes(name)
    for other in others:
        assert ours.max_delay <= other.max_delay, other.rule
        assert ours.delay_over_interval <= other.delay_over_interval, other.rule


@pytest.mark.parametrize("name", list(BY_NAME))
def test_no_more_actions_than_a_rule_that_ends_right_sized(name: str) -> None:
    """A rule that stays over-provisioned saves actions; it must then cost more executor-hours."""
    trace = BY_NAME[name]
    ours, *others = outcomes(name)
    assert _right_sized(trace, ours)
    for other in others:
        if _right_sized(trace, other):
            assert ours.actions <= other.actions, other.rule
        else:
            assert ours.executor_seconds < other.executor_seconds, other.rule


@pytest.mark.parametrize("name", list(BY_NAME))
def test_no_up_down_reversal_within_a_cooldown(name: str) -> None:
    actions = outcomes(name)[0].job.actions
    for (t0, a0, b0), (t1, a1, b1) in itertools.pairwise(actions):
        if (b0 - a0) * (b1 - a1) < 0:
            assert t1 - t0 >= POLICY.scale_down_cooldown, actions


def test_steady_noisy_load_converges_then_never_acts() -> None:
    ours = outcomes("steady")[0]
    assert ours.actions >= 1  # it starts on too few executors
    assert [a for a in ours.job.actions if a[0] > 0.5 * HOUR] == []
    trace = BY_NAME["steady"]
    rate = trace.rate(0)
    assert ours.final_executors == trace.model.best(
        rate, POLICY.target_utilization, POLICY.max_executors
    )


def _in_band(trace: Trace, executors: int, at: float) -> bool:
    ratio = trace.model.ratio(trace.rate(at), executors)
    return POLICY.scale_down_threshold <= ratio <= POLICY.scale_up_threshold


@pytest.mark.parametrize("name", ["step x2", "step x4", "step down to half"])
def test_a_step_lands_in_the_target_band_within_two_actions(name: str) -> None:
    trace = BY_NAME[name]
    ours = outcomes(name)[0]
    assert trace.step_at is not None
    after = [a for a in ours.job.actions if a[0] >= trace.step_at]
    assert len(after) <= 2, after
    end = trace.seconds
    assert _in_band(trace, ours.final_executors, end)
    best = trace.model.best(trace.rate(end), POLICY.target_utilization, POLICY.max_executors)
    assert ours.final_executors <= best + 1
    # Never more than one above the best count at any moment after the step.
    assert max(b for _, _, b in after or [(0, 0, ours.final_executors)]) <= best + 1


def test_a_load_executors_cannot_help_adds_none_and_says_why() -> None:
    ours, spark, hpa = outcomes("executors cannot help")
    assert ours.actions == 0
    assert spark.actions > 0 and hpa.actions > 0
    assert ours.executor_seconds < min(spark.executor_seconds, hpa.executor_seconds)


def test_docs_table_is_current() -> None:
    doc = REPO_DOC.read_text()
    found = re.search(r"<!-- simulation table -->\n(.*?)\n<!-- end -->", doc, re.S)
    assert found, f"{REPO_DOC} lacks the simulation table markers"
    assert found.group(1) == table(), "regenerate with: python -m tests.operator.autoscaler_sim"
