# cookiecutter-luigi-kaggle: `make demo` and `make test` bootstrap their own environment (.venv).

.DEFAULT_GOAL := help
SHELL := /bin/bash

VENV := .venv
PYTHON := $(VENV)/bin/python
BOOTSTRAP_PYTHON ?= python3
STAMP := $(VENV)/.installed
DEMO := build/demo

.PHONY: help demo test lint bench bench-durable bench-scheduler bench-s3cache bench-tables clean lock openmp

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-13s %s\n", $$1, $$2}'

$(STAMP): requirements.txt
	@$(BOOTSTRAP_PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' || \
		{ echo "ERROR: $(BOOTSTRAP_PYTHON) is older than Python 3.10; set BOOTSTRAP_PYTHON=python3.x" >&2; exit 1; }
	$(BOOTSTRAP_PYTHON) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -r requirements.txt
	@$(MAKE) --no-print-directory openmp
	@touch $@

# LightGBM's wheel loads the system OpenMP library (libgomp.so.1), which pip cannot install: the
# tests train lgbm, so install Debian's libgomp1 when it is missing and apt-get can (as root).
openmp:
	@$(PYTHON) -c 'import lightgbm' 2>/dev/null || { \
		if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
			echo "LightGBM needs the system OpenMP library: apt-get install libgomp1"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libgomp1 >/dev/null; \
		fi; \
		$(PYTHON) -c 'import lightgbm' || { echo "ERROR: lightgbm cannot load the system OpenMP library: \
install libgomp1 (Debian/Ubuntu: apt-get install libgomp1; macOS: brew install libomp)" >&2; exit 1; }; }

demo: $(STAMP) ## bake the default project into build/demo and run its whole pipeline
	rm -rf $(DEMO)
	$(PYTHON) -m cookiecutter --no-input . --output-dir $(DEMO)
	$(MAKE) --no-print-directory -C $(DEMO)/kaggle-competition all VENV=$(CURDIR)/$(VENV)
	@echo "The demo project is $(DEMO)/kaggle-competition: cd there and run make help."

# Test processes: most of the suite waits on make and Luigi subprocesses, one per worker.
TEST_WORKERS ?= 2

test: $(STAMP) ## run the template's test suite (TEST_WORKERS=n processes, default 2)
	$(PYTHON) -m pytest -n $(TEST_WORKERS)

# Sizes of the benchmark's synthetic competition: make bench N_ROWS=100000 runs it in a minute.
N_ROWS ?= 5000000
N_TEST_ROWS ?= 1000000
SCALE ?= 4
REPEAT ?= 10
TRAIN_ROWS ?= 1000000
REPEAT_DURABLE ?= 3
S3_ROWS ?= 500000
CUSTOMERS ?= 1550000
CLICKS ?= 50000000
MEMORY_LIMIT ?= 1GB

bench: $(STAMP) ## the pipeline on a large synthetic competition against plain pandas (N_ROWS=...)
	$(PYTHON) bench/large.py --rows $(N_ROWS) --test-rows $(N_TEST_ROWS) --scale $(SCALE) --repeat $(REPEAT) \
		--train-rows $(TRAIN_ROWS)

bench-durable: $(STAMP) ## what fsync costs Ingest: with against without, alternating (N_ROWS=..., REPEAT_DURABLE=3)
	$(PYTHON) bench/durable.py --rows $(N_ROWS) --test-rows $(N_TEST_ROWS) --repeat $(REPEAT_DURABLE)

bench-scheduler: $(STAMP) ## workers of luigid: 2 against 1 on 4 CPU-bound features, a killed worker's task (N_ROWS=...)
	$(PYTHON) bench/scheduler.py --rows $(N_ROWS) --repeat $(REPEAT_DURABLE)

bench-s3cache: $(STAMP) ## the cache on S3 (moto): 2 machines' workers against 1, up-to-date make all against local (S3_ROWS=...)
	$(PYTHON) bench/s3cache.py --rows $(S3_ROWS) --repeat $(REPEAT_DURABLE)

bench-tables: $(STAMP) ## features over other tables (DuckDB) against pandas: AmEx- and Outbrain-shaped (CUSTOMERS=, CLICKS=)
	$(PYTHON) bench/tables.py --customers $(CUSTOMERS) --clicks $(CLICKS) --memory-limit $(MEMORY_LIMIT)

lint: $(STAMP) ## ruff on the tests and benchmarks (hooks and baked code are rendered and linted by the tests)
	$(PYTHON) -m ruff check tests bench
	$(PYTHON) -m ruff format --check tests bench

# The generated project's requirements.lock is made by the generated project's own `make lock`, in a bake with
# the default answers (the lock holds no rendered value), and copied back with the pre-commit config (ruff's pin).
PROJECT_DIR := {{cookiecutter.project_slug}}
LOCK_BAKE := build/lock

lock: $(STAMP) ## refresh the generated project's requirements.lock from its pyproject.toml (UPGRADE=1: newest)
	rm -rf $(LOCK_BAKE)
	$(PYTHON) -m cookiecutter --no-input . --output-dir $(LOCK_BAKE)
	$(MAKE) --no-print-directory -C $(LOCK_BAKE)/kaggle-competition lock VENV=$(CURDIR)/$(VENV) $(if $(UPGRADE),UPGRADE=1)
	cp $(LOCK_BAKE)/kaggle-competition/requirements.lock $(LOCK_BAKE)/kaggle-competition/.pre-commit-config.yaml \
		'$(PROJECT_DIR)/'

clean: ## remove the environment and baked projects
	rm -rf $(VENV) build
