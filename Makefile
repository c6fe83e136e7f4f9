# The two set-up commands of the README are `make demo` and `make test`; everything else is tooling.
# Each target creates .venv from the pinned requirements when it is missing or stale.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv

.DEFAULT_GOAL := help
.PHONY: help demo test lint test-compat bench package clean

help:
	@echo "make demo         run the whole pipeline locally on the bundled dataset (no AWS account, no Docker)"
	@echo "make test         lint and run the test suite (what CI runs)"
	@echo "make test-compat  run the pipeline tests on SageMaker's scikit-learn container stack"
	@echo "make bench        print the performance figures on the full dataset"

$(VENV)/.installed: requirements/dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check uv
	@$(UV) pip install -q --python $(PY) -r requirements/dev.txt
	@touch $@

demo: $(VENV)/.installed
	$(PY) -m emulator run --dataset data/diabetic_data.csv.gz

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

test: lint
	$(PY) -m pytest

bench: $(VENV)/.installed
	$(PY) scripts/benchmark.py

clean:
	rm -rf .local build .aws-sam
