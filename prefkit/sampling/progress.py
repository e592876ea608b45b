"""A rich progress bar for sampling that shows prompts/s and generated tokens/s."""

from __future__ import annotations

import time

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class SamplingProgress:
    """Progress over prompts; `advance(prompts, tokens)` after each shard updates both rates."""

    def __init__(self, total_prompts: int, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self.prompts = 0
        self.tokens = 0
        self.started = time.perf_counter()
        self.progress = Progress(
            TextColumn("sampling"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("prompts"),
            TextColumn("{task.fields[rates]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            disable=not enabled,
        )
        self.task = self.progress.add_task("sampling", total=total_prompts, rates="")

    def __enter__(self) -> SamplingProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.progress.stop()

    def skip(self, prompts: int) -> None:
        """Count prompts finished by an earlier run (resumed shards) without counting them in the rates."""
        self.progress.update(self.task, advance=prompts)

    def advance(self, prompts: int, tokens: int) -> None:
        """Record a finished shard of `prompts` prompts that generated `tokens` tokens."""
        self.prompts += prompts
        self.tokens += tokens
        seconds = max(time.perf_counter() - self.started, 1e-9)
        rates = f"{self.prompts / seconds:.2f} prompts/s, {self.tokens / seconds:.1f} tokens/s"
        self.progress.update(self.task, advance=prompts, rates=rates)
