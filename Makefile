# tapereader: `make demo` runs the main job, `make test` runs the tests.
# Both set up everything on a fresh machine: the venv, the package, PostgreSQL for its tests.

PYTHON ?= $(shell command -v python3.12 2>/dev/null || echo python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
EXTRAS ?= dev,postgres,train

.PHONY: install postgres test demo bench lint format clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else "tapereader needs Python >= 3.12 (.python-version says 3.12); found " + sys.version.split()[0] + " at " + sys.executable)'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[$(EXTRAS)]'
	@touch $(STAMP)

install: $(STAMP)

# The PostgreSQL tests start a throwaway server from the system package; install it
# where it is missing and we may (root with apt-get), else say why those tests skip.
postgres:
	@if command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		true; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing the PostgreSQL server (apt-get) for the PostgreSQL tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	else \
		echo "PostgreSQL server not found and cannot be installed here: its tests will skip"; \
	fi

test: install postgres
	$(VENV)/bin/pytest -q

demo: install
	$(VENV)/bin/tapereader demo

bench: install postgres
	$(PY) tests/bench/run.py

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) build dist *.egg-info var
