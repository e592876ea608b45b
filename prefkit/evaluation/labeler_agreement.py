"""How far a labeler can be trusted: its preferences against reference preference labels.

Pure functions over per-pair outcomes. An outcome is FIRST, SECOND or TIE (which of the two responses
shown is preferred). Reference labels may be soft (AlpacaEval's judge gives P(second better)); they are
made hard at 0.5. Reported:

- agreement: share of pairs where the labeler's outcome equals the reference's (a labeler tie on a
  decided pair counts half, so always answering "tie" scores 0.5, like a coin);
- Cohen's kappa over {FIRST, SECOND, TIE}: agreement corrected for what the two marginals give by chance;
- labeler tie rate, and length bias: how often the labeler prefers the longer response minus how often
  the reference does (positive = the labeler likes length more than the reference);
- position-flip rate (judges asked in both orders): share of pairs whose verdict names the same
  *position* both times, i.e. changed its mind when the order changed;
- percentile bootstrap intervals over pairs for agreement and kappa (`prefkit.judge.statistics.percentile_bootstrap`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

from prefkit.judge.statistics import percentile_bootstrap

FIRST, SECOND, TIE = "first", "second", "tie"
OUTCOMES = (FIRST, SECOND, TIE)


def outcome_from_scores(first: float, second: float) -> str:
    """A pointwise labeler's outcome: the higher score wins, equal scores tie."""
    return FIRST if first > second else SECOND if second > first else TIE


def outcome_from_preference(second_preferred: float) -> str:
    """A soft reference (probability the second response is better, in [0, 1]) made hard at 0.5."""
    return SECOND if second_preferred > 0.5 else FIRST if second_preferred < 0.5 else TIE


def agreement(reference: Sequence[str], predicted: Sequence[str]) -> float:
    """Share of pairs where the outcomes agree; a predicted tie on a decided pair counts half."""
    if len(reference) != len(predicted) or not reference:
        raise ValueError("need equally many reference and predicted outcomes, at least one")
    points = 0.0
    for truth, guess in zip(reference, predicted, strict=True):
        if truth == guess:
            points += 1.0
        elif guess == TIE or truth == TIE:
            points += 0.5
    return points / len(reference)


def cohen_kappa(reference: Sequence[str], predicted: Sequence[str]) -> float:
    """Cohen's kappa over {first, second, tie}: (p_o - p_e) / (1 - p_e); 1.0 when both are constant and equal."""
    if len(reference) != len(predicted) or not reference:
        raise ValueError("need equally many reference and predicted outcomes, at least one")
    n = len(reference)
    observed = sum(a == b for a, b in zip(reference, predicted, strict=True)) / n
    truth, guess = Counter(reference), Counter(predicted)
    expected = sum(truth[o] * guess[o] for o in OUTCOMES) / (n * n)
    if expected == 1.0:
        return 1.0 if observed == 1.0 else 0.0
    return (observed - expected) / (1.0 - expected)


def length_bias(
    reference: Sequence[str],
    predicted: Sequence[str],
    first_lengths: Sequence[int],
    second_lengths: Sequence[int],
) -> float:
    """Share of pairs where the labeler prefers the longer response minus the share where the reference does.

    Pairs of equal length are left out of both shares (there is no longer response).
    """
    longer_won_labeler = longer_won_reference = counted = 0
    for truth, guess, first, second in zip(reference, predicted, first_lengths, second_lengths, strict=True):
        if first == second:
            continue
        longer = FIRST if first > second else SECOND
        counted += 1
        longer_won_labeler += guess == longer
        longer_won_reference += truth == longer
    return (longer_won_labeler - longer_won_reference) / counted if counted else 0.0


def position_flip_rate(forward: Sequence[str], backward: Sequence[str]) -> float:
    """Share of pairs a judge decided differently when the order was swapped (same position won twice).

    `forward[i]` is the verdict with (a, b) shown, `backward[i]` with (b, a) shown; a consistent judge
    says FIRST then SECOND (or the reverse). Pairs with a tie in either order are not counted.
    """
    decided = [(f, b) for f, b in zip(forward, backward, strict=True) if TIE not in (f, b)]
    return sum(f == b for f, b in decided) / len(decided) if decided else 0.0


def paired_bootstrap(
    reference: Sequence[str],
    predicted: Sequence[str],
    statistic: Callable[[Sequence[str], Sequence[str]], float],
    *,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of `statistic(reference, predicted)`, resampling whole pairs."""

    def of_pairs(pairs: list[tuple[str, str]]) -> float:
        return statistic([first for first, _ in pairs], [second for _, second in pairs])

    pairs = list(zip(reference, predicted, strict=True))
    return percentile_bootstrap(pairs, of_pairs, resamples=resamples, confidence=confidence, seed=seed)


def agreement_report(
    reference: Sequence[str],
    predicted: Sequence[str],
    first_lengths: Sequence[int],
    second_lengths: Sequence[int],
    *,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, float]:
    """Every measure of the module docstring (position flips are added by callers that ask both orders)."""
    agree_low, agree_high = paired_bootstrap(
        reference, predicted, agreement, resamples=resamples, confidence=confidence, seed=seed
    )
    kappa_low, kappa_high = paired_bootstrap(
        reference, predicted, cohen_kappa, resamples=resamples, confidence=confidence, seed=seed
    )
    return {
        "n_pairs": len(reference),
        "agreement": agreement(reference, predicted),
        "agreement_low": agree_low,
        "agreement_high": agree_high,
        "kappa": cohen_kappa(reference, predicted),
        "kappa_low": kappa_low,
        "kappa_high": kappa_high,
        "tie_rate": sum(p == TIE for p in predicted) / len(predicted),
        "reference_tie_rate": sum(r == TIE for r in reference) / len(reference),
        "length_bias": length_bias(reference, predicted, first_lengths, second_lengths),
        "confidence": confidence,
    }


def validate_scorer(
    scorer,
    prompts: Sequence[str],
    firsts: Sequence[str],
    seconds: Sequence[str],
    reference: Sequence[str],
    **options,
) -> dict[str, float]:
    """Score each (first, second) pair with a pointwise labeler (`scorer.score`) and compare with `reference`.

    Adds `seconds` (wall time of the scoring). `options` go to `agreement_report`.
    """
    import time

    started = time.perf_counter()
    scores = scorer.score(list(prompts), [[a, b] for a, b in zip(firsts, seconds, strict=True)])
    elapsed = time.perf_counter() - started
    predicted = [outcome_from_scores(first, second) for first, second in scores]
    report = agreement_report(
        reference, predicted, [len(a) for a in firsts], [len(b) for b in seconds], **options
    )
    return {**report, "seconds": elapsed}
