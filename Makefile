# Two entry points for a fresh machine with only Python 3.11+:
#   make demo  — create .venv, install archc, validate a zoo spec and print its report
#   make test  — create .venv with the test extras (torch, torchvision, onnx), run every test
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test bench clean schema

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.core: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.test: pyproject.toml requirements-test.txt $(VENV)/.core
	$(BIN)/pip install -q -e '.[test]' -r requirements-test.txt
	touch $@

demo: $(VENV)/.core
	$(BIN)/archc validate specs/resnet50.yaml
	$(BIN)/archc zoo

test: $(VENV)/.test
	$(BIN)/python -m pytest -n 2 -p no:cacheprovider

bench: $(VENV)/.test
	$(BIN)/python bench/run_all.py

schema:
	$(BIN)/python -m archc.spec.schema

clean:
	rm -rf $(VENV) build *.egg-info
