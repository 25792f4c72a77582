#!/usr/bin/env bash
# A single-node Cassandra on 127.0.0.1, for the integration tests, the benchmarks
# and trying things by hand. Jars come from Maven Central once (cassandra-all,
# pinned in hack/versions.env) and are cached under $KUBESTREAM_CACHE (default
# ~/.cache/kubestream); cassandra-all ships no cassandra.yaml and no start
# script, so this writes both the yaml and a logback config at run time.
#
#   hack/brokers/cassandra.sh install    fetch the jars; prints their directory
#   hack/brokers/cassandra.sh up DIR     start with data in DIR, wait until a driver
#                                        session answers; last lines CASSANDRA_*=...
#   hack/brokers/cassandra.sh down DIR   stop the server started in DIR by its PID
#                                        (SIGTERM drains the commit log, ~6 s)
#
# Environment for `up`: CASSANDRA_PORT (native protocol), CASSANDRA_STORAGE_PORT
# (free ports if unset), CASSANDRA_SSL_KEYSTORE (a PEM file: unencrypted PKCS#8
# key, then the certificate chain) to accept TLS as well as plain connections on
# the native port, PYTHON (an interpreter with cassandra-driver, for the
# readiness probe).
set -euo pipefail
# shellcheck source=hack/brokers/lib.sh
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

lib="$cache/cassandra-$CASSANDRA_VERSION/lib"

install() {
  maven_jars "$here/cassandra" "$lib" -Dcassandra.version="$CASSANDRA_VERSION"
}

# Java 17's module flags, as upstream's conf/jvm17-server.options lists them.
java17_modules=(
  -Djdk.attach.allowAttachSelf=true
  --add-exports java.base/jdk.internal.misc=ALL-UNNAMED
  --add-exports java.base/jdk.internal.ref=ALL-UNNAMED
  --add-exports java.base/sun.nio.ch=ALL-UNNAMED
  --add-exports java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED
  --add-exports java.rmi/sun.rmi.registry=ALL-UNNAMED
  --add-exports java.rmi/sun.rmi.server=ALL-UNNAMED
  --add-exports java.sql/java.sql=ALL-UNNAMED
  --add-exports java.base/java.lang.ref=ALL-UNNAMED
  --add-exports jdk.unsupported/sun.misc=ALL-UNNAMED
  --add-opens java.base/java.lang.module=ALL-UNNAMED
  --add-opens java.base/jdk.internal.loader=ALL-UNNAMED
  --add-opens java.base/jdk.internal.ref=ALL-UNNAMED
  --add-opens java.base/jdk.internal.reflect=ALL-UNNAMED
  --add-opens java.base/jdk.internal.math=ALL-UNNAMED
  --add-opens java.base/jdk.internal.module=ALL-UNNAMED
  --add-opens java.base/jdk.internal.util.jar=ALL-UNNAMED
  --add-opens jdk.management/com.sun.management.internal=ALL-UNNAMED
  --add-opens java.base/sun.nio.ch=ALL-UNNAMED
  --add-opens java.base/java.io=ALL-UNNAMED
  --add-opens java.base/java.nio=ALL-UNNAMED
  --add-opens java.base/java.util.concurrent=ALL-UNNAMED
  --add-opens java.base/java.util=ALL-UNNAMED
  --add-opens java.base/java.util.concurrent.atomic=ALL-UNNAMED
  --add-opens java.base/java.lang=ALL-UNNAMED
  --add-opens java.base/java.math=ALL-UNNAMED
  --add-opens java.base/java.lang.reflect=ALL-UNNAMED
  --add-opens java.base/java.net=ALL-UNNAMED
)

up() {
  local dir
  mkdir -p "$1"
  dir=$(cd "$1" && pwd)
  install
  if [ -f "$dir/cassandra.pid" ] && kill -0 "$(cat "$dir/cassandra.pid")" 2>/dev/null; then
    echo "a server is already running from $dir (pid $(cat "$dir/cassandra.pid"))" >&2
    exit 1
  fi
  local port=${CASSANDRA_PORT:-$(free_port)} storage=${CASSANDRA_STORAGE_PORT:-$(free_port)}
  local jamm
  jamm=$(ls "$lib"/jamm-*.jar)
  # Small-footprint values measured in ../shared BROKERS.md: ~650 MB resident, ready in ~6 s.
  cat >"$dir/cassandra.yaml" <<YAML
cluster_name: kubestream-test
num_tokens: 1
initial_token: 0
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "127.0.0.1:$storage"
listen_address: 127.0.0.1
rpc_address: 127.0.0.1
storage_port: $storage
native_transport_port: $port
start_native_transport: true
endpoint_snitch: SimpleSnitch
data_file_directories: [$dir/data]
commitlog_directory: $dir/commitlog
saved_caches_directory: $dir/saved_caches
hints_directory: $dir/hints
cdc_raw_directory: $dir/cdc_raw
commitlog_sync: periodic
commitlog_sync_period: 10000ms
commitlog_segment_size: 8MiB
authenticator: PasswordAuthenticator
authorizer: AllowAllAuthorizer
concurrent_reads: 4
concurrent_writes: 8
concurrent_counter_writes: 4
concurrent_compactors: 1
key_cache_size: 8MiB
counter_cache_size: 1MiB
file_cache_size: 32MiB
memtable_heap_space: 32MiB
memtable_offheap_space: 32MiB
native_transport_max_threads: 16
batch_size_warn_threshold: 5KiB
batch_size_fail_threshold: 50KiB
YAML
  if [ -n "${CASSANDRA_SSL_KEYSTORE:-}" ]; then
    cat >>"$dir/cassandra.yaml" <<YAML
client_encryption_options:
  enabled: true
  optional: true
  ssl_context_factory:
    class_name: org.apache.cassandra.security.PEMBasedSslContextFactory
  keystore: $CASSANDRA_SSL_KEYSTORE
YAML
  fi
  cat >"$dir/logback.xml" <<XML
<configuration>
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%-5level [%thread] %date{ISO8601} %logger{0}: %msg%n</pattern></encoder>
  </appender>
  <root level="WARN"><appender-ref ref="STDOUT"/></root>
  <logger name="org.apache.cassandra.service.CassandraDaemon" level="INFO"/>
  <logger name="org.apache.cassandra.transport" level="INFO"/>
</configuration>
XML
  start_bg "$dir" cassandra java -Xms256m -Xmx256m -Xmn64m "${jvm_small[@]}" -Xss1m -XX:+ExitOnOutOfMemoryError \
    "${java17_modules[@]}" -javaagent:"$jamm" -Djava.awt.headless=true \
    -Dcassandra.config="file://$dir/cassandra.yaml" \
    -Dlogback.configurationFile="$dir/logback.xml" \
    -Dcassandra.storagedir="$dir" -Dcassandra.logdir="$dir/logs" \
    -Dcassandra-foreground=yes -Dcassandra.skip_wait_for_gossip_to_settle=0 \
    -Dcassandra.superuser_setup_delay_ms=0 -Dcassandra.jmx.local.port=0 \
    -cp "$lib/*" org.apache.cassandra.service.CassandraDaemon
  wait_ready "$dir" cassandra cassandra "127.0.0.1:$port"
  echo "CASSANDRA_PID=$(cat "$dir/cassandra.pid")"
  echo "CASSANDRA_CONTACT_POINT=127.0.0.1:$port"
}

case ${1:-} in
  install) install && echo "$lib" ;;
  up) up "${2:?usage: cassandra.sh up DIR}" ;;
  down) stop_pid "${2:?usage: cassandra.sh down DIR}" cassandra 30 ;;
  *) echo "usage: cassandra.sh install | up DIR | down DIR" >&2; exit 2 ;;
esac
