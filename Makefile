# The two set-up commands of the README are `make run` and `make test`; both bootstrap
# the virtualenv from requirements.lock on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# the dashboard's npm packages (lightweight-charts), copied into its static/vendor/
FRONTEND := streaming/web/frontend

.PHONY: run test lint bench install clean

$(STAMP): requirements.lock pyproject.toml $(FRONTEND)/package-lock.json
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	@command -v chromium >/dev/null 2>&1 || if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; else echo "note: the browser test needs Chromium: sudo apt-get update && sudo apt-get install -y chromium chromium-driver"; fi
	@command -v npm >/dev/null 2>&1 || if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; else echo "note: the dashboard's charts need Node and npm: sudo apt-get update && sudo apt-get install -y nodejs npm"; fi
	@if command -v npm >/dev/null 2>&1; then (cd $(FRONTEND) && npm ci --no-audit --no-fund --loglevel=error && mkdir -p ../static/vendor && cp node_modules/lightweight-charts/dist/lightweight-charts.standalone.production.js ../static/vendor/) || echo "note: npm ci failed in $(FRONTEND); the dashboard runs without its charts until it succeeds"; fi
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/marketflow up

test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/sqlfluff lint dbt_project/models
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/marketflow bench

# Server folders relocated out of a private home live here (docs/operations.md); `clean`
# removes the ones this checkout's home links to, after stopping detached servers.
RELOCATED_BASE ?= /var/lib/marketflow
HOME_DIR := .marketflow

clean:
	@if [ -e $(HOME_DIR)/services.json ] && [ -x $(BIN)/marketflow ]; then \
		MARKETFLOW_HOME=$(HOME_DIR) $(BIN)/marketflow services --stop; fi
	@for link in $(HOME_DIR)/postgres/server $(HOME_DIR)/redis/server; do \
		[ -L "$$link" ] || continue; \
		target=$$(readlink -f "$$link"); \
		if [ -n "$$target" ] && [ "$$(dirname "$$target")" = "$(RELOCATED_BASE)" ]; then \
			echo "rm -rf $$target"; rm -rf "$$target"; fi; \
	done
	rm -rf $(VENV) $(HOME_DIR)
