"""One real RabbitMQ node for this package's tests, started by hack/brokers/rabbitmq.sh
(which apt-gets the pinned rabbitmq-server on first use) and stopped after them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.brokers import RabbitMQBroker, start_rabbitmq


@pytest.fixture(scope="package")
def rabbitmq_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitMQBroker]:
    broker = start_rabbitmq(tmp_path_factory.mktemp("rabbitmq"))
    try:
        yield broker
    finally:
        broker.broker.stop()
