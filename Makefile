# Every target bootstraps .venv from nothing but python3 (with the dev, dask, cli, plot, pandas, docs, export and watch extras).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint docs bench clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev,dask,cli,plot,pandas,docs,export,watch]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m waveform_analysis.demo

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest

# ruff's lint rules (pyproject.toml [tool.ruff]); `make test` runs the same check first
lint: $(STAMP)
	$(PY) -m ruff check .

# the documentation site into site/; --strict turns a broken link or API reference into an error
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

bench: $(STAMP)
	$(PY) bench/bench_manager.py
	$(PY) bench/bench_graph.py
	$(PY) bench/bench_peers.py
	$(PY) bench/bench_strax.py
	$(PY) bench/bench_cold.py
	$(PY) bench/bench_waveform.py
	$(PY) bench/bench_batch.py
	$(PY) bench/bench_dask.py
	$(PY) bench/bench_large.py
	$(PY) bench/bench_analysis.py

# also the demo's data, cache, drawings and pictures (all under demo_data/)
clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache demo_data site
