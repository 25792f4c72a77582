# Helm chart targets: helm itself (built from the pinned Go module by
# hack/build-helm.sh on first use, then cached), lint, rendering and the tests.
CHART ?= charts/kubestream
# The helm binary's path: hack/build-helm.sh prints it last, after any build output.
HELM_PATH = set -o pipefail; helm=$$(hack/build-helm.sh | tail -n 1)

.PHONY: helm chart-lint chart-template chart-test

## Build helm on first use; prints its path.
helm:
	@$(HELM_PATH) && echo "$$helm"

## helm lint --strict of the chart, with default and with non-default values.
chart-lint:
	@$(HELM_PATH) && \
	"$$helm" lint --strict $(CHART) && \
	"$$helm" lint --strict $(CHART) --set 'watchNamespaces={team-a}' --set replicaCount=2 \
		--set networkPolicy.enabled=true --set podMonitor.enabled=true

## Render the chart with its default values, CRDs included, to stdout.
chart-template:
	@$(HELM_PATH) && "$$helm" template kubestream $(CHART) --namespace kubestream-system --include-crds

## The chart tests: lint, template, server-side dry runs against a real API server.
chart-test: setup
	$(PY) -m pytest tests/chart $(PYTEST_ARGS)
