# The two commands of the README:  `make run` (the GUI on the demo study)  and  `make test`.
# Both set everything up on a fresh machine first: system packages (where we are root), the
# virtual environment and the pinned Python packages.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
XVFB   := xvfb-run -a -s "-screen 0 1600x1200x24"

.PHONY: run test setup system-packages test-core test-gui bench clean

run: setup
	@$(BIN)/ctviewer demo

test: setup
	$(BIN)/lint-imports
	$(MAKE) --no-print-directory test-core test-gui

# The core tier runs with Qt made unimportable: it proves ctviewer/ needs no GUI.
test-core:
	CTVIEWER_BLOCK_QT=1 $(BIN)/pytest -p no:pytest-qt --durations=15 tests/unit tests/cli

test-gui:
	$(XVFB) $(BIN)/pytest -p no:xvfb --durations=15 tests/gui

setup: system-packages $(VENV)/.installed

system-packages:
	@bash scripts/install-system-packages.sh

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "ctviewer needs Python 3.11 or newer"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements-dev.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $@

# Each benchmark rewrites its own section of benchmarks/RESULTS.md; one that misses its target does not
# stop the others, and the list of those that did is printed at the end.
bench: setup
	@missed=""; for b in benchmarks/bench_*.py; do echo "== $$b"; \
		$(XVFB) $(BIN)/python $$b || missed="$$missed $$b"; done; \
	test -z "$$missed" || { echo "missed their targets or failed:$$missed"; exit 1; }

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
