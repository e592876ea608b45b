"""The labeler contract: pointwise scores for each completion of each prompt (higher is better)."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from prefkit.conversation import Prompt


class Labeler(Protocol):
    """A scorer, constructed by its plugin class as `Cls(**options)`."""

    name: str

    def score(self, prompts: list[Prompt], completions: list[list[str]]) -> list[list[float]]:
        """Scores aligned with `completions` (one list per prompt).

        A prompt is a string or a conversation (a message list ending with a user turn); a completion
        is always the text of the next assistant turn.
        """
        ...


@runtime_checkable
class ReportsUsage(Protocol):
    """Optional: a labeler that counts its work (requests, tokens, samples/s) for the manifest.

    `usage()` returns flat counts for the work done since construction; the labeling stage records
    the difference across each shard so resumed runs still add up.
    """

    def usage(self) -> dict[str, Any]:
        """Flat counters (numbers) describing the work done so far."""
        ...
