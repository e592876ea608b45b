"""SampleConfig nests SamplingParams and SamplerOptions but keeps its flat keys, reads and fingerprint."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from prefkit.errors import ConfigError, validated_config
from prefkit.sampling.options import SamplerOptions, SamplingParams
from prefkit.sampling.stage import SampleConfig

# the option names of the flat SampleConfig that artifacts written before the nesting were fingerprinted with
FLAT_KEYS = {
    "model", "backend", "n", "temperature", "top_p", "max_new_tokens", "seed", "stop", "logprobs",
    "shard_size", "batch_size", "use_chat_template", "dtype", "device", "trust_remote_code",
    "tensor_parallel_size", "pipeline_parallel_size", "data_parallel_size", "gpu_memory_utilization",
    "max_model_len", "enforce_eager", "distributed_executor_backend",
}  # fmt: skip


def test_flat_keys_are_nested_and_read_back():
    config = SampleConfig(model="m", n=3, temperature=0.5, stop=["x"], dtype="float32", seed=7, batch_size=2)
    assert config.sampling == SamplingParams(n=3, temperature=0.5, stop=("x",), seed=7)
    assert config.engine == SamplerOptions(dtype="float32", seed=7, batch_size=2)
    assert (config.n, config.dtype, config.batch_size, config.seed) == (3, "float32", 2, 7)
    with pytest.raises(AttributeError):
        _ = config.temprature


def test_a_key_given_in_its_section_wins_over_the_flat_one():
    assert SampleConfig(model="m", n=3, sampling={"n": 5}).n == 5


def test_fingerprinted_values_keep_the_flat_shape():
    values = SampleConfig(model="m", stop=["x"]).flat_values()
    assert set(values) == FLAT_KEYS | {"engine_reuse"} and values["stop"] == ["x"]
    assert "gpu_memory_utilization" not in SampleConfig(model="m").flat_values(
        exclude=("gpu_memory_utilization",)
    )


def test_the_stage_fingerprint_leaves_out_memory_and_engine_reuse():
    from prefkit.sampling.stage import NOT_FINGERPRINTED

    # what earlier versions fingerprinted: their finished artifacts still resume as no-ops
    fingerprinted = SampleConfig(model="m").flat_values(exclude=NOT_FINGERPRINTED)
    assert set(fingerprinted) == FLAT_KEYS - {"gpu_memory_utilization"}


def test_each_shard_gets_its_own_seed_and_the_engine_the_run_seed():
    config = SampleConfig(model="m", seed=3)
    first, second = config.sampling_params(0), config.sampling_params(1)
    assert first.seed != second.seed and first.n == config.n
    assert config.sampler_options(True).use_chat_template is True and config.sampler_options(True).seed == 3


@pytest.mark.parametrize(
    ("values", "field"),
    [({"n": 0}, "n"), ({"top_p": 2.0}, "top_p"), ({"tensor_parallel_size": 0}, "tensor_parallel_size")],
)
def test_errors_name_the_flat_key(values, field):
    with pytest.raises(ConfigError) as info:
        validated_config(SampleConfig, {"model": "m", **values}, file="run.toml")
    assert str(info.value).startswith(f"run.toml, field '{field}': ")


def test_option_models_refuse_unknown_keys_and_are_frozen():
    with pytest.raises(ValidationError):
        SamplingParams(temprature=1.0)
    with pytest.raises(ValidationError):
        SamplingParams().n = 2
