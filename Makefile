# jwtauth: every target uses the project's own virtualenv (.venv), created on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
CONFIG ?= jwtauth/fixtures/test_credentials.toml
ALG ?=

.PHONY: run test test-fast keygen lint typecheck bench install dev system-deps node-deps clean dist

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Runtime dependencies at the tested versions (deploy/constraints.txt), as the container has them.
$(VENV)/.installed: pyproject.toml deploy/constraints.txt | $(BIN)/python
	$(BIN)/pip install --quiet -c deploy/constraints.txt -e .
	touch $@

# The examples extra too: the tests run examples/mcp_server.py on the official MCP SDK; and
# otel: the tracing tests run the OpenTelemetry SDK (tests/test_tracing.py).
$(VENV)/.dev-installed: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -c deploy/constraints.txt -e '.[dev,examples,otel]'
	touch $@

install: $(VENV)/.installed
dev: $(VENV)/.dev-installed

## make run: set up, make a signing key if keys/ has none, serve the demo on http://$(HOST):$(PORT)
run: install
	$(BIN)/jwtauth keys --config $(CONFIG) ensure
	$(BIN)/jwtauth serve --config $(CONFIG) --host $(HOST) --port $(PORT)

# Debian packages the tests and the benchmark drive: Chromium (never a test tool's own browser
# download), redis-server for the fault tests, wrk for make bench. Installed when missing and
# we may (root with apt-get); otherwise the tests that need them skip with a reason (fail in CI).
system-deps:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	command -v wrk >/dev/null 2>&1 || missing="$$missing wrk"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing nodejs npm"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian packages:$$missing"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "note: missing$$missing (install them with apt-get); tests needing them will skip"; fi; \
	fi

# Third-party JavaScript OAuth/OIDC clients for the interop tests (tests/interop/node), pinned
# by the committed package-lock.json; installed from the npm registry when npm is present.
NODE_DIR := tests/interop/node
$(NODE_DIR)/node_modules/.installed: $(NODE_DIR)/package.json $(NODE_DIR)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  cd $(NODE_DIR) && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.installed; \
	else echo "note: npm is missing; the Node interop tests will skip (and fail under CI)"; fi
node-deps: system-deps $(NODE_DIR)/node_modules/.installed

## make dist: build jwtauth-server (sdist + wheel) and jwtauth-verify (wheel) into dist/, then twine check
dist: dev
	rm -rf dist
	$(BIN)/python -m build --no-isolation --outdir dist .
	$(BIN)/python scripts/build_verify.py dist
	$(BIN)/twine check --strict dist/*

## make test: install dev dependencies and run the whole suite
test: dev system-deps node-deps
	$(BIN)/ruff check jwtauth tests bench scripts examples
	$(BIN)/mypy
	$(BIN)/pytest

## make test-fast: the edit-test loop: unit tests only, no Redis, no processes, no browser, on 2 cores
test-fast: dev
	$(BIN)/pytest -q -n 2 -p tests.fastlane -m "not redis and not e2e and not browser and not process"

## make keygen: add a signing key (published now, signing after the JWKS cache lifetime)
keygen: install
	$(BIN)/jwtauth keys --config $(CONFIG) rotate $(if $(ALG),--alg $(ALG))

lint: dev
	$(BIN)/ruff check jwtauth tests bench scripts examples

typecheck: dev
	$(BIN)/mypy

## make bench: a real jwtauth serve on Redis under wrk, with its baselines (~10 min; writes bench/results.md
## and README.md's performance block); make bench PEERS=1 also runs node-oidc-provider beside it (needs npm)
bench: dev system-deps
	$(BIN)/python -m bench.run $(if $(PEERS),--peers)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
