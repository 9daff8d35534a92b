# Quick start:  make run   (set up, train the default model on the built-in corpus for 60 s, print 20 new names)
#               make test  (set up, run the test suite)
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: run test test-slow lint browser clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test,export]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/makemore train -o runs/default --overwrite --time 60s
	$(BIN)/makemore sample runs/default -n 20 --new-only --unique --min-len 2

# The default suite runs in one process: some of its tests time what they run (sampling time limits)
# and a second worker is load they do not allow for. The slow checks (subprocesses, kills, torchrun,
# the benchmarks' smoke tests: structure only, no timings) run in two worker processes (pytest-xdist),
# a whole test file per worker at a time so that module fixtures are built once. PYTEST_WORKERS=0: one process.
PYTEST_WORKERS ?= 2

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow -n $(PYTEST_WORKERS) --dist loadfile

# The browser tests' Chromium: Debian's chromium and chromium-driver (same version), installed with apt when
# missing (as root, else with sudo). Without them the browser tests are skipped (not in CI: .ci/run requires them).
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then chromium --version 2>/dev/null; \
	else $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq \
	  --no-install-recommends chromium chromium-driver fonts-dejavu-core; fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) runs build dist src/*.egg-info .pytest_cache
