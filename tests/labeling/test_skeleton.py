"""Walking skeleton: sample candidates from the tiny model, then label them (the two stages agree)."""

from __future__ import annotations

from math import comb

import pytest

from prefkit.labeling.stage import LabelConfig, label


@pytest.mark.slow
def test_sample_then_label(tiny_model_dir, prompts_file, tmp_path):
    stage = pytest.importorskip("prefkit.sampling.stage")
    config = stage.SampleConfig(
        model=str(tiny_model_dir), backend="transformers", n=3, max_new_tokens=8, seed=1
    )
    candidates = stage.sample(prompts_file, tmp_path / "candidates", config, progress=False)
    # the tiny model's text has no sentiment, so the length penalty decides: shorter wins
    label_config = LabelConfig(pairing="all-pairs", length_penalty=0.01, length_unit="chars")
    preferences = label(candidates.path, tmp_path / "preferences", label_config, progress=False)
    counts = preferences.manifest.counts
    dropped = counts["dropped"]
    usable = [sum(1 for text in row if text.strip()) for row in candidates.table()["completions"]]
    # every candidate pair is kept or dropped with a reason: nothing is silently lost
    assert counts["pairs"] + dropped.get("tie", 0) + dropped.get("below_margin", 0) == sum(
        comb(n, 2) for n in usable
    )
    assert counts["pairs"] > 0
    table = preferences.table()
    same_score = table.filter(table["score_chosen"] == table["score_rejected"])
    assert (same_score["len_chosen"] < same_score["len_rejected"]).all()
    assert (
        preferences.manifest.extra["use_chat_template"]
        == candidates.manifest.extra["use_chat_template"]
        is True
    )
    assert "<|im_start|>assistant" in (preferences.path / "README.md").read_text()  # rendered example prompt
