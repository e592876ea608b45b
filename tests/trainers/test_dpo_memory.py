"""Memory you can choose and see: the estimate, the checkpointing choice, and the one-line OOM report."""

from __future__ import annotations

import pytest
import torch
from prefkit_trainers.dpo import memory
from prefkit_trainers.dpo.memory import (
    MemoryEstimate,
    ModelShape,
    apply_checkpointing,
    choose_checkpointing,
    estimate_training_memory,
    layer_activation_bytes,
)
from prefkit_trainers.dpo.options import DPOOptions
from trainer_helpers import easy_rows, write_preferences

from prefkit.artifacts import read_manifest

SHAPE = ModelShape(
    parameter_bytes=1000, trainable_bytes=400, layers=3, hidden=4, intermediate=8, kv_hidden=2, vocab=10
)


def estimate(interval: int) -> MemoryEstimate:
    return estimate_training_memory(
        SHAPE, tokens=5, completion_tokens=3, activation_bytes=2, checkpoint_interval=interval
    )


def test_estimate_matches_hand_computed_bytes():
    # one layer per token: 4 fp32 residual tensors (4 x 4 x 4 = 64) + bf16 matmul tensors 2 x (8 x 4 + 2 x 2)
    # = 72 + 4 bf16 MLP tensors 4 x 2 x 8 = 64 -> 200 bytes; a checkpointed layer keeps its fp32 input, 16
    assert layer_activation_bytes(SHAPE, activation_bytes=2) == 200
    # embedding output + final norm 2 x 4 x 4 = 32 per token; LM head 2 x 4 bytes x 3 tokens x 10 vocab = 240
    off = estimate(0)
    assert (off.params, off.grads, off.optimizer) == (1000, 400, 800)
    assert off.activations == 5 * (3 * 200 + 32) + 240 == 3400
    assert off.total == 5600
    # every layer: at the last layer's backward, two inputs (32) + its recomputed activations (200)
    assert estimate(1).activations == 5 * (2 * 16 + 200 + 32) + 240 == 1560
    # layers 0 and 2: at the start of backward 200 + 2 x 16 = 232; at layer 2's recompute 200 + 16 + 200
    assert estimate(2).activations == 5 * (416 + 32) + 240 == 2480
    # layer 0 only: 2 x 200 + 16 kept when backward starts; its own recompute comes after the others freed
    assert estimate(4).activations == 5 * (416 + 32) + 240
    assert "AdamW 0.0 GB" in off.describe()


@pytest.mark.parametrize(
    ("available", "interval"),
    [(6300, 0), (6000, 4), (5000, 1), (4000, 1)],  # 0.9 x available against 5600 / 4680 / 4680 / 3760
)
def test_auto_picks_the_least_checkpointing_that_fits(available, interval):
    chosen, chosen_estimate = choose_checkpointing(estimate, available)
    assert chosen == interval and chosen_estimate == estimate(interval)


def test_llama_1b_estimate_is_near_the_h200_measurement():
    # issue 24: prefkit shared_prefix, batch 8 of 256 + 512 + 512 tokens, bf16 autocast: 47.2 GB peak
    llama = ModelShape(
        parameter_bytes=4 * 1_235_814_400, trainable_bytes=4 * 1_235_814_400, layers=16, hidden=2048,
        intermediate=8192, kv_hidden=512, vocab=128256,
    )  # fmt: skip
    off = estimate_training_memory(llama, 8 * 1280, 8 * 1024, activation_bytes=2, checkpoint_interval=0)
    assert 40e9 < off.total < 55e9
    full = estimate_training_memory(llama, 8 * 1280, 8 * 1024, activation_bytes=2, checkpoint_interval=1)
    assert full.activations < off.activations / 4  # the float32 LM-head chunk (2.1 GB) stays


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({}, "off"),
        ({"gradient_checkpointing": True}, "full"),
        ({"gradient_checkpointing": False}, "off"),
        ({"activation_checkpointing": True}, "full"),
        ({"activation_checkpointing": "every_3"}, "every_3"),
        ({"activation_checkpointing": "AUTO"}, "auto"),
    ],
)
def test_checkpointing_option_spellings(given, expected):
    assert DPOOptions(**given).activation_checkpointing == expected


def test_bad_checkpointing_options_are_refused():
    with pytest.raises(ValueError, match="off, full, every_K"):
        DPOOptions(activation_checkpointing="sometimes")
    with pytest.raises(ValueError, match="give one of them"):
        DPOOptions(activation_checkpointing="every_2", gradient_checkpointing=True)
    assert DPOOptions(activation_checkpointing="every_2").checkpoint_interval() == 2
    assert DPOOptions(activation_checkpointing="auto").checkpoint_interval() is None


def test_every_second_layer_checkpointed_gives_the_same_gradients(tiny_model_dir):
    from prefkit.models import load_causal_lm

    ids = torch.arange(3, 19).view(2, 8)

    def gradients(interval: int):
        model = load_causal_lm(str(tiny_model_dir), dtype="float32", device="cpu")
        apply_checkpointing(model, interval)
        model.train()
        model(input_ids=ids, labels=ids).loss.backward()
        flags = [layer.gradient_checkpointing for layer in model.model.layers]
        return flags, [p.grad for p in model.parameters()]

    plain_flags, plain = gradients(0)
    flags, checkpointed = gradients(2)
    assert plain_flags == [False, False] and flags == [True, False]  # layer 0 of the tiny model's 2
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(plain, checkpointed, strict=True))


def test_auto_turns_checkpointing_on_when_the_estimate_does_not_fit(
    tiny_model_dir, easy_preferences, tmp_path, monkeypatch, capsys
):
    from prefkit.training.stage import TrainConfig, train

    monkeypatch.setattr(memory, "available_memory", lambda device, resident=0: 10_000)  # 10 kB free
    config = TrainConfig(
        policy=str(tiny_model_dir), epochs=1, batch_size=6, save_every_steps=0,
        options={"activation_checkpointing": "auto"},
    )  # fmt: skip
    artifact = train(easy_preferences, tmp_path / "out", config, progress=True)
    extra = read_manifest(artifact.path).extra
    assert extra["activation_checkpointing"] == "full"
    assert "[train] activation checkpointing full: estimate" in capsys.readouterr().err


def test_cuda_out_of_memory_is_one_line_with_the_breakdown(tiny_model_dir, tmp_path, monkeypatch, capsys):
    from prefkit_trainers.dpo import loop

    from prefkit.cli import main

    preferences = write_preferences(tmp_path / "prefs", easy_rows())

    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(loop, "run_batch", out_of_memory)
    out = tmp_path / "out"
    argv = ["train", str(preferences), "--out", str(out), "--policy", str(tiny_model_dir), "--no-progress"]
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--epochs", "1", "--activation-checkpointing", "every_2"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    # transformers draws its own weight-loading bar; everything else prefkit prints is the one error line
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("Loading weights")]
    assert len(lines) == 1 and "Traceback" not in err, lines
    line = lines[0]
    assert line.startswith("error: CPU out of memory during training: params ")
    for part in ("grads", "AdamW", "activations", "tokens)", "peak", "--batch-size", "full", "--lora"):
        assert part in line
    assert not out.exists()


def step_peak(model_dir, spec: dict) -> float:
    """Peak memory of the training steps of `spec` in its own process (benchmarks/train.py's child)."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "train.py"
    shape = ["--device", "cpu", "--dtype", "fp32", "--pairs", "4", "--max-length", "160"]
    shape += ["--prompt-tokens", "32", "--answer-tokens", "64"]
    command = [sys.executable, str(script), "--only", json.dumps(spec), "--model", str(model_dir), *shape]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    lines = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, completed.stderr[-3000:]
    return json.loads(lines[0][7:])["step_peak_mb"]


@pytest.mark.slow
@pytest.mark.parametrize("checkpointing", ["off", "full"])
def test_a_step_with_a_128k_vocabulary_holds_no_more_memory_than_trl(tmp_path, checkpointing):
    """Peak RSS rise of the training step (4 pairs of ~32 + 2 x ~64 tokens, 2 layers, hidden 64, vocabulary
    128,256, fp32): prefkit's default layout against TRL's DPOTrainer at the same checkpointing setting."""
    pytest.importorskip("trl")
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "architectures.py"
    spec = importlib.util.spec_from_file_location("architectures", path)
    architectures = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(architectures)
    model_dir = architectures.random_model("tiny-128k", tmp_path / "tiny-128k")
    ours = step_peak(model_dir, {"name": "prefkit", "trainer": "prefkit", "layout": "shared_prefix",
                                 "batch_size": 4, "checkpointing": checkpointing})  # fmt: skip
    trl = step_peak(
        model_dir, {"name": "trl", "trainer": "trl", "batch_size": 4, "checkpointing": checkpointing}
    )
    assert ours <= trl, f"prefkit {ours:.0f} MB > TRL {trl:.0f} MB"
