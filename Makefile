# mspwatch: `make demo` runs the stack on the simulated estate, `make test` runs every check.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: all deps venv lint typecheck test demo bench clean

all: test

deps:
	bash scripts/install-system-deps.sh

# grafana-client's niquests brings urllib3-future, whose wheel rewrites urllib3 under every
# other library at each start (msal's requests then gains a thread per tenant): its sdist
# with URLLIB3_NO_OVERRIDE keeps the two apart (tests/package/test_package.py checks it).
$(BIN)/mspwatch: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	URLLIB3_NO_OVERRIDE=1 $(BIN)/pip install -q --no-binary urllib3-future -e '.[dev]'
	touch $@

venv: $(BIN)/mspwatch

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

# The benchmarks run only on demand: their type check is what keeps them in step.
typecheck: venv
	$(BIN)/mypy
	$(BIN)/mypy benchmarks

test: deps venv lint typecheck
	$(BIN)/pytest

demo: deps venv
	$(BIN)/mspwatch demo

bench: deps venv
	$(BIN)/python benchmarks/snmp_bench.py

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
