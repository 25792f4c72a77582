"""A user's StreamingListener hears receivers start, report errors and stop."""

from __future__ import annotations

import time

from kubestream import Receiver, StreamingContext, StreamingListener


class Complaining(Receiver):
    def on_start(self) -> None:
        self.report_error("the source said no")

    def on_stop(self) -> None:
        pass


class Recorder(StreamingListener):
    def __init__(self) -> None:
        self.events: list[tuple[str, ...]] = []

    def on_receiver_started(self, stream_id: int, executor_id: str) -> None:
        self.events.append(("started", str(stream_id), executor_id))

    def on_receiver_error(self, stream_id: int, message: str) -> None:
        self.events.append(("error", str(stream_id), message))

    def on_receiver_stopped(self, stream_id: int) -> None:
        self.events.append(("stopped", str(stream_id)))


def test_receiver_hooks_are_called_in_order() -> None:
    ssc = StreamingContext(0.2, executors=1)
    recorder = Recorder()
    ssc.add_streaming_listener(recorder)
    stream = ssc.receiver_stream(Complaining())
    stream.foreach_rdd(lambda rdd: None)
    ssc.start()
    deadline = time.monotonic() + 10
    while len(recorder.events) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    ssc.stop(graceful=True, timeout=5)
    sid = str(stream.id)
    assert recorder.events == [
        ("error", sid, "the source said no"),
        ("started", sid, "exec-1"),
        ("stopped", sid),
    ]
