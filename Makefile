# SayIt — `make help` lists every target.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# buf (proto lint) comes from npm, pinned with its lockfile in tools/, installed into tools/node_modules.
BUF := tools/node_modules/.bin/buf
NPM ?= npm
PROTO_FILES := $(shell find protos -name '*.proto' | sort)

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

.PHONY: install
install: $(STAMP) ## Create .venv and install SayIt with dev tools (quick when done)

$(BUF): tools/package.json tools/package-lock.json
	@command -v $(NPM) >/dev/null || { echo "make lint needs buf, installed with npm, but npm is missing: install Node.js 18+ with npm (https://nodejs.org/en/download, or apt-get install nodejs npm), then run make again" >&2; exit 1; }
	$(NPM) ci --prefix tools --no-audit --no-fund --loglevel=error
	touch $(BUF)

.PHONY: proto
proto: $(STAMP) ## Regenerate gen/ from protos/
	$(PY) scripts/gen_proto.py gen

.PHONY: proto-check
proto-check: $(STAMP) ## Fail when gen/ is stale against protos/
	@tmp=$$(mktemp -d) && $(PY) scripts/gen_proto.py $$tmp/gen >/dev/null && \
	if diff -r -x __pycache__ $$tmp/gen gen >/dev/null; then echo "gen/ is up to date"; rm -rf $$tmp; \
	else diff -r -x __pycache__ $$tmp/gen gen | head -20; rm -rf $$tmp; echo "gen/ is stale: run make proto"; exit 1; fi

.PHONY: lint
lint: $(STAMP) $(BUF) ## ruff check + format check + mypy + buf lint (protos) + settings table and OpenAPI fresh
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(BUF) lint
	$(PY) -m scripts.settings_doc --check
	$(PY) -m scripts.openapi --check

.PHONY: docs
docs: $(STAMP) ## Write docs/configuration.md's settings table from the settings classes
	$(PY) -m scripts.settings_doc

.PHONY: openapi
openapi: $(STAMP) ## Write docs/openapi.json, the HTTP edge's OpenAPI document, from its routes
	$(PY) -m scripts.openapi

.PHONY: fmt
fmt: $(STAMP) ## Format and auto-fix with ruff
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

.PHONY: test
test: $(STAMP) ## Run unit, integration and end-to-end tests
	$(VENV)/bin/pytest -q $(PYTEST_ARGS)

.PHONY: fuzz
fuzz: $(STAMP) ## Fuzz the gateway of a test mesh with 10 000 generated requests
	SAYIT_FUZZ_EXAMPLES=$${SAYIT_FUZZ_EXAMPLES:-10000} $(VENV)/bin/pytest -q -s tests/e2e/test_fuzz.py $(PYTEST_ARGS)

.PHONY: load
load: $(STAMP) ## 50 callers, 60 s, new audio each call, vs `make up`: OK/s, cache hits, p50/p95, jobs lost (LOAD_ARGS)
	$(PY) -m bench.load $(LOAD_ARGS)

.PHONY: crowd
crowd: $(STAMP) ## 1000 WatchJob streams + short calls vs `make up`: p50/p95 with/without, Redis conns, RSS (CROWD_ARGS)
	$(PY) -m bench.crowd $(CROWD_ARGS)

.PHONY: eval
eval: $(STAMP) ## Accuracy (ko CER, en WER) and RTF on ../shared/eval (EVAL_ARGS="--raw --normalise ...")
	$(PY) -m bench.eval $(EVAL_ARGS)

.PHONY: bench
bench: $(STAMP) ## SayIt vs the raw engine: table + bench/results/<date>.json (BENCH_ARGS=--quick)
	$(PY) -m bench $(BENCH_ARGS)

.PHONY: arm64-check
arm64-check: $(STAMP) ## SayIt on arm64 under qemu vs x86-64: same clips, texts compared (root; minutes; ARM64_ARGS)
	$(PY) -m scripts.arm64_check $(ARM64_ARGS)

.PHONY: up
up: $(STAMP) ## Start the services in the background (pids and logs in .run/)
	$(PY) -m scripts.mesh up

.PHONY: down
down: ## Stop what `make up` started
	@if [ -x $(PY) ]; then $(PY) -m scripts.mesh down; fi

.PHONY: status
status: $(STAMP) ## Show the health of the services `make up` started
	$(PY) -m scripts.mesh status

.PHONY: run
run: $(STAMP) ## Bring the services up and transcribe sample clips (the main job)
	$(PY) -m scripts.mesh up
	$(PY) -m scripts.demo

.PHONY: clean
clean: down ## Remove .run/, caches and build output (keeps .venv)
	rm -rf .run .pytest_cache .mypy_cache .ruff_cache build dist
	find . -name __pycache__ -not -path './.venv/*' -prune -exec rm -rf {} +
