"""reward-kl: hand-computed summaries, the labeler code paths, and real sampling on the tiny model."""

from __future__ import annotations

import json
import math
import shutil
import sys

import pytest
from prefkit_evals.reward_kl import SAMPLES_FILE, RewardKLEvaluator, mean_and_standard_error, summarize
from prefkit_evals.rewards import load_scorer

from prefkit.errors import ConfigError, DependencyError
from prefkit.evaluation.stage import EvalSubject
from prefkit.sampling.base import Completion


def sample(text: str, tokens: int, logprob: float | None = None) -> Completion:
    return Completion(text, tokens, logprob, "length", tuple(range(tokens)))


def test_summary_averages_per_prompt_first():
    samples = [
        [sample("ab", 2, -1.0), sample("abcd", 4, -3.0)],
        [sample("abcdef", 6, -2.0), sample("", 0, -1.0)],
    ]
    rewards = [[1.0, 0.0], [0.25, 0.25]]  # per-prompt means 0.5 and 0.25
    reference = [[-1.5, -2.0], [-2.0, -2.0]]  # ratios 0.5, -1.0, 0.0, 1.0
    metrics = summarize(samples, rewards, reference)
    assert metrics["reward_mean"] == pytest.approx(0.375)
    assert metrics["reward_se"] == pytest.approx(
        math.sqrt(2 * 0.125**2) / math.sqrt(2)
    )  # stdev of (0.5, 0.25) / sqrt 2
    assert metrics["length_chars"] == pytest.approx(3.0) and metrics["length_tokens"] == pytest.approx(3.0)
    assert metrics["kl_mean"] == pytest.approx(0.125)
    assert (metrics["n_prompts"], metrics["n_samples"]) == (2, 4)
    no_reference = summarize(samples, rewards, None)
    assert (no_reference["kl_mean"], no_reference["kl_se"]) == (0.0, 0.0)
    # length s.e. across prompts: per-prompt means 3 and 3 -> 0; 3 and 8 -> stdev 3.5355 / sqrt 2 = 2.5
    assert metrics["length_chars_se"] == 0.0
    longer = [samples[0], [sample("a" * 8, 8, -1.0), sample("b" * 8, 8, -1.0)]]
    assert summarize(longer, rewards, None)["length_chars_se"] == pytest.approx(2.5)


def test_summary_rejects_misaligned_scores():
    with pytest.raises(ConfigError, match="do not line up"):
        summarize([[sample("a", 1)]], [[1.0, 2.0]], None)
    assert mean_and_standard_error([2.0]) == (2.0, 0.0)


def test_vader_fallback_is_explicit_when_the_labeling_stage_is_absent(monkeypatch):
    monkeypatch.setitem(sys.modules, "prefkit.labeling.stage", None)  # import now raises ImportError
    loaded = load_scorer("vader")
    assert loaded.source == "prefkit_evals.rewards:VaderCompoundScorer"
    good, bad = loaded.scorer.score(["p"], [["What a wonderful, happy day!", "This is awful and sad."]])[0]
    assert good > 0.5 and bad < -0.5
    with pytest.raises(DependencyError, match="labeler 'sentiment' needs the labeling stage"):
        load_scorer("sentiment")
    with pytest.raises(ConfigError, match="takes no options"):
        load_scorer("vader", {"threshold": 1})


def test_prompts_option_is_required():
    with pytest.raises(ConfigError, match="held-out prompts"):
        RewardKLEvaluator()


def test_reward_kl_on_the_tiny_model(tiny_model_dir, prompts_file, tmp_path):
    options = {
        "prompts": str(prompts_file),
        "n": 2,
        "max_new_tokens": 6,
        "max_prompts": 4,
        "seed": 3,
        "backend": "transformers",
    }
    subject = EvalSubject("tiny", str(tiny_model_dir))
    first = RewardKLEvaluator(**options).evaluate(subject, tmp_path / "a")
    again = RewardKLEvaluator(**options).evaluate(subject, tmp_path / "b")
    assert first == again  # seeded
    assert (first["n_prompts"], first["n_samples"], first["kl_mean"]) == (4, 8, 0.0)
    assert -1.0 <= first["reward_mean"] <= 1.0 and first["labeler"] == "vader"
    assert 0 < first["length_tokens"] <= 6
    lines = [json.loads(line) for line in (tmp_path / "a" / SAMPLES_FILE).read_text().splitlines()]
    assert len(lines) == 8 and {line["prompt_id"] for line in lines} == {"t0", "t1", "t2", "t3"}
    assert first["length_chars"] == pytest.approx(sum(len(line["completion"]) for line in lines) / 8)


def test_kl_to_itself_is_zero_and_to_another_model_is_not(tiny_model_dir, prompts_file, tmp_path):
    from prefkit.testing import build_tiny_llama

    other = build_tiny_llama(tmp_path / "other", seed=7)
    base = {
        "prompts": str(prompts_file),
        "n": 2,
        "max_new_tokens": 6,
        "max_prompts": 3,
        "backend": "transformers",
    }
    subject = EvalSubject("tiny", str(tiny_model_dir))
    itself = RewardKLEvaluator(**base, reference=str(tiny_model_dir)).evaluate(subject, tmp_path / "self")
    assert itself["kl_mean"] == 0.0  # the same model: KL 0 by construction, no second pass
    copy = shutil.copytree(tiny_model_dir, tmp_path / "copy")  # same weights, scored as a reference
    twin = RewardKLEvaluator(**base, reference=str(copy)).evaluate(subject, tmp_path / "twin")
    assert twin["kl_mean"] == pytest.approx(0.0, abs=1e-4)
    versus = RewardKLEvaluator(**base, reference=str(other)).evaluate(subject, tmp_path / "other-ref")
    assert math.isfinite(versus["kl_mean"]) and abs(versus["kl_mean"]) > 1e-3
    rows = [json.loads(line) for line in (tmp_path / "other-ref" / SAMPLES_FILE).read_text().splitlines()]
    ratios = [row["logprob"] - row["reference_logprob"] for row in rows]
    assert versus["kl_mean"] == pytest.approx(sum(ratios) / len(ratios))
