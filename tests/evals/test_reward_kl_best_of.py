"""reward-kl's Best-of-N baseline (pure function, hand-computed) and its option check."""

import math

import pytest
from prefkit_evals.reward_kl import RewardKLEvaluator, best_of_n_metrics

from prefkit.errors import ConfigError


def test_best_of_n_baseline_by_hand():
    metrics = best_of_n_metrics([[0.1, 0.5, 0.3, 0.2], [1.0, 0.0, -1.0, 0.5]], best_of=2)
    # maxima per group of 2: prompt 1 -> 0.5, 0.3 (mean 0.4); prompt 2 -> 1.0, 0.5 (mean 0.75)
    assert metrics["best_of_n_reward_mean"] == pytest.approx(0.575)
    assert metrics["best_of_n_reward_se"] == pytest.approx(0.175)
    assert metrics["best_of_n_kl"] == pytest.approx(math.log(2) - 0.5)


def test_best_of_must_divide_n(tmp_path):
    with pytest.raises(ConfigError, match="best_of"):
        RewardKLEvaluator(prompts=str(tmp_path / "p.jsonl"), n=4, best_of=3)
