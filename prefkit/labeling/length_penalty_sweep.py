"""Choosing lambda: how the length penalty changes the pairs, from one scoring pass over the candidates.

DPO moves the policy towards the chosen and away from the rejected completion, so the mean length gap
(chosen minus rejected) of the pairs predicts which way a round pushes length. The sweep scores the
candidates once, re-pairs them under each lambda (pure function), and reports per lambda the pairs
kept, the mean length gap, the share of pairs whose chosen side is longer, and the mean raw-score
margin. The lambda whose mean gap is closest to zero is the length-neutral choice for the next round.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

from prefkit.artifacts import open_artifact
from prefkit.labeling.candidates_reader import check_candidates, iter_candidate_shards
from prefkit.labeling.pairing import is_truncated
from prefkit.labeling.registry import load_labeler
from prefkit.labeling.stage import LabelConfig, ScoredShard, close_labeler, pair_scored, score_shard


@dataclass(frozen=True)
class PenaltyPoint:
    """The pairs one lambda produces, summarised."""

    length_penalty: float
    pairs: int
    length_gap: float  # mean (len_chosen - len_rejected), in the sweep's length unit
    chosen_longer: float  # share of pairs whose chosen completion is longer
    score_margin: float  # mean raw (unpenalised) score_chosen - score_rejected
    truncated_chosen: float = math.nan  # share of pairs whose chosen completion was cut at the token limit
    truncated_rejected: float = math.nan

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def sweep_point(shards: list[ScoredShard], config: LabelConfig, length_penalty: float) -> PenaltyPoint:
    """Pair every prompt's candidates under `length_penalty` (other settings from `config`) and summarise."""
    gaps: list[int] = []
    margins: list[float] = []
    cut_chosen = cut_rejected = 0
    for shard in shards:
        for offset, result in enumerate(pair_scored(shard, config, length_penalty)):
            scores, lengths, reasons = shard.scores[offset], shard.lengths[offset], shard.reasons(offset)
            for pair in result.pairs:
                gaps.append(lengths[pair.chosen] - lengths[pair.rejected])
                margins.append(scores[pair.chosen] - scores[pair.rejected])
                cut_chosen += is_truncated(reasons[pair.chosen])
                cut_rejected += is_truncated(reasons[pair.rejected])
    count = len(gaps)
    return PenaltyPoint(
        length_penalty=length_penalty,
        pairs=count,
        length_gap=sum(gaps) / count if count else math.nan,
        chosen_longer=sum(gap > 0 for gap in gaps) / count if count else math.nan,
        score_margin=sum(margins) / count if count else math.nan,
        truncated_chosen=cut_chosen / count if count else math.nan,
        truncated_rejected=cut_rejected / count if count else math.nan,
    )


def length_neutral_penalty(points: list[PenaltyPoint]) -> float | None:
    """The lambda whose pairs' mean length gap is closest to zero (the smaller lambda on a tie)."""
    usable = [point for point in points if point.pairs]
    if not usable:
        return None
    return min(usable, key=lambda point: (abs(point.length_gap), point.length_penalty)).length_penalty


def length_penalty_sweep(
    candidates: str | Path, config: LabelConfig, length_penalties: list[float]
) -> list[PenaltyPoint]:
    """Score a candidates artifact once with `config`'s labeler, then summarise the pairs of each lambda."""
    source = open_artifact(candidates, "candidates")
    check_candidates(source.data_path, config.length_unit)
    labeler = load_labeler(config.labeler, config.labeler_options)
    try:
        shards = [
            score_shard(shard, labeler, config, source.data_path)
            for shard in iter_candidate_shards(source.data_path, config.shard_size)
        ]
    finally:
        close_labeler(labeler)
    return [sweep_point(shards, config, penalty) for penalty in sorted(length_penalties)]


def render_sweep(points: list[PenaltyPoint], unit: str) -> str:
    """A Markdown table of the sweep and the length-neutral lambda."""
    lines = [
        f"| lambda (per {unit.rstrip('s')}) | pairs | mean length gap ({unit}) | chosen longer | score margin "
        "| cut chosen | cut rejected |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for point in points:
        lines.append(
            f"| {point.length_penalty:g} | {point.pairs} | {point.length_gap:+.1f} | "
            f"{point.chosen_longer:.0%} | {point.score_margin:.3f} | "
            f"{_share(point.truncated_chosen)} | {_share(point.truncated_rejected)} |"
        )
    neutral = length_neutral_penalty(points)
    lines.append("")
    lines.append(
        f"length-neutral lambda (mean gap closest to 0): {neutral:g}"
        if neutral is not None
        else "no lambda in this grid kept any pair"
    )
    return "\n".join(lines)


def _share(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.0%}"
