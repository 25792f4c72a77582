#!/usr/bin/env bash
# Builds crictl from its Go module (sigs.k8s.io/cri-tools) into the cache.
# e2e/cluster/down uses it to stop pod sandboxes through the CRI, so that
# containerd tears down their network namespaces, veths and mounts itself.
#
#   hack/cluster-crictl.sh      prints the bin directory as its last line
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=hack/versions.env
. "$here/versions.env"
cache=${KUBESTREAM_CACHE:-$HOME/.cache/kubestream}
bin="$cache/crictl-$CRICTL_VERSION/bin"
if [ ! -x "$bin/crictl" ]; then
  echo "crictl: building $CRICTL_VERSION from its Go module" >&2
  mkdir -p "$bin"
  CGO_ENABLED=0 GOBIN="$bin" GOFLAGS=-mod=mod go install -trimpath -ldflags "-s -w" \
    "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION" >&2
fi
echo "$bin"
