#!/usr/bin/env bash
# A RabbitMQ node on 127.0.0.1 from Debian's rabbitmq-server (pinned in
# hack/versions.env), run as a plain process with its own ports, Erlang cookie,
# data and log directories, for the integration tests and the benchmarks.
#
#   hack/brokers/rabbitmq.sh install    apt-get the pinned package (root or sudo -n)
#   hack/brokers/rabbitmq.sh up DIR     start a node in DIR, wait until pika connects;
#                                       last lines RABBITMQ_*=...
#   hack/brokers/rabbitmq.sh down DIR   stop the node and its epmd by their PIDs
#
# Environment for `up`: RABBITMQ_PORT (a free port if unset), RABBITMQ_USERS
# ("user:password ..." added as administrators of vhost /), RABBITMQ_TLS_PORT
# with RABBITMQ_TLS_CERT, RABBITMQ_TLS_KEY, RABBITMQ_TLS_CA (PEM files) for an
# amqps listener, PYTHON (an interpreter with pika, for the readiness probe).
set -euo pipefail
# shellcheck source=hack/brokers/lib.sh
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

bin=/usr/lib/rabbitmq/bin

install() {
  if [ "$(dpkg-query -W -f='${Version}' rabbitmq-server 2>/dev/null)" = "$RABBITMQ_DEBIAN_VERSION" ]; then
    return 0
  fi
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo -n)
  echo "installing rabbitmq-server $RABBITMQ_DEBIAN_VERSION from Debian" >&2
  # The image's policy-rc.d keeps apt from starting a default node; -o Lock::Timeout
  # waits for another apt instead of failing.
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=300 update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
    --no-install-recommends "rabbitmq-server=$RABBITMQ_DEBIAN_VERSION" >&2
}

# node_env DIR: exports the environment that keeps a node in DIR private and on loopback.
node_env() {
  local dir=$1
  export HOME=$dir/home RABBITMQ_NODENAME=$(cat "$dir/nodename")
  export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT=$(cat "$dir/port")
  export RABBITMQ_DIST_PORT=$(cat "$dir/dist_port")
  export ERL_EPMD_ADDRESS=127.0.0.1 ERL_EPMD_PORT=$(cat "$dir/epmd_port")
  export RABBITMQ_CONFIG_FILE=$dir/rabbitmq.conf RABBITMQ_ENABLED_PLUGINS_FILE=$dir/enabled_plugins
  export RABBITMQ_MNESIA_BASE=$dir/mnesia RABBITMQ_LOG_BASE=$dir/log
  export RABBITMQ_PID_FILE=$dir/rabbitmq-erlang.pid
  export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
}

up() {
  local dir
  mkdir -p "$1"
  dir=$(cd "$1" && pwd)
  install
  if [ -f "$dir/rabbitmq.pid" ] && kill -0 "$(cat "$dir/rabbitmq.pid")" 2>/dev/null; then
    echo "a node is already running from $dir (pid $(cat "$dir/rabbitmq.pid"))" >&2
    exit 1
  fi
  mkdir -p "$dir/home" "$dir/mnesia" "$dir/log"
  echo "${RABBITMQ_PORT:-$(free_port)}" >"$dir/port"
  free_port >"$dir/dist_port"
  free_port >"$dir/epmd_port"
  echo "kubestream-$(basename "$dir")-$$@localhost" >"$dir/nodename"
  {
    echo "loopback_users = none"
    echo "log.console = true"
    echo "log.console.level = warning"
    echo "log.file = false"
    if [ -n "${RABBITMQ_TLS_PORT:-}" ]; then
      echo "listeners.ssl.default = 127.0.0.1:$RABBITMQ_TLS_PORT"
      echo "ssl_options.cacertfile = $RABBITMQ_TLS_CA"
      echo "ssl_options.certfile = $RABBITMQ_TLS_CERT"
      echo "ssl_options.keyfile = $RABBITMQ_TLS_KEY"
      echo "ssl_options.verify = verify_none"
    fi
  } >"$dir/rabbitmq.conf"
  echo "[]." >"$dir/enabled_plugins"
  (
    node_env "$dir"
    start_bg "$dir" rabbitmq "$bin/rabbitmq-server"
  )
  local port
  port=$(cat "$dir/port")
  wait_ready "$dir" rabbitmq rabbitmq "127.0.0.1:$port"
  for user in ${RABBITMQ_USERS:-}; do
    ctl "$dir" add_user "${user%%:*}" "${user#*:}" >/dev/null
    ctl "$dir" set_permissions -p / "${user%%:*}" ".*" ".*" ".*" >/dev/null
  done
  echo "RABBITMQ_PID=$(cat "$dir/rabbitmq.pid")"
  echo "RABBITMQ_NODENAME=$(cat "$dir/nodename")"
  [ -z "${RABBITMQ_TLS_PORT:-}" ] || echo "RABBITMQ_TLS_ADDRESS=127.0.0.1:$RABBITMQ_TLS_PORT"
  echo "RABBITMQ_ADDRESS=127.0.0.1:$port"
}

# ctl DIR ARGS...: rabbitmqctl against the node in DIR (passwords go as arguments,
# never into a log).
ctl() {
  local dir=$1
  shift
  (node_env "$dir" && "$bin/rabbitmqctl" -n "$RABBITMQ_NODENAME" "$@")
}

down() {
  local dir=$1
  [ -d "$dir" ] || return 0
  dir=$(cd "$dir" && pwd)
  # The recorded PID is the start script, which on SIGTERM stops the node with
  # rabbitmqctl; the Erlang VM's own PID (the node writes it) is the fallback.
  local beam=
  [ -f "$dir/rabbitmq-erlang.pid" ] && beam=$(cat "$dir/rabbitmq-erlang.pid")
  stop_pid "$dir" rabbitmq 30
  if [ -n "$beam" ] && kill -0 "$beam" 2>/dev/null; then
    echo "rabbitmq's Erlang VM (pid $beam) outlived its start script; killing it" >&2
    kill -9 "$beam" 2>/dev/null || true
  fi
  rm -f "$dir/rabbitmq-erlang.pid"
  # epmd daemonises and outlives the node: stop the one on this node's port.
  if [ -f "$dir/epmd_port" ]; then
    ERL_EPMD_PORT=$(cat "$dir/epmd_port") epmd -kill >/dev/null 2>&1 || true
  fi
}

case ${1:-} in
  install) install ;;
  up) up "${2:?usage: rabbitmq.sh up DIR}" ;;
  down) down "${2:?usage: rabbitmq.sh down DIR}" ;;
  ctl) dir=${2:?usage: rabbitmq.sh ctl DIR ARGS...}; shift 2; ctl "$dir" "$@" ;;
  *) echo "usage: rabbitmq.sh install | up DIR | down DIR | ctl DIR ARGS..." >&2; exit 2 ;;
esac
