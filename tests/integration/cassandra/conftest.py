"""One real Cassandra for this package's tests, started by hack/brokers/cassandra.sh.

Package-scoped, so the server starts before the first Cassandra test and stops
after the last one: CI's two cores never run it beside another test JVM. The
first run on a machine fetches cassandra-all from Maven Central into
$KUBESTREAM_CACHE.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import Cluster as CqlCluster
from cassandra.cluster import Session

from kubestream import CassandraConnection
from tests.brokers import CassandraServer, start_cassandra
from tests.integration.conftest import Cluster, start_cluster, stop_cluster

USERNAME_ENV = "KUBESTREAM_TEST_CASSANDRA_USERNAME"
PASSWORD_ENV = "KUBESTREAM_TEST_CASSANDRA_PASSWORD"
CA_ENV = "KUBESTREAM_TEST_CASSANDRA_CA"


@pytest.fixture(scope="package")
def cassandra_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CassandraServer]:
    server = start_cassandra(tmp_path_factory.mktemp("cassandra"))
    try:
        yield server
    finally:
        server.broker.stop()


@pytest.fixture(scope="package")
def cql(cassandra_server: CassandraServer) -> Iterator[Session]:
    """The tests' own session (plain cassandra-driver), for schemas and reading back."""
    cluster = CqlCluster(
        [cassandra_server.host],
        port=cassandra_server.port,
        auth_provider=PlainTextAuthProvider(cassandra_server.username, cassandra_server.password),
    )
    try:
        yield cluster.connect()
    finally:
        cluster.shutdown()


@pytest.fixture
def keyspace(cql: Session) -> str:
    """A fresh keyspace (replication 1) for one test."""
    name = f"ks_{uuid.uuid4().hex[:10]}"
    cql.execute(
        f"CREATE KEYSPACE {name} WITH replication = {{'class': 'SimpleStrategy',"
        " 'replication_factor': 1}"
    )
    return name


@pytest.fixture(scope="package")
def connection(cassandra_server: CassandraServer) -> Iterator[CassandraConnection]:
    """Settings that name the credentials by environment variable, set here (before any
    executor process starts, so executors inherit them) as a Secret would be."""
    os.environ[USERNAME_ENV] = cassandra_server.username
    os.environ[PASSWORD_ENV] = cassandra_server.password
    os.environ[CA_ENV] = cassandra_server.ca_location.read_text()
    try:
        yield CassandraConnection(
            contact_points=(cassandra_server.host,),
            port=cassandra_server.port,
            username_env=USERNAME_ENV,
            password_env=PASSWORD_ENV,
        )
    finally:
        del os.environ[USERNAME_ENV], os.environ[PASSWORD_ENV], os.environ[CA_ENV]


@pytest.fixture(scope="package")
def executors(connection: CassandraConnection) -> Iterator[Cluster]:
    """A driver endpoint and two executor processes that can read the credentials."""
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        stop_cluster(cluster)
