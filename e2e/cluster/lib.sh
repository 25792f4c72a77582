# Shared settings for e2e/cluster/{up,down,image}: paths, addresses, names.
# Sourced, not run. Everything the cluster writes lives under $state (cached
# between runs) or $run (sockets and pids, gone at reboot).
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=hack/versions.env
. "$repo/hack/versions.env"

cache=${KUBESTREAM_CACHE:-$HOME/.cache/kubestream}
state=${KUBESTREAM_CLUSTER_DIR:-$cache/cluster}
run=/run/kubestream-cluster
pki=$state/pki
logs=$state/logs

node=kubestream-e2e
# The node's address sits on our own bridge, so pods, the apiserver and the
# kubelet talk over interfaces this script made, never over the host's NIC.
bridge=kscni0
node_ip=10.244.0.1
pod_cidr=10.244.0.0/24
service_cidr=10.96.0.0/16
api_service_ip=10.96.0.1
dns_ip=10.96.0.10
api_port=6443
etcd_port=12379
etcd_peer_port=12380

containerd_sock=$run/containerd/containerd.sock
kubeconfig=$state/kubeconfig
base_image=kubestream/base-python:3.11-bookworm
pause_image=kubestream.local/pause:3.10
coredns_image=kubestream.local/coredns:$COREDNS_VERSION

kube_bin=$cache/kubernetes-$KUBE_VERSION/bin
etcd_bin=$cache/etcd-$ETCD_VERSION/bin
coredns_bin=$cache/coredns-$COREDNS_VERSION/bin
crictl_bin=$cache/crictl-$CRICTL_VERSION/bin

step() { printf '\033[1m==> %s\033[0m (%ss)\n' "$*" "$SECONDS"; }

alive() { # alive NAME: is the process from our pid file running?
  local f=$run/$1.pid
  [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null
}

ctr_() { ctr --address "$containerd_sock" --namespace k8s.io "$@"; }
kubectl_() { "$kube_bin/kubectl" --kubeconfig "$kubeconfig" "$@"; }
