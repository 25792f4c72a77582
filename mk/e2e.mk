# e2e targets: the local one-node Kubernetes cluster (e2e/cluster, needs root)
# and the end-to-end suite. Not part of `make test`: the suite needs a cluster,
# root to build one, and changes the host's network (see e2e/README.md).
E2E_KUBECONFIG = $(or $(KUBESTREAM_CLUSTER_DIR),$(or $(KUBESTREAM_CACHE),$(HOME)/.cache/kubestream)/cluster)/kubeconfig

.PHONY: cluster-up cluster-down cluster-check-clean kind-up kind-down e2e e2e-local e2e-smoke

## Start the local one-node cluster (builds and caches everything the first time); last line: KUBECONFIG=<path>.
cluster-up:
	@e2e/cluster/up

## Stop the local cluster and remove its processes, mounts, netns, veths and iptables rules.
cluster-down:
	@e2e/cluster/down

## Fail if anything of the local cluster is still on the host.
cluster-check-clean:
	@e2e/cluster/check-clean

## A kind cluster for the same suite (machines that reach Docker Hub).
kind-up:
	@e2e/cluster/kind up

kind-down:
	@e2e/cluster/kind down

## The e2e suite against $$KUBECONFIG, or the local cluster (brought up when needed).
e2e: setup
	$(PY) -m pytest e2e -v -s $(PYTEST_ARGS)

## The whole proof on this machine: local cluster up, the whole suite, down, nothing left behind.
e2e-local: setup
	e2e/cluster/up
	KUBECONFIG=$(E2E_KUBECONFIG) $(PY) -m pytest e2e -v -s $(PYTEST_ARGS); rc=$$?; \
	e2e/cluster/down && e2e/cluster/check-clean && exit $$rc

## Proof of the local cluster alone: up, smoke tests, down, and nothing left behind.
e2e-smoke: setup
	e2e/cluster/up
	KUBECONFIG=$(E2E_KUBECONFIG) $(PY) -m pytest e2e/test_smoke.py -v -s $(PYTEST_ARGS); rc=$$?; \
	e2e/cluster/down && e2e/cluster/check-clean && exit $$rc
