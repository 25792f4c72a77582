# Operator targets: a local control plane (etcd + kube-apiserver +
# kube-controller-manager, no nodes) for trying the operator by hand.
CONTROL_PLANE_DIR ?= $(or $(KUBESTREAM_CACHE),$(HOME)/.cache/kubestream)/control-plane

.PHONY: control-plane control-plane-down operator-test

## Start etcd, kube-apiserver and kube-controller-manager on 127.0.0.1; last line: KUBECONFIG=<path>.
control-plane:
	@hack/control-plane.sh up $(CONTROL_PLANE_DIR)

## Stop the control plane started by `make control-plane`.
control-plane-down:
	@hack/control-plane.sh down $(CONTROL_PLANE_DIR)

## Operator unit and integration tests only.
operator-test: setup
	$(PY) -m pytest tests/operator $(PYTEST_ARGS)
