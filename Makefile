# PhotoVault developer commands. `make dev` and `make test` work from a fresh clone with only
# Python 3.11+ (and Node.js for buf): they create the venv and install what they need; what the
# tests need from the system is scripts/test-prerequisites.sh's to install or name.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BUF := node_modules/.bin/buf
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.package-lock.json

.PHONY: dev web test test-prerequisites pytest lint gen gen-check gen-clients buf-lint buf-breaking fmt clean bench soak

# The project and, beside it, the development tools (devtools/: `photovault dev`, the stand-in
# back ends), which the project's wheel and image never contain.
$(STAMP): pyproject.toml devtools/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check uv
	$(VENV)/bin/uv pip install --quiet --compile-bytecode --python $(PY) -e '.[dev]' -e ./devtools
	touch $@

# npm ci: exactly the lock file (buf, protoc-gen-es, connect, esbuild, playwright-core, ...).
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	touch $@

## dev: run the service on embedded defaults (S3 from moto; Postgres/Redis local or embedded)
## and the browser gallery (built when npm is there)
dev: $(STAMP)
	if command -v npm >/dev/null; then $(MAKE) --no-print-directory web; \
	else echo "npm not found: the browser gallery is skipped"; fi
	$(VENV)/bin/photovault dev

web: $(NODE_STAMP)
	npm run -s build:web

## test: lint, then every test against real Postgres, Redis, moto and LocalStack
test: test-prerequisites lint pytest

# First, so that a missing system package is named before anything is installed or run.
test-prerequisites:
	scripts/test-prerequisites.sh

pytest: test-prerequisites $(STAMP) $(NODE_STAMP)
	$(PY) -m pytest

lint: $(STAMP) $(NODE_STAMP) buf-lint buf-breaking gen-check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	npm run -s typecheck
	npm run -s gen-ts:check

buf-lint: $(NODE_STAMP)
	cd protos && ../$(BUF) lint

## buf-breaking: the contract stays wire- and source-compatible with the previous commit
buf-breaking: $(NODE_STAMP)
	if git rev-parse -q --verify HEAD~1 >/dev/null; then \
	  cd protos && ../$(BUF) breaking --against '../.git#ref=HEAD~1,subdir=protos'; \
	else echo "buf-breaking: no previous commit to compare with"; fi

## bench: run the benchmarks (not part of the tests) and rewrite docs/benchmarks.md
bench: $(STAMP) test-prerequisites
	$(PY) -m compileall -q -j 0 $(VENV)/lib server gen client >/dev/null  # as the image does
	$(PY) -m bench

## soak: load + faults (Redis, S3, Postgres restarts, SIGTERM), callers giving up, 4x overload, a fleet
## of three and --workers 2 beside --workers 1, against served instances, then the hostile-input checks with the RPC fuzzing at 10,000 examples per
## test (make test runs 40); rewrites docs/reliability.md (SOAK_SECONDS, SOAK_CLIENTS,
## SOAK_FUZZ_EXAMPLES, SOAK_WORKERS_SECONDS, ...: see soak/run.py, soak/workers.py, soak/hostile.py)
soak: $(STAMP) $(NODE_STAMP) test-prerequisites
	$(PY) -m soak

## gen: regenerate the Python stubs from protos/ (never edit them by hand)
gen: $(STAMP) $(NODE_STAMP)
	PY=$(PY) scripts/gen_protos.sh
	npm run -s gen-ts

## gen-clients: generate the Go and C++ clients into gen/go and gen/cpp (not committed: built
## per machine with Debian's protoc and plugins, see docs/clients.md)
gen-clients:
	scripts/gen_clients.sh gen

## gen-check: the committed stubs are exactly what the protos generate
gen-check: $(STAMP)
	tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	PY=$(PY) scripts/gen_protos.sh "$$tmp"; \
	diff -r -x __pycache__ "$$tmp/photovault" gen/python/photovault \
	  || { echo "generated stubs are stale: run 'make gen' and commit"; exit 1; }

fmt: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) .venv-localstack node_modules .dev .pytest_cache .mypy_cache .ruff_cache
