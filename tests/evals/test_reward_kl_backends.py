"""reward-kl through the sampler plugins: the numbers of the old evaluator loop, `prefkit sample`'s samples, vLLM.

The `BEFORE_*` figures were recorded from the evaluator's own transformers loop (evals/generation.py,
removed) on the session's tiny model and prompts, before reward-kl moved onto the sampler plugins.
"""

from __future__ import annotations

import json

import pytest
from prefkit_evals.reward_kl import SAMPLES_FILE, RewardKLEvaluator

from prefkit.evaluation.stage import EvalSubject

# greedy, 8 prompts, 8 new tokens, KL to build_tiny_llama(seed=7), batch_size 3
BEFORE_GREEDY = {
    "reward_mean": 0.0,
    "length_tokens": 8.0,
    "kl_mean": -4.518998146057129,
    "kl_se": 0.04951905068809476,
}
# sampled, seed 3, n 2, 6 new tokens, 4 prompts, KL to build_tiny_llama(seed=7)
BEFORE_SAMPLED = {
    "reward_mean": 0.03125,
    "length_chars": 14.25,
    "length_tokens": 6.0,
    "kl_mean": 0.1635890007019043,
    "kl_se": 0.117713080780857,
}


@pytest.fixture(scope="module")
def other_model(tmp_path_factory):
    from prefkit.testing import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("other") / "other", seed=7)


def test_greedy_reward_kl_matches_the_old_loop(tiny_model_dir, other_model, prompts_file, tmp_path):
    options = {
        "prompts": str(prompts_file),
        "n": 1,
        "temperature": 0.0,
        "max_new_tokens": 8,
        "reference": str(other_model),
        "batch_size": 3,
        "backend": "transformers",
    }
    metrics = RewardKLEvaluator(**options).evaluate(EvalSubject("tiny", str(tiny_model_dir)), tmp_path)
    for name, value in BEFORE_GREEDY.items():
        # log pi now comes from generate's logits, before from a second forward pass: float32 rounding only
        assert metrics[name] == pytest.approx(value, abs=1e-5), name
    assert metrics["backend"] == "transformers"


def test_sampled_reward_kl_matches_the_old_loop_under_its_seeding(
    tiny_model_dir, other_model, prompts_file, tmp_path, monkeypatch
):
    """The old loop seeded torch once with `seed`; the samplers derive a seed per shard and batch. With
    the derivation undone, the same seed gives the old samples and the old numbers."""
    import prefkit.sampling.prompt_tokens as prompt_tokens
    import prefkit.sampling.transformers_backend as transformers_backend

    monkeypatch.setattr(prompt_tokens, "derive_seed", lambda base, *keys: base)  # SampleConfig's per shard
    monkeypatch.setattr(transformers_backend, "derive_seed", lambda base, *keys: base)
    options = {
        "prompts": str(prompts_file),
        "n": 2,
        "max_new_tokens": 6,
        "max_prompts": 4,
        "seed": 3,
        "reference": str(other_model),
        "backend": "transformers",
    }
    metrics = RewardKLEvaluator(**options).evaluate(EvalSubject("tiny", str(tiny_model_dir)), tmp_path)
    for name, value in BEFORE_SAMPLED.items():
        assert metrics[name] == pytest.approx(value, abs=1e-5), name


def test_reward_kl_samples_are_prefkit_samples(tiny_model_dir, prompts_file, tmp_path):
    from prefkit.artifacts import open_artifact
    from prefkit.sampling.stage import SampleConfig, sample

    common = {"n": 2, "max_new_tokens": 6, "seed": 5, "backend": "transformers", "dtype": "float32"}
    RewardKLEvaluator(prompts=str(prompts_file), **common).evaluate(
        EvalSubject("tiny", str(tiny_model_dir)), tmp_path / "eval"
    )
    evaluated = [json.loads(line)["completion"] for line in (tmp_path / "eval" / SAMPLES_FILE).open()]
    config = SampleConfig(model=str(tiny_model_dir), shard_size=16, **common)
    table = open_artifact(
        sample(prompts_file, tmp_path / "sampled", config, progress=False).path, "candidates"
    )
    sampled = [text for row in table.table()["completions"].to_list() for text in row]
    assert evaluated == sampled


@pytest.mark.slow
def test_reward_kl_with_vllm_on_cpu(tiny_model_dir, prompts_file, tmp_path):
    import shutil

    pytest.importorskip("vllm")
    # the same weights under another path: scored as a separate reference (the same path gives KL 0 outright)
    copy = shutil.copytree(tiny_model_dir, tmp_path / "copy")
    options = {
        "prompts": str(prompts_file),
        "n": 2,
        "max_new_tokens": 6,
        "max_prompts": 3,
        "reference": str(copy),
        "backend": "vllm",
        "engine": {"max_model_len": 256},
    }
    metrics = RewardKLEvaluator(**options).evaluate(
        EvalSubject("tiny", str(tiny_model_dir)), tmp_path / "out"
    )
    assert metrics["backend"] == "vllm" and (metrics["n_prompts"], metrics["n_samples"]) == (3, 6)
    rows = [json.loads(line) for line in (tmp_path / "out" / SAMPLES_FILE).open()]
    # vLLM's sampled-token log-probs (float32 on this CPU) against the reference scored by transformers:
    # the same model, so each ratio is rounding only and the KL is ~0
    assert all(abs(row["logprob"] - row["reference_logprob"]) < 1e-2 for row in rows)
    assert metrics["kl_mean"] == pytest.approx(0.0, abs=1e-2)
