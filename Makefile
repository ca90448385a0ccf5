PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
export DJANGO_SETTINGS_MODULE := marine_center.settings

.PHONY: run test install migrate seed serve bench lint clean

$(BIN)/.installed: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

install: $(BIN)/.installed

migrate: install
	mkdir -p var
	DEBUG=$${DEBUG:-1} $(BIN)/python manage.py migrate --noinput

seed: migrate
	DEBUG=$${DEBUG:-1} $(BIN)/python manage.py seed_demo

## make run: install, migrate an SQLite database, load demo data, then web on 127.0.0.1:$(PORT), a worker and the scheduler (Procfile; Ctrl-C stops all)
run: seed
	DEBUG=$${DEBUG:-1} $(BIN)/python manage.py collectstatic --noinput --verbosity 0
	DEBUG=$${DEBUG:-1} $(BIN)/honcho start --procfile Procfile --port $(PORT)

## make test: the whole suite (set DATABASE_URL for PostgreSQL)
test: install
	TESTING=1 $(BIN)/python -m pytest $(PYTEST_ARGS)

## make bench: benchmarks, ratios against a baseline measured in the same run
bench: install
	TESTING=1 $(BIN)/python -m bench

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) var .pytest_cache
