# Two commands for a fresh machine: `make demo` (the main job) and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test app lint bench clean

$(BIN)/synesthesia: pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev,app]'
	touch $@

demo: $(BIN)/synesthesia
	$(BIN)/synesthesia demo

app: $(BIN)/synesthesia
	$(BIN)/synesthesia app

test: $(BIN)/synesthesia
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/python -m pytest -q

lint: $(BIN)/synesthesia
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples

clean:
	rm -rf $(VENV) runs
