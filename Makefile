# One command each on a fresh machine (Python 3.11+):
#   make demo   install winnow in .venv and run the CDNOW demo end to end
#   make test   install winnow in .venv and run the test suite (python -m pytest)
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install demo test lint bench clean

$(BIN)/winnow: pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q -U pip
	# constraints.txt pins torch==2.13.0 so pip takes the CPU wheel, never a CUDA build
	$(BIN)/pip install -c constraints.txt -e '.[all,dev]'
	touch $(BIN)/winnow

install: $(BIN)/winnow

demo: install
	$(BIN)/winnow demo

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) winnow-demo bench/out .pytest_cache
