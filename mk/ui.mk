# Web UI targets: the Streaming page in headless Chromium (Debian's package).

.PHONY: chromium ui-test

## Install Debian's chromium for the UI test, only when /usr/bin/chromium is missing.
chromium:
	@hack/install-chromium.sh

## The page in headless Chromium on a live job (screenshot: artifacts/ui-streaming.png), status and metrics.
ui-test: setup chromium
	$(PY) -m pytest tests/integration/test_ui.py tests/integration/test_ui_cli.py $(PYTEST_ARGS)
