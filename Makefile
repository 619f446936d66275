# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.faithmap-installed
export HF_HUB_OFFLINE := 1

.PHONY: demo test test-all lint bench claims install clean docs

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

# The docs site (mkdocs-material + mkdocstrings, offline), strict: no broken links or references.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict -d site

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/lint-imports

bench: $(STAMP)
	$(PY) benchmarks/bench_gradients.py
	$(PY) benchmarks/bench_metrics.py
	$(PY) benchmarks/bench_srd.py
	$(PY) benchmarks/bench_boundary.py --compare-early-stop
	$(PY) benchmarks/bench_dance.py
	$(PY) benchmarks/bench_neflag.py
	$(PY) benchmarks/bench_comet.py
	$(PY) benchmarks/bench_scale.py

# The paper-claim studies behind docs/results.md (tens of minutes on 2 cores), then the page.
claims: $(STAMP)
	$(PY) benchmarks/claims_srd.py --seeds 3 --n 48 --n-attack 4
	$(PY) benchmarks/claims_boundary.py --n 8 --seeds 3
	$(PY) benchmarks/claims_dance.py --n 2 --seeds 3
	$(PY) benchmarks/claims_neflag.py --n 20 --seeds 3
	$(PY) benchmarks/claims_comet.py --n 200
	$(VENV)/bin/faithmap demo --n 100 --out demo-out
	$(PY) -m faithmap.evaluation.report_markdown demo-out/results.json -o docs/results.md

clean:
	rm -rf $(VENV) demo-out faithmap-out .pytest_cache site
