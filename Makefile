# kubestream: every target installs what it needs into .venv first.
# Tools that are not Python (Kubernetes binaries, etcd, helm, brokers) come from
# scripts under hack/ and are cached outside the repo ($KUBESTREAM_CACHE).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: setup demo test test-unit lint bench clean
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

## Run a real streaming word count in local mode (driver + 2 executor processes).
demo: setup
	$(PY) examples/demo.py

## Lint, type-check, import contracts, then the whole test suite.
test: lint
	$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; [ $$rc -eq 5 ] && { echo "no tests collected"; exit 1; }; exit $$rc

test-unit: setup
	$(PY) -m pytest -m unit $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

## The stateful word count (the headline), then the stateless one.
bench: setup
	$(PY) benchmarks/stateful.py
	$(PY) benchmarks/throughput.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

# Each area (operator, cluster, chart, e2e) keeps its targets in its own fragment.
-include mk/*.mk
