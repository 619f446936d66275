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
	@echo "faithmap demo: Integrated Gradients on a bundled sample photo."
	@echo "NOTE: torchvision resnet18 with RANDOM weights (nothing is downloaded); the map shows the mechanics, not a trained model's evidence."
	$(VENV)/bin/faithmap explain "$$($(PY) -c "import matplotlib.cbook as c; print(c.get_sample_data('grace_hopper.jpg', asfileobj=False))")" \
		--model torchvision:resnet18 --method integrated_gradients -o n_steps=32 --out demo-out
	@echo "open demo-out/grace_hopper.integrated_gradients.png"

test: $(STAMP)
	$(PY) -m pytest -q

test-all: $(STAMP)
	$(PY) -m pytest -q -m "slow or not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks

bench: $(STAMP)
	$(PY) benchmarks/bench_gradients.py

clean:
	rm -rf $(VENV) demo-out faithmap-out .pytest_cache
