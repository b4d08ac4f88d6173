# The two commands of the quickstart: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt constraints.txt pyproject.toml | sha1sum | cut -c1-12)
PYTEST_ARGS ?=

.PHONY: venv test lint typecheck unit functional run stop reset bench layer clean

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required, found " + sys.version' 
	$(BIN)/python -m pip install -q --disable-pip-version-check 'pip==26.2'
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	@rm -f $(VENV)/.installed-*
	@touch $@

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check chalicelib functions localcloud app.py

typecheck: venv
	$(BIN)/mypy chalicelib functions

test: lint typecheck
	$(BIN)/pytest $(PYTEST_ARGS)

unit: venv
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

functional: venv
	$(BIN)/pytest tests/functional $(PYTEST_ARGS)

run: venv
	@$(BIN)/python -m localcloud

# Stops a `make run` started elsewhere (its pid is in $PLATFORM_DATA_DIR/run.pid, .local by default) and waits
# until it has saved its data.
stop:
	@pid=$$(cat "$${PLATFORM_DATA_DIR:-.local}/run.pid" 2>/dev/null); \
	if [ -n "$$pid" ] && kill -0 $$pid 2>/dev/null; then \
	  kill -TERM $$pid; \
	  for i in $$(seq 1 300); do kill -0 $$pid 2>/dev/null || break; sleep 0.1; done; \
	  if kill -0 $$pid 2>/dev/null; then echo "still stopping after 30 s (pid $$pid)"; exit 1; fi; \
	  echo "stopped"; \
	else echo "nothing running"; rm -f "$${PLATFORM_DATA_DIR:-.local}/run.pid"; fi

# Wipes the local data on purpose (stops a running local cloud first).
reset: stop
	rm -rf "$${PLATFORM_DATA_DIR:-.local}/data"
	@echo "local data wiped"

bench: venv
	$(BIN)/python bench/cold_start.py

layer: venv
	layers/build.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .test-logs build
