# HealthTrack: `make run` serves the API on http://127.0.0.1:8000, `make test` runs the suite.
# Everything runs on the embedded default (SQLite + local-memory cache) unless
# DATABASE_URL / REDIS_URL are set.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
MANAGE := $(BIN)/python manage.py
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run dev serve test test-browser lint format migrate makemigrations seed bootstrap \
        check-deploy bench bench-insights fuzz db-up db-down clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): $(BIN)/python requirements.txt requirements-dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(INSTALLED)

install: $(INSTALLED)

migrate: install
	$(MANAGE) migrate --noinput

makemigrations: install
	$(MANAGE) makemigrations

bootstrap: migrate
	$(MANAGE) bootstrap_demo

run: bootstrap
	$(MANAGE) collectstatic --noinput --verbosity 0
	$(BIN)/gunicorn healthtrack.wsgi --config gunicorn.conf.py --bind $(HOST):$(PORT)

serve: install
	$(MANAGE) collectstatic --noinput --verbosity 0
	$(BIN)/gunicorn healthtrack.wsgi --config gunicorn.conf.py

dev: bootstrap
	$(MANAGE) runserver $(HOST):$(PORT)

test: install
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

seed: migrate
	$(MANAGE) seed_demo_data --users $${USERS:-100} --days $${DAYS:-30}

# Throughput against the ceiling of the stack, fixed-rate mixed traffic, worker memory:
# docs/performance.md. PostgreSQL ht_bench (dropped and seeded) + Redis DB 9 by default;
# needs wrk and node. E.g. make bench BENCH_ARGS="--skip-seed --routes summary,mixed"
bench: install
	$(BIN)/python scripts/bench.py $(BENCH_ARGS)

# Seeds 10,000 people x 30 days (once; reused after) and times compute_insights. Use a
# dedicated database: DATABASE_URL=postgres://.../ht_insights_bench make bench-insights
bench-insights: install
	$(BIN)/python scripts/bench_insights.py $(BENCH_ARGS)

# Schemathesis against a live gunicorn on a database of its own (<DATABASE_URL name>_fuzz,
# dropped afterwards; SQLite without DATABASE_URL). CI: FUZZ_ARGS=--require-services.
# docs/hardening.md
fuzz: install
	$(BIN)/python scripts/fuzz_api.py $(FUZZ_ARGS)

check-deploy: install
	DEBUG=false SECRET_KEY=check-deploy-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz \
	FIELD_ENCRYPTION_KEY=check-deploy-field-key-0123456789 \
	JWT_SIGNING_KEY=check-deploy-jwt-key-0123456789-abcdefghijklmnopqrstuvwxyz \
	ALLOWED_HOSTS=healthtrack.example.com REDIS_URL=$${REDIS_URL:-redis://127.0.0.1:6379/0} \
	$(MANAGE) check --deploy --fail-level WARNING

db-up:
	docker compose up -d db redis

db-down:
	docker compose down

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
