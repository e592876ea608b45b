"""`prefkit train` on the command line, and the `trl` trainer plugin on the same artifact."""

from __future__ import annotations

import pytest
from prefkit_trainers.dpo.telemetry import read_metrics
from typer.testing import CliRunner

from prefkit.cli import app
from prefkit.errors import ConfigError
from prefkit.training.stage import TrainConfig, train


def test_help_explains_every_option():
    result = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in (
        "--beta",
        "--loss",
        "--reference",
        "--trainer",
        "--lora",
        "--eval-fraction",
        "--force",
        "--alpha",
    ):
        assert option in result.output


def test_cli_trains_and_reports_the_artifact(tiny_model_dir, easy_preferences, tmp_path):
    out = tmp_path / "cli"
    args = [
        "train",
        str(easy_preferences),
        "--out",
        str(out),
        "--policy",
        str(tiny_model_dir),
        "--epochs",
        "1",
    ]
    result = CliRunner().invoke(app, [*args, "--lr", "1e-3", "--save-every-steps", "0", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "wrote checkpoint artifact" in result.output
    assert len(read_metrics(out / "metrics.jsonl")) == 3


def test_cli_rejects_a_bad_beta_with_a_project_error(tiny_model_dir, easy_preferences, tmp_path):
    args = ["train", str(easy_preferences), "--out", str(tmp_path / "x"), "--policy", str(tiny_model_dir)]
    result = CliRunner().invoke(app, [*args, "--beta", "0.1,-1"])
    assert isinstance(result.exception, ConfigError) and "beta" in str(result.exception)


def test_trl_plugin_refuses_what_trl_cannot_do(tiny_model_dir, easy_preferences, tmp_path):
    config = TrainConfig(trainer="trl", policy=str(tiny_model_dir), loss="simpo")
    with pytest.raises(ConfigError, match="--trainer dpo"):
        train(easy_preferences, tmp_path / "x", config, progress=False)


@pytest.mark.slow
def test_trl_plugin_trains_the_same_artifact(tiny_model_dir, easy_preferences, tmp_path):
    pytest.importorskip("trl")
    from prefkit.models import load_causal_lm

    config = TrainConfig(
        trainer="trl",
        policy=str(tiny_model_dir),
        epochs=1,
        learning_rate=1e-3,
        save_every_steps=0,
        eval_fraction=0.25,
    )
    artifact = train(easy_preferences, tmp_path / "trl", config, progress=False)
    history = read_metrics(artifact.path / "metrics.jsonl")
    assert [r["step"] for r in history] == [1, 2, 3]  # 9 training pairs, batch 4
    assert "eval/rewards/margins" in history[-1] and "rewards/margins" in history[-1]
    assert load_causal_lm(str(artifact.path), device="cpu") is not None
    assert artifact.manifest.extra["trl_version"]
