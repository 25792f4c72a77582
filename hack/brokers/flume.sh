#!/usr/bin/env bash
# A Flume 1.11 agent for the integration tests and the benchmarks: a sequence
# source, a memory channel and a Thrift sink that delivers to a kubestream Flume
# receiver. Jars come from Maven Central once (pinned in hack/versions.env) and
# are cached under $KUBESTREAM_CACHE (default ~/.cache/kubestream).
#
#   hack/brokers/flume.sh install     fetch the jars; prints their directory
#   hack/brokers/flume.sh up DIR      start an agent from DIR, wait until its HTTP
#                                     monitoring lists source and sink as started;
#                                     last lines FLUME_*=...
#   hack/brokers/flume.sh down DIR    stop the agent started in DIR by its PID
#
# Environment for `up`: FLUME_SINK_ADDRESS (host:port of the receiver, required),
# FLUME_EVENTS (how many events the sequence source makes, default 1000),
# FLUME_BATCH_SIZE (events per Thrift appendBatch, default 100).
set -euo pipefail
# shellcheck source=hack/brokers/lib.sh
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

lib="$cache/flume-$FLUME_VERSION/lib"

install() {
  maven_jars "$here/flume" "$lib" -Dflume.version="$FLUME_VERSION" -Dlog4j.version="$LOG4J_VERSION"
}

up() {
  local dir
  mkdir -p "$1"
  dir=$(cd "$1" && pwd)
  install
  if [ -f "$dir/flume.pid" ] && kill -0 "$(cat "$dir/flume.pid")" 2>/dev/null; then
    echo "an agent is already running from $dir (pid $(cat "$dir/flume.pid"))" >&2
    exit 1
  fi
  local sink=${FLUME_SINK_ADDRESS:?FLUME_SINK_ADDRESS=host:port of the receiver} monitoring
  local batch=${FLUME_BATCH_SIZE:-100}
  monitoring=$(free_port)
  # The Thrift sink's settings that matter: batch-size (events per appendBatch, at most the
  # channel's transactionCapacity), request-timeout (longer than the receiver takes to store
  # a batch, or the sink gives up and sends it again) and the compact protocol, the default.
  cat >"$dir/agent.properties" <<PROPS
agent.sources = seq
agent.channels = memory
agent.sinks = kubestream
agent.sources.seq.type = seq
agent.sources.seq.totalEvents = ${FLUME_EVENTS:-1000}
agent.sources.seq.batchSize = $batch
agent.sources.seq.channels = memory
agent.channels.memory.type = memory
agent.channels.memory.capacity = 10000
agent.channels.memory.transactionCapacity = $batch
agent.sinks.kubestream.type = thrift
agent.sinks.kubestream.channel = memory
agent.sinks.kubestream.hostname = ${sink%:*}
agent.sinks.kubestream.port = ${sink##*:}
agent.sinks.kubestream.batch-size = $batch
agent.sinks.kubestream.connect-timeout = 5000
agent.sinks.kubestream.request-timeout = 30000
PROPS
  cat >"$dir/log4j2.properties" <<PROPS
rootLogger.level=WARN
rootLogger.appenderRef.stdout.ref=STDOUT
appender.stdout.type=Console
appender.stdout.name=STDOUT
appender.stdout.layout.type=PatternLayout
appender.stdout.layout.pattern=[%d] %p %m (%c)%n
PROPS
  start_bg "$dir" flume java -Xms32m -Xmx128m "${jvm_small[@]}" -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$dir/log4j2.properties" \
    -Dflume.monitoring.type=http -Dflume.monitoring.port="$monitoring" \
    -cp "$lib/*" org.apache.flume.node.Application -n agent -f "$dir/agent.properties"
  wait_ready "$dir" flume flume "127.0.0.1:$monitoring"
  echo "FLUME_PID=$(cat "$dir/flume.pid")"
  echo "FLUME_MONITORING_ADDRESS=127.0.0.1:$monitoring"
}

case ${1:-} in
  install) install && echo "$lib" ;;
  up) up "${2:?usage: flume.sh up DIR}" ;;
  down) stop_pid "${2:?usage: flume.sh down DIR}" flume 20 ;;
  *) echo "usage: flume.sh install | up DIR | down DIR" >&2; exit 2 ;;
esac
