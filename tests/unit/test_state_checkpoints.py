"""Incremental data checkpoints of state: only changed keys are written, with full snapshots
every few, and recovery from a full and its deltas equals plain-Python references.

Three levels: the executors' record of what changed (StateStore.changes) against the
reference versions it must reproduce; the chain of checkpoint files (StateCheckpoints)
with any file corrupted; and whole jobs on in-process executors, stopped and resumed,
whose delta files must follow the batch's changes, not the state's size.
"""

from __future__ import annotations

import os
import pickle
import secrets
from collections import Counter
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubestream import StreamingContext
from kubestream.clock import ManualClock
from kubestream.storage import state_store
from kubestream.storage.state_checkpoints import DELTA, FULL, StateCheckpoints
from kubestream.storage.state_store import StateDelta, StateStore, delta_message
from tests.unit.test_recovery import TEXTS, Job, expiring_reference, expiring_totals, totals

KEY = ("state_1", 0)
keys = st.sampled_from("abcdefghij")
changes_strategy = st.lists(
    st.tuples(st.dictionaries(keys, st.integers(0, 9), max_size=5), st.lists(keys, max_size=3)),
    min_size=1,
    max_size=12,
)


def version(t: int) -> str:
    return f"state_1_{t}_0"


def commit(reference: dict[str, int], updated: dict[str, int], removed: list[str]) -> dict:
    """What StateStore.commit makes of a version: updates, then removals."""
    out = {**reference, **updated}
    for k in removed:
        out.pop(k, None)
    return out


def apply(reference: dict[str, int], updated: dict[str, int], removed: list[str]) -> dict:
    """A checkpoint delta applied: its updated and removed keys are disjoint."""
    assert not set(updated) & set(removed)
    return commit(reference, updated, removed)


@settings(max_examples=200, deadline=None)
@given(
    changes=changes_strategy,
    asks=st.lists(st.integers(1, 12), max_size=6),
    replica=st.booleans(),
    forget_after=st.sampled_from([0, 1, 1024]),
)
def test_changes_since_a_checkpoint_rebuild_every_version(
    changes: Any, asks: list[int], replica: bool, forget_after: int
) -> None:
    """Checkpoints at random versions, each the previous one plus `changes`, equal the
    reference; a record that forgot too much answers None, never a wrong delta."""
    primary, copy = StateStore(), StateStore()
    references = [{"a": 1}]
    primary.install(KEY, version(0), {"a": 1}, None)
    copy.install(KEY, version(0), {"a": 1}, None)
    for t, (updated, removed) in enumerate(changes, start=1):
        delta = StateDelta(updated, removed)
        part = primary.checkout(KEY, version(t - 1))
        assert part is not None
        with mock.patch.object(state_store, "FORGET_REMOVED_AFTER", forget_after):
            primary.commit(part, version(t), delta)
            assert copy.receive(delta_message(KEY, version(t - 1), version(t), delta))
        references.append(commit(references[-1], updated, removed))
    store = copy if replica else primary
    last_checkpoint = 0
    for at in sorted({min(a, len(changes)) for a in asks}):
        found = store.changes(version(at), last_checkpoint)
        if found is None:
            assert forget_after < 1024, "only a record that forgot may refuse"
            continue  # the driver writes a full checkpoint of version(at) instead
        updated, removed = found
        assert apply(references[last_checkpoint], updated, removed) == references[at]
        last_checkpoint = at


def test_changes_of_a_version_behind_the_head_are_its_values() -> None:
    store = StateStore()
    store.install(KEY, version(0), {"a": 1, "b": 2}, None)
    for t, delta in enumerate([StateDelta({"a": 5}, ["b"]), StateDelta({"b": 7, "c": 1}, [])]):
        part = store.checkout(KEY, version(t))
        assert part is not None
        store.commit(part, version(t + 1), delta)
    at_1 = store.changes(version(1), 0)
    assert at_1 is not None
    # "c", changed after version 1, is named too (a key changed since is not told from one
    # changed before): as absent, which it was at version 1.
    assert at_1 == ({"a": 5}, ["b", "c"])
    assert apply({"a": 1, "b": 2}, *at_1) == {"a": 5}
    assert store.changes(version(2), 1) == ({"b": 7, "c": 1}, [])
    assert store.changes(version(2), 0) is None, "changes before the last asked are forgotten"


def test_a_peer_asking_for_changes_gets_what_the_holder_tells() -> None:
    """A checkpoint task placed away from the state fetches its changes from a holder."""
    store = StateStore()
    store.install(KEY, version(0), {"a": 1}, None)
    part = store.checkout(KEY, version(0))
    assert part is not None
    store.commit(part, version(1), StateDelta({"b": 2}, ["a"]))
    blob = store.serve(state_store.changes_id(version(1), 0))
    assert blob is not None and pickle.loads(blob) == ({"b": 2}, ["a"])
    assert store.serve(state_store.changes_id(version(1), 0)) == blob, "a retried checkpoint"
    assert store.serve(state_store.changes_id(version(7), 1)) is None, "not held"
    full = store.serve(version(1))
    assert full is not None and pickle.loads(full)[3] == {"b": 2}


def test_the_change_record_stays_bounded_under_key_churn() -> None:
    store = StateStore()
    store.install(KEY, version(0), {}, None)
    for t in range(1, 3001):
        part = store.checkout(KEY, version(t - 1))
        assert part is not None
        store.commit(part, version(t), StateDelta({f"k{t}": t}, [f"k{t - 1}"]))
        store.remove_prefix(version(t - 1))
    (part,) = store._parts.values()
    assert len(part.changed_at) <= 2 * len(part.data) + state_store.FORGET_REMOVED_AFTER + 1


FUNCTION_SCOPED = [HealthCheck.function_scoped_fixture]
STATES = st.lists(st.dictionaries(keys, st.integers(0, 99), max_size=10), min_size=1, max_size=30)


@settings(max_examples=60, deadline=None, suppress_health_check=FUNCTION_SCOPED)
@given(states=STATES, max_deltas=st.integers(1, 5), corrupt=st.integers(-1, 40))
def test_recovery_from_a_full_and_its_deltas_is_the_reference(
    tmp_path_factory: pytest.TempPathFactory, states: list[dict], max_deltas: int, corrupt: int
) -> None:
    directory = str(tmp_path_factory.mktemp("chain"))
    key = secrets.token_bytes(32)
    chain = StateCheckpoints(directory, keep_fulls=2, max_deltas=max_deltas, key=key)
    written: dict[int, dict] = {}
    for time, state in enumerate(states, start=1):
        base = chain.delta_base()
        if base is None:
            chain.write_full(time, {"s": list(state.items())})
        else:
            before = written[base]
            updated = {k: v for k, v in state.items() if before.get(k) != v}
            removed = [k for k in before if k not in state]
            chain.write_delta(time, {"s": (updated, removed)})
        written[time] = state
        files = [n for n in os.listdir(directory) if not n.startswith(".")]
        assert len(files) <= 2 * (max_deltas + 1)
    names = sorted(os.listdir(directory))
    if 0 <= corrupt < len(names):
        victim = Path(directory, names[corrupt])
        victim.write_bytes(victim.read_bytes()[:-3])
    found = StateCheckpoints(directory, key=key).read_newest(len(states))
    if corrupt < 0 or corrupt >= len(names):
        assert found is not None and found[0] == len(states)
    if found is not None:
        time, data = found
        assert dict(data["s"]) == written[time]


def test_an_old_chain_after_a_recovered_one_is_not_applied(tmp_path: Path) -> None:
    key = secrets.token_bytes(32)
    chain = StateCheckpoints(str(tmp_path), max_deltas=5, key=key)
    chain.write_full(1, {"s": [("a", 1)]})
    chain.write_delta(2, {"s": ({"a": 2}, [])})
    chain.write_delta(3, {"s": ({"a": 3}, [])})
    chain.deltas.remove(DELTA, 2)  # a gap: 3 builds on 2, which is gone
    assert StateCheckpoints(str(tmp_path), key=key).read_newest(3) == (1, {"s": [("a", 1)]})


def checkpoint_bytes(tmp: Path, keys_held: int, changed: int) -> tuple[list[int], list[int]]:
    """(full sizes, delta sizes) of a running count holding `keys_held` keys, `changed` of
    them updated per batch, checkpointed every batch."""
    inbox = tmp / "in"
    inbox.mkdir(parents=True)
    directory = tmp / "checkpoint"
    clock = ManualClock(1000.0)
    ssc = StreamingContext(1.0, checkpoint=str(directory), clock=clock, checkpoint_interval=1)
    initial = [(f"key{i:06d}", i) for i in range(keys_held)]
    ssc.text_file_stream(str(inbox)).map(lambda w: (w, 1)).update_state_by_key(
        lambda vs, old: sum(vs) + (old or 0), initial=initial
    ).foreach_rdd(lambda rdd: None)
    ssc.start()
    try:
        for batch in range(8):
            name = inbox / f"f{batch}"
            name.with_suffix(".tmp").write_text(
                "\n".join(f"key{(batch * changed + i) % keys_held:06d}" for i in range(changed))
            )
            name.with_suffix(".tmp").rename(name)
            clock.advance(1.0)
            info = ssc.wait_for_batch(round(clock.now() * 1000), 60)
            assert info is not None and not info.failed
    finally:
        ssc.stop()
    sizes: dict[str, list[int]] = {FULL: [], DELTA: []}
    for path in sorted(directory.iterdir(), key=lambda p: p.name):
        prefix = path.name.split("-")[0]
        if prefix in sizes:
            sizes[prefix].append(path.stat().st_size)
    return sizes[FULL], sizes[DELTA]


def test_checkpoint_bytes_follow_the_changes_not_the_state(tmp_path: Path) -> None:
    small_full, small_deltas = checkpoint_bytes(tmp_path / "small", 2_000, 20)
    large_full, large_deltas = checkpoint_bytes(tmp_path / "large", 20_000, 20)
    _, more_deltas = checkpoint_bytes(tmp_path / "more", 20_000, 200)
    assert len(small_deltas) == len(large_deltas) == len(more_deltas) == 7
    assert min(large_full) > 8 * max(small_full), "a full snapshot holds the whole state"
    # Ten times the state, same changes: deltas the same size (keys are as long).
    assert max(large_deltas) < 1.2 * max(small_deltas)
    # Ten times the changes: deltas about ten times larger, still far below a full one.
    assert 6 * max(large_deltas) < min(more_deltas) < min(large_full) / 10


def test_a_job_resumes_exactly_from_a_full_and_its_deltas(tmp_path: Path) -> None:
    job = Job(tmp_path, totals)
    clock = ManualClock(1000.0)
    job.run(clock, 7)  # data checkpoints every 3 batches: a full, then a delta
    names = os.listdir(job.checkpoint)
    assert any(n.startswith(f"{DELTA}-") for n in names), names
    job.run(ManualClock(clock.now()), 7)
    final = job.outputs[max(job.outputs)]
    assert final == sorted(Counter(w for t in TEXTS for w in t.split()).items())


def test_expiring_state_resumes_exactly_from_deltas_with_removed_keys(tmp_path: Path) -> None:
    job = Job(tmp_path, expiring_totals)
    clock = ManualClock(1000.0)
    job.run(clock, 7)
    assert any(n.startswith(f"{DELTA}-") for n in os.listdir(job.checkpoint))
    job.run(ManualClock(clock.now()), 7)
    assert [job.outputs[t] for t in sorted(job.outputs)] == expiring_reference(14)
