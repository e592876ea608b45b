"""End to end on conversations: the shipped multi-turn prompts through sample -> label -> train -> reward-kl
on the tiny model (what examples/multiturn.sh runs with SmolLM2)."""

from __future__ import annotations

import pytest

from prefkit.conversation import CONVERSATION_DTYPE, assistant_turn
from prefkit.evaluation.stage import EvalConfig, evaluate
from prefkit.ingest import read_prompts
from prefkit.labeling.stage import LabelConfig, label
from prefkit.sampling.stage import SampleConfig, sample
from prefkit.training.stage import TrainConfig, train

SYSTEM = "<|im_start|>system\nYou are a friendly chatbot. Answer in one or two sentences.<|im_end|>\n"


@pytest.mark.slow
def test_multiturn_example_runs_every_stage_on_conversations(tiny_model_dir, tmp_path):
    model = str(tiny_model_dir)
    candidates = sample(
        "builtin:chatterbot_multiturn",
        tmp_path / "candidates",
        SampleConfig(model=model, backend="transformers", n=4, max_new_tokens=12, dtype="float32"),
        progress=False,
    )
    table = candidates.table()
    assert table.schema["prompt"] == CONVERSATION_DTYPE
    assert table["prompt"].to_list() == [r.prompt for r in read_prompts("builtin:chatterbot_multiturn")]

    preferences = label(
        candidates.path, tmp_path / "preferences", LabelConfig(labeler="vader"), progress=False
    )
    pairs = preferences.table()
    assert pairs.height > 0 and pairs.schema["chosen"] == CONVERSATION_DTYPE
    first = pairs.row(0, named=True)
    assert first["prompt"][0]["role"] == "system" and first["prompt"][-1]["role"] == "user"
    assert first["chosen"] == assistant_turn(first["chosen"][0]["content"])
    assert (first["score_chosen"], first["chosen"]) != (first["score_rejected"], first["rejected"])
    # the card shows the example's whole history as the policy saw it
    card = (preferences.path / "README.md").read_text()
    assert SYSTEM in card and card.count("<|im_start|>user") >= 2

    checkpoint = train(
        preferences.path,
        tmp_path / "checkpoint",
        TrainConfig(policy=model, learning_rate=1e-3, epochs=1, batch_size=8, warmup_ratio=0.0),
        progress=False,
    )
    assert (checkpoint.path / "model.safetensors").exists()

    options = {
        "prompts": "builtin:chatterbot_multiturn_heldout",
        "reference": model,
        "labeler": "vader",
        "n": 2,
        "max_new_tokens": 12,
        "max_prompts": 8,
        "seed": 1,
    }
    report = evaluate(
        [f"before={model}", f"after={checkpoint.path}"],
        tmp_path / "eval",
        EvalConfig(evaluators=["reward-kl"], options={"reward-kl": options}),
        progress=False,
    )
    rows = {row["subject"]: row for row in report.rows("reward-kl")}
    assert rows["before"]["n_prompts"] == rows["after"]["n_prompts"] == 8
    assert rows["before"]["kl_mean"] == 0.0 and rows["after"]["kl_mean"] != 0.0  # training moved the policy
