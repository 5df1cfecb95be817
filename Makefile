# Every target bootstraps .venv from nothing but python3 (with the dev, dask, cli and plot extras).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev,dask,cli,plot]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m waveform_analysis.demo

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest

# ruff's lint rules (pyproject.toml [tool.ruff]); `make test` runs the same check first
lint: $(STAMP)
	$(PY) -m ruff check .

bench: $(STAMP)
	$(PY) bench/bench_manager.py
	$(PY) bench/bench_graph.py
	$(PY) bench/bench_waveform.py
	$(PY) bench/bench_batch.py

# also the demo's data, cache, drawings and pictures (all under demo_data/)
clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache demo_data
