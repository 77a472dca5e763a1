# Two entry points for a fresh machine with only Python 3.11+:
#   make demo  — create .venv, install archc, validate a zoo spec and print its report
#   make test  — create .venv with the test extras (torch, torchvision, onnx), run every test
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test bench clean schema sysdeps

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

# Graphviz and Chromium for the picture tests (tests/report/test_graph*.py), from Debian's
# packages, installed only when missing and only as root; if apt fails, those tests skip
# and say why.
sysdeps:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	   ! { command -v dot && command -v chromium && command -v chromedriver; } >/dev/null 2>&1; then \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      graphviz chromium chromium-driver >/dev/null; } \
	  || echo "warning: could not install graphviz/chromium: the picture tests will skip"; \
	fi

test: $(VENV)/.test sysdeps
	$(BIN)/python -m pytest -n 2 -p no:cacheprovider

bench: $(VENV)/.test
	$(BIN)/pip install -q -r requirements-bench.txt
	$(BIN)/python bench/run_all.py

schema:
	$(BIN)/python -m archc.spec.schema

clean:
	rm -rf $(VENV) build *.egg-info
