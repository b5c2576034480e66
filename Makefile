# Two entry points for newcomers (see README.md); both install what is missing first.
#   make demo   generate audio, run a zoo model on it, print the top tags
#   make test   run the test suite
VENV   ?= .venv
PY     := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: install demo test test-all bench clean-venv

install:
	@bash scripts/install.sh

demo: install
	@$(VENV)/bin/gnn-audio demo

test: install
	@$(PY) -m pytest $(PYTEST_ARGS)

test-all: install
	@$(PY) -m pytest -m "" $(PYTEST_ARGS)

bench: install
	@$(PY) benchmarks/bench_layers.py

clean-venv:
	rm -rf $(VENV)
