"""iterate with length control in the loss: the per-round setting reaches the trainer, lineage and report."""

from __future__ import annotations

import json

import polars as pl
import pytest

from prefkit.errors import ConfigError
from prefkit.iteration.length_control import PairLengths, round_setting
from prefkit.iteration.stage import iterate
from tests.test_iterate_pipeline import tiny_run_config

TOKENS_LABEL = {"labeler": "vader", "length_unit": "tokens"}


def pair_lengths(frame: pl.DataFrame) -> PairLengths:
    return PairLengths(
        frame["len_chosen"].to_list(),
        frame["len_rejected"].to_list(),
        frame["eos_chosen"].to_list(),
        frame["eos_rejected"].to_list(),
    )


@pytest.mark.slow
def test_rdpo_alpha_is_chosen_from_each_rounds_pairs(tiny_model_dir, prompts_file, tmp_path):
    config = tiny_run_config(
        str(tiny_model_dir),
        str(prompts_file),
        rounds=1,
        label=TOKENS_LABEL,
        loss_length_control={"method": "rdpo"},
        length_diagnostics=32,  # the tiny model stops rarely within 12 tokens: enough stopped answers
    )
    run_dir = iterate(config, tmp_path / "run", progress=False)
    lineage = json.loads((run_dir / "round-01" / "lineage.json").read_text())
    setting = lineage["loss_length_control"]
    pairs = pl.read_parquet(run_dir / "round-01" / "preferences" / "data.parquet")
    expected = round_setting(config.loss_length_control, pair_lengths(pairs), 0.1)
    assert setting["alpha"] == pytest.approx(expected.alpha)
    assert setting["mean_length"] == pytest.approx(expected.mean_length)
    # the trainer was given the loss and alpha the rule chose
    manifest = json.loads((run_dir / "round-01" / "checkpoint" / "manifest.json").read_text())
    assert '"rdpo"' in json.dumps(manifest)
    report = pl.read_parquet(run_dir / "report.parquet")
    assert report["loss_alpha"][1] == pytest.approx(setting["alpha"])
    text = (run_dir / "report.md").read_text()
    assert "loss length control rdpo" in text
    # why length moves: the reference's held-out answers (round 0's reward-kl samples) and the pairs were
    # scored under both models, and the report shows the table
    diagnostics = json.loads((run_dir / "length_diagnostics" / "round-01.json").read_text())["values"]
    assert diagnostics["why_samples"] == 32 and diagnostics["why_pairs"] == pairs.height
    for column in ("why_stop_lp_ref", "why_stop_lp_change", "why_token_change", "why_chosen_short"):
        assert report[column][1] == pytest.approx(diagnostics[column])
    assert diagnostics["why_stop_lp_ref"] < 0
    assert "## Why length moves" in text and "stop_lp_change" in text.split("## Why length moves")[1]


@pytest.mark.slow
def test_length_target_alpha_follows_the_sampled_length(tiny_model_dir, prompts_file, tmp_path):
    gain = 0.2
    control = {"method": "rdpo", "rule": "length-target", "value": 0.05, "gain": gain}
    config = tiny_run_config(
        str(tiny_model_dir),
        str(prompts_file),
        label=TOKENS_LABEL,
        loss_length_control=control,
        length_diagnostics=0,
    )
    run_dir = iterate(config, tmp_path / "run", progress=False)
    settings = [
        json.loads((run_dir / f"round-{k:02d}" / "lineage.json").read_text())["loss_length_control"]
        for k in (1, 2)
    ]
    assert settings[0]["alpha"] == 0.05 and "length_drift" not in settings[0]
    # round 2: round 1's alpha moved by gain x (round 2's sampled tokens / round 1's - 1)
    # the sampled tokens per completion, counted from the candidates themselves
    lengths = [
        pl.read_parquet(run_dir / f"round-{k:02d}" / "candidates" / "data.parquet")["completion_tokens"]
        .explode()
        .mean()
        for k in (1, 2)
    ]
    drift = lengths[1] / lengths[0] - 1
    assert settings[1]["length_drift"] == pytest.approx(drift)
    assert settings[1]["alpha"] == pytest.approx(max(0.0, 0.05 + gain * drift))
    report = pl.read_parquet(run_dir / "report.parquet")
    assert report["loss_alpha"].to_list()[1:] == pytest.approx([settings[0]["alpha"], settings[1]["alpha"]])
    assert report["loss_length_drift"][2] == pytest.approx(drift)
    assert "moved by gain 0.2" in (run_dir / "report.md").read_text()


def test_loss_length_control_refuses_a_loss_it_would_override(tiny_model_dir, prompts_file, tmp_path):
    config = tiny_run_config(
        str(tiny_model_dir),
        str(prompts_file),
        label=TOKENS_LABEL,
        train={"loss": "ipo"},
        loss_length_control={"method": "sigmoid_norm"},
    )
    with pytest.raises(ConfigError, match="leave train.loss out"):
        iterate(config, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"label": {"labeler": "vader", "length_unit": "chars"}}, "length_unit = 'tokens'"),
        ({"label": TOKENS_LABEL, "train": {"options": {"alpha": 0.1}}}, "sets alpha itself"),
        ({"label": TOKENS_LABEL, "train": {"beta": "0.1,0.2"}}, "not a sweep"),
    ],
)
def test_loss_length_control_clashes_fail_before_any_work(
    tiny_model_dir, prompts_file, tmp_path, changes, message
):
    config = tiny_run_config(
        str(tiny_model_dir), str(prompts_file), loss_length_control={"method": "rdpo"}, **changes
    )
    with pytest.raises(ConfigError, match=message) as info:
        iterate(config, tmp_path / "run", progress=False)
    assert info.value.field == "loss_length_control"
    assert not (tmp_path / "run").exists()
