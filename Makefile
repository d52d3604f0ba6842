# The two commands a newcomer needs: `make run` and `make test`. Everything else is set up by them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip

.PHONY: run test lint serve-prod messages screenshots vendor smoke loadtest chaos bench fuzz clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.base: requirements/base.txt | $(BIN)/python
	$(PIP) install -q -r requirements/base.txt
	touch $@

$(VENV)/.dev: requirements/dev.txt requirements/base.txt | $(BIN)/python
	$(PIP) install -q -r requirements/dev.txt
	touch $@ $(VENV)/.base

## Run the product on http://localhost:$${PORT:-5000} (SQLite and in-memory layer unless configured),
## for this machine only: HOST=0.0.0.0 make run opens it to the network. The first run prints the
## demo password (kept in .demo-password).
run: $(VENV)/.base
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput -v0
	$(BIN)/python manage.py seed_demo
	$(BIN)/python manage.py serve

## Lint and run the whole test suite.
test: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/python scripts/ensure_chromium.py
	$(BIN)/pytest

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## Recompile the Spanish and English translations after editing locale/.
messages: $(VENV)/.dev
	$(BIN)/python manage.py makemessages -l es -l en --ignore=.venv
	$(BIN)/python manage.py makemessages -d djangojs -l es -l en --ignore=.venv --ignore=staticfiles --ignore=static/vendor
	$(BIN)/python manage.py compilemessages --ignore=.venv

## Retake the README's screenshots (docs/screenshots/) with the browser test; a plain test run
## writes them only under test-results/screenshots/, so it leaves the tree as it was.
screenshots: $(VENV)/.dev
	UPDATE_SCREENSHOTS=1 $(BIN)/pytest tests/e2e/test_browser.py tests/e2e/test_browser_camera.py \
		-k "screenshots or camera_reads"

## Refresh the vendored barcode engine (static/vendor/barcode-detector/, committed: nothing
## runs npm at test or run time) from the npm registry: make vendor [BARCODE_DETECTOR_VERSION=x.y.z]
BARCODE_DETECTOR_VERSION ?= 3.2.2
vendor:
	sh scripts/vendor_barcode_detector.sh $(BARCODE_DETECTOR_VERSION)

## Check a running deployment in seconds: make smoke URL=https://... TOKEN=...
smoke: $(VENV)/.base
	$(BIN)/python manage.py ws_smoke --url $${URL:-http://localhost:$${PORT:-5000}} --token $${TOKEN:?set TOKEN to an API token}

## Rooms x clients against a running server: make loadtest [URL=...] [ARGS="--rooms 5 --rate 2"]
loadtest: $(VENV)/.base
	$(BIN)/python manage.py ws_loadtest --url $${URL:-http://localhost:$${PORT:-5000}} $(ARGS)

## The chaos run of docs/reliability.md (3-6 min; PostgreSQL on localhost, redis-server on PATH): it starts its
## own two servers, Redis and proxies, on a database of its own. make chaos [ARGS="--rooms 4 --clients 10"]
CHAOS_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/inventory_chaos
chaos: $(VENV)/.base
	$(BIN)/python -m tools.chaos.database $(CHAOS_DATABASE_URL)
	DATABASE_URL=$(CHAOS_DATABASE_URL) $(BIN)/python manage.py migrate --noinput -v0
	DATABASE_URL=$(CHAOS_DATABASE_URL) $(BIN)/python manage.py ws_loadtest --chaos $(ARGS)

## The load benchmark of docs/performance.md (~20 min; PostgreSQL and Redis on localhost, 2+ cores).
bench: $(VENV)/.dev
	$(PIP) install -q -r requirements/bench.txt
	$(BIN)/python tools/bench/run.py

## The long fuzz campaign (not in CI, which runs the short profile; ~70 min on 2 cores): the live
## room's state machine (10,000+ steps) and schemathesis (5,000+ calls, along the schema's links
## too), on SQLite and on PostgreSQL + Redis side by side; prints the counts each test wrote to
## test-results/fuzz/ (the pytest output of each configuration is in test-results/fuzz/*.log).
FUZZ_TESTS := tests/realtime/test_room_machine.py tests/inventory/test_schema.py
FUZZ_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/inventory_fuzz
FUZZ_REDIS_URL ?= redis://127.0.0.1:6379/10
fuzz: $(VENV)/.dev
	rm -rf test-results/fuzz && mkdir -p test-results/fuzz
	createdb -h 127.0.0.1 -U postgres inventory_fuzz 2>/dev/null || true  # once; kept for the next run
	env -u DATABASE_URL -u REDIS_URL FUZZ_PROFILE=long $(BIN)/pytest -q -p no:cacheprovider $(FUZZ_TESTS) \
	  > test-results/fuzz/sqlite.log 2>&1 & sqlite=$$!; \
	DATABASE_URL=$(FUZZ_DATABASE_URL) REDIS_URL=$(FUZZ_REDIS_URL) FUZZ_PROFILE=long \
	  $(BIN)/pytest -q -p no:cacheprovider $(FUZZ_TESTS) > test-results/fuzz/postgres-redis.log 2>&1; \
	postgres=$$?; wait $$sqlite; sqlite=$$?; \
	tail -n 2 test-results/fuzz/sqlite.log test-results/fuzz/postgres-redis.log; \
	$(BIN)/python scripts/fuzz_summary.py; test $$sqlite -eq 0 -a $$postgres -eq 0

clean:
	rm -rf $(VENV) staticfiles test-results .pytest_cache
