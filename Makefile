# Engage: one Makefile for people and CI.
#   make run    the whole system on its embedded defaults (SQLite, a local NATS)
#   make test   every test (needs PostgreSQL at 127.0.0.1:5432; starts its own NATS)
#   make lint   ruff, mypy, buf lint
#   make bench  performance tables (roles, skills, incentives, gateway), each figure against a baseline

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BUF := npx --yes @bufbuild/buf@1.75.0
export PYTHONPATH := $(CURDIR):$(CURDIR)/gen

PROTOS := $(shell find protos/engage -name '*.proto')
GEN_STAMP := gen/.stamp

.PHONY: install gen run test lint bench clean migrate soak

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

gen: $(GEN_STAMP)

# Generated code is a build output: never edited, never committed.
$(GEN_STAMP): $(VENV)/.installed $(PROTOS)
	rm -rf gen && mkdir -p gen
	$(PY) -m grpc_tools.protoc -Iprotos \
	  -I$$($(PY) -c 'import grpc_tools, os; print(os.path.join(os.path.dirname(grpc_tools.__file__), "_proto"))') \
	  --python_out=gen --pyi_out=gen --grpc_python_out=gen $(PROTOS)
	find gen/engage -type d -exec touch {}/__init__.py \;
	touch $@

migrate: gen
	$(PY) -m services.roles.migrate

run: gen
	$(PY) -m scripts.run_local

test: gen
	$(PY) -m pytest -q tests

lint: gen
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	cd protos && $(BUF) lint

# Each part prints its own table; every figure is a ratio against a baseline
# measured in the same run (bench/echo.py, or a bare FastAPI app for the gateway).
bench: gen
	$(PY) -m bench.run
	$(PY) -m bench.skills
	$(PY) -m bench.incentives
	$(PY) -m bench.gateway

# The long steady-load run (ENGAGE_SOAK_SECONDS, default 3600); not part of `make test`.
soak: gen
	$(PY) -m pytest -q -p no:cacheprovider tests/faults/soak --soak

clean:
	rm -rf gen var .pytest_cache .mypy_cache .ruff_cache
