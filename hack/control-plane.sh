#!/usr/bin/env bash
# A real Kubernetes control plane on 127.0.0.1 without nodes: etcd,
# kube-apiserver (RBAC on, serving certs and a service-account signing key made
# here) and kube-controller-manager (garbage collection, namespaces, claim
# protection, service accounts). The operator tests' fixture and
# `make control-plane` both use it.
#
#   hack/control-plane.sh up [DIR]     start; last line printed: KUBECONFIG=DIR/kubeconfig
#   hack/control-plane.sh down [DIR]   stop everything started in DIR
#
# DIR defaults to $KUBESTREAM_CACHE/control-plane. Binaries are built on first
# use by hack/build-kube.sh and hack/build-etcd.sh and then reused.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${KUBESTREAM_CACHE:-$HOME/.cache/kubestream}
cmd=${1:?usage: control-plane.sh up|down [DIR]}
dir=${2:-$cache/control-plane}

stop() {
  for name in kube-controller-manager kube-apiserver etcd; do
    pidfile="$dir/$name.pid"
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
  done
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
  local name=$1
  shift
  setsid "$@" >"$dir/$name.log" 2>&1 < /dev/null &
  echo $! >"$dir/$name.pid"
}

wait_ready() {
  python3 - "$@" <<'PY'
import ssl, sys, time, urllib.request
url, ca, token, log = sys.argv[1:5]
ctx = ssl.create_default_context(cafile=ca)
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    try:
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, context=ctx, timeout=5) as resp:
            if resp.status == 200:
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.3)
sys.exit(f"control plane not ready at {url} after 120s; see {log}")
PY
}

case "$cmd" in
down)
  stop
  echo "control plane in $dir stopped"
  ;;
up)
  stop
  kube_bin=$("$here/build-kube.sh" kube-apiserver kube-controller-manager | tail -n1)
  etcd_bin=$("$here/build-etcd.sh" | tail -n1)
  rm -rf "$dir"
  mkdir -p "$dir/pki" "$dir/etcd"
  pki="$dir/pki"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=kubestream-test-ca" \
    -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
    -keyout "$pki/apiserver.key" -out "$pki/apiserver.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\n' >"$pki/san.ext"
  openssl x509 -req -in "$pki/apiserver.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
    -CAcreateserial -days 30 -extfile "$pki/san.ext" -out "$pki/apiserver.crt" 2>/dev/null
  openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
  openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
  token=$(python3 -c 'import secrets; print(secrets.token_hex(24))')
  printf '%s,admin,admin,system:masters\n' "$token" >"$pki/tokens.csv"
  chmod 600 "$pki"/*.key "$pki/tokens.csv"

  etcd_port=$(free_port)
  peer_port=$(free_port)
  api_port=$(free_port)
  start etcd "$etcd_bin/etcd" --data-dir "$dir/etcd" --name default \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "default=http://127.0.0.1:$peer_port" --unsafe-no-fsync --log-level warn
  start kube-apiserver "$kube_bin/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
    --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --client-ca-file "$pki/ca.crt" --token-auth-file "$pki/tokens.csv" \
    --service-account-issuer https://kubernetes.default.svc \
    --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
    --authorization-mode RBAC --service-cluster-ip-range 10.96.0.0/24 --allow-privileged=true

  kubeconfig="$dir/kubeconfig"
  ca_data=$(base64 -w0 <"$pki/ca.crt")
  cat >"$kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: kubestream-test
  cluster:
    server: https://127.0.0.1:$api_port
    certificate-authority-data: $ca_data
users:
- name: admin
  user:
    token: $token
contexts:
- name: kubestream-test
  context: {cluster: kubestream-test, user: admin, namespace: default}
current-context: kubestream-test
KC
  chmod 600 "$kubeconfig"
  wait_ready "https://127.0.0.1:$api_port/readyz" "$pki/ca.crt" "$token" "$dir/kube-apiserver.log"
  start kube-controller-manager "$kube_bin/kube-controller-manager" \
    --kubeconfig "$kubeconfig" --authentication-kubeconfig "$kubeconfig" \
    --authorization-kubeconfig "$kubeconfig" --bind-address 127.0.0.1 --secure-port "$(free_port)" \
    --leader-elect=false --controllers garbage-collector-controller,clusterrole-aggregation-controller,namespace-controller,serviceaccount-controller,serviceaccount-token-controller,persistentvolumeclaim-protection-controller,persistentvolume-protection-controller \
    --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
    --concurrent-gc-syncs 5
  echo "control plane up in $dir (apiserver https://127.0.0.1:$api_port); stop: hack/control-plane.sh down $dir"
  echo "KUBECONFIG=$kubeconfig"
  ;;
*)
  echo "usage: control-plane.sh up|down [DIR]" >&2
  exit 2
  ;;
esac
