# The two set-up commands of the README are `make run` and `make test`; both bootstrap
# the virtualenv from requirements.lock on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# the dashboard's npm packages (lightweight-charts), copied into its static/vendor/
FRONTEND := streaming/web/frontend
# The dbt manifest the Dagster definitions read (assets/dbt_project.py): prepared here, never
# when the definitions are imported. Remade when anything `dbt parse` reads is newer (the
# folders too: their time moves when a file is added or removed); MANIFEST_INPUTS in
# assets/dbt_project.py names the same inputs.
DBT := dbt_project
DBT_MANIFEST := $(DBT)/target/manifest.json
DBT_INPUTS := $(DBT)/dbt_project.yml $(DBT)/profiles.yml $(shell find $(DBT)/models $(DBT)/macros $(DBT)/tests 2>/dev/null)

.PHONY: run test lint bench install clean dbt-manifest

$(STAMP): requirements.lock pyproject.toml $(FRONTEND)/package-lock.json
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	@command -v chromium >/dev/null 2>&1 || if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; else echo "note: the browser test needs Chromium: sudo apt-get update && sudo apt-get install -y chromium chromium-driver"; fi
	@command -v npm >/dev/null 2>&1 || if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; else echo "note: the dashboard's charts need Node and npm: sudo apt-get update && sudo apt-get install -y nodejs npm"; fi
	@if command -v npm >/dev/null 2>&1; then (cd $(FRONTEND) && npm ci --no-audit --no-fund --loglevel=error && mkdir -p ../static/vendor && cp node_modules/lightweight-charts/dist/lightweight-charts.standalone.production.js ../static/vendor/) || echo "note: npm ci failed in $(FRONTEND); the dashboard runs without its charts until it succeeds"; fi
	@touch $(STAMP)

# dagster-dbt's preparation (`dbt parse`); dbt is found beside the interpreter
$(DBT_MANIFEST): $(STAMP) $(DBT_INPUTS)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dagster-dbt project prepare-and-package --file assets/dbt_project.py
	@touch $@

dbt-manifest: $(DBT_MANIFEST)

install: $(STAMP) $(DBT_MANIFEST)

run: install
	$(BIN)/marketflow up

test: install
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
