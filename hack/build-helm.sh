#!/usr/bin/env bash
# Builds a pinned helm from the Go module helm.sh/helm/v3 into a cache outside
# the repo, skipping the build when that version is already there. The chart
# tests (tests/chart), `make helm` and the e2e suite run it.
#
#   hack/build-helm.sh      prints the helm binary's path as its last line
#
# The ldflags are the ones helm's own Makefile sets: the version `helm version`
# reports, and the Kubernetes version that `helm template` and `helm lint`
# assume when no cluster is asked (client-go v0.N means Kubernetes 1.N).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=hack/versions.env
. "$here/versions.env"

cache=${KUBESTREAM_CACHE:-$HOME/.cache/kubestream}
bin="$cache/helm-$HELM_VERSION/bin"
if [ -x "$bin/helm" ]; then
  echo "$bin/helm"
  exit 0
fi
command -v go >/dev/null || { echo "helm: building it needs Go on PATH (go.dev/dl)" >&2; exit 1; }
mkdir -p "$bin"
echo "helm: downloading helm.sh/helm/v3 $HELM_VERSION" >&2
gomod=$(GOFLAGS=-mod=mod go mod download -json "helm.sh/helm/v3@$HELM_VERSION" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
client_go=$(awk '$1 == "k8s.io/client-go" {print $2}' "$gomod")
[ -n "$client_go" ] || { echo "helm: no k8s.io/client-go in $gomod" >&2; exit 1; }
kube_minor=$(echo "$client_go" | cut -d. -f2)
echo "helm: building $HELM_VERSION (client-go $client_go)" >&2
CGO_ENABLED=0 GOBIN="$bin" GOFLAGS=-mod=mod go install -trimpath -ldflags "-s -w \
  -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION \
  -X helm.sh/helm/v3/internal/version.gitTreeState=clean \
  -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 \
  -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$kube_minor \
  -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 \
  -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$kube_minor" \
  "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
echo "$bin/helm"
