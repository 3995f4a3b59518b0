# Two commands for a fresh machine with only Python 3.11:
#   make demo   - create .venv, install caveql, build the demo datastack, run the seed page's queries
#   make test   - create .venv, install caveql with its test dependencies, run every test
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: demo test conformance fuzz bench clean tmux postgres browser

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

demo: $(VENV)/.installed
	$(BIN)/caveql demo
	$(BIN)/caveql run docs/examples/seed.cql

# the REPL's real-terminal test drives caveql in tmux: install it when missing and apt-get is there
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo -n)
tmux:
	@command -v tmux >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1 || \
	  $(SUDO) apt-get install -y -q tmux >/dev/null 2>&1 || \
	  { $(SUDO) apt-get update -q >/dev/null && $(SUDO) apt-get install -y -q tmux >/dev/null; } || \
	  echo "warning: could not install tmux; tests/repl/test_tmux.py will fail" >&2

# the conformance suite runs the genuine MaterializationEngine on PostgreSQL 15 + PostGIS 3
# (tests/conformance/harness.py; a missing server fails there with this install command)
PG_PACKAGES := postgresql-15 postgresql-15-postgis-3
postgres:
	@[ -f /usr/share/postgresql/15/extension/postgis.control ] || ! command -v apt-get >/dev/null 2>&1 || \
	  $(SUDO) apt-get install -y -q $(PG_PACKAGES) >/dev/null 2>&1 || \
	  { $(SUDO) apt-get update -q >/dev/null && $(SUDO) apt-get install -y -q $(PG_PACKAGES) >/dev/null; } || \
	  echo "warning: could not install $(PG_PACKAGES); tests/conformance will fail" >&2

# the browser tests (tests/browser) drive neuroglancer's web client in headless chromium
BROWSER_PACKAGES := chromium chromium-driver
browser:
	@command -v chromedriver >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1 || \
	  $(SUDO) apt-get install -y -q $(BROWSER_PACKAGES) >/dev/null 2>&1 || \
	  { $(SUDO) apt-get update -q >/dev/null && $(SUDO) apt-get install -y -q $(BROWSER_PACKAGES) >/dev/null; } || \
	  echo "warning: could not install $(BROWSER_PACKAGES); tests/browser will fail" >&2

test: $(VENV)/.installed-test tmux postgres browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

conformance: $(VENV)/.installed-test postgres
	$(BIN)/python -m pytest tests/conformance $(PYTEST_ARGS)

fuzz: $(VENV)/.installed-test
	CAVEQL_FUZZ=1 $(BIN)/python -m pytest -m 'not tmux' tests -k 'fuzz or differential or roundtrip' $(PYTEST_ARGS)

bench: $(VENV)/.installed-test
	$(BIN)/python benchmarks/parse.py
	$(BIN)/python benchmarks/cli.py

clean:
	rm -rf $(VENV) build dist *.egg-info
