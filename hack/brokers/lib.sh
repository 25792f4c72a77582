# Shared by hack/brokers/<name>.sh: fetching a server's jars from Maven Central
# into the cache, starting it in the background with its PID recorded, waiting
# for it with a real client, and stopping it by that PID. Sourced, not run.
#
# A broker script defines its own `up DIR` and `down DIR` from these; its `up`
# prints KEY=VALUE lines last (addresses a client needs), and both are
# idempotent on the same DIR.

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=hack/versions.env
. "$here/../versions.env"
cache=${KUBESTREAM_CACHE:-$HOME/.cache/kubestream}
# The Python that runs the readiness probes: it needs the broker's client library.
python=${PYTHON:-python3}
# Small-footprint JVM flags measured in ../shared BROKERS.md: ~320 MB resident for Kafka.
jvm_small=(-XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:ActiveProcessorCount=2 -Xss512k)

# maven_jars POM_DIR LIB_DIR [-Dprop=value...]: the runtime jars of POM_DIR's
# dependencies in LIB_DIR, fetched once; a half-finished fetch is never reused.
maven_jars() {
  local pom=$1 lib=$2
  shift 2
  [ -f "$lib/.complete" ] && return 0
  rm -rf "$lib.tmp"
  mkdir -p "$lib.tmp"
  echo "fetching $(basename "$lib") from Maven Central" >&2
  mvn -q -B -Dstyle.color=never -f "$pom/pom.xml" "$@" dependency:copy-dependencies \
    -DoutputDirectory="$lib.tmp" -DincludeScope=runtime >&2
  touch "$lib.tmp/.complete"
  rm -rf "$lib"
  mv "$lib.tmp" "$lib"
}

# start_bg DIR NAME CMD...: run CMD in its own session, output to DIR/NAME.log,
# PID in DIR/NAME.pid.
start_bg() {
  local dir=$1 name=$2
  shift 2
  setsid "$@" >"$dir/$name.log" 2>&1 </dev/null &
  echo $! >"$dir/$name.pid"
}

# stop_pid DIR NAME [SECONDS]: SIGTERM the PID recorded in DIR/NAME.pid, SIGKILL
# after SECONDS (default 20) if it has not exited; no PID file, nothing to do.
stop_pid() {
  local pidfile="$1/$2.pid" grace=${3:-20} pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq $((grace * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "$2 (pid $pid) did not stop in ${grace}s; killing it" >&2
      kill -9 "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$pidfile"
}

# wait_ready DIR NAME PROBE ARGS...: run hack/brokers/ready.py's PROBE until it
# succeeds, failing early with the log's tail if the process exits.
wait_ready() {
  local dir=$1 name=$2
  shift 2
  "$python" "$here/ready.py" --pid "$(cat "$dir/$name.pid")" --log "$dir/$name.log" "$@"
}

free_port() {
  "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
