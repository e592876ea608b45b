"""Why length moves: the per-round statistics by hand, and the scorer against the evaluators' log-probs."""

from __future__ import annotations

import pytest

from prefkit.iteration.length_diagnostics import (
    ScoredSequence,
    TokenScores,
    pair_statistics,
    sample_statistics,
    score_sequences,
)


def sequence(policy_tokens, reference_tokens, policy_stop, reference_stop, stopped=True) -> ScoredSequence:
    return ScoredSequence(
        TokenScores(policy_tokens, policy_stop), TokenScores(reference_tokens, reference_stop), stopped
    )


def test_sample_statistics_by_hand():
    samples = [
        # stopped after 2 content tokens: the last token is the stop token
        sequence([-1.0, -2.0, -0.5], [-1.5, -2.0, -0.25], [-3.0, -2.0, -0.5], [-2.0, -2.0, -0.25]),
        # cut at the limit: every token is content, no stop position
        sequence([-1.0, -1.0], [-1.0, -2.0], [-4.0, -4.0], [-3.0, -3.0], stopped=False),
    ]
    values = sample_statistics(samples)
    assert values["why_stop_lp_ref"] == -0.25
    assert values["why_stop_lp_change"] == -0.25  # -0.5 - (-0.25): the policy stops less where ref stopped
    # earlier positions: stop changes [-1, 0] and [-1, -1]; content changes [0.5, 0] and [0, 1]
    assert values["why_stop_elsewhere_change"] == pytest.approx(-0.75)
    assert values["why_token_change"] == pytest.approx(0.375)
    assert values["why_samples"] == 2 and values["why_stopped_share"] == 0.5


def test_pair_statistics_split_at_the_median_length():
    chosen = [
        sequence([-1.0] * 2, [-2.0] * 2, [0.0] * 2, [0.0] * 2),
        sequence([-1.0] * 6, [-1.5] * 6, [0.0] * 6, [0.0] * 6),
    ]
    rejected = [
        sequence([-3.0] * 4, [-2.0] * 4, [0.0] * 4, [0.0] * 4),
        sequence([-2.0] * 8, [-1.0] * 8, [0.0] * 8, [0.0] * 8),
    ]
    values = pair_statistics(chosen, rejected)
    # lengths 2, 6, 4, 8: median 5
    assert values["why_median_tokens"] == 5
    assert values["why_chosen_short"] == 1.0 and values["why_chosen_long"] == 0.5
    assert values["why_rejected_short"] == -1.0 and values["why_rejected_long"] == -1.0
    assert values["why_pairs"] == 2


def test_scores_sum_to_the_evaluators_sequence_log_probs(tiny_model_dir):
    from prefkit.models import load_causal_lm
    from prefkit.scoring import completion_logprobs_from_ids

    model = load_causal_lm(str(tiny_model_dir), dtype="float32")
    pairs = [([1, 5, 6], [7, 8, 2]), ([3], [4, 4, 9, 10, 2])]
    scores = score_sequences(model, pairs, stop_ids=[2, 2], batch_size=2)
    expected = completion_logprobs_from_ids(model, pairs, batch_size=1)
    assert [sum(s.token) for s in scores] == pytest.approx(expected, abs=1e-4)
    assert scores[0].stop[-1] == pytest.approx(scores[0].token[-1])  # the last token is the stop token
    assert all(len(s.token) == len(s.stop) == len(c) for s, (_, c) in zip(scores, pairs, strict=True))
