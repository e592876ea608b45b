"""Labeling multi-turn candidates: conversational preferences out, each labeler sees the right text."""

from __future__ import annotations

import shutil

import pytest

from prefkit.conversation import CONVERSATION_DTYPE
from prefkit.judge.templates import HISTORY_HEADER, load_template, render_history
from prefkit.labeling.length_penalty_sweep import length_penalty_sweep
from prefkit.labeling.reward_model_labeler import RewardModelLabeler
from prefkit.labeling.stage import LabelConfig, label
from prefkit.labeling.vader_labeler import VaderLabeler
from prefkit.testing.judge_server import FakeJudgeServer
from tests.judge.fakes import fast_judge_options, helpfulness_judge
from tests.labeling.conftest import write_candidates

# the history is gloomy on purpose: a scorer that read it instead of the completion would be fooled
HISTORY = [
    {"role": "system", "content": "You are a terse assistant."},
    {"role": "user", "content": "My trip was terrible and awful."},
    {"role": "assistant", "content": "That sounds bad and sad."},
    {"role": "user", "content": "Tell me about the meal."},
]
COMPLETIONS = ["The meal was wonderful and I love it.", "The meal was horrible.", "The meal was there."]
# the first row has no system turn, the others do
ROWS = [
    {"prompt_id": f"c{index}", "prompt": HISTORY if index else HISTORY[1:], "completions": COMPLETIONS}
    for index in range(4)
]
LLAMA3_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}<|start_header_id|>{{ message['role'] }}<|end_header_id|>"
    "\n\n{{ message['content'] }}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)


@pytest.fixture()
def conversation_candidates(tmp_path):
    return write_candidates(tmp_path / "candidates", ROWS)


def test_label_writes_trl_conversational_preferences(conversation_candidates, tmp_path):
    artifact = label(
        conversation_candidates, tmp_path / "prefs", LabelConfig(labeler="vader"), progress=False
    )
    table = artifact.table()
    assert all(table.schema[name] == CONVERSATION_DTYPE for name in ("prompt", "chosen", "rejected"))
    first = table.row(0, named=True)
    assert first["prompt"] == ROWS[0]["prompt"]
    assert first["chosen"] == [{"role": "assistant", "content": COMPLETIONS[0]}]
    assert first["rejected"] == [{"role": "assistant", "content": COMPLETIONS[1]}]
    assert artifact.manifest.extra["conversational"] is True
    # TRL's conversational preference format, as `datasets` loads it
    import datasets

    loaded = datasets.load_dataset("parquet", data_files=str(artifact.data_path), split="train")
    assert loaded[0]["prompt"] == ROWS[0]["prompt"] and loaded[0]["chosen"][0]["role"] == "assistant"
    card = (artifact.path / "README.md").read_text()
    assert '"role": "assistant"' in card and "TRL's conversational preference format" in card


def test_vader_scores_the_last_assistant_turn_only():
    scores = VaderLabeler().score([HISTORY], [COMPLETIONS])
    alone = VaderLabeler().score(["unrelated"], [COMPLETIONS])
    assert scores == alone and scores[0][0] > 0 > scores[0][1]
    with_history = VaderLabeler(include_prompt=True).score([HISTORY], [COMPLETIONS])
    assert with_history[0][0] < scores[0][0]  # the gloomy history now counts


@pytest.mark.slow
def test_reward_model_renders_the_whole_conversation_with_its_own_template(reward_model_dir, tmp_path):
    from transformers import AutoTokenizer

    labeler = RewardModelLabeler(model=str(reward_model_dir))
    full = HISTORY + [{"role": "assistant", "content": COMPLETIONS[0]}]
    expected = AutoTokenizer.from_pretrained(reward_model_dir).apply_chat_template(full, tokenize=False)
    assert labeler.render(HISTORY, COMPLETIONS[0]) == expected
    assert expected.count("<|im_start|>") == 5
    # a reward model with another template (Llama-3 headers) renders with its own, not the policy's
    other = tmp_path / "llama3-reward"
    shutil.copytree(reward_model_dir, other)
    (other / "chat_template.jinja").write_text(LLAMA3_TEMPLATE)
    other_labeler = RewardModelLabeler(model=str(other))
    rendered = other_labeler.render(HISTORY, COMPLETIONS[0])
    assert rendered == AutoTokenizer.from_pretrained(other).apply_chat_template(full, tokenize=False)
    assert "<|start_header_id|>system<|end_header_id|>" in rendered and "<|im_start|>user" not in rendered
    scores = labeler.score([HISTORY], [COMPLETIONS])
    assert len(scores[0]) == 3 and scores[0][0] > scores[0][1]


def test_judge_sees_the_history_and_picks_the_better_next_turn(
    conversation_candidates, tmp_path, monkeypatch
):
    text = render_history(HISTORY)
    assert text.startswith(HISTORY_HEADER)
    assert "System: You are a terse assistant.\n\nUser: My trip" in text and text.endswith(
        "User: Tell me about the meal."
    )
    assert render_history(HISTORY[1:2]) == HISTORY[1]["content"]  # a lone user turn reads as plain text
    messages = load_template(None, "pairwise").messages(HISTORY, "a", "b")
    assert "Assistant: That sounds bad and sad." in messages[-1]["content"]

    seen: list[str] = []

    def recording_judge(messages):
        seen.append(messages[-1]["content"])
        return helpfulness_judge(messages)

    monkeypatch.setenv("PREFKIT_TEST_JUDGE_KEY", "sk-test")
    with FakeJudgeServer(recording_judge) as server:
        options = {
            **fast_judge_options(tmp_path),
            "base_url": server.base_url,
            "api_key_env": "PREFKIT_TEST_JUDGE_KEY",
        }
        artifact = label(
            conversation_candidates,
            tmp_path / "prefs",
            LabelConfig(labeler="judge", labeler_options=options),
            progress=False,
        )
    assert seen and all("User: Tell me about the meal." in question for question in seen)
    assert all(
        row == [{"role": "assistant", "content": COMPLETIONS[0]}]
        for row in artifact.table()["chosen"].to_list()
    )


def test_length_penalty_sweep_accepts_conversational_candidates(conversation_candidates):
    points = length_penalty_sweep(
        conversation_candidates, LabelConfig(labeler="vader", length_unit="chars"), [0.0, 1.0]
    )
    assert [point.pairs for point in points] == [4, 4]
    assert points[0].length_gap == len(COMPLETIONS[0]) - len(COMPLETIONS[1])
    # lambda = 1/char: length now outweighs sentiment, so the pairs' chosen side is shorter than before
    assert points[1].length_gap < points[0].length_gap
