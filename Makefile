# The entry points. `make run` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYPROJECTS := $(wildcard libs/*/pyproject.toml services/*/pyproject.toml)

.PHONY: venv run test test-fast proto proto-check lint bench trace clean

venv: $(STAMP)

$(STAMP): requirements-dev.txt constraints.txt $(PYPROJECTS)
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python 3.11+ is needed (set PYTHON=...)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@echo "installing the project and its tools into $(VENV) (first run only)…"
	PYTHONWARNINGS=ignore $(PY) -m pip install --quiet -r requirements-dev.txt -c constraints.txt
	touch $(STAMP)

run: venv
	$(PY) tools/run.py

test: venv lint
	@# Every marker names a clause or rule that exists, at its finest level (the trace lists gaps).
	$(PY) tools/trace.py > /dev/null
	$(PY) -m pytest -n 2 --dist loadgroup

proto: venv
	$(PY) tools/gen_protos.py

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

bench: venv
	$(PY) bench/run.py

trace: venv
	$(PY) tools/trace.py

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
