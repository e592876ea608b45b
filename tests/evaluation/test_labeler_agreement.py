"""Labeler validation measures against hand-computed values, and VADER measured on sentiment pairs."""

from __future__ import annotations

import pytest
from prefkit_evals.rewards import VaderCompoundScorer

from prefkit.evaluation.labeler_agreement import (
    FIRST,
    SECOND,
    TIE,
    agreement,
    agreement_report,
    cohen_kappa,
    length_bias,
    outcome_from_preference,
    outcome_from_scores,
    paired_bootstrap,
    position_flip_rate,
    validate_scorer,
)

REFERENCE = [FIRST, FIRST, SECOND, SECOND, TIE]
PREDICTED = [FIRST, SECOND, SECOND, TIE, TIE]
FIRST_LENGTHS = [10, 10, 10, 10, 5]
SECOND_LENGTHS = [5, 20, 20, 5, 5]


def test_measures_by_hand():
    assert agreement(REFERENCE, PREDICTED) == pytest.approx(3.5 / 5)  # 1 + 0 + 1 + 0.5 + 1
    # observed 3/5; chance (2*1 + 2*2 + 1*2) / 25 = 8/25
    assert cohen_kappa(REFERENCE, PREDICTED) == pytest.approx((0.6 - 0.32) / 0.68)
    # longer response won: labeler 3 of 4, reference 2 of 4 (the equal-length pair is left out)
    assert length_bias(REFERENCE, PREDICTED, FIRST_LENGTHS, SECOND_LENGTHS) == pytest.approx(0.25)
    assert position_flip_rate([FIRST, FIRST, SECOND, TIE], [SECOND, FIRST, SECOND, FIRST]) == pytest.approx(
        2 / 3
    )
    assert cohen_kappa([FIRST] * 3, [FIRST] * 3) == 1.0 and agreement([FIRST, SECOND], [TIE, TIE]) == 0.5
    assert (outcome_from_scores(0.2, 0.1), outcome_from_scores(1, 1)) == (FIRST, TIE)
    assert [outcome_from_preference(p) for p in (0.1, 0.5, 0.9)] == [FIRST, TIE, SECOND]


def test_report_and_bootstrap_interval():
    report = agreement_report(
        REFERENCE * 4, PREDICTED * 4, FIRST_LENGTHS * 4, SECOND_LENGTHS * 4, resamples=200
    )
    assert report["agreement"] == pytest.approx(0.7) and report["tie_rate"] == pytest.approx(0.4)
    assert report["agreement_low"] < 0.7 < report["agreement_high"]
    assert report["kappa_low"] < report["kappa"] < report["kappa_high"]
    again = agreement_report(
        REFERENCE * 4, PREDICTED * 4, FIRST_LENGTHS * 4, SECOND_LENGTHS * 4, resamples=200
    )
    assert again == report  # seeded


def test_vader_against_sentiment_reference():
    happy = ["What a wonderful, happy day!", "I love this great book.", "A delightful, lovely meal."]
    sad = ["This is awful and sad.", "I hate this terrible book.", "A horrible, disgusting meal."]
    firsts = [happy[0], sad[1], happy[2]]
    seconds = [sad[0], happy[1], sad[2]]
    reference = [FIRST, SECOND, FIRST]  # the positive response is preferred
    report = validate_scorer(VaderCompoundScorer(), ["p"] * 3, firsts, seconds, reference, resamples=50)
    assert report["agreement"] == 1.0 and report["kappa"] == 1.0 and report["seconds"] >= 0
    flipped = validate_scorer(
        VaderCompoundScorer(), ["p"] * 3, firsts, seconds, [SECOND, FIRST, SECOND], resamples=50
    )
    assert flipped["agreement"] == 0.0 and flipped["kappa"] < 0


def test_paired_bootstrap_resamples_whole_pairs():
    # every pair agrees, so every resample of pairs agrees fully; resampling the two sides apart would not
    reference = [FIRST, SECOND, FIRST, SECOND, TIE] * 4
    assert paired_bootstrap(reference, reference, agreement, resamples=100) == (1.0, 1.0)
    assert paired_bootstrap(reference, reference, cohen_kappa, resamples=100) == (1.0, 1.0)
