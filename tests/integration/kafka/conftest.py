"""One real Kafka broker for this package's tests, started by hack/brokers/kafka.sh and
stopped after them, so no other package's broker JVM runs beside it on CI's two cores.

The first run on a machine fetches the broker's jars from Maven Central into
$KUBESTREAM_CACHE; later runs start it in a few seconds.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.brokers import KafkaBroker, start_kafka


@pytest.fixture(scope="package")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    broker = start_kafka(tmp_path_factory.mktemp("kafka"))
    try:
        yield broker
    finally:
        broker.broker.stop()
