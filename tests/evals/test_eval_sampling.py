"""The evaluators' generation options, declared once: checked when built, turned into the SampleConfig they sample with."""

from __future__ import annotations

import hashlib
import json

import pytest
from prefkit_evals.alpaca_eval import AlpacaEvalEvaluator
from prefkit_evals.reward_kl import RewardKLEvaluator
from prefkit_evals.sampling import EVAL_SHARD_SIZE, EvalGeneration
from prefkit_evals.winrate import WinRateEvaluator

from prefkit.artifacts import content_hash
from prefkit.errors import ConfigError
from prefkit.iteration.winrates import answers_path


def test_a_bad_value_fails_when_built_and_names_the_option():
    with pytest.raises(ConfigError, match="temperature"):
        EvalGeneration(max_new_tokens=8, temperature=-1.0)
    with pytest.raises(ConfigError, match="max_new_tokens"):
        EvalGeneration(max_new_tokens=0, temperature=0.0)


def test_sample_config_carries_every_field_engine_settings_and_overrides():
    generation = EvalGeneration(
        max_new_tokens=8, temperature=0.7, top_p=0.9, n=3, seed=5, engine={"max_model_len": 64}
    )
    config = generation.sample_config("some/model", logprobs=True)
    assert (config.model, config.max_new_tokens, config.temperature, config.top_p) == (
        "some/model",
        8,
        0.7,
        0.9,
    )
    assert (config.n, config.seed, config.logprobs, config.max_model_len) == (3, 5, True, 64)
    assert config.shard_size == EVAL_SHARD_SIZE


@pytest.mark.parametrize(
    ("evaluator", "expected"),
    [
        (
            lambda: AlpacaEvalEvaluator(max_new_tokens=9, seed=2),
            dict(n=1, max_new_tokens=9, temperature=0.0, seed=2),
        ),
        (
            lambda: RewardKLEvaluator(prompts="p.jsonl", n=2, max_new_tokens=7, top_p=0.8),
            dict(n=2, max_new_tokens=7, temperature=1.0, top_p=0.8),
        ),
        (
            lambda: WinRateEvaluator(references="r.jsonl", max_new_tokens=5, seed=4, dtype="bfloat16"),
            dict(n=1, max_new_tokens=5, temperature=0.0, top_p=1.0, seed=4, dtype="bfloat16"),
        ),
    ],
    ids=["alpaca-eval", "reward-kl", "winrate"],
)
def test_each_evaluator_samples_with_its_options(evaluator, expected):
    config = evaluator().generation.sample_config("m")
    assert {name: getattr(config, name) for name in expected} == expected


def test_round_answers_keep_the_names_they_were_stored_under(tmp_path):
    """Iterate's stored round answers are named by the winrate generation settings in their old layout."""
    model = tmp_path / "model.safetensors"  # any file: answers are named by its content hash
    model.write_bytes(b"weights")
    judge = WinRateEvaluator(references="r.jsonl", max_new_tokens=5, temperature=0.3, seed=4)
    layout = {
        "generation": {
            "max_new_tokens": 5,
            "temperature": 0.3,
            "batch_size": 8,
            "backend": "auto",
            "engine": None,
        },
        "dtype": "float32",
        "seed": 4,
    }
    key = hashlib.sha256(f"{content_hash(str(model))}|{json.dumps(layout, sort_keys=True)}".encode())
    expected = tmp_path / "winrate" / "answers" / f"round-01-{key.hexdigest()[:16]}.jsonl"
    assert answers_path(tmp_path, 1, str(model), judge) == expected
