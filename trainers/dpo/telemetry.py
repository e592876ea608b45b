"""Per-step telemetry: peak memory and its parts, and metric sinks (JSONL, TensorBoard, console)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch

from prefkit.validation import kill_point

MB = 1024 * 1024


def tensor_megabytes(tensors) -> float:
    return sum(t.numel() * t.element_size() for t in tensors if isinstance(t, torch.Tensor)) / MB


def _status_megabytes(field: str) -> float | None:
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    return None


def peak_rss_megabytes() -> float:
    """Peak resident memory of this process (Linux VmHWM; ru_maxrss elsewhere)."""
    peak = _status_megabytes("VmHWM")
    if peak is not None:
        return peak
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_megabytes() -> float:
    """Resident memory of this process now (Linux VmRSS; the peak elsewhere)."""
    current = _status_megabytes("VmRSS")
    return current if current is not None else peak_rss_megabytes()


def reset_peak_rss() -> bool:
    """Restart the peak-RSS count from the current RSS (Linux: clear_refs 5); False where it cannot."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def memory_report(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, device: torch.device
) -> dict[str, float]:
    """Peak memory and an estimate of its parts: parameters, gradients, optimizer state, activations.

    On GPU the peak is torch.cuda.max_memory_allocated and activations are what the other parts leave.
    On CPU the peak is the process's peak RSS (which also holds the Python runtime and libraries).
    """
    params = tensor_megabytes(model.parameters())
    # gradients are freed after each step, but at their peak they match the trainable parameters
    grads = tensor_megabytes(p for p in model.parameters() if p.requires_grad)
    state = optimizer.state if hasattr(optimizer, "state") else {}
    optimizer_mb = tensor_megabytes(value for per_param in state.values() for value in per_param.values())
    report = {"memory/params_mb": params, "memory/grads_mb": grads, "memory/optimizer_mb": optimizer_mb}
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / MB
        report["memory/peak_mb"] = peak
        report["memory/activations_mb"] = max(peak - params - grads - optimizer_mb, 0.0)
    else:
        report["memory/peak_rss_mb"] = peak_rss_megabytes()
    return report


class MetricsLog:
    """Appends one JSON object per step to metrics.jsonl and mirrors scalars to TensorBoard if available."""

    def __init__(self, jsonl_path: Path, tensorboard_dir: Path | None, enabled: bool = True) -> None:
        self.path = jsonl_path
        self.enabled = enabled
        self.tensorboard_dir = tensorboard_dir
        self.writer = self._open_writer()

    def _open_writer(self):
        if not self.enabled or self.tensorboard_dir is None:
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is optional on lean GPU images
            return None
        return SummaryWriter(log_dir=str(self.tensorboard_dir))

    def truncate_after(self, step: int) -> None:
        """Drop records logged after `step` (a resumed run logs those steps again).

        TensorBoard event files cannot be cut, so they are rewritten from the kept metrics.jsonl lines:
        a resumed run then holds each step once, as an uninterrupted one does.
        """
        if not self.enabled or not self.path.exists():
            return
        kept = [
            line for line in self.path.read_text().splitlines() if line and json.loads(line)["step"] <= step
        ]
        self.path.write_text("".join(line + "\n" for line in kept))
        if self.writer is not None:
            import shutil

            self.writer.close()
            shutil.rmtree(self.tensorboard_dir, ignore_errors=True)
            self.writer = self._open_writer()
            for line in kept:
                self._write_scalars(json.loads(line))

    def _write_scalars(self, record: dict[str, Any]) -> None:
        for key, value in record.items():
            if isinstance(value, int | float) and key != "step":
                self.writer.add_scalar(key, value, record["step"])

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        clean = {
            key: (None if isinstance(v, float) and not math.isfinite(v) else v) for key, v in record.items()
        }
        with open(self.path, "a") as handle:
            handle.write(json.dumps(clean) + "\n")
        if self.writer is not None:
            self._write_scalars(record)
        kill_point("train-step")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """All records of a metrics.jsonl file."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
