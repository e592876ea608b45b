"""End to end: the demo pipeline on the tiny model moves the held-out reward in the trained direction."""

from __future__ import annotations

import json

import pytest

from prefkit.demo import DemoConfig, reward_gain, run_demo


@pytest.mark.slow
def test_demo_pipeline_raises_reward_on_tiny_model(tiny_model_dir, tmp_path):
    # prompts from the tiny tokenizer's corpus, so samples contain sentiment words VADER can see
    prompts = tmp_path / "prompts.jsonl"
    topics = [
        "movie",
        "book",
        "city",
        "song",
        "meal",
        "garden",
        "friend",
        "weather",
        "phone",
        "game",
        "trip",
        "teacher",
    ]
    prompts.write_text(
        "".join(json.dumps({"prompt": f"Write one sentence about a {t}."}) + "\n" for t in topics)
    )
    config = DemoConfig(
        model=str(tiny_model_dir),
        train_prompts=str(prompts),
        heldout_prompts=str(prompts),
        backend="transformers",
        samples_per_prompt=16,
        max_new_tokens=16,
        learning_rate=1e-2,
        epochs=8,
        batch_size=4,
        eval_samples=8,
        beta=0.1,
    )
    rows = run_demo(config, tmp_path / "run", progress=False)
    before, after = rows
    assert (before["subject"], after["subject"]) == ("before", "after")
    gain, z_score = reward_gain(rows)
    assert gain > 0 and z_score > 2, rows  # measured: 0.019 -> 0.135, z = 2.6
    assert after["kl_mean"] > before["kl_mean"] == 0.0
    # rerunning the finished demo is a no-op that reports the same numbers
    again = run_demo(config, tmp_path / "run", progress=False)
    assert again[1]["reward_mean"] == after["reward_mean"]
