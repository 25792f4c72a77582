#!/usr/bin/env bash
# Builds a pinned etcd from the Go module go.etcd.io/etcd/server/v3 into a cache
# outside the repo, skipping the build when that version is already there.
# The operator tests' control plane (hack/control-plane.sh) runs it.
#
#   hack/build-etcd.sh      prints the bin directory as its last line
#
# etcd's own go.mod replaces its sibling modules with local paths, so
# `go install ...@version` refuses it; a wrapper module requires it instead.
# Concurrent runs take turns on a lock, as in hack/build-kube.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=hack/versions.env
. "$here/versions.env"

cache=${KUBESTREAM_CACHE:-$HOME/.cache/kubestream}
bin="$cache/etcd-$ETCD_VERSION/bin"
work="$cache/etcd-$ETCD_VERSION/module"
mkdir -p "$bin" "$work"
exec 9>"$cache/etcd-$ETCD_VERSION/.lock"
flock 9
if [ -x "$bin/etcd" ]; then
  echo "$bin"
  exit 0
fi
cd "$work"
if [ ! -f go.mod ]; then
  cat > go.mod.tmp <<GOMOD
module kubestream.local/etcdtools

go 1.25

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
GOMOD
  mv go.mod.tmp go.mod
  cat > tools.go <<'GO'
//go:build tools

package etcdtools

import (
	_ "go.etcd.io/etcd/server/v3"
)
GO
  echo "etcd: resolving module graph" >&2
  GOFLAGS=-mod=mod go mod tidy -e >&2
fi
echo "etcd: building $ETCD_VERSION" >&2
CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "$bin/etcd" go.etcd.io/etcd/server/v3 >&2
echo "$bin"
