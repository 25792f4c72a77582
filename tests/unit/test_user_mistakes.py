"""Every user mistake in the public API raises ConfigError naming the argument and its value."""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubestream import ConfigError, DStream, Receiver, State, StateSpec, StreamingContext
from kubestream.clock import ManualClock


@pytest.fixture(scope="module")
def ssc() -> Iterator[StreamingContext]:
    context = StreamingContext(1.0, clock=ManualClock(), executors=1)
    yield context
    context.stop()


def pairs(ssc: StreamingContext) -> DStream[tuple[str, int]]:
    return ssc.queue_stream([[("a", 1)]])


def keep(key: Any, value: Any, state: State) -> Any:
    return value


class Idle(Receiver):
    def on_start(self) -> None:
        pass

    def on_stop(self) -> None:
        pass


# (mistake, the argument's name and the value's repr the message must carry)
MISTAKES: dict[str, tuple[Callable[[StreamingContext], object], tuple[str, ...]]] = {
    "batch interval 0": (lambda s: StreamingContext(0), ("batch_interval", "got 0")),
    "batch interval 2 h": (lambda s: StreamingContext(7200), ("batch_interval", "7200")),
    "batch interval text": (lambda s: StreamingContext("1"), ("batch_interval", "'1'")),  # type: ignore[arg-type]
    "failure policy": (
        lambda s: StreamingContext(1, on_batch_failure="abort"),
        ("on_batch_failure", "'abort'"),
    ),
    "max rate 0": (lambda s: StreamingContext(1, max_rate=0), ("max_rate", "got 0")),
    "graceful timeout": (
        lambda s: StreamingContext(1, graceful_timeout=-1),
        ("graceful_timeout", "-1"),
    ),
    "checkpoint interval": (
        lambda s: StreamingContext(1, checkpoint_interval=0),
        ("checkpoint_interval", "got 0"),
    ),
    "no executors": (lambda s: StreamingContext(1, executors=0), ("executors", "got 0")),
    "rate 0": (lambda s: s.rate_stream(0), ("records_per_second", "got 0")),
    "rate text": (lambda s: s.rate_stream("9"), ("records_per_second", "'9'")),  # type: ignore[arg-type]
    "port": (lambda s: s.socket_text_stream("localhost", 70000), ("port", "70000")),
    "record size": (
        lambda s: s.socket_text_stream("localhost", 9999, max_record_bytes=0),
        ("max_record_bytes", "got 0"),
    ),
    "decode policy": (
        lambda s: s.text_file_stream("/in", on_decode_error="ignore"),
        ("on_decode_error", "'ignore'"),
    ),
    "file remember duration": (
        lambda s: s.text_file_stream("/in", min_remember_duration=-5),
        ("min_remember_duration", "-5"),
    ),
    "receiver": (lambda s: s.receiver_stream("kafka"), ("receiver", "'kafka'")),  # type: ignore[arg-type]
    "empty union": (lambda s: s.union(), ("union", "[]")),
    "union of a non-stream": (
        lambda s: pairs(s).union([1, 2]),  # type: ignore[arg-type]
        ("union", "[1, 2]"),
    ),
    "union of slides": (
        lambda s: s.union(pairs(s), pairs(s).window(2, 2)),
        ("slides", "[1.0, 2.0]"),
    ),
    "window 0": (lambda s: pairs(s).window(0), ("window", "got 0")),
    "window not a multiple": (lambda s: pairs(s).window(1.5), ("window", "1.5", "1 s")),
    "slide not a multiple": (lambda s: pairs(s).window(2, 0.5), ("slide", "0.5")),
    "window of a window": (
        lambda s: pairs(s).window(4, 2).window(3),
        ("window", "got 3", "2 s"),
    ),
    "incremental window": (
        lambda s: pairs(s).reduce_by_key_and_window(operator.add, operator.sub, 3, 1.5),
        ("slide", "1.5"),
    ),
    "window without length": (
        lambda s: pairs(s).reduce_by_key_and_window(operator.add),
        ("window", "got 0"),
    ),
    "count by window": (lambda s: pairs(s).count_by_window(2.5), ("window", "2.5")),
    "reduce partitions": (
        lambda s: pairs(s).reduce_by_key(operator.add, 0),
        ("num_partitions", "got 0"),
    ),
    "group partitions": (lambda s: pairs(s).group_by_key(-2), ("num_partitions", "-2")),
    "join partitions": (
        lambda s: pairs(s).join(pairs(s), 2.5),  # type: ignore[arg-type]
        ("num_partitions", "2.5"),
    ),
    "repartition": (lambda s: pairs(s).repartition(0), ("num_partitions", "got 0")),
    "state partitions": (
        lambda s: pairs(s).update_state_by_key(lambda v, o: o, 0),
        ("num_partitions", "got 0"),
    ),
    "pprint": (lambda s: pairs(s).pprint(-1), ("num", "-1")),
    "map_with_state spec": (
        lambda s: pairs(s).map_with_state("spec"),  # type: ignore[arg-type]
        ("spec", "'spec'"),
    ),
    "state timeout": (lambda s: StateSpec.of(keep, timeout=0), ("timeout", "got 0")),
    "state function": (lambda s: StateSpec.of("f"), ("function", "'f'")),  # type: ignore[arg-type]
    "state spec partitions": (
        lambda s: StateSpec(keep, num_partitions=0),
        ("num_partitions", "got 0"),
    ),
    "transform result": (
        lambda s: pairs(s).transform(lambda rdd: 5).get_or_compute(1000),
        ("transform", "got 5"),
    ),
    "rdd partitions": (
        lambda s: s.engine.parallelize([(1, 2)]).reduce_by_key(operator.add, 0),
        ("num_partitions", "got 0"),
    ),
    "rdd repartition": (
        lambda s: s.engine.parallelize([1]).repartition(-1),
        ("num_partitions", "-1"),
    ),
    "rdd partition_by": (
        lambda s: s.engine.parallelize([(1, 2)]).partition_by(0),
        ("num_partitions", "got 0"),
    ),
    "store outside an executor": (lambda s: Idle().store(1), ("Idle", "not running")),
    "update a timing-out state": (
        lambda s: State(1, True, timing_out=True).update(2),
        ("timing out",),
    ),
    "stream partition_by": (lambda s: pairs(s).partition_by(0), ("num_partitions", "got 0")),
    "group by key and window": (
        lambda s: pairs(s).group_by_key_and_window(1.5),
        ("window", "1.5"),
    ),
    "stream checkpoint interval": (lambda s: pairs(s).checkpoint(0.5), ("interval", "0.5")),
    "slice before start": (lambda s: pairs(s).slice(0, 1000), ("started",)),
    "slice time in seconds": (lambda s: pairs(s).slice(1.5, 2000), ("begin", "1.5")),  # type: ignore[arg-type]
    "remember": (lambda s: s.remember(-1), ("duration", "-1")),
    "await timeout": (lambda s: s.await_termination_or_timeout(None), ("timeout", "None")),  # type: ignore[arg-type]
    "binary record length": (
        lambda s: s.binary_records_stream("/tmp", 0),
        ("record_length", "got 0"),
    ),
    "transform of no streams": (lambda s: s.transform([], lambda rdds: rdds[0]), ("streams",)),
    "transform of a non-stream": (
        lambda s: s.transform([pairs(s), 3], lambda rdds: rdds[0]),  # type: ignore[list-item]
        ("streams", "3"),
    ),
    "rdd sort partitions": (
        lambda s: s.engine.parallelize([1]).sort_by(abs, num_partitions=0),
        ("num_partitions", "got 0"),
    ),
    "rdd sample fraction": (
        lambda s: s.engine.parallelize([1]).sample(False, 2),
        ("fraction", "2"),
    ),
}


@pytest.mark.parametrize("mistake", MISTAKES)
def test_a_mistake_raises_config_error_naming_the_value(
    ssc: StreamingContext, mistake: str
) -> None:
    make, words = MISTAKES[mistake]
    with pytest.raises(ConfigError) as raised:
        make(ssc)
    assert isinstance(raised.value, ValueError)  # as PySpark's, so ported code catches it
    message = str(raised.value)
    assert "\n" not in message
    for word in words:
        assert word in message


@given(
    st.one_of(
        st.integers(max_value=0),
        st.floats(allow_nan=False),
        st.booleans(),
        st.text(max_size=3),
    )
)
def test_any_invalid_partition_count_is_named(value: Any) -> None:
    ssc = StreamingContext(1.0, clock=ManualClock(), executors=1)
    try:
        with pytest.raises(ConfigError) as raised:
            ssc.queue_stream([]).count_by_value(value)
    finally:
        ssc.stop()
    assert f"num_partitions must be a whole number of at least 1 or None, got {value!r}" == str(
        raised.value
    )


@given(st.floats(min_value=0.001, max_value=100, allow_nan=False))
def test_a_window_is_accepted_exactly_when_a_multiple_of_the_slide(window: float) -> None:
    ssc = StreamingContext(0.5, clock=ManualClock(), executors=1)
    try:
        stream = ssc.queue_stream([])
        if round(window * 1000) % 500 == 0:
            assert stream.window(window).window_ms == round(window * 1000)  # type: ignore[attr-defined]
        else:
            with pytest.raises(ConfigError, match=f"window must be a multiple .* got {window!r}"):
                stream.window(window)
    finally:
        ssc.stop()


def test_valid_arguments_are_accepted(ssc: StreamingContext) -> None:
    """The checks refuse mistakes only: the same operators with good values build streams."""
    s = pairs(ssc)
    built = [
        s.window(2, 1),
        s.reduce_by_key_and_window(operator.add, operator.sub, 3, 1, 2),
        s.reduce_by_key(operator.add, 3),
        s.update_state_by_key(lambda v, o: o, None),
        s.map_with_state(StateSpec.of(keep, timeout=2.5, num_partitions=2)),
        ssc.union(s, s),
        ssc.rate_stream(0.5),
        ssc.text_file_stream("/in", min_remember_duration=0, encoding="latin-1"),
        ssc.socket_text_stream("localhost", 9999, max_record_bytes=1),
    ]
    assert all(isinstance(stream, DStream) for stream in built)
    ssc.engine.parallelize([(1, 2)]).partition_by(1)
