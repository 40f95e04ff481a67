# The verbs of the platform. `make demo` and `make test` work on a fresh machine with Python 3.11.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-installed

.PHONY: demo test test-fast test-faults test-integration test-celery integration-deps up down serve lint format bench bench-deep bench-serving bench-deps datasets venv clean

venv: $(STAMP)

# (Re)install when requirements.txt changes; creates .venv when it is missing.
$(STAMP): requirements.txt
	@test -x $(PY) || { echo "Creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || { echo "Python 3.11 is required (found $$($(PYTHON) --version))"; exit 1; }
	@echo "Installing pinned requirements into $(VENV) (a few minutes the first time)"
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	@touch $(STAMP)

demo: $(STAMP) datasets  ## run every DAG end to end through Airflow on the embedded stack (installs Fashion-MNIST first, as root)
	$(PY) -m pipelines demo

test: $(STAMP) integration-deps  ## everything: unit, DAG integrity, security, Airflow end to end, faults, integration mode + browser
	PIPELINES_E2E=1 $(PY) -m pytest --durations=25  # the 25 slowest in the log: where CI time goes

test-faults: $(STAMP)  ## faults injected into scheduler-driven runs, and the live security checks (about 8 minutes)
	$(PY) -m pytest -m faults

test-fast: $(STAMP)  ## a quick loop: everything but the Airflow end-to-end runs, faults and integration mode
	$(PY) -m pytest -m "not integration and not faults"

# Integration mode: PostgreSQL, Redis (the Celery broker) and headless Chromium from the distribution's packages (apt-get, as root or
# through sudo), Python drivers from requirements.txt. Installs only what is missing.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
integration-deps:
	@missing=""; \
	ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || command -v postgres >/dev/null || missing="$$missing postgresql"; \
	test -x /usr/bin/chromium || missing="$$missing chromium"; \
	command -v redis-server >/dev/null || test -x /usr/bin/redis-server || missing="$$missing redis-server"; \
	if [ -n "$$missing" ]; then \
		echo "Installing$$missing (apt-get)"; \
		$(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing; \
	fi

test-integration: $(STAMP) integration-deps  ## PostgreSQL + real Airflow components + MLflow server, REST-triggered runs, browser tests
	PIPELINES_E2E=1 $(PY) -m pytest tests/e2e -m e2e -s

test-celery: $(STAMP) integration-deps  ## the DAGs on the CeleryExecutor: Redis, 2 workers, one SIGKILLed mid-task (a few minutes)
	PIPELINES_E2E=1 $(PY) -m pytest tests/e2e/test_celery.py -s

up: $(STAMP)  ## Airflow UI on :8080 and MLflow UI on :5000, both on 127.0.0.1, in the background
	$(PY) -m pipelines up

down:  ## stop what `make up` started (by PID file)
	@if [ -x $(PY) ]; then $(PY) -m pipelines down; else echo "nothing to stop"; fi

serve: $(STAMP)  ## the prediction API (champion of serving.model) on 127.0.0.1:8000, in the foreground
	$(PY) -m pipelines serve

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy  # the step layer: files and settings in pyproject.toml [tool.mypy]

format: $(STAMP)
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

bench: $(STAMP) datasets bench-deps  ## benchmarks: print a table, write bench/results/*.json
	$(PY) bench/features.py
	$(PY) bench/training.py
	$(PY) bench/tuning.py
	$(PY) bench/recommendation.py
	$(PY) bench/forecasting.py
	$(PY) bench/deep.py
	$(PY) bench/serving.py
	$(PY) bench/reliability.py
	$(PY) bench/scaleout.py
	$(PY) bench/demo.py

bench-deep: $(STAMP) datasets  ## the deep-learning benchmark alone (sentiment, Fashion-MNIST CNN, poly experiment)
	$(PY) bench/deep.py

bench-serving: $(STAMP) bench-deps  ## the serving benchmark alone (our API vs mlflow models serve, wrk load test)
	$(PY) bench/serving.py

# The serving benchmark's load generator: Debian's wrk (apt-get, as root or through sudo), when missing.
bench-deps:
	@command -v wrk >/dev/null || { echo "Installing wrk (apt-get)"; \
		$(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends wrk; }

# Optional system datasets. Fashion-MNIST is Debian's dataset-fashion-mnist (idx files under
# /usr/share/datasets/fashion-mnist); without it the image DAG uses scikit-learn's digits.
# Installs only as root with apt-get; never fails, says what it did.
FASHION_PKG := dataset-fashion-mnist
datasets:  ## install Fashion-MNIST (apt: dataset-fashion-mnist) when root and missing
	@if dpkg-query -W -f='$${Status}' $(FASHION_PKG) 2>/dev/null | grep -q 'ok installed'; then \
		echo "Fashion-MNIST: $(FASHION_PKG) is installed (/usr/share/datasets/fashion-mnist)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "Fashion-MNIST: installing $(FASHION_PKG) with apt-get"; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(FASHION_PKG); } \
			|| echo "Fashion-MNIST: apt-get could not install $(FASHION_PKG); the image DAG will use scikit-learn digits"; \
	else \
		echo "Fashion-MNIST: $(FASHION_PKG) is not installed and this is not root with apt-get;"; \
		echo "  install it with 'sudo apt-get install $(FASHION_PKG)' or set MLP_FASHION_MNIST_DIR to a folder of its idx files."; \
		echo "  Until then the image DAG uses scikit-learn digits (8x8) and says so."; \
	fi

clean: down
	rm -rf .state
