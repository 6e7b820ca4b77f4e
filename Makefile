# Two commands matter: `make run` starts the gateway, `make test` runs every test. Both bootstrap a
# virtualenv in .venv with the pinned requirements on first use (and again when a requirements file changes).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test bench bench-redis install install-dev redis clean

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

redis:
	@scripts/ensure-redis.sh

test: $(VENV)/.dev redis
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.dev redis
	$(BIN)/python -m bench $(BENCH_ARGS)
	$(BIN)/python -m bench.redis_scale $(BENCH_REDIS_ARGS)

bench-redis: $(VENV)/.dev redis
	$(BIN)/python -m bench.redis_scale $(BENCH_REDIS_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .bench
