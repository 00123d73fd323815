# Two commands on a fresh machine with Python 3.11+: `make demo` and `make test`.
# Each bootstraps .venv (and reinstalls when pyproject.toml changes).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# litellm otherwise fetches a price map from the network when it is imported.
export LITELLM_LOCAL_MODEL_COST_MAP := True

.PHONY: demo test lint typecheck bench clean

$(BIN)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "agentmem needs Python 3.11+; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $@

demo: $(BIN)/.installed
	$(BIN)/agentmem demo

lint: $(BIN)/.installed
	$(BIN)/ruff check agentmem tests examples benchmarks
	$(BIN)/ruff format --check agentmem tests examples benchmarks

typecheck: $(BIN)/.installed
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/python -m pytest

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/bench_compile.py

clean:
	rm -rf $(VENV) dist build .mypy_cache .ruff_cache .pytest_cache
