"""Pairing strategies and length control against hand-computed cases."""

from __future__ import annotations

import math
import random

import pytest

from prefkit.labeling.pairing import (
    Pair,
    all_pairs,
    best_vs_worst_pair,
    length_adjusted_scores,
    make_pairs,
    random_pair,
    row_rng,
    usable_candidates,
)


def test_length_adjusted_scores_by_hand():
    # 0.9 - 0.01*50 = 0.4 ; 0.5 - 0.01*10 = 0.4 ; 0.2 - 0.01*0 = 0.2
    assert length_adjusted_scores([0.9, 0.5, 0.2], [50, 10, 0], 0.01) == pytest.approx([0.4, 0.4, 0.2])


def test_best_vs_worst_picks_extremes_and_margin():
    result = best_vs_worst_pair([0.1, 0.7, -0.3, 0.2], [0, 1, 2, 3])
    assert result.pairs == [Pair(chosen=1, rejected=2, margin=pytest.approx(1.0))]
    assert not result.dropped
    assert best_vs_worst_pair([0.1, 0.7, -0.3, 0.2], [0, 1, 2, 3], min_margin=1.01).dropped == {
        "below_margin": 1
    }


def test_best_vs_worst_all_equal_is_a_tie():
    result = best_vs_worst_pair([0.5, 0.5, 0.5], [0, 1, 2])
    assert result.pairs == [] and result.dropped == {"tie": 1}


def test_length_penalty_flips_the_choice():
    completions = ["long but positive", "short"]
    scores, lengths = [0.9, 0.6], [40, 5]
    plain = make_pairs("best-vs-worst", completions, scores, lengths)
    assert (plain.pairs[0].chosen, plain.pairs[0].rejected) == (0, 1)
    # adjusted: 0.9 - 0.01*40 = 0.5 ; 0.6 - 0.01*5 = 0.55 -> the short one wins by 0.05
    penalised = make_pairs("best-vs-worst", completions, scores, lengths, length_penalty=0.01)
    assert (penalised.pairs[0].chosen, penalised.pairs[0].rejected) == (1, 0)
    assert penalised.pairs[0].margin == pytest.approx(0.05)


def test_all_pairs_counts_ties_and_margin_drops():
    # scores 3, 1, 1, 0: pairs (0,1) m2, (0,2) m2, (0,3) m3, (1,2) tie, (1,3) m1, (2,3) m1
    result = all_pairs([3.0, 1.0, 1.0, 0.0], [0, 1, 2, 3], min_margin=1.5)
    assert [(p.chosen, p.rejected) for p in result.pairs] == [(0, 1), (0, 2), (0, 3)]
    assert result.dropped == {"tie": 1, "below_margin": 2}


def test_random_pair_is_seeded_and_ordered():
    adjusted = [0.0, 1.0, 2.0, 3.0, 4.0]
    first = random_pair(adjusted, [0, 1, 2, 3, 4], row_rng(7, "p1"))
    again = random_pair(adjusted, [0, 1, 2, 3, 4], row_rng(7, "p1"))
    assert first.pairs == again.pairs
    (pair,) = first.pairs
    assert adjusted[pair.chosen] > adjusted[pair.rejected]
    # same draw as random.Random(seed string).sample, independent of anything else
    a, b = random.Random("7:p1").sample([0, 1, 2, 3, 4], 2)
    assert {pair.chosen, pair.rejected} == {a, b}
    draws = {
        tuple(sorted((p.chosen, p.rejected)))
        for s in range(30)
        for p in random_pair(adjusted, [0, 1, 2, 3, 4], row_rng(s, "p1")).pairs
    }
    assert len(draws) > 3  # different seeds give different pairs


def test_unusable_candidates_are_counted_not_guessed():
    keep, dropped = usable_candidates(["ok", "", "  ", "fine", "x"], [1.0, 2.0, 3.0, math.nan, float("inf")])
    assert keep == [0]
    assert dropped == {"empty_completion": 2, "nan_score": 2}
    result = make_pairs("best-vs-worst", ["ok", "", "fine"], [1.0, 2.0, math.nan], [1, 1, 1])
    assert result.pairs == []
    assert result.dropped == {"empty_completion": 1, "nan_score": 1, "too_few_candidates": 1}


def test_single_and_no_candidates():
    assert make_pairs("all-pairs", ["only"], [1.0], [3]).dropped == {"too_few_candidates": 1}
    assert make_pairs("random-pair", [], [], [], rng=row_rng(0, "x")).dropped == {"too_few_candidates": 1}


def test_nan_candidate_excluded_but_rest_paired():
    result = make_pairs("best-vs-worst", ["a", "b", "c"], [0.2, math.nan, 0.8], [1, 1, 1])
    assert [(p.chosen, p.rejected) for p in result.pairs] == [(2, 0)]
    assert result.dropped == {"nan_score": 1}


def test_mismatched_lengths_and_unknown_strategy_raise():
    with pytest.raises(ValueError, match="2 scores but 1 lengths"):
        length_adjusted_scores([1.0, 2.0], [1], 0.1)
    with pytest.raises(ValueError, match="unknown pairing strategy"):
        make_pairs("best-of-both", ["a", "b"], [1.0, 0.0], [1, 1])
