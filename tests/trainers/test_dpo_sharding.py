"""Which FSDP settings prefkit honours, and the one-line refusal of the others."""

from __future__ import annotations

import pytest
from prefkit_trainers.dpo.sharding import ShardingOptions, decoder_layer_classes, requested_sharding

from prefkit.errors import ConfigError

LAUNCHED = {"ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "2", "LOCAL_RANK": "0"}


def test_no_fsdp_unless_asked():
    assert requested_sharding({}) is None
    assert requested_sharding({"ACCELERATE_USE_FSDP": "false", "LOCAL_RANK": "0"}) is None


def test_accelerate_fsdp_settings_pass_through():
    assert requested_sharding(LAUNCHED) == ShardingOptions()
    options = requested_sharding(
        {**LAUNCHED, "FSDP_RESHARD_AFTER_FORWARD": "false", "FSDP_ACTIVATION_CHECKPOINTING": "true"}
    )
    assert options == ShardingOptions(reshard_after_forward=False, activation_checkpointing=True)
    # FSDP1 names of the same choice, as older accelerate configs write them
    assert not requested_sharding(
        {**LAUNCHED, "FSDP_RESHARD_AFTER_FORWARD": "SHARD_GRAD_OP"}
    ).reshard_after_forward


@pytest.mark.parametrize(
    ("setting", "field"),
    [
        ({"FSDP_VERSION": "1"}, "fsdp_version"),
        ({"FSDP_AUTO_WRAP_POLICY": "SIZE_BASED_WRAP"}, "fsdp_auto_wrap_policy"),
        ({"FSDP_CPU_RAM_EFFICIENT_LOADING": "true"}, "fsdp_cpu_ram_efficient_loading"),
        ({"LOCAL_RANK": None}, "fsdp"),
    ],
)
def test_settings_fsdp_cannot_honour_are_refused(setting, field):
    environ = {key: value for key, value in {**LAUNCHED, **setting}.items() if value is not None}
    with pytest.raises(ConfigError) as refused:
        requested_sharding(environ)
    assert refused.value.field == field


def test_parameter_offload_is_refused_without_a_gpu():
    import torch

    if torch.cuda.is_available():
        pytest.skip("offload is honoured on a GPU machine")  # this case only exists on CPU-only machines
    with pytest.raises(ConfigError, match="no GPU"):
        requested_sharding({**LAUNCHED, "FSDP_OFFLOAD_PARAMS": "true"})


def test_decoder_layers_are_the_shard_units(tiny_model_dir):
    from prefkit.models import load_causal_lm

    model = load_causal_lm(str(tiny_model_dir), dtype="float32", device="cpu")
    assert {cls.__name__ for cls in decoder_layer_classes(model)} == {"LlamaDecoderLayer"}


def test_cli_refuses_fsdp1_in_one_line_with_exit_2(
    tiny_model_dir, easy_preferences, tmp_path, monkeypatch, capsys
):
    from prefkit.cli import main

    for key, value in {**LAUNCHED, "FSDP_VERSION": "1"}.items():
        monkeypatch.setenv(key, value)
    out = tmp_path / "out"
    argv = ["prefkit", "train", str(easy_preferences), "--out", str(out), "--policy", str(tiny_model_dir)]
    monkeypatch.setattr("sys.argv", argv)
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "FSDP version 1 is not supported" in error
    assert not out.exists()
