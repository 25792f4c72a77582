#!/usr/bin/env bash
# Builds pinned Kubernetes binaries from the Go module k8s.io/kubernetes into a
# cache outside the repo, skipping any binary already built for that version.
#
#   hack/build-kube.sh [BINARY ...]    default: kube-apiserver kube-controller-manager
#
# Prints the bin directory as its last line. Cache root: $KUBESTREAM_CACHE
# (default ~/.cache/kubestream). k8s.io/kubernetes replaces its staging modules
# with local paths, so a wrapper module requires it and points each staging
# module at its published v0.x.y release instead. Concurrent runs (the cluster
# and the operator tests share the cache) take turns on a lock: two `go` runs
# rewriting one go.mod fail with "existing contents have changed since last read".
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=hack/versions.env
. "$here/versions.env"

cache=${KUBESTREAM_CACHE:-$HOME/.cache/kubestream}
bin="$cache/kubernetes-$KUBE_VERSION/bin"
work="$cache/kubernetes-$KUBE_VERSION/module"
mkdir -p "$bin" "$work"
exec 9>"$cache/kubernetes-$KUBE_VERSION/.lock"
flock 9

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(kube-apiserver kube-controller-manager)

missing=()
for t in "${targets[@]}"; do
  [ -x "$bin/$t" ] || missing+=("$t")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "$bin"
  exit 0
fi

cd "$work"
if [ ! -f go.mod ]; then
  echo "kube: preparing wrapper module for k8s.io/kubernetes $KUBE_VERSION" >&2
  upstream_mod=$(GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  {
    echo "module kubestream.local/kubetools"
    echo
    echo "go 1.25"
    echo
    echo "require k8s.io/kubernetes $KUBE_VERSION"
    echo
    grep -Eo '^\s*k8s\.io/[a-z0-9-]+ => \./staging/src/k8s\.io/[a-z0-9-]+' "$upstream_mod" \
      | awk -v v="$KUBE_STAGING_VERSION" '{print "replace " $1 " => " $1 " " v}'
  } > go.mod.tmp
  mv go.mod.tmp go.mod
  cat > tools.go <<'GO'
//go:build tools

package kubetools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
)
GO
  echo "kube: resolving module graph (first run downloads a few hundred MB)" >&2
  GOFLAGS=-mod=mod go mod tidy -e >&2 || GOFLAGS=-mod=mod go mod download >&2
fi

pkgs=()
for t in "${missing[@]}"; do
  case "$t" in
    kubectl) pkgs+=("k8s.io/kubernetes/cmd/kubectl") ;;
    *) pkgs+=("k8s.io/kubernetes/cmd/$t") ;;
  esac
done
echo "kube: building ${missing[*]} ($KUBE_VERSION); the first build takes several minutes" >&2
CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w \
  -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION \
  -X k8s.io/component-base/version.gitMajor=1 \
  -X k8s.io/component-base/version.gitMinor=$(echo "$KUBE_VERSION" | cut -d. -f2)" \
  -o "$bin/" "${pkgs[@]}" >&2
echo "$bin"
