# Two commands matter: `make train` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DOCS_STAMP := $(VENV)/.docs-installed

.PHONY: train test test-fast lint docs docs-serve bench clean

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

test: lint docs
	$(BIN)/pytest

# The documentation site (mkdocs.yml, docs/), with the `docs` extra it needs. --strict makes a
# broken link, a missing reference or a notebook cell that raises fail the build.
$(DOCS_STAMP): pyproject.toml $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,docs]'
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

docs-serve: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

# The inner loop: everything but the slow, browser and PostgreSQL tests, in under a minute.
test-fast: $(STAMP)
	$(BIN)/pytest -q -n 2 -m "not slow and not browser and not postgres"

# Timing runs want the machine to themselves: a lock makes concurrent `make bench` runs wait.
bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,bench]'
	$$(command -v flock >/dev/null && echo flock /tmp/handnet-cpu.lock) $(BIN)/python bench/epoch.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
