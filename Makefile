# The two commands of the quickstart: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt constraints.txt pyproject.toml | sha1sum | cut -c1-12)
PYTEST_ARGS ?=

.PHONY: venv test test-serial lint typecheck unit functional run stop reset bench layer package clean

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

# The suite in two pytest processes at once (the machine has two cores, and most tests wait on servers):
# the unit tests with the two longest functional modules, and every other test. Each process keeps its own
# log (.test-logs/run-<part>.log) and ends with the secrets-in-logs test over it; each one's output is
# printed when both are done, and either failing fails the target (a part whose tests a -k or -m
# selection left empty, exit 5, is fine as long as the other ran some).
TEST_PART_A := tests/unit tests/functional/test_terraform.py tests/functional/test_api_contract.py \
	tests/test_zz_secrets_in_logs.py
TEST_PART_B := tests --ignore=tests/unit --ignore=tests/functional/test_terraform.py \
	--ignore=tests/functional/test_api_contract.py

test: lint typecheck
	@mkdir -p .test-logs
	@PLATFORM_TEST_LOG=run-a.log $(BIN)/pytest $(PYTEST_ARGS) $(TEST_PART_A) > .test-logs/part-a.out 2>&1 & a=$$!; \
	PLATFORM_TEST_LOG=run-b.log $(BIN)/pytest $(PYTEST_ARGS) $(TEST_PART_B) > .test-logs/part-b.out 2>&1 & b=$$!; \
	wait $$a; ra=$$?; wait $$b; rb=$$?; \
	echo "=== part A: unit tests, Terraform, the API contract (exit $$ra)"; cat .test-logs/part-a.out; \
	echo "=== part B: every other test (exit $$rb)"; cat .test-logs/part-b.out; \
	echo "part A exit $$ra, part B exit $$rb"; \
	ok() { [ "$$1" -eq 0 ] || [ "$$1" -eq 5 ]; }; \
	ok $$ra && ok $$rb && ! { [ $$ra -eq 5 ] && [ $$rb -eq 5 ]; }

# The same suite in one process (slower; for a debugger or when the order matters).
test-serial: lint typecheck
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

# Wipes the local data on purpose (stops a running local cloud first, and the clusters of the local
# "cloud"'s regions, which outlive it as a cloud's clusters do: their state is in the data).
reset: stop
	@for d in "$${PLATFORM_DATA_DIR:-.local}"/data/regions/*/cluster; do \
	  if [ -d "$$d" ] && [ -x $(BIN)/python ]; then $(BIN)/python -m localcloud.standins.micro.cluster stop --state-dir "$$d"; fi; \
	done
	rm -rf "$${PLATFORM_DATA_DIR:-.local}/data"
	@echo "local data wiped"

bench: venv
	$(BIN)/python bench/cold_start.py

# What Terraform deploys (infra/README.md): build/layer.zip, build/api.zip, build/functions/<name>.zip,
# build/api-swagger.json and build/packages.tfvars.json (their paths and hashes), byte-identical for the
# same inputs.
package: venv
	$(BIN)/python infra/package.py

layer: package

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .test-logs build
