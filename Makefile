# r2-gateway: `make run` installs the gateway with its embedded in-memory upstream (moto) and starts
# it; `make test` installs everything the tests need (Python deps, Ceph RGW and the real clients) and
# runs the whole suite. `make install` is the production install: no moto.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: run install install-embedded deps test unit bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q -e .

install-embedded: $(BIN)/python
	$(BIN)/pip install -q -e '.[embedded]'

run: install-embedded
	$(BIN)/r2-gateway serve $(if $(CONFIG),--config $(CONFIG),)

deps: $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	# real Helm (v4's Go library); it declares Python >= 3.12 but works on 3.11
	$(BIN)/pip install -q --ignore-requires-python 'helm-sdkpy==0.1.32'
	bash tests/upstreams/install-system-deps.sh
	bash tests/clients/install-clients.sh

test: deps
	$(BIN)/python -m pytest -q $(PYTEST_ARGS) tests

unit: $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	$(BIN)/python -m pytest -q tests/unit

bench: deps
	$(BIN)/python -m tests.bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
