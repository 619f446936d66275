# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.faithmap-installed
export HF_HUB_OFFLINE := 1

.PHONY: demo test test-all lint bench install clean

install: $(STAMP)

# Re-install only when the project metadata or the pins change.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt torch torchvision
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev,data]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/faithmap demo --out demo-out

test: $(STAMP)
	$(PY) -m pytest -q

test-all: $(STAMP)
	$(PY) -m pytest -q -m "slow or not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks

bench: $(STAMP)
	$(PY) benchmarks/bench_gradients.py
	$(PY) benchmarks/bench_metrics.py
	$(PY) benchmarks/bench_srd.py

clean:
	rm -rf $(VENV) demo-out faithmap-out .pytest_cache
