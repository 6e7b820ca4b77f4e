# Two commands matter: `make run` starts the gateway, `make test` runs every test. Both bootstrap a
# virtualenv in .venv with the pinned requirements on first use (and again when a requirements file changes).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run demo test bench bench-workers bench-redis install install-dev redis browser clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $(VENV)/.runtime $@

install: $(VENV)/.runtime
install-dev: $(VENV)/.dev

run: $(VENV)/.runtime
	$(BIN)/python -m app

# The gateway over the bundled fake Gemini upstream with a scripted pool: no key needed (scripts/demo.py).
demo: $(VENV)/.dev
	$(BIN)/python -m scripts.demo

redis:
	@scripts/ensure-redis.sh

# Debian packages the tests drive: chromium (the console's browser tests; never `playwright install`),
# promtool (the metrics test) and nginx (the bench harness's smoke test).
browser:
	@if [ ! -x /usr/bin/chromium ] || ! command -v promtool >/dev/null || [ ! -x /usr/sbin/nginx ]; then \
		apt-get update -qq && apt-get install -y -qq chromium prometheus nginx-light; fi

test: $(VENV)/.dev redis browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.dev redis
	$(BIN)/python -m bench $(BENCH_ARGS)
	$(BIN)/python -m bench.redis_scale $(BENCH_REDIS_ARGS)
	$(BIN)/python -m bench.redis_paths $(BENCH_REDIS_ARGS)
	$(BIN)/python -m bench.workers_scale $(BENCH_WORKERS_ARGS)

bench-workers: $(VENV)/.dev redis
	$(BIN)/python -m bench.workers_scale $(BENCH_WORKERS_ARGS)

bench-redis: $(VENV)/.dev redis
	$(BIN)/python -m bench.redis_scale $(BENCH_REDIS_ARGS)
	$(BIN)/python -m bench.redis_paths $(BENCH_REDIS_ARGS)
	$(BIN)/python -m bench.redis_round_trips

clean:
	rm -rf $(VENV) .pytest_cache .bench
