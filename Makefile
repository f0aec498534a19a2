# The newcomer's commands: `make run` (dashboard + worker + Redis) and `make test` (the suite).
SHELL := /bin/bash
VENV ?= .venv
PYTHON ?= $(shell scripts/find_python.sh 3.11 3.12 || scripts/find_python.sh 3.11)
PY := $(VENV)/bin/python

.PHONY: help venv venv-dev run test check lint typecheck bench soak clean screenshots shell manage stress-test

help:
	@echo "make run        start the dashboard (http://127.0.0.1:8000/jobs/), a worker and, if needed, Redis (DEBUG=1: Django's DEBUG on)"
	@echo "make test       build the environments and run the whole suite (+ ruff, mypy)"
	@echo "make check      the suite in the current environment only (quick loop)"
	@echo "make stress-test the whole suite 3 times in a row while stress-ng loads every core (RUNS=n)"
	@echo "make shell      a shell in .venv with REDIS_URL set to the Redis of 'make run' (second terminal)"
	@echo "make manage ARGS=\"qe_stats\"   a manage.py command against the Redis of 'make run'"
	@echo "make lint       ruff, mypy and the import-linter contracts"
	@echo "make bench      benchmarks against RQ, Celery, huey, arq, saq and raw Redis (QUICK=1 for a short run)"
	@echo "make soak       200,000 jobs per mode (engine, reliable, recoverable, simple) under chaos (worker and Redis kills, pauses, failovers)"

venv:
	@bash scripts/make_venv.sh $(VENV) "$(PYTHON)" requirements.txt

venv-dev:
	@bash scripts/make_venv.sh $(VENV) "$(PYTHON)" requirements-dev.txt

run: venv
	@$(PY) -m config.run

test:
	@bash scripts/test_matrix.sh

shell: venv
	@VENV=$(VENV) bash scripts/with_redis.sh bash -i

manage: venv
	@VENV=$(VENV) bash scripts/with_redis.sh python manage.py $(ARGS)

check: venv-dev
	$(PY) -m pytest -q $(ARGS)

stress-test: venv-dev
	@bash scripts/stress_test.sh $(VENV) $(ARGS)

screenshots: venv-dev
	QE_SCREENSHOT_DIR=docs $(PY) -m pytest -q -p no:cacheprovider tests/browser -k screenshots

lint: venv-dev
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(VENV)/bin/lint-imports

soak: venv-dev
	@mkdir -p bench/results
	$(PY) -m bench.soak --json bench/results/soak.json $(SOAK_ARGS)

bench:
	@bash bench/setup.sh
	@bench/.venv-peers/bin/python bench/run.py $(if $(QUICK),--quick,) $(BENCH_ARGS)

clean:
	rm -rf .venv .venv-py* .pytest_cache .mypy_cache .ruff_cache
