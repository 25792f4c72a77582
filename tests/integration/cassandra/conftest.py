"""One real Cassandra for this package's tests, started by hack/brokers/cassandra.sh.

Package-scoped, so the server starts before the first Cassandra test and stops
after the last one: CI's two cores never run it beside another test JVM. The
first run on a machine fetches cassandra-all from Maven Central into
$KUBESTREAM_CACHE.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.brokers import CassandraServer, start_cassandra


@pytest.fixture(scope="package")
def cassandra_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CassandraServer]:
    server = start_cassandra(tmp_path_factory.mktemp("cassandra"))
    try:
        yield server
    finally:
        server.broker.stop()
