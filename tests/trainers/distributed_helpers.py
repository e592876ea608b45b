"""Run `prefkit train` in several CPU processes with torchrun (gloo), optionally killing every process
right after a given optimizer step (as a crash or a pre-emption would)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

# the same environment `accelerate launch` sets from examples/accelerate/fsdp_gpu.yaml
FSDP_ENV = {
    "ACCELERATE_USE_FSDP": "true",
    "FSDP_VERSION": "2",
    "FSDP_AUTO_WRAP_POLICY": "TRANSFORMER_BASED_WRAP",
    "FSDP_RESHARD_AFTER_FORWARD": "true",
    "FSDP_STATE_DICT_TYPE": "FULL_STATE_DICT",
}

KILLING_MAIN = """
import os, sys
from prefkit_trainers.dpo import loop

die_after = int(os.environ["PREFKIT_TEST_DIE_AFTER_STEP"])
advance = loop.ProgressBar.advance

def advance_then_die(self, record):
    advance(self, record)
    if record["step"] == die_after:
        os._exit(17)  # no cleanup, like SIGKILL; the state saved at an earlier step survives

loop.ProgressBar.advance = advance_then_die
from prefkit.cli import main
sys.argv[0] = "prefkit"
main()
"""


def torchrun() -> str:
    """The torchrun next to this interpreter."""
    found = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    if found is None:
        raise RuntimeError("torchrun (part of torch) is not on PATH")
    return found


def train_processes(
    processes: int,
    args: list[str],
    *,
    fsdp: bool = True,
    die_after_step: int | None = None,
    script_dir: Path | None = None,
    timeout: int = 300,
) -> subprocess.CompletedProcess:
    """`torchrun --nproc_per_node PROCESSES -m prefkit train ARGS` with FSDP2 (or DDP when fsdp=False)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(FSDP_ENV if fsdp else {})}
    target = ["-m", "prefkit"]
    if die_after_step is not None:
        assert script_dir is not None
        script = script_dir / "killing_main.py"
        script.write_text(KILLING_MAIN)
        target = [str(script)]
        env["PREFKIT_TEST_DIE_AFTER_STEP"] = str(die_after_step)
    command = [torchrun(), "--standalone", "--nproc_per_node", str(processes), *target, "train", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
