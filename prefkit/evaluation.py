"""The evaluator contract. (The orchestrator `evaluate(...)`, caching and leaderboard extend this module.)"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True)
class EvalSubject:
    """What is evaluated: a display name and a model (checkpoint folder, alias or hub id)."""

    name: str
    model: str


class Evaluator(Protocol):
    """An evaluator plugin, constructed as `Cls(**options)`."""

    name: str

    def evaluate(self, subject: EvalSubject, work_dir: Path) -> dict[str, Any]:
        """Evaluate one subject; return flat metrics (numbers or short strings). `work_dir` is for outputs."""
        ...
