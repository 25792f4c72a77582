#!/usr/bin/env bash
# Builds CoreDNS from its Go module (github.com/coredns/coredns) into the cache,
# skipping the build when that version is there. e2e/cluster/up packs it into a
# scratch image for the cluster's DNS Deployment.
#
#   hack/coredns-build.sh      prints the bin directory as its last line
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=hack/versions.env
. "$here/versions.env"
cache=${KUBESTREAM_CACHE:-$HOME/.cache/kubestream}
bin="$cache/coredns-$COREDNS_VERSION/bin"
if [ ! -x "$bin/coredns" ]; then
  echo "coredns: building $COREDNS_VERSION from its Go module (a few minutes the first time)" >&2
  mkdir -p "$bin"
  # Static binary: the image it goes into has nothing else in it.
  CGO_ENABLED=0 GOBIN="$bin" GOFLAGS=-mod=mod go install -trimpath -ldflags "-s -w" \
    "github.com/coredns/coredns@$COREDNS_VERSION" >&2
fi
echo "$bin"
