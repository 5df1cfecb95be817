# Both targets bootstrap .venv from nothing but python3.
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

bench: $(STAMP)
	$(PY) bench/bench_manager.py
	$(PY) bench/bench_graph.py
	$(PY) bench/bench_waveform.py
	$(PY) bench/bench_batch.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
