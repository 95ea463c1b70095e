# The README's two commands. Both create .venv and install what they need on a fresh machine:
# `make demo` the package alone, `make test` the package and its dev extras.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYPROJECT := $(shell cksum pyproject.toml | cut -d' ' -f1)
STAMP := $(VENV)/.installed-$(PYPROJECT)
DEV_STAMP := $(VENV)/.installed-dev-$(PYPROJECT)
# `make demo PORT=9000`: the gateway's port (the sandboxes take PORT+101..104). Unset, the
# demo takes OPSGRAPH_PORT, else 8000.
PORT ?=

JS_STAMP := tests/js/node_modules/.installed
# The dashboards' front-end packages (GraphiQL, React, uPlot, graphql-sse), pinned by
# dashboards/package-lock.json: the gateway serves them to the pages from node_modules.
DASH_STAMP := dashboards/node_modules/.installed
# The browser tests/browser drives: Debian's Chromium, not a build that `playwright install`
# would download from outside the package registries. Its own path is the target, so a
# machine that lacks it gets it, whatever stamps .venv holds.
CHROMIUM := /usr/bin/chromium
# The persisted query safelist: every operation of dashboards/operations, by hash.
MANIFEST := dashboards/operations/manifest.json

.PHONY: demo test lint typecheck schemacheck pytest manifest clean bench-tools

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	rm -f $(VENV)/.installed-*
	touch $@

$(DEV_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e ".[dev]"
	# NetSuite's REST client pins httpx<0.28 but works on the 0.28 we use (pyproject.toml).
	$(BIN)/pip install --quiet --no-deps "netsuite==0.12.0"
	touch $@

# The reference JS clients the tests drive (Apollo Federation tools, graphql-http, graphql-ws,
# graphql-sse).
$(JS_STAMP): tests/js/package.json tests/js/package-lock.json
	npm ci --prefix tests/js --no-audit --no-fund --loglevel=error
	touch $@

# Checked first, so that a machine without Node hears why before anything is installed.
$(DASH_STAMP): dashboards/package.json dashboards/package-lock.json
	@command -v npm >/dev/null || { echo "The dashboards need Node.js 20+ and npm to install" \
		"their front-end packages, and npm is missing: install both (on Debian," \
		"apt-get install nodejs npm), then run make again." >&2; exit 1; }
	npm ci --prefix dashboards --no-audit --no-fund --loglevel=error
	touch $@

# We run as root (README); noninteractive because CI has no terminal to answer debconf.
$(CHROMIUM):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

manifest: $(MANIFEST)

# What the benchmarks in bench/ drive load with: wrk, from Debian's packages.
bench-tools: $(DEV_STAMP)
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)

$(MANIFEST): $(STAMP) $(wildcard dashboards/operations/*.graphql)
	$(BIN)/python -m gateway.persisted.manifest

demo: $(DASH_STAMP) $(STAMP) $(MANIFEST)
	$(BIN)/opsgraph demo $(if $(PORT),--port $(PORT))

test: lint typecheck schemacheck pytest

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

# The running schema is schema.graphql, or the change updates it (`opsgraph schema write`).
schemacheck: $(STAMP)
	$(BIN)/opsgraph schema check

pytest: $(DASH_STAMP) $(DEV_STAMP) $(JS_STAMP) $(CHROMIUM) $(MANIFEST)
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .opsgraph .mypy_cache .ruff_cache .pytest_cache tests/js/node_modules \
		dashboards/node_modules artifacts $(MANIFEST)
