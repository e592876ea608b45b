"""The one way prefkit shows progress: bars and status lines on stderr (stdout stays for results).

`StepProgress` is a bar over `total` items of one named step (sampling, labeling, judging, training
steps, scoring), with a free status text (rates, loss, cache hits, retries), elapsed time and ETA.
`SamplingProgress` is the sampling flavour that computes prompts/s and tokens/s itself. `say` prints
one status line ("[eval] winrate on base ..."). Everything is off when `enabled` is false (`--quiet`,
`--no-progress`, tests); on a terminal that is not a TTY rich draws no live bar, only the final state.
"""

from __future__ import annotations

import sys
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


def say(enabled: bool, message: str) -> None:
    """Print one status line on stderr when progress is shown (the step that starts, a cache hit)."""
    if enabled:
        print(message, file=sys.stderr, flush=True)


class StepProgress:
    """Progress over `total` items of one step; `advance(count, status)` after each chunk of work.

    Use it as a context manager, or call `start()` and `close()` where a `with` block does not fit.
    `done` counts items finished by an earlier run (a resumed job) so the ETA covers only new work.
    """

    def __init__(
        self,
        description: str,
        total: int,
        *,
        unit: str = "items",
        enabled: bool = True,
        done: int = 0,
    ) -> None:
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
        self.task = self.progress.add_task(description, total=total, completed=min(done, total), status="")

    def start(self) -> StepProgress:
        """Start drawing (a disabled bar draws nothing)."""
        self.progress.start()
        return self

    def close(self) -> None:
        """Stop drawing; the final state stays on screen."""
        self.progress.stop()

    def __enter__(self) -> StepProgress:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.close()

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
