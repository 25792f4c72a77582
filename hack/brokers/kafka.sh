#!/usr/bin/env bash
# A single-node Kafka broker in KRaft mode (combined broker and controller) on
# 127.0.0.1, for the integration tests, the benchmarks and trying things by hand.
# Jars come from Maven Central once (pinned in hack/versions.env) and are cached
# under $KUBESTREAM_CACHE (default ~/.cache/kubestream).
#
#   hack/brokers/kafka.sh install      fetch the jars; prints their directory
#   hack/brokers/kafka.sh up DIR       format DIR, start, wait until an admin client
#                                      sees the broker; last lines KAFKA_*=...
#   hack/brokers/kafka.sh down DIR     stop the broker started in DIR by its PID
#
# Environment for `up`: KAFKA_PORT, KAFKA_CONTROLLER_PORT (free ports if unset),
# KAFKA_SASL_PORT and KAFKA_SCRAM_USERS ("user:password ...") for a
# SASL_PLAINTEXT listener with SCRAM-SHA-256 users, KAFKA_SSL_PORT and
# KAFKA_SSL_KEYSTORE (a PEM file: unencrypted PKCS#8 key, then the certificate
# chain) for a TLS listener, KAFKA_SASL_SSL_PORT (with both of the above's users
# and keystore) for SASL over TLS, PYTHON (an interpreter with confluent-kafka,
# for the readiness probe).
set -euo pipefail
# shellcheck source=hack/brokers/lib.sh
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

lib="$cache/kafka-$KAFKA_VERSION/lib"
# Any fixed 22-character base64 id: formatting with it saves a JVM start for random-uuid.
cluster_id=a3ViZXN0cmVhbS1rYWZrYQ

install() {
  maven_jars "$here/kafka" "$lib" -Dkafka.version="$KAFKA_VERSION" \
    -Dkafka.scala.version="$KAFKA_SCALA_VERSION" -Dlog4j.version="$LOG4J_VERSION"
}

# java_cmd DIR: sets the array `java` to the JVM command line for a broker in DIR.
java_cmd() {
  java=(java -Xms64m -Xmx256m "${jvm_small[@]}" -Djava.awt.headless=true
    -Dlog4j2.configurationFile="$1/log4j2.properties" -Dkafka.logs.dir="$1/logs" -cp "$lib/*")
}

up() {
  local dir
  mkdir -p "$1"
  dir=$(cd "$1" && pwd)
  install
  if [ -f "$dir/kafka.pid" ] && kill -0 "$(cat "$dir/kafka.pid")" 2>/dev/null; then
    echo "a broker is already running from $dir (pid $(cat "$dir/kafka.pid"))" >&2
    exit 1
  fi
  local port=${KAFKA_PORT:-$(free_port)} controller=${KAFKA_CONTROLLER_PORT:-$(free_port)}
  local sasl_port=${KAFKA_SASL_PORT:-} ssl_port=${KAFKA_SSL_PORT:-}
  local sasl_ssl_port=${KAFKA_SASL_SSL_PORT:-} advertised protocols java
  advertised="PLAINTEXT://127.0.0.1:$port"
  protocols="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
  if [ -n "$sasl_port" ]; then
    advertised+=",SASL_PLAINTEXT://127.0.0.1:$sasl_port"
    protocols+=",SASL_PLAINTEXT:SASL_PLAINTEXT"
  fi
  if [ -n "$ssl_port" ]; then
    advertised+=",SSL://127.0.0.1:$ssl_port"
    protocols+=",SSL:SSL"
  fi
  if [ -n "$sasl_ssl_port" ]; then
    advertised+=",SASL_SSL://127.0.0.1:$sasl_ssl_port"
    protocols+=",SASL_SSL:SASL_SSL"
  fi
  cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller
listeners=$advertised,CONTROLLER://127.0.0.1:$controller
advertised.listeners=$advertised
listener.security.protocol.map=$protocols
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
sasl.enabled.mechanisms=SCRAM-SHA-256
listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.ssl.ssl.keystore.type=PEM
listener.name.ssl.ssl.keystore.location=${KAFKA_SSL_KEYSTORE:-}
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.ssl.keystore.type=PEM
listener.name.sasl_ssl.ssl.keystore.location=${KAFKA_SSL_KEYSTORE:-}
log.dirs=$dir/data
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
# Retention checks every 2 s, so a test can watch old segments go.
log.retention.check.interval.ms=2000
log.segment.delete.delay.ms=0
log.cleaner.backoff.ms=1000
num.network.threads=2
num.io.threads=2
background.threads=2
log.cleaner.threads=1
PROPS
  cat >"$dir/log4j2.properties" <<PROPS
rootLogger.level=INFO
rootLogger.appenderRef.stdout.ref=STDOUT
appender.stdout.type=Console
appender.stdout.name=STDOUT
appender.stdout.layout.type=PatternLayout
appender.stdout.layout.pattern=[%d] %p %m (%c)%n
logger.kafka.name=kafka
logger.kafka.level=WARN
logger.apache.name=org.apache.kafka
logger.apache.level=WARN
PROPS
  java_cmd "$dir"
  if [ ! -f "$dir/data/meta.properties" ]; then
    local scram=()
    for user in ${KAFKA_SCRAM_USERS:-}; do
      scram+=(--add-scram "SCRAM-SHA-256=[name=${user%%:*},password=${user#*:}]")
    done
    "${java[@]}" kafka.tools.StorageTool format -t "$cluster_id" \
      -c "$dir/server.properties" "${scram[@]}" >"$dir/format.log" 2>&1 \
      || { cat "$dir/format.log" >&2; exit 1; }
  fi
  start_bg "$dir" kafka "${java[@]}" kafka.Kafka "$dir/server.properties"
  wait_ready "$dir" kafka kafka "127.0.0.1:$port"
  echo "KAFKA_PID=$(cat "$dir/kafka.pid")"
  echo "KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$port"
  [ -z "$sasl_port" ] || echo "KAFKA_SASL_BOOTSTRAP_SERVERS=127.0.0.1:$sasl_port"
  [ -z "$ssl_port" ] || echo "KAFKA_SSL_BOOTSTRAP_SERVERS=127.0.0.1:$ssl_port"
  [ -z "$sasl_ssl_port" ] || echo "KAFKA_SASL_SSL_BOOTSTRAP_SERVERS=127.0.0.1:$sasl_ssl_port"
}

case ${1:-} in
  install) install && echo "$lib" ;;
  up) up "${2:?usage: kafka.sh up DIR}" ;;
  down) stop_pid "${2:?usage: kafka.sh down DIR}" kafka 30 ;;
  *) echo "usage: kafka.sh install | up DIR | down DIR" >&2; exit 2 ;;
esac
