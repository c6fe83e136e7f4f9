# The two set-up commands of the README are `make demo` and `make test`; everything else is tooling.
# Each target creates .venv from the pinned requirements when it is missing or stale.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
# checkov and the SAM CLI pin their own boto3/translator: each gets a virtualenv of its own.
SECURITY_VENV := .venv-security
TOOLS_VENV := .venv-tools
SAM := $(TOOLS_VENV)/bin/sam
# samconfig.toml environment for build/package/deploy (default, dev or prod).
ENV ?= dev

.DEFAULT_GOAL := help
.PHONY: help demo test lint test-compat bench build package deploy security clean resilience-table fuzz-api

help:
	@echo "make demo         run the whole pipeline locally on the bundled dataset (no AWS account, no Docker)"
	@echo "make test         lint and run the test suite (what CI runs)"
	@echo "make console      the web console and the REST API on http://127.0.0.1:3000/ (python -m emulator api)"
	@echo "make test-compat  run the pipeline tests on SageMaker's scikit-learn container stack"
	@echo "make bench        print the performance figures on the full dataset"
	@echo "make security     checkov on template.yaml (skips must carry a reason)"
	@echo "make resilience-table  run the resilience scenarios and write docs/resilience.md from their results"
	@echo "make fuzz-api     fuzz the local API (hypothesis, and schemathesis from docs/openapi.json; FUZZ_EXAMPLES=2000 requests each): no 5xx, no dropped connection, JSON only, answers as documented"
	@echo "make mutation     mutation testing (mutmut) of functions/ and the deciding parts of pipelines/: score per module, fails under 85% (MUTATE=\"functions/x.py ...\" narrows it; docs/mutation.md)"
	@echo "make build        sam build (ENV=dev|prod|default picks the samconfig.toml environment)"
	@echo "make package      sam build + the SageMaker code bundle in build/code (offline)"
	@echo "make deploy       sam build + sam deploy + upload the code bundle (needs AWS credentials)"

$(VENV)/.installed: requirements/dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check uv
	@$(UV) pip install -q --compile-bytecode --python $(PY) -r requirements/dev.txt
	@touch $@

$(SECURITY_VENV)/.installed: requirements/security.txt $(VENV)/.installed
	@test -x $(SECURITY_VENV)/bin/python || $(PYTHON) -m venv $(SECURITY_VENV)
	@$(UV) pip install -q --compile-bytecode --python $(SECURITY_VENV)/bin/python -r requirements/security.txt
	@touch $@

$(TOOLS_VENV)/.installed: requirements/tools.txt $(VENV)/.installed
	@test -x $(TOOLS_VENV)/bin/python || $(PYTHON) -m venv $(TOOLS_VENV)
	@$(UV) pip install -q --compile-bytecode --python $(TOOLS_VENV)/bin/python -r requirements/tools.txt
	@touch $@

demo: $(VENV)/.installed
	$(PY) -m emulator run --dataset data/diabetic_data.csv.gz

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

# The template tests run checkov and sam build from their own virtualenvs: create them first.
# The suite runs in a random order (pytest-randomly). CI replays one that passed on a fresh clone, so a
# run is reproducible; `make test TEST_SEED=` draws a new order (its seed is printed at the end).
TEST_SEED ?= 895189833
COMPAT_TEST_SEED ?= 3405907032
test: lint $(SECURITY_VENV)/.installed $(TOOLS_VENV)/.installed
	$(PY) -m pytest $(if $(TEST_SEED),--randomly-seed=$(TEST_SEED))

bench: $(VENV)/.installed
	$(PY) scripts/benchmark.py

# The pipeline tests on the SageMaker scikit-learn 1.2-1 stack (requirements/container.txt) and its
# Python 3.9, in a virtualenv of its own so the dev stack's newer Python/pandas/numpy/scikit-learn cannot
# leak in. The interpreter: `python3.9` on PATH when it runs, else the newest pyenv 3.9.x (pyenv's shims
# do not serve unselected versions, and `uv venv --python 3.9` stops at the failing shim); a venv of
# another Python (the former 3.11 one) is replaced.
COMPAT_VENV := .venv-compat
COMPAT_PYTHON_VERSION := 3.9
$(COMPAT_VENV)/.installed: requirements/container.txt $(VENV)/.installed
	@$(COMPAT_VENV)/bin/python -c 'import sys; sys.exit(sys.version.split()[0].rsplit(".", 1)[0] != "$(COMPAT_PYTHON_VERSION)")' 2>/dev/null \
		|| { rm -rf $(COMPAT_VENV) && $(UV) venv -q --python "$$($(PY) scripts/lambda_python.py --interpreter python$(COMPAT_PYTHON_VERSION))" $(COMPAT_VENV); }
	@$(UV) pip install -q --compile-bytecode --python $(COMPAT_VENV)/bin/python -r requirements/container.txt
	@touch $@

# -rs: every skip with its reason (the count is in pytest's last line, with the stack line above it).
test-compat: $(COMPAT_VENV)/.installed
	@$(COMPAT_VENV)/bin/python -c 'import sys, numpy, pandas, scipy, sklearn; print(f"container stack: Python {sys.version.split()[0]}, scikit-learn {sklearn.__version__}, pandas {pandas.__version__}, numpy {numpy.__version__}, scipy {scipy.__version__}")'
	PYTHONPATH=. $(COMPAT_VENV)/bin/python -m pytest tests/pipelines -q -p no:cacheprovider -rs $(if $(COMPAT_TEST_SEED),--randomly-seed=$(COMPAT_TEST_SEED))

# docs/resilience.md from the results of tests/resilience plus the tests elsewhere its rows name
# (tests/resilience/table.py REFERENCED); a normal test run fails when the committed file differs.
# Any order works: every test folder is a package of `tests`, so no two folders' modules collide.
resilience-table: $(VENV)/.installed
	$(PY) -m pytest tests/resilience $$($(PY) -c "from tests.resilience.table import REFERENCED; print(' '.join(REFERENCED))") -q --write-resilience-table

fuzz-api: $(VENV)/.installed
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-2000} $(PY) -m pytest tests/emulator/test_api_fuzz.py -q -p no:cacheprovider

security: $(SECURITY_VENV)/.installed
	BC_SKIP_MAPPING=TRUE $(SECURITY_VENV)/bin/checkov --file template.yaml --framework cloudformation --skip-download --compact

# SAM's python builder needs `python3.X` of the template's runtime on PATH; pyenv's shims do not serve
# unselected versions, so scripts/lambda_python.py prints the pyenv bin directory to put first.
build: $(TOOLS_VENV)/.installed
	PATH="$$($(PY) scripts/lambda_python.py)$$PATH" SAM_CLI_TELEMETRY=0 $(SAM) build --config-env $(ENV)

package: build $(VENV)/.installed
	$(PY) -m pipelines.bundle --out build/code

deploy: $(TOOLS_VENV)/.installed $(VENV)/.installed
	SAM=$(SAM) PY=$(PY) scripts/deploy.sh $(ENV)

clean:
	rm -rf .local build .aws-sam

# ---- The web console (console/): Chart.js from the npm registry (package-lock.json), served as it is
# (no build step); its browser tests (tests/console) run Debian's Chromium, installed when missing.
# `make test` needs both: the extra prerequisite line below keeps the test recipe as it is.
.PHONY: console console-deps console-browser
console/node_modules/.installed: console/package.json console/package-lock.json
	npm ci --prefix console --no-audit --no-fund
	@touch $@
console-deps: console/node_modules/.installed
console-browser:
	@test -x /usr/bin/chromium || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) || echo "chromium could not be installed: tests/console will fail and say so"
console: $(VENV)/.installed console-deps
	$(PY) -m emulator api --port 3000
test: console-deps console-browser

# Mutation testing (docs/mutation.md): mutmut from its own virtualenv (the dev stack plus
# requirements/mutation.txt), over functions/ and pipelines/data.py + evaluation.py, with the fast unit
# tests; prints the score per module and overall and fails under 85%. MUTATE="functions/x.py ..." narrows it.
MUTATION_VENV := .venv-mutation
$(MUTATION_VENV)/.installed: requirements/dev.txt requirements/mutation.txt $(VENV)/.installed
	@test -x $(MUTATION_VENV)/bin/python || $(UV) venv -q --python $(PY) $(MUTATION_VENV)
	@$(UV) pip install -q --compile-bytecode --python $(MUTATION_VENV)/bin/python -r requirements/dev.txt -r requirements/mutation.txt
	@touch $@

.PHONY: mutation
mutation: $(MUTATION_VENV)/.installed
	$(MUTATION_VENV)/bin/python scripts/mutation.py run $(if $(MUTATE),--only $(MUTATE))
