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

.PHONY: install engine test-deps bases data matrix regress bisect slurm-local test unit lint clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

install: $(VENV)/.installed

engine:
	@bash scripts/ensure-engine.sh

# What the integration tests need beyond Python (Slurm, munge, Compose, PostgreSQL, the engine): installed as
# root; otherwise the tests that need them are skipped with the reason.
test-deps:
	@bash scripts/ensure-test-deps.sh

bases: install engine
	$(PY) -m orchestrator base bootstrap --suite bookworm
	$(PY) -m orchestrator base bootstrap --suite bullseye

data: install
	$(PY) -m orchestrator data fetch fashion_mnist --dir $(DATA)/fashion_mnist --or-sample 60000

matrix: install engine bases data
	$(PY) -m orchestrator run --system $(SYSTEM) --spec $(SPEC) --data-dir $(DATA)

# make regress BASE=mxnet@1.9.1 CAND=mxnet@1.6.0 [REPEATS=14 MAX_REPEATS=20]: build both, run rounds A B, B A, …,
# look after REPEATS rounds and, while a pair is inconclusive, up to MAX_REPEATS; fail on a regression.
REPEATS ?= 14
MAX_REPEATS ?= 20
regress: install engine bases data
	@test -n "$(BASE)" -a -n "$(CAND)" || { echo "usage: make regress BASE=framework@version CAND=framework@version" >&2; exit 2; }
	$(PY) -m orchestrator regress --baseline $(BASE) --candidate $(CAND) --system $(SYSTEM) --repeats $(REPEATS) --max-repeats $(MAX_REPEATS) \
		--data-dir $(DATA) --junit results/regress.junit.xml --markdown results/regress.md

# make bisect GOOD=mxnet@1.6.0 BAD=mxnet@1.9.1 [REPEATS=14 MAX_REPEATS=20]: the first version of the catalog
# family between the two that regressed against GOOD; interrupted, the same command resumes.
bisect: install engine bases data
	@test -n "$(GOOD)" -a -n "$(BAD)" || { echo "usage: make bisect GOOD=framework@version BAD=framework@version" >&2; exit 2; }
	$(PY) -m orchestrator regress --bisect $(GOOD) $(BAD) --system $(SYSTEM) --repeats $(REPEATS) \
		--max-repeats $(MAX_REPEATS) --data-dir $(DATA) --markdown results/bisect.md

# A real single-node Slurm cluster on this host for `run --backend slurm` (export the SLURM_CONF it prints).
slurm-local:
	@bash scripts/slurm-local.sh start

test: install test-deps
	$(PY) -m pytest

unit: install
	$(PY) -m pytest -m "not engine"

# ruff, then mypy over orchestrator/, workloads/ and bench/ (pyproject.toml): any finding fails.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

clean:
	rm -rf build .pytest_cache
