# Two commands matter: `make train` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: train test test-fast lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

train: $(STAMP)
	$(BIN)/handnet train

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest

# The inner loop: everything but the slow, browser and PostgreSQL tests, in under a minute.
test-fast: $(STAMP)
	$(BIN)/pytest -q -m "not slow and not browser and not postgres"

# Timing runs want the machine to themselves: a lock makes concurrent `make bench` runs wait.
bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,bench]'
	$$(command -v flock >/dev/null && echo flock /tmp/handnet-cpu.lock) $(BIN)/python bench/epoch.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
