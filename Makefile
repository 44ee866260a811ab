# The two commands a new user needs: `make demo` and `make test`. Both set up the environment first
# (tools/setup_env.sh: a venv in .venv, or $MMVIT_VENV, with the pinned OpenMMLab stack; reused when ready).
VENV ?= $(if $(MMVIT_VENV),$(MMVIT_VENV),$(CURDIR)/.venv)
PY := $(VENV)/bin/python

.PHONY: setup demo test benchmark

setup:
	@MMVIT_VENV=$(VENV) bash tools/setup_env.sh

demo: setup
	$(PY) tools/run_demo.py

test: setup
	$(PY) -m pytest tests

benchmark: setup
	$(PY) tools/analysis_tools/benchmark.py report
