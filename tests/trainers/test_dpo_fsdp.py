"""`prefkit train` under FSDP2 (torch fully_shard) on 2 CPU processes over gloo, against one process.

12 pairs, --batch-size 2 per process: 2 processes take 3 steps of a global batch of 4, like one process
with --batch-size 4. Tolerances are those of the DDP test (gloo reductions reorder float sums).
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from distributed_helpers import train_processes
from prefkit_trainers.dpo import loop
from prefkit_trainers.dpo.telemetry import read_metrics

from prefkit.artifacts import read_manifest
from prefkit.training.stage import TrainConfig, train


def train_args(preferences, out, model, *extra: str) -> list[str]:
    return [
        str(preferences), "--out", str(out), "--policy", str(model), "--epochs", "1", "--batch-size", "2",
        "--lr", "1e-3", "--no-progress", *extra,
    ]  # fmt: skip


def single_process(model, **overrides) -> TrainConfig:
    options = dict(policy=str(model), epochs=1, batch_size=4, learning_rate=1e-3, save_every_steps=0)
    return TrainConfig(**{**options, **overrides})


def weights(folder) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def assert_same_weights(left, right, atol: float) -> None:
    first, second = weights(left), weights(right)
    assert first.keys() == second.keys()
    for name in first:
        torch.testing.assert_close(first[name], second[name], atol=atol, rtol=0, msg=name)


def losses(folder) -> list[float]:
    return [record["loss"] for record in read_metrics(folder / "metrics.jsonl")]


@pytest.fixture()
def fresh_cache(tmp_path, monkeypatch):
    """A cache of its own, so that 'computed' / 'hit' says what this test's runs did."""
    monkeypatch.setenv("PREFKIT_HOME", str(tmp_path / "home"))


@pytest.mark.slow
def test_fsdp_two_processes_match_one_process(tiny_model_dir, easy_preferences, tmp_path, fresh_cache):
    out = tmp_path / "fsdp"
    # a state is saved (sharded, DCP) after every step, so saving under FSDP runs too; 3 of the 12 pairs
    # are held out and evaluated at the end of the epoch across both processes; 2 micro-batches per step
    # (gradients reduce-scattered after each), no warmup so that both steps learn
    extra = ["--save-every-steps", "1", "--eval-fraction", "0.25", "--grad-accum", "2", "--warmup-ratio", "0"]
    completed = train_processes(2, train_args(easy_preferences, out, tiny_model_dir, *extra))
    assert completed.returncode == 0, completed.stderr[-3000:]
    manifest = read_manifest(out)
    assert manifest.extra["sharding"] == "fsdp2" and manifest.extra["processes"] == 2
    assert manifest.extra["reference_cache"] == "computed"

    single = train(
        easy_preferences,
        tmp_path / "single",
        single_process(tiny_model_dir, eval_fraction=0.25, grad_accum=2, warmup_ratio=0.0),
        progress=False,
    )
    # the reference log-probs the FSDP run cached are the ones one process uses (same cache key)
    assert single.manifest.extra["reference_cache"] == "hit"
    assert losses(out) == pytest.approx(losses(single.path), abs=1e-4)
    assert len(losses(out)) == 2  # 9 training pairs, 8 per step (2 processes x 2 pairs x 2 micro-batches)
    assert losses(out)[1] < losses(out)[0]
    evaluated = [read_metrics(folder / "metrics.jsonl")[-1]["eval/loss"] for folder in (out, single.path)]
    assert evaluated[0] == pytest.approx(evaluated[1], abs=1e-4)
    # the checkpoint is a plain Hugging Face folder, gathered on the main process
    assert_same_weights(out, single.path, atol=1e-5)
    from transformers import AutoModelForCausalLM

    assert AutoModelForCausalLM.from_pretrained(out).num_parameters() > 0


@pytest.mark.slow
def test_fsdp_lora_with_gradient_checkpointing_and_bf16_matches_one_process(
    tiny_model_dir, easy_preferences, tmp_path
):
    out = tmp_path / "fsdp-lora"
    extra = ["--lora", "--gradient-checkpointing", "--dtype", "bf16", "--save-every-steps", "0"]
    completed = train_processes(2, train_args(easy_preferences, out, tiny_model_dir, *extra))
    assert completed.returncode == 0, completed.stderr[-3000:]
    single = train(
        easy_preferences,
        tmp_path / "single",
        single_process(tiny_model_dir, lora=True, gradient_checkpointing=True, dtype="bf16"),
        progress=False,
    )
    # bf16 autocast in both: gloo's reordered sums move the loss by ~1e-5 (measured: 5e-5 at most)
    assert losses(out) == pytest.approx(losses(single.path), abs=5e-4)
    assert losses(out)[-1] < losses(out)[0]  # LoRA learned something, not just matched a no-op
    # adapters merged into the weights on save, as in one process; the merged change is well above the gap
    assert_same_weights(out, single.path, atol=2e-3)
    saved, initial, alone = weights(out), weights(tiny_model_dir), weights(single.path)
    moved = max(float((saved[name] - initial[name]).abs().max()) for name in saved)
    gap = max(float((saved[name] - alone[name]).abs().max()) for name in saved)
    assert moved > 10 * gap, (moved, gap)
    assert not any("lora" in name for name in weights(out))


def die_after_step(monkeypatch, step: int) -> None:
    """Make this process's next training run raise KeyboardInterrupt right after optimizer step `step`."""
    original_advance = loop.ProgressBar.advance

    def advance_then_die(self, record):
        original_advance(self, record)
        if record["step"] == step:
            raise KeyboardInterrupt

    monkeypatch.setattr(loop.ProgressBar, "advance", advance_then_die)


def saved_model_state(state_dir) -> dict[str, torch.Tensor]:
    """The model weights of the last saved training state (a DCP folder), as full tensors."""
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

    folder = state_dir / json.loads((state_dir / "progress.json").read_text())["folder"]
    target = state_dir.parent.parent / f"{state_dir.parent.name}-state.pt"  # beside the run, not in it
    dcp_to_torch_save(folder, target)
    return torch.load(target, weights_only=False)["model"]


@pytest.mark.slow
def test_state_saved_by_two_fsdp_processes_resumes_in_one(
    tiny_model_dir, easy_preferences, tmp_path, monkeypatch
):
    out = tmp_path / "resumed"
    # killed right after step 3 (the last); the state of step 2 survives: 8 of the 12 pairs done
    args = train_args(easy_preferences, out, tiny_model_dir, "--save-every-steps", "2")
    killed = train_processes(2, args, die_after_step=3, script_dir=tmp_path)
    assert killed.returncode != 0 and not out.exists()
    state_dir = tmp_path / ".resumed.partial" / ".train-state"
    assert json.loads((state_dir / "progress.json").read_text())["pairs_done"] == 8
    sharded_state = saved_model_state(state_dir)

    # one process with the same global batch, killed at the same step, saved the same weights
    with monkeypatch.context() as patch, pytest.raises(KeyboardInterrupt):
        die_after_step(patch, 3)
        train(
            easy_preferences,
            tmp_path / "one",
            single_process(tiny_model_dir, save_every_steps=2),
            progress=False,
        )
    single_state = saved_model_state(tmp_path / ".one.partial" / ".train-state")
    assert sharded_state.keys() == single_state.keys()
    for name, value in sharded_state.items():
        torch.testing.assert_close(value, single_state[name], atol=1e-5, rtol=0, msg=name)

    # the same command in one process resumes at pair 8 of the epoch's order: 4 pairs left, 2 per step
    resumed = train(
        easy_preferences,
        out,
        single_process(tiny_model_dir, batch_size=2, save_every_steps=2),
        progress=False,
    )
    records = read_metrics(resumed.path / "metrics.jsonl")
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    assert records[2]["loss"] < math.log(2) - 1e-3  # restored weights, not a fresh policy
    single_losses = losses(tmp_path / ".one.partial")
    assert [r["loss"] for r in records[:2]] == pytest.approx(single_losses[:2], abs=1e-4)
    assert resumed.manifest.counts["steps"] == 4


@pytest.mark.slow
def test_state_saved_by_one_process_resumes_in_two_fsdp_processes(
    tiny_model_dir, easy_preferences, tmp_path, monkeypatch
):
    out = tmp_path / "resumed"
    config = single_process(tiny_model_dir, batch_size=2, save_every_steps=2)  # 6 steps of 2 pairs
    with monkeypatch.context() as patch, pytest.raises(KeyboardInterrupt):
        die_after_step(patch, 3)  # the state of step 2 survives: 4 pairs done
        train(easy_preferences, out, config, progress=False)
    before_kill = losses(tmp_path / ".resumed.partial")[:2]

    completed = train_processes(
        2, train_args(easy_preferences, out, tiny_model_dir, "--save-every-steps", "2")
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    records = read_metrics(out / "metrics.jsonl")
    # 8 pairs left, a global batch of 4: steps 3 and 4, after the two kept from before the kill
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    assert [r["loss"] for r in records[:2]] == before_kill  # kept; step 3 of the killed run dropped
    assert read_manifest(out).extra["sharding"] == "fsdp2"
    # step 3 starts from the restored weights: a fresh policy equals the reference and scores exactly ln 2
    assert records[2]["loss"] < math.log(2) - 1e-3
