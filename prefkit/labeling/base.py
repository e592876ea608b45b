"""The labeler contract: pointwise scores for each completion of each prompt (higher is better)."""

from __future__ import annotations

from typing import Protocol


class Labeler(Protocol):
    """A scorer, constructed by its plugin class as `Cls(**options)`."""

    name: str

    def score(self, prompts: list[str], completions: list[list[str]]) -> list[list[float]]:
        """Scores aligned with `completions` (one list per prompt)."""
        ...
