# Quick start: `make run` (the main job on the built-in default data) and `make test`.
# Both create the virtual environment, install the pinned dependencies and fetch the built-in data and
# weights when they are missing; re-running them skips whatever is already in place.

PYTHON ?= $(shell command -v python3.11 || command -v python3.10 || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Linters (ruff for the code; hadolint, checkov and kubernetes-validate for tests/integration/test_k8s.py): a venv of
# their own, since checkov's dependencies conflict with the TFX pins.
TOOLS_VENV  ?= .venv-tools
TOOLS_PY    := $(TOOLS_VENV)/bin/python
TOOLS_STAMP := $(TOOLS_VENV)/.installed
export BERT_TFX_TOOLS_VENV := $(abspath $(TOOLS_VENV))
# TFT's Keras layer and TFMA need Keras 2 (tf_keras); TF 2.16 gives Keras 3 without this.
export TF_USE_LEGACY_KERAS := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

# The setup steps in parallel: the two virtualenvs, the data and the browser do not depend on one another (the
# linters' virtualenv then costs no wall time of `make test` in a fresh clone).
MAKEFLAGS += -j2

RUN_ARGS ?=
SERVE_ARGS ?=
TEST_ARGS ?=
# Test processes (pytest-xdist): tests/conftest.py groups the tests that share a run so that each run happens once,
# and hands out the longest groups first. Three on the 2 cores: a pipeline run leaves a core idle much of the time
# (starting processes, Beam, waiting on servers), which a third worker fills.
TEST_WORKERS ?= 3

.PHONY: help venv tools assets browser run serve lint test test-fast clean-outputs

help:
	@echo "make run       - run the pipeline locally on the default dataset (RUN_ARGS='--help' lists flags)"
	@echo "make serve     - serve what make run pushed on http://127.0.0.1:8501 (TF Serving's REST API; its gRPC API on 8500; SERVE_ARGS='--help')"
	@echo "make test      - lint (ruff, links), then run the whole test suite"
	@echo "make lint      - only the linters: ruff (rules in pyproject.toml) and the Markdown files' links (scripts/check_links.py)"
	@echo "make test-fast - only the tests that need no pipeline run and are not slow (about 11 minutes)"
	@echo "make venv      - only create $(VENV) with the pinned dependencies"
	@echo "make tools     - only create $(TOOLS_VENV) with the pinned linters the k8s tests use"
	@echo "make assets    - only fetch the built-in datasets and pretrained weights into data/"

$(STAMP): requirements.lock requirements-tfx.txt requirements-s3.lock pyproject.toml scripts/check_python.py
	@$(PYTHON) scripts/check_python.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==24.2
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps --ignore-requires-python -r requirements-tfx.txt
	# S3-compatible object stores (tensorflow-io, boto3) and the tests' S3 server (moto): see requirements-s3.lock.
	$(PY) -m pip install --quiet --no-deps -r requirements-s3.lock
	$(PY) -m pip check
	@touch $@

venv: $(STAMP)

$(TOOLS_STAMP): requirements-tools.lock
	@test -x $(TOOLS_PY) || $(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_PY) -m pip install --quiet --upgrade pip==24.2
	$(TOOLS_PY) -m pip install --quiet -r requirements-tools.lock
	$(TOOLS_PY) -m pip check
	@touch $@

tools: $(TOOLS_STAMP)

assets: $(STAMP)
	$(PY) -m pipeline.data.assets

run: assets
	$(PY) pipeline/run_local.py $(RUN_ARGS)

# Debian's chromium for the browser tests (browser builds cannot be downloaded here); installed when missing and
# running as root, as in CI; otherwise the browser tests are skipped with a line saying how to install it (under
# CI=true they fail with that line: tests/support/ci.py).
# kustomize (4.1+) or kubectl (1.22+) renders k8s/ for tests/integration/test_k8s.py; make installs neither (Debian
# 12's kubectl is 1.20, too old to read the kustomization's `labels:`): without one that test is skipped with a line
# saying what to install, and fails under CI=true.
browser:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "note: chromium missing and not root: the browser tests will be skipped, or fail under CI=true" \
	    "(sudo apt-get install chromium)"; fi
	@command -v kustomize >/dev/null || command -v kubectl >/dev/null || \
	  echo "note: neither kustomize nor kubectl is installed: test_k8s.py's rendered kustomization will be skipped," \
	    "or fail under CI=true (install kubectl 1.22 or later)"

serve: $(STAMP)
	$(PY) pipeline/serve.py $(SERVE_ARGS)

# ruff lives in the tools venv (pinned in requirements-tools.lock); its rules are pyproject.toml's [tool.ruff].
# scripts/check_links.py (lychee, offline): every link of README.md, docs/ and benchmarks/ to a file or an #anchor.
lint: $(TOOLS_STAMP)
	$(TOOLS_VENV)/bin/ruff check .
	$(TOOLS_PY) scripts/check_links.py

test: lint assets browser
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup $(TEST_ARGS)

# The tests that need no pipeline run (marker pipeline_run: tests/e2e/ and the users of a shared run's fixture) and
# are not slow (marker slow): tests/unit/ and most of tests/integration/, linters and a browser test included.
# loadgroup keeps each module on one worker, so that its module-scoped fixtures are built once (2:10 without it).
test-fast: lint assets browser
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup -m "not pipeline_run and not slow" $(TEST_ARGS)

clean-outputs:
	rm -rf outputs
