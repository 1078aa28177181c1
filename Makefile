# gasbuild developer entry point. Every target is idempotent and quick when nothing changed.
#   make demo   install, then build the bundled example (examples/quickstart)
#   make test   install (both venvs), then run the whole test suite: the main suite on
#               torch 2.13.0, then the template tests that need timm/transformers
#   make lint   ruff, mypy and the schema drift check
#   make bench  benchmarks (see docs/benchmarks.md)

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PIP    := $(BIN)/python -m pip
# A second venv for the timm-* and hf-image templates: timm and transformers need torchvision,
# which works here only with torch 2.14.1 (constraints/vision.txt). The main suite stays on 2.13.0.
VISION_VENV  ?= .venv-vision
VISION_BIN   := $(VISION_VENV)/bin
VISION_STAMP := $(VISION_VENV)/.installed-stamp
PYTEST_ARGS ?=
BENCH_ARGS  ?=

.PHONY: install install-vision demo demo-templates test test-main test-vision lint format bench clean

install: $(STAMP)

install-vision: $(VISION_STAMP)

# Reinstalls only when the dependency declarations change. constraints/dev.txt pins torch to the
# CPU wheel on this machine's disk (an unpinned torch would pull a multi-GB CUDA build).
$(STAMP): pyproject.toml constraints/dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -c constraints/dev.txt -e '.[all,dev]'
	@touch $(STAMP)

$(VISION_STAMP): pyproject.toml constraints/vision.txt
	@test -x $(VISION_BIN)/python || $(PYTHON) -m venv $(VISION_VENV)
	$(VISION_BIN)/python -m pip install --quiet --upgrade pip
	$(VISION_BIN)/python -m pip install --quiet -c constraints/vision.txt -e '.[torch,hf,vision,dev]'
	@touch $(VISION_STAMP)

demo: install
	$(BIN)/gasbuild build -C examples/quickstart
	@ls -l examples/quickstart/dist

# The template examples: timm-image, timm-video and audio-cnn, then hf-image.
demo-templates: install-vision
	$(VISION_BIN)/gasbuild build -C examples/templates
	$(VISION_BIN)/gasbuild build -C examples/hf-image

test: test-main test-vision

test-main: install
	$(BIN)/python -m pytest -m "not vision" $(PYTEST_ARGS)

test-vision: install-vision
	$(VISION_BIN)/python -m pytest -m vision $(PYTEST_ARGS)

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
	rm -rf $(VENV) $(VISION_VENV) build dist .pytest_cache .mypy_cache .ruff_cache examples/*/dist
