# Entry points for newcomers (see README.md); each installs what is missing first.
#   make train  examples/train_fsd50k.py: generated FSD50K-format data, a small ATGNN, eval mAP
#   make test   run the test suite
#   make demo   a toy of about two minutes: 60 steps on generated audio, then the top tags
VENV   ?= .venv
PY     := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: install train demo test test-all bench clean-venv

install:
	@bash scripts/install.sh

train: install
	@$(PY) examples/train_fsd50k.py

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
