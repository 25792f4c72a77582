"""A receiver's bad records: every one counted to the driver, warnings at a bounded rate."""

from __future__ import annotations

import logging

import pytest

from kubestream.core.protocol import BadRecords, ToDriver
from kubestream.executor.receiver import Receiver
from kubestream.executor.receiver_supervisor import ReceiverSupervisor
from kubestream.storage.block_manager import BlockManager


class Idle(Receiver):
    def on_start(self) -> None:
        pass

    def on_stop(self) -> None:
        pass


def test_bad_records_are_all_counted_and_warned_about_once_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sent: list[ToDriver] = []
    receiver = Idle()
    supervisor = ReceiverSupervisor(
        7, receiver, "exec-1", BlockManager(), sent.append, 3600.0, lambda b, blob: None
    )
    supervisor.start()
    with caplog.at_level(logging.WARNING, logger="kubestream.executor.receiver_supervisor"):
        for n in range(1, 501):
            receiver.report_bad_records("too_long", n % 3 + 1, "over 10 bytes")
        receiver.report_bad_records("undecodable", 2, "not UTF-8")
    supervisor.stop()
    counted: dict[str, int] = {}
    for message in sent:
        if isinstance(message, BadRecords):
            assert message.stream_id == 7
            counted[message.reason] = counted.get(message.reason, 0) + message.records
    expected = sum(n % 3 + 1 for n in range(1, 501))
    assert counted == {"too_long": expected, "undecodable": 2}
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2, warnings
    assert "2 records too_long" in warnings[0] and "undecodable" in warnings[1]
