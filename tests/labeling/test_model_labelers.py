"""The sentiment and reward-model labelers on tiny trained models."""

from __future__ import annotations

import math

import pytest
import torch

from prefkit.errors import ConfigError
from prefkit.labeling.registry import load_labeler
from prefkit.labeling.reward_model_labeler import RewardModelLabeler
from prefkit.labeling.sentiment_labeler import SentimentLabeler, positive_class_index, positive_scores
from prefkit.labeling.stage import LabelConfig, label

PROMPTS = ["Tell me about the movie.", "Tell me about the meal."]
COMPLETIONS = [
    ["The movie was wonderful and I love it.", "The movie was terrible and I hate it."],
    ["The meal was awful and I hate it.", "The meal was great and I love it.", "The meal was good."],
]


def test_positive_scores_by_hand():
    logits = torch.tensor([[0.0, math.log(3.0)], [2.0, 2.0]])
    # softmax([0, ln 3]) = [1/4, 3/4]; log-odds of 3/4 = ln 3
    assert positive_scores(logits, 1, "probability") == pytest.approx([0.75, 0.5])
    assert positive_scores(logits, 1, "logit") == pytest.approx([math.log(3.0), 0.0])
    three = torch.tensor([[1.0, 2.0, 3.0]])
    p = torch.softmax(three, -1)[0, 2].item()
    assert positive_scores(three, 2, "logit") == pytest.approx([math.log(p / (1 - p))], rel=1e-5)


def test_positive_class_lookup():
    assert positive_class_index({0: "NEGATIVE", 1: "POSITIVE"}, None) == 1
    assert positive_class_index({0: "LABEL_0", 1: "LABEL_1"}, "label_1") == 1
    assert positive_class_index({0: "LABEL_0", 1: "LABEL_1"}, 0) == 0
    with pytest.raises(ConfigError, match="cannot tell the positive class"):
        positive_class_index({0: "LABEL_0", 1: "LABEL_1"}, None)
    with pytest.raises(ConfigError, match="no class 'joy'"):
        positive_class_index({0: "NEGATIVE", 1: "POSITIVE"}, "joy")


@pytest.mark.slow
def test_sentiment_labeler_prefers_positive(sentiment_model_dir):
    labeler = SentimentLabeler(model=str(sentiment_model_dir), batch_size=2)
    scores = labeler.score(PROMPTS, COMPLETIONS)
    assert [len(row) for row in scores] == [2, 3]
    assert all(0.0 <= value <= 1.0 for row in scores for value in row)
    assert scores[0][0] > scores[0][1] and scores[1][1] > scores[1][0]
    logits = SentimentLabeler(model=str(sentiment_model_dir), output="logit").score(PROMPTS, COMPLETIONS)
    expected = [[math.log(p / (1 - p)) for p in row] for row in scores]
    assert logits == [pytest.approx(row, rel=1e-3, abs=1e-3) for row in expected]
    assert labeler.usage()["samples"] == 5
    with pytest.raises(ConfigError, match="probability"):
        SentimentLabeler(model=str(sentiment_model_dir), output="softmax")


@pytest.mark.slow
def test_reward_model_uses_chat_template_and_batches_do_not_matter(reward_model_dir):
    labeler = RewardModelLabeler(model=str(reward_model_dir), batch_size=2)
    assert (
        labeler.render("hi", "yo") == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nyo<|im_end|>\n"
    )
    batched = labeler.score(PROMPTS, COMPLETIONS)
    one_by_one = [
        [labeler.score([p], [[c]])[0][0] for c in row] for p, row in zip(PROMPTS, COMPLETIONS, strict=True)
    ]
    assert batched == [
        pytest.approx(row, abs=1e-4) for row in one_by_one
    ]  # padding and sorting are invisible
    assert batched[0][0] > batched[0][1] and batched[1][1] > batched[1][0]
    plain = RewardModelLabeler(model=str(reward_model_dir), use_chat_template=False)
    assert plain.render("hi", "yo") == "hi\n\nyo"
    assert load_labeler("reward-model", {"model": str(reward_model_dir)}).name == "reward-model"


@pytest.mark.slow
def test_reward_model_rejects_classifiers(sentiment_model_dir):
    with pytest.raises(ConfigError, match="one output"):
        RewardModelLabeler(model=str(sentiment_model_dir))


@pytest.mark.slow
def test_unknown_option_is_a_config_error(reward_model_dir):
    with pytest.raises(ConfigError, match="cannot honour option 'temprature'") as error:
        load_labeler("reward-model", {"model": str(reward_model_dir), "temprature": 1})
    assert error.value.field == "labeler_options.temprature"


@pytest.mark.slow
def test_reward_model_stage_reports_samples_per_second(sentiment_candidates, reward_model_dir, tmp_path):
    config = LabelConfig(labeler="reward-model", labeler_options={"model": str(reward_model_dir)})
    artifact = label(sentiment_candidates, tmp_path / "prefs", config, progress=False)
    table = artifact.table()
    assert table.height == 8 and all("wonderful" in text for text in table["chosen"])
    usage = artifact.manifest.counts["labeler_usage"]
    assert usage["samples"] == 24 and usage["samples_per_s"] > 0
