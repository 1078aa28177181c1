# gasbuild developer entry point. Every target is idempotent and quick when nothing changed.
#   make demo   install, then build the bundled example (examples/quickstart)
#   make test   install, then run the whole test suite
#   make lint   ruff, mypy and the schema drift check
#   make bench  benchmarks (see docs/benchmarks.md)

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PIP    := $(BIN)/python -m pip
PYTEST_ARGS ?=
BENCH_ARGS  ?=

.PHONY: install demo test lint format bench clean

install: $(STAMP)

# Reinstalls only when the dependency declarations change. constraints/dev.txt pins torch to the
# CPU wheel on this machine's disk (an unpinned torch would pull a multi-GB CUDA build).
$(STAMP): pyproject.toml constraints/dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -c constraints/dev.txt -e '.[all,dev]'
	@touch $(STAMP)

demo: install
	$(BIN)/gasbuild build -C examples/quickstart
	@ls -l examples/quickstart/dist

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check gasbuild tests bench examples
	$(BIN)/ruff format --check gasbuild tests bench examples
	$(BIN)/mypy
	$(BIN)/gasbuild schema --check schemas/gas.schema.json

format: install
	$(BIN)/ruff check --fix gasbuild tests bench examples
	$(BIN)/ruff format gasbuild tests bench examples

bench: install
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache examples/*/dist
