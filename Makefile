# Everything a fresh machine needs: `make test` and `make demo` build .venv themselves.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test demo bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev,mpi,onnx]"
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q tests

demo: $(STAMP)
	$(PY) examples/digits_cnn.py
	$(PY) examples/tf1_style.py
	$(PY) examples/theano_style.py
	$(PY) examples/inspect_graph.py

# the machine first (its FMA peak and stream bandwidth: every later line's limit), then every
# benchmark script; benchmarks/_*.py are their helper modules
bench: $(STAMP)
	$(PY) benchmarks/machine.py
	for script in benchmarks/[!_]*.py; do \
	  [ $$script = benchmarks/machine.py ] || $(PY) $$script || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info
