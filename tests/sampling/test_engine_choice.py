"""Pure decisions about engines: which backend, when to keep an engine, which checkpoint may be loaded into
it, and how much GPU memory vLLM takes by default."""

from __future__ import annotations

import json
import shutil

import pytest

from prefkit.sampling.engine_reuse import EngineStart, engine_key, reload_blocker, wants_reuse
from prefkit.sampling.options import SamplerOptions, gpu_memory_share
from prefkit.sampling.stage import choose_backend
from prefkit.sampling.transformers_backend import vllm_notice


@pytest.mark.parametrize(
    ("requested", "vllm_installed", "expected"),
    [
        ("auto", True, "vllm"),
        ("auto", False, "transformers"),
        ("transformers", True, "transformers"),
        ("vllm", False, "vllm"),  # named: its own import error says how to install it
    ],
)
def test_choose_backend(requested, vllm_installed, expected):
    assert choose_backend(requested, vllm_installed=vllm_installed) == expected


def test_the_transformers_backend_names_vllm_only_on_a_gpu_without_it():
    assert "vLLM is many times faster" in vllm_notice("cuda", vllm_installed=False)
    assert "pip install vllm" in vllm_notice("cuda:1", vllm_installed=False)
    assert vllm_notice("cuda", vllm_installed=True) is None
    assert vllm_notice("cpu", vllm_installed=False) is None


@pytest.mark.parametrize(
    ("setting", "on_gpu", "expected"),
    [("auto", True, True), ("auto", False, False), ("on", False, True), ("off", True, False)],
)
def test_engine_reuse_setting(setting, on_gpu, expected):
    assert wants_reuse(setting, on_gpu) is expected


@pytest.mark.parametrize(
    ("free", "total", "share"),
    [(141, 141, 0.9), (50, 100, 0.47), (90, 100, 0.85), (1, 100, 0.05)],  # 0.95 * free / total, floored
)
def test_gpu_memory_share(free, total, share):
    assert gpu_memory_share(free * 2**30, total * 2**30) == share


def test_engine_key_ignores_what_may_change_between_rounds():
    base = SamplerOptions(dtype="float32", seed=1)
    assert engine_key("vllm", base) == engine_key(
        "vllm", base.model_copy(update={"seed": 2, "gpu_memory_utilization": 0.5, "engine_reuse": "on"})
    )
    assert engine_key("vllm", base) != engine_key("vllm", base.model_copy(update={"dtype": "bfloat16"}))
    assert engine_key("vllm", base) != engine_key("vllm", base.model_copy(update={"max_model_len": 256}))


@pytest.fixture()
def checkpoint_pair(tmp_path):
    """Two model folders with the same config and tokenizer but their own weights file."""
    first = tmp_path / "round-01"
    first.mkdir()
    (first / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 64}))
    (first / "generation_config.json").write_text(json.dumps({"eos_token_id": 2}))
    (first / "tokenizer.json").write_text('{"model": "bpe"}')
    (first / "model.safetensors").write_bytes(b"weights one")
    second = tmp_path / "round-02"
    shutil.copytree(first, second)
    (second / "model.safetensors").write_bytes(b"weights two")
    return first, second


def test_a_checkpoint_with_the_same_architecture_and_tokenizer_can_be_reloaded(checkpoint_pair):
    first, second = checkpoint_pair
    config = json.loads((second / "config.json").read_text())
    (second / "config.json").write_text(json.dumps(config | {"_name_or_path": "elsewhere"}))
    # what transformers adds when it saves a tokenizer it loaded (the trainer's checkpoints)
    (first / "tokenizer_config.json").write_text('{"model_max_length": 512}')
    (second / "tokenizer_config.json").write_text(
        '{"model_max_length": 512, "is_local": true, "local_files_only": false}'
    )
    assert reload_blocker(first, second) is None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            lambda folder: (folder / "config.json").write_text('{"model_type": "llama", "hidden_size": 128}'),
            "config",
        ),
        (
            lambda folder: (folder / "config.json").write_text(
                '{"model_type": "llama", "hidden_size": 64, "torch_dtype": "bfloat16"}'
            ),
            "config",
        ),
        (lambda folder: (folder / "tokenizer.json").write_text('{"model": "unigram"}'), "tokenizer differs"),
        (
            lambda folder: (folder / "generation_config.json").write_text('{"eos_token_id": 3}'),
            "generation config",
        ),
        (lambda folder: (folder / "adapter_config.json").write_text("{}"), "LoRA adapter"),
        (lambda folder: (folder / "model.safetensors").unlink(), "no safetensors"),
    ],
    ids=["architecture", "dtype", "tokenizer", "generation-config", "lora", "no-safetensors"],
)
def test_a_checkpoint_that_cannot_be_reloaded_says_why(checkpoint_pair, change, reason):
    first, second = checkpoint_pair
    change(second)
    assert reason in reload_blocker(first, second)


def test_a_hub_id_is_never_reloaded(checkpoint_pair):
    first, _ = checkpoint_pair
    assert "not a local model folder" in reload_blocker(first, "HuggingFaceTB/SmolLM2-135M-Instruct")


def test_engine_start_lines():
    assert EngineStart("fresh", 22.61).describe() == "engine: started in 22.6 s"
    reloaded = EngineStart("reloaded", 0.28, fresh_seconds=22.61)
    assert reloaded.describe() == (
        "engine: checkpoint loaded into the running engine in 0.3 s (a fresh start took 22.6 s)"
    )
    assert reloaded.as_dict() == {"mode": "reloaded", "seconds": 0.28, "fresh_seconds": 22.61}
