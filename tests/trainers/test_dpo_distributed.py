"""The same `prefkit train` command with DDP on 2 CPU processes (torch.distributed over gloo, via accelerate).

`accelerate launch` starts several CPU processes only through MPI (mpirun), which CI lacks; `torchrun` sets
the same environment (RANK, WORLD_SIZE, MASTER_ADDR), and accelerate's Accelerator picks it up unchanged.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from prefkit_trainers.dpo.telemetry import read_metrics

from prefkit.artifacts import read_manifest
from prefkit.training.stage import TrainConfig, train


@pytest.mark.slow
def test_ddp_two_cpu_processes_match_one_process(tiny_model_dir, easy_preferences, tmp_path):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    if torchrun is None:
        pytest.fail("torchrun (part of torch) is not on PATH")
    out = tmp_path / "ddp"
    # a training state is saved after every step, so DCP under DDP runs too
    command = [
        torchrun, "--standalone", "--nproc_per_node", "2", "-m", "prefkit", "train", str(easy_preferences), "--out", str(out), "--policy", str(tiny_model_dir),
        "--epochs", "1", "--batch-size", "2", "--lr", "1e-3", "--save-every-steps", "1", "--no-progress",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    completed = subprocess.run(command, capture_output=True, text=True, env=env, timeout=420)
    assert completed.returncode == 0, completed.stderr[-3000:]
    ddp = read_metrics(out / "metrics.jsonl")
    assert len(ddp) == 3  # 12 pairs, 2 per process, 2 processes

    # one process with the same global batch (4) takes the same steps: DDP averages the two halves' gradients
    single = train(
        easy_preferences,
        tmp_path / "single",
        TrainConfig(
            policy=str(tiny_model_dir), epochs=1, batch_size=4, learning_rate=1e-3, save_every_steps=0
        ),
        progress=False,
    )
    assert [r["loss"] for r in ddp] == pytest.approx(
        [r["loss"] for r in read_metrics(single.path / "metrics.jsonl")], abs=1e-4
    )
    assert read_manifest(out).extra["processes"] == 2
