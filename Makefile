# Bytchat: `make run` starts everything on the embedded default; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
HOST ?= 127.0.0.1

.DEFAULT_GOAL := help
.PHONY: help install run cluster cluster-restart demo worker migrate test test-fast lint fmt messages

help:
	@echo "make run           set up if needed, migrate, start the server on http://$(HOST):$(PORT) (Ctrl-C stops)"
	@echo "make cluster       nginx on \$$PORT in front of WEB_PROCESSES server processes and the worker (needs DATABASE_URL"
	@echo "                   on PostgreSQL and REDIS_URL; docs/scaling.md)"
	@echo "make cluster-restart  restart make cluster's server processes one at a time (nothing lost)"
	@echo "make demo          make run, with a demo bot answering from a sample document at /demo/"
	@echo "make test          lint, then the whole test suite on the embedded defaults"
	@echo "make test-fast     the suite without the browser and end-to-end tests (the edit loop; ARGS=... passes on)"
	@echo "make lint | fmt    ruff check | ruff format"
	@echo "make worker        the background worker alone (make run starts one)"
	@echo "make migrate       apply database migrations"
	@echo "make messages      compile translations (needs gettext's msgfmt)"

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

migrate: install
	$(PY) manage.py migrate --noinput

# The server (HTTP and WebSocket) plus any background workers; see scripts/run.sh.
run: migrate
	@HOST=$(HOST) PORT=$(PORT) scripts/run.sh

# nginx in front of several server processes and the worker, on PostgreSQL and Redis; see scripts/cluster.py.
# The check comes first: without them it refuses before migrating anything.
cluster: install
	@$(PY) scripts/cluster.py --check
	@scripts/system-packages.sh nginx
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput -v0
	@HOST=$(HOST) PORT=$(PORT) $(PY) scripts/cluster.py

# A rolling restart of the running make cluster (SIGHUP to its supervisor).
cluster-restart:
	kill -HUP $$(cat $${CLUSTER_DIR:-$${DATA_DIR:-data}/cluster}/cluster.pid)

# The widget's demo: a public bot with a sample document (ingested by the worker make run starts).
demo: migrate
	$(PY) manage.py demo_bot
	@echo "Open http://$(HOST):$(PORT)/demo/"
	@HOST=$(HOST) PORT=$(PORT) scripts/run.sh

# The background worker alone (ingestion; its heartbeat is what /readyz reads), for a server started elsewhere.
worker: migrate
	$(PY) manage.py reconcile_documents
	$(PY) manage.py run_worker

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

fmt: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: lint
	$(PY) manage.py makemigrations --check --dry-run > /dev/null
	$(PY) -m pytest -q

# The edit loop: no real-server (e2e) or Chromium (browser) tests; `make test` still runs them.
test-fast: install
	$(PY) -m pytest -q -m "not browser and not e2e" $(ARGS)

messages: install
	$(PY) manage.py compilemessages --ignore=.venv
