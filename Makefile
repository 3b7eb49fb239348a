# benchmatrix — the two commands a user needs: `make matrix` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DATA ?= data
SYSTEM ?= cpu
SPEC ?= matrices/default.yaml
# Local wheels (e.g. the CPU build of torch) that pip may install from; defaults to pip's own find-links.
WHEELHOUSE ?= $(shell $(PYTHON) -m pip config get global.find-links 2>/dev/null)
export BENCHMATRIX_WHEELHOUSE := $(WHEELHOUSE)

.PHONY: install engine bases data matrix test unit lint clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

install: $(VENV)/.installed

engine:
	@bash scripts/ensure-engine.sh

bases: install engine
	$(PY) -m orchestrator base bootstrap --suite bookworm
	$(PY) -m orchestrator base bootstrap --suite bullseye

data: install
	$(PY) -m orchestrator data fetch fashion_mnist --dir $(DATA)/fashion_mnist --or-sample 60000

matrix: install engine bases data
	$(PY) -m orchestrator run --system $(SYSTEM) --spec $(SPEC) --data-dir $(DATA)

test: install
	$(PY) -m pytest

unit: install
	$(PY) -m pytest -m "not engine"

lint: install
	$(VENV)/bin/ruff check .

clean:
	rm -rf build .pytest_cache
