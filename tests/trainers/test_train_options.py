"""The options contract: shared TrainConfig fields, each plugin's own options model, refusals naming the option."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from prefkit.cli import app
from prefkit.errors import ConfigError
from prefkit.training.stage import TrainConfig, loss_terms, train


def test_former_fields_become_plugin_options():
    config = TrainConfig(label_smoothing=0.1, lora=True, shared_prefix=False, options={"wpo": True})
    assert config.options == {"label_smoothing": 0.1, "lora": True, "shared_prefix": False, "wpo": True}
    assert not hasattr(config, "label_smoothing")
    with pytest.raises(ValueError, match="given twice"):
        TrainConfig(alpha=0.1, options={"alpha": 0.2})


def test_loss_terms_parse_weighted_mixes():
    assert loss_terms("sigmoid:1, sft:0.2") == [("sigmoid", 1.0), ("sft", 0.2)]
    assert loss_terms("ipo") == [("ipo", 1.0)]


@pytest.mark.parametrize(
    ("trainer", "loss", "options", "field", "message"),
    [
        ("dpo", "sigmoid", {"colour": "red"}, "options.colour", "cannot honour option 'colour'"),
        ("dpo", "sigmoid", {"ld_alpha": 2}, "options.ld_alpha", "ld_alpha must be in [0, 1]"),
        ("dpo", "sigmoid", {"layout": "diagonal"}, "options.layout", "layout must be one of"),
        ("dpo", "sigmoid", {"wpo": "maybe"}, "options.wpo", "valid boolean"),
        ("dpo", "kto", {}, "loss", "unknown loss 'kto'"),
        ("dpo", "aot", {"wpo": True}, "loss", "wpo weighting is not defined for aot"),
        ("dpo", "bco_pair", {"f_divergence": "js_divergence"}, "loss", "not defined for loss bco_pair"),
        (
            "trl",
            "sigmoid",
            {"shared_prefix": False},
            "options.shared_prefix",
            "cannot honour option 'shared_prefix'",
        ),
        ("trl", "sigmoid", {"layout": "padding_free"}, "options.layout", "cannot honour option 'layout'"),
        ("trl", "rdpo", {"alpha": 0.1}, "options.alpha", "cannot honour option 'alpha'"),
        ("trl", "sigmoid", {"label_smoothing": 0.1}, "options.label_smoothing", "cannot honour option"),
        ("trl", "simpo", {}, "loss", "has no loss 'simpo'"),
    ],
)
def test_bad_options_fail_before_any_output(
    tiny_model_dir, easy_preferences, tmp_path, trainer, loss, options, field, message
):
    config = TrainConfig(trainer=trainer, policy=str(tiny_model_dir), loss=loss, options=options)
    with pytest.raises(ConfigError) as info:
        train(easy_preferences, tmp_path / "out", config, progress=False)
    assert info.value.field == field and message in str(info.value)
    assert not (tmp_path / "out").exists()


def test_trl_accepts_what_it_maps(tiny_model_dir):
    from prefkit_trainers.trl.plugin import TRLTrainerPlugin

    from prefkit.training.stage import trainer_options

    config = TrainConfig(
        trainer="trl",
        loss="robust:1,sft:0.5",
        options={"label_smoothing": 0.1, "wpo": True, "ld_alpha": 0.5, "lora_dropout": 0.05},
    )
    options = trainer_options(TRLTrainerPlugin(), config)
    assert options.wpo and options.ld_alpha == 0.5 and options.lora_dropout == 0.05


def test_cli_trainer_option_for_trl_exits_2_naming_it(tiny_model_dir, easy_preferences, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "x"
    command = [sys.executable, "-m", "prefkit", "train", str(easy_preferences), "--out", str(out)]
    command += [
        "--policy",
        str(tiny_model_dir),
        "--trainer",
        "trl",
        "--trainer-option",
        "layout=padding_free",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "option 'layout'" in lines[0] and "Traceback" not in result.stderr
    assert not out.exists()


def test_cli_trainer_option_reaches_the_dpo_plugin(tiny_model_dir, easy_preferences, tmp_path):
    args = ["train", str(easy_preferences), "--out", str(tmp_path / "x"), "--policy", str(tiny_model_dir)]
    result = CliRunner().invoke(app, [*args, "--trainer-option", "ld_alpha=7"])
    assert isinstance(result.exception, ConfigError) and result.exception.field == "options.ld_alpha"
    result = CliRunner().invoke(app, [*args, "--trainer-option", "ld_alpha"])
    assert isinstance(result.exception, ConfigError) and "KEY=VALUE" in str(result.exception)


def test_cli_activation_checkpointing_reaches_the_dpo_options(tiny_model_dir, easy_preferences, tmp_path):
    args = ["train", str(easy_preferences), "--out", str(tmp_path / "x"), "--policy", str(tiny_model_dir)]
    result = CliRunner().invoke(app, [*args, "--activation-checkpointing", "sometimes"])
    assert isinstance(result.exception, ConfigError)
    assert result.exception.field == "options.activation_checkpointing"
    assert "off, full, every_K" in str(result.exception)
    # the former switch still works, and saying both differently is refused
    result = CliRunner().invoke(app, [*args, "--gradient-checkpointing", "--activation-checkpointing", "off"])
    assert isinstance(result.exception, ConfigError) and "give one of them" in str(result.exception)
    assert not (tmp_path / "x").exists()


def test_trainer_options_for_memory_and_speed_are_checked(tiny_model_dir):
    from prefkit_trainers.dpo.plugin import DPOTrainerPlugin

    from prefkit.training.stage import trainer_options

    config = TrainConfig(gradient_checkpointing=True, options={"max_tokens_per_batch": 4096, "compile": True})
    options = trainer_options(DPOTrainerPlugin(), config)
    assert options.activation_checkpointing == "full" and options.checkpoint_interval() == 1
    assert options.max_tokens_per_batch == 4096 and options.compile
    with pytest.raises(ConfigError, match="max_tokens_per_batch must be >= 1"):
        trainer_options(DPOTrainerPlugin(), TrainConfig(options={"max_tokens_per_batch": 0}))
