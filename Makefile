# One venv at the repo root; every target installs what it needs first.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# The CPU build of torch is installed first so that pip never resolves the CUDA build from the
# registry. On a GPU machine: make install TORCH_SPEC="torch" (or your CUDA wheel).
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= train,dev
DEMO_DIR ?= demo

.PHONY: install demo test bench lint clean browser

$(VENV)/.installed: pyproject.toml Makefile
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; install Python 3.11 or run make PYTHON=python3"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel
	$(PIP) install -q "$(TORCH_SPEC)"
	$(PIP) install -q -e ".[$(EXTRAS)]"
	touch $@

install: $(VENV)/.installed

# Headless Chromium from the system's packages, for the leaderboard page's browser test.
browser:
	@bash .ci/install-browser.sh

demo: install
	$(PY) -m newtonbench.demo --out $(DEMO_DIR)

test: install browser
	$(PY) -m pytest -q -p no:cacheprovider

bench: install
	$(PY) -m benchmarks --out bench/results.json

lint: install
	$(PY) -m ruff check newtonbench generators metrics leaderboard tests benchmarks

clean:
	rm -rf $(VENV) $(DEMO_DIR) bench .pytest_cache
