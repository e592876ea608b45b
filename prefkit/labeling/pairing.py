"""Turning scored candidates into (chosen, rejected) pairs: pure functions, no I/O.

Every function works on the candidates of one prompt. Candidates are ranked by the length-adjusted
score `score - length_penalty * length` (iLR-DPO / RLHFlow style), and a pair is kept only when the
chosen candidate beats the rejected one by at least `min_margin` on that adjusted score. Pairs that
fail are not silently lost: each function returns the reasons it dropped something, counted.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass, field
from itertools import combinations

STRATEGIES = ("best-vs-worst", "all-pairs", "random-pair")
# what to do with completions cut at max_new_tokens (finish reason "length"); see docs/labeling.md
TRUNCATION_MODES = ("drop", "no-eos", "keep")
DEFAULT_TRUNCATION = "keep"

# drop reasons (also the keys of the `dropped` counts in manifests and cards)
TIE = "tie"
BELOW_MARGIN = "below_margin"
EMPTY_COMPLETION = "empty_completion"
NAN_SCORE = "nan_score"
TOO_FEW_CANDIDATES = "too_few_candidates"
TRUNCATED = "truncated"


@dataclass(frozen=True)
class Pair:
    """Indices of the chosen and rejected candidate and their adjusted-score margin (> 0)."""

    chosen: int
    rejected: int
    margin: float


@dataclass
class PairingResult:
    """Pairs kept for one prompt, and how many candidate pairs or candidates were dropped, by reason."""

    pairs: list[Pair] = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)


def length_adjusted_scores(scores: list[float], lengths: list[int], length_penalty: float) -> list[float]:
    """`score - length_penalty * length` for each candidate (lengths in the unit the caller chose)."""
    if len(scores) != len(lengths):
        raise ValueError(f"{len(scores)} scores but {len(lengths)} lengths")
    return [score - length_penalty * length for score, length in zip(scores, lengths, strict=True)]


def is_truncated(finish_reason: str | None) -> bool:
    """True for a completion cut at the token limit (vLLM's and our samplers' finish reason "length")."""
    return finish_reason == "length"


def appends_eos(finish_reason: str | None, truncation: str) -> bool:
    """Whether the trainer closes this completion with an EOS: always, except a cut one under `no-eos`."""
    return not (truncation == "no-eos" and is_truncated(finish_reason))


def trained_length(length: int, finish_reason: str | None, truncation: str, length_unit: str) -> int:
    """A candidate's length as the trainer will see it, from the sampler's length.

    The sampler's token count includes the EOS the model emitted (finish "stop") and has none for a cut
    completion; the trainer appends one to a cut completion unless `truncation` is `no-eos`. An EOS has
    no characters, so lengths in chars are unchanged.
    """
    if length_unit == "tokens" and is_truncated(finish_reason) and appends_eos(finish_reason, truncation):
        return length + 1
    return length


def usable_candidates(
    completions: list[str],
    scores: list[float],
    finish_reasons: list[str | None] | None = None,
    truncation: str = "keep",
) -> tuple[list[int], Counter]:
    """Indices of candidates that can be paired: non-empty text, a finite score, and (under `drop`) not
    cut at the token limit; drops counted."""
    keep: list[int] = []
    dropped: Counter = Counter()
    reasons = finish_reasons if finish_reasons is not None else [None] * len(completions)
    for index, (text, score, reason) in enumerate(zip(completions, scores, reasons, strict=True)):
        if not text or not text.strip():
            dropped[EMPTY_COMPLETION] += 1
        elif score is None or not math.isfinite(score):
            dropped[NAN_SCORE] += 1
        elif truncation == "drop" and is_truncated(reason):
            dropped[TRUNCATED] += 1
        else:
            keep.append(index)
    return keep, dropped


def _ordered_pair(first: int, second: int, adjusted: list[float], min_margin: float) -> Pair | str:
    """The pair (higher adjusted score chosen) or the reason it is dropped."""
    if adjusted[first] == adjusted[second]:
        return TIE
    chosen, rejected = (first, second) if adjusted[first] > adjusted[second] else (second, first)
    margin = adjusted[chosen] - adjusted[rejected]
    if margin < min_margin:
        return BELOW_MARGIN
    return Pair(chosen=chosen, rejected=rejected, margin=margin)


def _collect(candidates: list[tuple[int, int]], adjusted: list[float], min_margin: float) -> PairingResult:
    result = PairingResult()
    for first, second in candidates:
        outcome = _ordered_pair(first, second, adjusted, min_margin)
        if isinstance(outcome, Pair):
            result.pairs.append(outcome)
        else:
            result.dropped[outcome] += 1
    return result


def best_vs_worst_pair(adjusted: list[float], indices: list[int], min_margin: float = 0.0) -> PairingResult:
    """The highest against the lowest adjusted score among `indices` (first index wins equal scores)."""
    if len(indices) < 2:
        return PairingResult(dropped=Counter({TOO_FEW_CANDIDATES: 1}))
    best = max(indices, key=lambda i: (adjusted[i], -i))
    worst = min(indices, key=lambda i: (adjusted[i], i))
    if best == worst:  # every score equal: max and min picked the same first index
        return PairingResult(dropped=Counter({TIE: 1}))
    return _collect([(best, worst)], adjusted, min_margin)


def all_pairs(adjusted: list[float], indices: list[int], min_margin: float = 0.0) -> PairingResult:
    """Every unordered pair of `indices` whose adjusted scores differ by at least `min_margin`."""
    if len(indices) < 2:
        return PairingResult(dropped=Counter({TOO_FEW_CANDIDATES: 1}))
    return _collect(list(combinations(indices, 2)), adjusted, min_margin)


def random_pair(
    adjusted: list[float], indices: list[int], rng: random.Random, min_margin: float = 0.0
) -> PairingResult:
    """One pair of distinct candidates drawn with `rng`, ordered by adjusted score."""
    if len(indices) < 2:
        return PairingResult(dropped=Counter({TOO_FEW_CANDIDATES: 1}))
    first, second = rng.sample(indices, 2)
    return _collect([(first, second)], adjusted, min_margin)


def row_rng(seed: int, prompt_id: str) -> random.Random:
    """A generator that depends only on (seed, prompt id): shard size and resumes do not change draws."""
    return random.Random(f"{seed}:{prompt_id}")


def make_pairs(
    strategy: str,
    completions: list[str],
    scores: list[float],
    lengths: list[int],
    *,
    length_penalty: float = 0.0,
    min_margin: float = 0.0,
    rng: random.Random | None = None,
    finish_reasons: list[str | None] | None = None,
    truncation: str = "keep",
) -> PairingResult:
    """Pairs for one prompt: drop unusable candidates, adjust for length, then apply `strategy`.

    `finish_reasons` (one per completion, None when unknown) matter only under `truncation="drop"`, where
    completions cut at the token limit are never paired; `lengths` should already be `trained_length`s.
    """
    indices, dropped = usable_candidates(completions, scores, finish_reasons, truncation)
    usable = set(indices)
    # unusable candidates get a placeholder 0.0: they are never paired, but keep positions aligned
    adjusted = length_adjusted_scores(
        [s if i in usable else 0.0 for i, s in enumerate(scores)], lengths, length_penalty
    )
    if strategy == "best-vs-worst":
        result = best_vs_worst_pair(adjusted, indices, min_margin)
    elif strategy == "all-pairs":
        result = all_pairs(adjusted, indices, min_margin)
    elif strategy == "random-pair":
        if rng is None:
            raise ValueError("random-pair needs an rng (see row_rng)")
        result = random_pair(adjusted, indices, rng, min_margin)
    else:
        raise ValueError(f"unknown pairing strategy '{strategy}' (choose from {', '.join(STRATEGIES)})")
    result.dropped.update(dropped)
    return result
