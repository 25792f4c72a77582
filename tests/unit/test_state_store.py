"""The executors' versioned state store against a plain dict per version.

Random batches of changes are committed one version after another; every version
still held must read back as the plain-Python reference, a replica fed only the
deltas must equal the primary, and rolling back to an older version (a retried
batch) must give that version exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kubestream.storage.state_store import COPY_SHARE, StateDelta, StateStore, delta_message

KEY = ("state_1", 0)
keys = st.sampled_from("abcdefgh")
deltas = st.lists(
    st.tuples(st.dictionaries(keys, st.integers(0, 9), max_size=5), st.lists(keys, max_size=3)),
    min_size=1,
    max_size=8,
)
copy_shares = st.sampled_from([0.0, COPY_SHARE, math.inf])  # always copy, mixed, never copy


def version(t: int) -> str:
    return f"state_1_{t}_0"


def apply(reference: dict[str, int], delta: StateDelta) -> dict[str, int]:
    out = dict(reference)
    out.update(delta.updated)
    for k in delta.removed:
        out.pop(k, None)
    return out


def build(
    changes: list[tuple[dict[str, int], list[str]]], share: float = COPY_SHARE
) -> tuple[StateStore, list[dict]]:
    store = StateStore(share)
    references: list[dict[str, int]] = [{"a": 1}]
    store.install(KEY, version(0), {"a": 1}, None)
    for t, (updated, removed) in enumerate(changes, start=1):
        delta = StateDelta(updated, removed, [t])
        part = store.checkout(KEY, version(t - 1))
        assert part is not None
        store.commit(part, version(t), delta)
        references.append(apply(references[-1], delta))
    return store, references


def replica_of(
    primary: StateStore,
    changes: list[tuple[dict[str, int], list[str]]],
    meanwhile: Callable[[StateStore, int], None] | None = None,
    share: float = COPY_SHARE,
) -> StateStore:
    """A replica given the primary's first version whole, then only each batch's delta;
    `meanwhile(replica, t)` runs after the delta of batch t arrived."""
    replica = StateStore(share)
    first = primary.snapshot(version(0))
    assert first is not None and replica.receive(first)
    for t, (updated, removed) in enumerate(changes, start=1):
        message = delta_message(KEY, version(t - 1), version(t), StateDelta(updated, removed))
        assert replica.receive(message)
        if meanwhile is not None:
            meanwhile(replica, t)
    return replica


@settings(max_examples=200, deadline=None)
@given(changes=deltas, share=copy_shares)
def test_every_held_version_reads_as_the_reference(changes: Any, share: float) -> None:
    store, references = build(changes, share)
    for t, reference in enumerate(references):
        found = store.read(version(t))
        assert found is not None
        entries, mapped = found
        assert dict(entries) == reference
        assert mapped == (None if t == 0 else [t])


@settings(max_examples=200, deadline=None)
@given(changes=deltas, share=copy_shares)
def test_a_replica_fed_only_deltas_equals_the_primary(changes: Any, share: float) -> None:
    primary, references = build(changes, share)
    replica = replica_of(primary, changes, share=share)
    found = replica.read(version(len(changes)))
    assert found is not None and dict(found[0]) == references[-1]
    stale = delta_message(KEY, "state_1_999_0", version(99), StateDelta({"z": 1}, []))
    assert not replica.receive(stale), "a delta on a base the replica lacks must be refused"


@settings(max_examples=200, deadline=None)
@given(changes=deltas, share=copy_shares, data=st.data())
def test_rolling_back_for_a_retried_batch_gives_the_older_version(
    changes: Any, share: float, data: st.DataObject
) -> None:
    store, references = build(changes, share)
    back = data.draw(st.integers(0, len(changes)))
    part = store.checkout(KEY, version(back))
    assert part is not None and part.data == references[back]
    assert store.read(version(len(changes))) is None or back == len(changes)


def test_dropped_versions_free_their_undo_records_and_a_dropped_head_its_partition() -> None:
    store, _ = build([({"b": 2}, []), ({"c": 3}, ["a"]), ({"d": 4}, [])])
    store.remove_prefix("state_1_0_")
    store.remove_prefix("state_1_1_")
    assert store.read(version(0)) is None
    assert dict(store.read(version(3))[0]) == {"b": 2, "c": 3, "d": 4}  # type: ignore[index]
    assert store.stats() == (2, 3)
    store.remove_prefix("state_1_3_")
    assert store.stats() == (0, 0)


@settings(max_examples=200, deadline=None)
@given(changes=deltas, share=copy_shares, data=st.data())
def test_a_replica_applying_in_the_background_reads_as_the_reference_at_any_moment(
    changes: Any, share: float, data: st.DataObject
) -> None:
    """Deltas are queued on receipt; whatever mix of background applies and reads
    happens between them, every read gives that version exactly."""
    primary, references = build(changes, share)

    def meanwhile(replica: StateStore, t: int) -> None:
        for _ in range(data.draw(st.integers(0, 2), label="background applies")):
            replica.apply_pending()
        if data.draw(st.booleans(), label="read now"):
            back = data.draw(st.integers(0, t), label="version read")
            found = replica.read(version(back))
            assert found is not None and dict(found[0]) == references[back]

    replica = replica_of(primary, changes, meanwhile, share)
    while replica.apply_pending():
        pass
    found = replica.read(version(len(changes)))
    assert found is not None and dict(found[0]) == references[-1]


def test_a_retried_batch_on_a_replica_with_queued_deltas_rolls_back_to_its_base() -> None:
    replica = StateStore()
    replica.install(KEY, version(0), {"a": 1}, None)
    assert replica.receive(delta_message(KEY, version(0), version(1), StateDelta({"b": 2}, [])))
    assert replica.receive(delta_message(KEY, version(1), version(2), StateDelta({"c": 3}, [])))
    # Batch 2 ran again on a new primary, from version 1, with other results.
    assert replica.receive(delta_message(KEY, version(1), version(2), StateDelta({"d": 4}, [])))
    assert replica.read(version(2)) == ([("a", 1), ("b", 2), ("d", 4)], None)


def test_dropping_a_queued_version_applies_it_first() -> None:
    replica = StateStore()
    replica.install(KEY, version(0), {"a": 1}, None)
    for t in (1, 2):
        message = delta_message(KEY, version(t - 1), version(t), StateDelta({f"k{t}": t}, []))
        assert replica.receive(message)
    replica.remove_prefix("state_1_1_")
    assert replica.read(version(2)) == ([("a", 1), ("k1", 1), ("k2", 2)], None)
    assert not replica.apply_pending()
