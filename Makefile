# The two commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
ARTIFACTS ?= artifacts
# The CPU build of torch, installed before the package so that pip does not
# resolve the multi-GB CUDA build.
TORCH_PIN ?= torch==2.13.0

.PHONY: install demo host test lint format clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_PIN)"
	$(BIN)/python -m pip install -q -e ".[met,dev]"
	touch $@

demo: install
	$(BIN)/imet demo --artifacts $(ARTIFACTS)
	IMET_RUNS=$(ARTIFACTS)/runs $(BIN)/streamlit run dashboard/app.py

# For a hosted demo: build the runs at start (progress in the log), then serve
# on every interface.
PORT ?= 8501
host: install
	$(BIN)/imet demo --artifacts $(ARTIFACTS)
	IMET_RUNS=$(ARTIFACTS)/runs $(BIN)/streamlit run dashboard/app.py --server.address 0.0.0.0 --server.port $(PORT)

test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
