"""Where each pair sits in a batch row, which is all the attention pattern of any batch layout needs.

Every layout places, per pair, `prompt chosen rejected` side by side in one row (separate rows hold one
sequence each: a "pair" with an empty rejected part). Attention within a span is causal over
prompt + chosen, and the rejected tokens see the prompt and their own earlier tokens, never the chosen
ones. Spans are Python ints fixed at collate time, so reading them on a GPU batch costs no host sync.
`dense_mask` spells the same pattern out as the [rows, 1, width, width] boolean mask of the fallback path.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

PROMPT, CHOSEN, REJECTED, PADDING = 0, 1, 2, 3


@dataclass(frozen=True)
class PairSpan:
    """One pair's columns in row `row`: `prompt` tokens from `start`, then `chosen`, then `rejected`."""

    row: int
    start: int
    prompt: int
    chosen: int
    rejected: int = 0

    @property
    def rejected_start(self) -> int:
        return self.start + self.prompt + self.chosen

    @property
    def end(self) -> int:
        return self.rejected_start + self.rejected


@dataclass(frozen=True)
class RowSegments:
    """The spans of every pair in a batch of `rows` x `width` tokens, in row then column order;
    columns no span covers are padding."""

    rows: int
    width: int
    spans: tuple[PairSpan, ...]

    def one_span_per_row(self) -> bool:
        """Every row holds one span starting at column 0 (the separate and shared-prefix layouts)."""
        return len(self.spans) == self.rows and all(
            span.row == row and span.start == 0 for row, span in enumerate(self.spans)
        )

    def dense_mask(self, device: torch.device | str | None = None) -> torch.Tensor:
        """[rows, 1, width, width] boolean mask: True where a query column may attend to a key column."""
        segment = torch.full((self.rows, self.width), PADDING, dtype=torch.long)
        document = torch.full((self.rows, self.width), -1, dtype=torch.long)
        for number, span in enumerate(self.spans):
            prompt_end = span.start + span.prompt
            segment[span.row, span.start : prompt_end] = PROMPT
            segment[span.row, prompt_end : span.rejected_start] = CHOSEN
            segment[span.row, span.rejected_start : span.end] = REJECTED
            document[span.row, span.start : span.end] = number
        segment, document = segment.to(device), document.to(device)
        causal = torch.ones((self.width, self.width), dtype=torch.bool, device=device).tril()
        same_pair = document.unsqueeze(2) == document.unsqueeze(1)
        query_segment, key_segment = segment.unsqueeze(2), segment.unsqueeze(1)
        # padding sees earlier padding of its row (never an empty row, which would give NaN in sdpa)
        visible = (key_segment == PROMPT) | (key_segment == query_segment)
        return (causal & same_pair & visible).unsqueeze(1)
