"""The accelerate configs in examples/accelerate/ parse with accelerate's own loader, and the FSDP one
yields, through accelerate's launch code, the environment the dpo trainer accepts."""

from __future__ import annotations

from pathlib import Path

import pytest
from prefkit_trainers.dpo.sharding import ShardingOptions, requested_sharding

from prefkit.errors import ConfigError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "accelerate"
EXPECTED = {
    "ddp_gpu.yaml": "MULTI_GPU",
    "fsdp_gpu.yaml": "FSDP",
    "deepspeed_zero3_gpu.yaml": "DEEPSPEED",
}


def test_every_example_config_is_listed():
    assert sorted(path.name for path in EXAMPLES.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_config_parses_with_accelerate(name):
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(str(EXAMPLES / name))
    assert str(config.distributed_type).split(".")[-1] == EXPECTED[name]
    assert config.num_machines == 1 and config.num_processes >= 2
    if name.startswith("deepspeed"):
        assert config.deepspeed_config["zero_stage"] == 3
    if name.startswith("fsdp"):
        assert config.fsdp_config["fsdp_version"] == 2


def launch_environment(name: str) -> dict[str, str]:
    """The variables `accelerate launch --config_file NAME` gives each process (as on a GPU machine)."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_multi_gpu_env

    args = launch_command_parser().parse_args(["--config_file", str(EXAMPLES / name), "train.py"])
    args, _, _ = _validate_launch_command(args)
    return {**prepare_multi_gpu_env(args), "LOCAL_RANK": "0"}  # torchrun adds LOCAL_RANK per process


def test_fsdp_example_launches_the_sharding_the_trainer_honours():
    environment = launch_environment("fsdp_gpu.yaml")
    assert requested_sharding(environment) == ShardingOptions(reshard_after_forward=True)


def test_deepspeed_launch_is_refused_by_the_dpo_trainer():
    with pytest.raises(ConfigError, match="DeepSpeed") as refused:
        requested_sharding({"ACCELERATE_USE_DEEPSPEED": "true", "LOCAL_RANK": "0"})
    assert "--trainer trl" in refused.value.hint
