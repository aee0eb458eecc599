# Every target that needs the environment builds it first, so `make test` and `make serve`
# each work on a fresh machine with nothing installed by hand.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTHON := $(BIN)/python
PYTEST_ARGS ?=
ARTIFACT ?= artifacts/models/v1.0.0

.PHONY: setup test lint typecheck importlint unit integration serve train evaluate dataset bench clean prometheus demo sandbox-up sandbox-down

setup: $(STAMP) prometheus

$(STAMP): pyproject.toml
	test -x $(PYTHON) || $(PY) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	# torch first and pinned: any other spec pulls the CUDA build (gigabytes).
	$(PYTHON) -m pip install --quiet torch==2.13.0
	# Editable install; pytest (pythonpath) and mypy (mypy_path) read the four source roots directly.
	$(PYTHON) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Integration tests run a real Prometheus; install the Debian package when apt is usable.
prometheus:
	@if command -v prometheus >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian prometheus"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; \
	else echo "prometheus not installed and apt-get unusable: Prometheus tests will be skipped"; fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(MAKE) typecheck importlint

typecheck: $(STAMP)
	$(BIN)/mypy -p rankops.operator -p rankops.serving -p rankops.sandbox -p rankops.cli

importlint: $(STAMP)
	$(BIN)/lint-imports

test: setup lint
	$(BIN)/pytest -q -rs $(PYTEST_ARGS)

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit $(PYTEST_ARGS)

integration: setup
	$(BIN)/pytest -q -rs tests/integration $(PYTEST_ARGS)

dataset: $(STAMP)
	$(PYTHON) examples/data/generate_datasets.py --out examples/data/datasets

$(ARTIFACT)/manifest.json: $(STAMP)
	$(BIN)/rankops train --data examples/data/datasets --out $(ARTIFACT) --version 1.0.0

train: $(ARTIFACT)/manifest.json

evaluate: train
	$(BIN)/rankops evaluate --model $(ARTIFACT) --data examples/data/datasets --split test

serve: train
	$(BIN)/rankops serve --model $(ARTIFACT) --host 127.0.0.1 --port 8080

# The main job: the operator at work on this machine (sandbox API server, pods as processes, a
# real Prometheus, held-out traffic). Model versions are trained once into artifacts/demo/models.
demo: setup
	$(BIN)/rankops demo

sandbox-up: setup
	$(BIN)/rankops sandbox up

sandbox-down: $(STAMP)
	$(BIN)/rankops sandbox down

# wrk (Debian) is the load generator of choice: a C client steals far less of the 2 cores than
# a Python one; benchmarks/serving.py falls back to aiohttp without it.
bench: train prometheus
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; } || true
	$(PYTHON) benchmarks/serving.py --model $(ARTIFACT)
	$(PYTHON) benchmarks/rollback_latency.py

clean:
	rm -rf $(VENV) artifacts .mypy_cache .ruff_cache .pytest_cache
