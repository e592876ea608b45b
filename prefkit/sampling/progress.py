"""Rich progress bars for every step a user waits on: sampling (prompts/s, tokens/s), scoring, judging.

`StepProgress` is the one helper: a bar over `total` items of one named step, with a free status text
(rates, cache hits, retries) and elapsed time and ETA. `SamplingProgress` is the sampling flavour that
computes prompts/s and tokens/s itself. A disabled bar (tests, `--quiet`) draws nothing.
"""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class StepProgress:
    """Progress over `total` items of one step; `advance(count, status)` after each chunk of work."""

    def __init__(self, description: str, total: int, *, unit: str = "items", enabled: bool = True) -> None:
        self.enabled = enabled
        self.started = time.perf_counter()
        self.progress = Progress(
            TextColumn(description),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(unit),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),  # stdout stays for results (JSON, tables)
            disable=not enabled,
        )
        self.task = self.progress.add_task(description, total=total, status="")

    def __enter__(self) -> StepProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.progress.stop()

    @property
    def seconds(self) -> float:
        """Seconds since the bar was created."""
        return max(time.perf_counter() - self.started, 1e-9)

    def skip(self, count: int) -> None:
        """Count items finished earlier (resumed shards, cache hits) without a status change."""
        self.progress.update(self.task, advance=count)

    def advance(self, count: int, status: str | None = None) -> None:
        """Record `count` more finished items; `status` replaces the status text when given."""
        if status is None:
            self.progress.update(self.task, advance=count)
        else:
            self.progress.update(self.task, advance=count, status=status)


class SamplingProgress(StepProgress):
    """Progress over prompts; `advance(prompts, tokens)` after each shard updates both rates."""

    def __init__(self, total_prompts: int, *, enabled: bool = True, description: str = "sampling") -> None:
        super().__init__(description, total_prompts, unit="prompts", enabled=enabled)
        self.prompts = 0
        self.tokens = 0

    def advance(self, prompts: int, tokens: int = 0) -> None:  # type: ignore[override]
        """Record a finished shard of `prompts` prompts that generated `tokens` tokens."""
        self.prompts += prompts
        self.tokens += tokens
        seconds = self.seconds
        rates = f"{self.prompts / seconds:.2f} prompts/s, {self.tokens / seconds:.1f} tokens/s"
        super().advance(prompts, rates)
