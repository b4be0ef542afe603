# deploystream — `make run` starts the stack, `make test` runs every test tier.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=
CHAOS_ARGS ?=
# Locked dependencies with hashes (uv pip compile); `make lock` regenerates them.
LOCK := requirements/dev.lock
RUNTIME_LOCK := requirements/runtime.lock
LOCK_ARGS ?=
COMPILE := $(BIN)/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
	--custom-compile-command "make lock" $(LOCK_ARGS)

.PHONY: help install lock kafka-jars registry-app run test test-unit test-integration test-e2e chaos lint format clean

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

# Every package comes from the lock, hash-checked; the project itself is then installed
# without dependencies and built with the locked setuptools (no build isolation, which would
# fetch an unpinned one).
$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install the locked dependencies and the project

lock:  ## regenerate requirements/*.lock after changing dependencies (LOCK_ARGS=--upgrade for newer)
	test -x $(BIN)/uv || $(MAKE) install
	$(COMPILE) --extra dev -o $(LOCK) pyproject.toml requirements/build.in
	$(COMPILE) -c $(LOCK) -o $(RUNTIME_LOCK) pyproject.toml requirements/build.in

kafka-jars: install  ## fetch the Kafka broker jars from Maven Central once (cached in .cache/kafka)
	$(BIN)/python -c 'from deploystream.kafka.jars import ensure_libs; print(ensure_libs())'

registry-app: install  ## fetch Apicurio Registry from Maven Central once (SHA-256 checked; .cache/apicurio)
	$(BIN)/python -c 'from deploystream.registry.apicurio import ensure_app; print(ensure_app())'

run: kafka-jars registry-app  ## broker + registry + worker + gateway on 127.0.0.1 (gateway :8080); Ctrl-C stops all
	$(BIN)/deploystream run

test: kafka-jars registry-app  ## every tier against a real broker and registry the test session starts
	$(BIN)/pytest $(PYTEST_ARGS)

test-unit: install  ## unit tests only (no broker)
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

test-integration: kafka-jars registry-app  ## integration tests (real broker and registry)
	$(BIN)/pytest tests/integration $(PYTEST_ARGS)

test-e2e: kafka-jars registry-app  ## end-to-end tests (broker, registry, worker and gateway processes)
	$(BIN)/pytest tests/e2e $(PYTEST_ARGS)

chaos: kafka-jars registry-app  ## long fault soak (worker/gateway kills, broker outages); results in chaos/results/
	$(BIN)/python -m chaos $(CHAOS_ARGS)

lint: install  ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install  ## apply ruff's formatting and fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:  ## remove run data (var/); keeps .venv and the jar cache
	rm -rf var

.PHONY: bench bench-quick

bench: kafka-jars registry-app  ## benchmark: ingest, apply, lag, lookups, restarts, memory (~15-20 min) -> bench/results/
	$(BIN)/python -m bench

bench-quick: kafka-jars registry-app  ## the same benchmark, smaller and shorter (under 2 minutes)
	$(BIN)/python -m bench --quick
