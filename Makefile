PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
# manage.py reads the settings (and .env) itself; the suite and the benchmarks use the test settings
TEST_SETTINGS := marine_center.settings_test

.DEFAULT_GOAL := help
.PHONY: help run test check bench install migrate seed lint clean

## help: list the targets
help:
	@grep -E '^## ' $(MAKEFILE_LIST) | sed -e 's/^## /  make /' -e 's/: /\t/'

$(BIN)/.installed: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

## install: create .venv and install the pinned runtime and development requirements
install: $(BIN)/.installed

# .env: development settings for every manage.py command in this checkout (DEBUG=1 and a generated
# SECRET_KEY), written once when missing; the environment still overrides it
.env:
	@printf 'DEBUG=1\nSECRET_KEY=%s\n' "$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))')" > $@
	@echo "Wrote .env (DEBUG=1 and a generated SECRET_KEY) for development: manage.py commands in this checkout now work with no variable set."

## migrate: apply the migrations to the development database (SQLite under var/ unless DATABASE_URL)
migrate: install .env
	mkdir -p var
	$(BIN)/python manage.py migrate --noinput

## seed: load the demo data (users, requests, emergencies, stock)
seed: migrate
	PORT=$(PORT) $(BIN)/python manage.py seed_demo

## run: install, migrate, seed, then web on http://127.0.0.1:$(PORT), a worker and the scheduler (Ctrl-C stops all)
run: seed
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/honcho start --procfile Procfile --port $(PORT)

## test: the whole suite (DATABASE_URL=postgres://... for PostgreSQL; PYTEST_ARGS for pytest options)
test: install
	DJANGO_SETTINGS_MODULE=$(TEST_SETTINGS) $(BIN)/python -m pytest $(PYTEST_ARGS)

## check: ruff, Django's system checks (warnings fail) and a check that no migration is missing
check: install
	mkdir -p var
	$(BIN)/ruff check .
	DJANGO_SETTINGS_MODULE=$(TEST_SETTINGS) $(BIN)/python manage.py check --fail-level WARNING
	DJANGO_SETTINGS_MODULE=$(TEST_SETTINGS) $(BIN)/python manage.py makemigrations --check --dry-run

## bench: the benchmarks, ratios against a baseline and the peers measured in the same run
bench: install
	DJANGO_SETTINGS_MODULE=$(TEST_SETTINGS) $(BIN)/python -m bench

## lint: ruff only
lint: install
	$(BIN)/ruff check .

## clean: remove the virtualenv and var/ (the development database, mail, media, seals)
clean:
	rm -rf $(VENV) var .pytest_cache
