# One venv in the repo; `make install` is a no-op (seconds) when pyproject.toml is unchanged.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CKPT ?= .cache/random-turbo
PIP_FLAGS ?= --disable-pip-version-check --progress-bar off

.PHONY: install test lint bench checkpoint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install $(PIP_FLAGS) -q 'pip>=23' 'setuptools<81' wheel
	$(BIN)/python -m pip install $(PIP_FLAGS) -e '.[dev]'
	touch $(STAMP)

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check chatterbox_cli tests
	$(BIN)/ruff format --check chatterbox_cli tests

checkpoint: install
	$(BIN)/python -m chatterbox_cli.random_checkpoint $(CKPT)

bench: install
	@echo "chatterbox bench arrives with issue #3; until then see README 'Benchmarks'."

clean:
	rm -rf $(VENV) .cache .pytest_cache
