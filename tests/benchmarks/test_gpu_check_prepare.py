"""`bash benchmarks/gpu/check.sh prepare`'s shell plumbing, with a stand-in for Python (no network, no pip)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from tests.benchmarks.gpu_modules import GPU

# `-m pip wheel ... -w OUT SOURCE` leaves a wheel in OUT; every other call (collect_wheels.py, parts.py) succeeds
STAND_IN_PYTHON = """#!/usr/bin/env bash
if [[ "$1 $2 $3" == "-m pip wheel" ]]; then
  while [[ $# -gt 0 ]]; do [[ $1 == -w ]] && out=$2; shift; done
  touch "$out/prefkit-0.0.0-py3-none-any.whl"
fi
"""


def test_prepare_from_outside_the_checkout_reports_the_tracked_tree(tmp_path):
    python = tmp_path / "python"
    python.write_text(STAND_IN_PYTHON)
    python.chmod(0o755)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    environment = os.environ | {
        "PYTHON": str(python),
        "WORK": str(tmp_path / "work"),
        "TMPDIR": str(tmp_path),
    }
    completed = subprocess.run(
        ["bash", str(GPU / "check.sh"), "prepare"],
        cwd=elsewhere,  # the tracked paths are relative to the checkout, not to here
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    size = re.search(r"the tracked tree is ([\d.]+) MB", completed.stderr)
    assert size is not None and float(size.group(1)) > 0.1, completed.stderr
    assert "then run: check.sh install" in completed.stderr
    assert list((tmp_path / "work" / "dist").glob("prefkit-*.whl"))
    assert not list(Path(tmp_path).glob("prefkit-wheel-source.*"))  # its copy of the sources is removed
