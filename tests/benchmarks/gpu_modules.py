"""Import benchmarks/gpu/*.py (scripts, not a package) by path for the tests."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

GPU = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu"


def load(name: str):
    """The module benchmarks/gpu/<name>.py, imported once."""
    if str(GPU) not in sys.path:
        sys.path.insert(0, str(GPU))  # the scripts import each other by bare name
    key = f"gpu_check_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, GPU / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]
