"""Resumable training state that does not depend on the number of processes.

Model weights and AdamW state are saved with torch.distributed.checkpoint (DCP) under parameter names:
each process writes its own shard (FSDP) or one copy is written (one process, DDP), and DCP reshards on
load, so a state saved by 2 processes loads in 1 and the other way round. The scheduler state and the
data position (epoch, pairs of that epoch already trained) go into progress.json, written last and
atomically by the main process: a state without it is ignored.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

PROGRESS_FILE = "progress.json"
SCHEDULER_FILE = "scheduler.pt"


@dataclass(frozen=True)
class Position:
    """Where a run stands: optimizer steps taken, the epoch, and how many pairs of its order are done."""

    step: int = 0
    epoch: int = 0
    pairs_done: int = 0


@contextlib.contextmanager
def _one_process_is_fine():
    # DCP warns whenever it runs without a process group; one process is an intended case here
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.distributed is disabled")
        yield


def _inner(optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
    # accelerate's AcceleratedOptimizer wraps the torch one; DCP needs the torch optimizer
    return getattr(optimizer, "optimizer", optimizer)


def _module(model: nn.Module) -> nn.Module:
    # DDP prefixes names with "module."; state is saved under the unwrapped model's names
    return getattr(model, "module", model)


def read_position(state_dir: Path | None) -> tuple[Position, Path] | None:
    """The saved position and its folder, or None when nothing (complete) was saved."""
    if state_dir is None or not (state_dir / PROGRESS_FILE).exists():
        return None
    progress = json.loads((state_dir / PROGRESS_FILE).read_text())
    position = Position(**{key: int(progress[key]) for key in ("step", "epoch", "pairs_done")})
    return position, state_dir / progress["folder"]


def save_state(
    accelerator,
    state_dir: Path,
    position: Position,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler,
) -> None:
    """Save model, optimizer (DCP, resharded on load) and scheduler; then point progress.json at them."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict

    folder = state_dir / f"step-{position.step:07d}"
    model_state, optimizer_state = get_state_dict(_module(model), _inner(optimizer))
    with _one_process_is_fine():
        dcp.save(
            {"model": model_state, "optimizer": optimizer_state},
            checkpoint_id=str(folder),
            no_dist=not torch.distributed.is_initialized(),
        )
    if accelerator.is_main_process:
        torch.save(scheduler.state_dict(), folder / SCHEDULER_FILE)
        tmp = state_dir / f".{PROGRESS_FILE}.tmp"
        tmp.write_text(json.dumps({**asdict(position), "folder": folder.name}))
        tmp.replace(state_dir / PROGRESS_FILE)
        for old in state_dir.glob("step-*"):
            if old.name != folder.name:
                shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


def load_state(
    state_dir: Path | None, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler
) -> Position:
    """Restore the last saved state into model, optimizer and scheduler (any number of processes)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    saved = read_position(state_dir)
    if saved is None:
        return Position()
    position, folder = saved
    module, inner = _module(model), _inner(optimizer)
    model_state, optimizer_state = get_state_dict(module, inner)
    state = {"model": model_state, "optimizer": optimizer_state}
    with _one_process_is_fine():
        dcp.load(state, checkpoint_id=str(folder), no_dist=not torch.distributed.is_initialized())
    set_state_dict(module, inner, model_state_dict=state["model"], optim_state_dict=state["optimizer"])
    scheduler.load_state_dict(torch.load(folder / SCHEDULER_FILE, weights_only=True))
    return position
