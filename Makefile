# Two commands do everything on a fresh machine (Python >= 3.10 on PATH as python3):
#   make figure3   set up .venv if needed, then regenerate Figure 3 into figures/
#   make test      set up .venv if needed, then lint (ruff) and run the whole test suite
#                  (pytest-xdist: one worker per core)
# TORCH is the torch requirement installed first; the default is the CPU build
# (override for a GPU, e.g. `make TORCH=torch test`).
PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup figure3 test

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[test,cluster,progress]"
	touch $@

figure3: setup
	$(BIN)/alignlab figure3

test: setup
	$(BIN)/ruff check alignlab analysis tests
	$(BIN)/python -m pytest -n auto
