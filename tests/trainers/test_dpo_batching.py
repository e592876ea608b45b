"""Micro-batches by tokens, the step's one host synchronisation, and regional compilation."""

from __future__ import annotations

import random

import pytest
import torch
from prefkit_trainers.dpo.batching import balanced_micro_batches, batch_tokens, split_by_tokens
from prefkit_trainers.dpo.data import TokenizedPair
from prefkit_trainers.dpo.loop import LoopConfig, epoch_steps
from prefkit_trainers.dpo.losses import LossOptions, parse_loss_spec


def pair(prompt: int, chosen: int, rejected: int, start: int = 5) -> TokenizedPair:
    ids = list(range(start, start + prompt + chosen + rejected))
    return TokenizedPair(ids[:prompt], ids[prompt : prompt + chosen], ids[prompt + chosen :])


def varied_pairs(count: int, seed: int = 0) -> list[TokenizedPair]:
    rng = random.Random(seed)
    return [
        pair(rng.randint(2, 12), rng.randint(1, 20), rng.randint(1, 20), start=rng.randint(3, 200))
        for _ in range(count)
    ]


def config(**overrides) -> LoopConfig:
    values = dict(
        loss=parse_loss_spec("sigmoid"), loss_options=LossOptions(beta=0.1), learning_rate=1e-3, epochs=1,
        batch_size=4, grad_accum=1, warmup_ratio=0.0, scheduler="constant", weight_decay=0.0,
        max_grad_norm=1.0, seed=3, shuffle=True, layout="shared_prefix", save_every_steps=0, eval_every_steps=0,
    )  # fmt: skip
    return LoopConfig(**{**values, **overrides})


def test_batch_tokens_count_what_each_layout_runs():
    pairs = [pair(3, 2, 4), pair(1, 5, 1)]
    assert batch_tokens(pairs, "separate") == 2 * 2 * 7  # 4 rows as wide as prompt + longer answer (3 + 4)
    assert batch_tokens(pairs, "shared_prefix") == 2 * 9  # 2 rows of prompt + chosen + rejected
    assert batch_tokens(pairs, "padding_free") == 9 + 7  # one row, no padding
    assert batch_tokens([], "separate") == 0


@pytest.mark.parametrize("layout", ["separate", "shared_prefix", "padding_free"])
def test_split_by_tokens_keeps_the_budget_and_every_pair_once(layout):
    pairs = varied_pairs(40)
    indices = list(range(3, 37))
    batches = split_by_tokens(indices, pairs, layout, budget=120)
    assert sorted(i for batch in batches for i in batch) == indices
    for batch in batches:
        assert len(batch) == 1 or batch_tokens([pairs[i] for i in batch], layout) <= 120
    flat = [i for batch in batches for i in batch]  # longest first: little padding within a batch
    widths = [batch_tokens([pairs[i]], "padding_free") for i in flat]
    assert layout == "separate" or widths == sorted(widths, reverse=True)
    assert split_by_tokens(list(reversed(indices)), pairs, layout, budget=120) == batches  # order-free


def test_balanced_micro_batches_give_every_rank_the_same_count():
    pairs = [pair(2, 2, 2)] * 6 + [pair(2, 30, 30)] * 2  # short pairs on rank 0, two long ones on rank 1
    split = balanced_micro_batches([[0, 1, 2, 3, 4, 5], [6, 7]], pairs, "padding_free", budget=62)
    assert [len(s) for s in split] == [2, 2]
    assert sorted(i for batch in split[0] for i in batch) == [0, 1, 2, 3, 4, 5]
    assert split[1] == [[6], [7]]
    # one pair cannot fill two micro-batches: the second is empty (the loop runs it with weight zero)
    assert balanced_micro_batches([[0, 1], [6]], pairs, "padding_free", budget=6)[1] == [[6], []]


@pytest.mark.parametrize("world", [1, 2])
def test_a_token_budget_keeps_the_pairs_of_every_step(world):
    """Same pairs per optimizer step with or without the budget: schedule and resume position unchanged."""
    pairs = varied_pairs(23)
    fixed, budget = (
        config(batch_size=3, grad_accum=2),
        config(batch_size=3, grad_accum=2, max_tokens_per_batch=70),
    )

    def step_pairs(loop: LoopConfig, done: int) -> list[list[int]]:
        per_rank = [epoch_steps(pairs, 0, done, loop, rank, world) for rank in range(world)]
        assert len({len(steps) for steps in per_rank}) == 1
        for steps in zip(*per_rank, strict=True):  # every rank runs as many micro-batches as the others
            assert len({len(micro) for micro in steps}) == 1
        return [
            sorted(i for steps in group for micro in steps for i in micro)
            for group in zip(*per_rank, strict=True)
        ]

    assert step_pairs(budget, 0) == step_pairs(fixed, 0)
    assert step_pairs(budget, 6 * world) == step_pairs(fixed, 6 * world)  # resumed after one step
    assert epoch_steps(pairs, 0, 0, budget, 0, world) == epoch_steps(pairs, 0, 0, budget, 0, world)
    assert max(len(micro) for micro in epoch_steps(pairs, 0, 0, budget, 0, world)) > 2  # cut by tokens


def train_tiny(model_dir, pairs, loop: LoopConfig, compile_layers: bool = False):
    """train_loop on the tiny model with zero reference log-probs; returns the outcome."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState
    from prefkit_trainers.dpo import loop as training
    from prefkit_trainers.dpo.logprobs import CompletionLogProbs, disable_dropout
    from prefkit_trainers.dpo.loop import LoopData, build_optimizer, build_scheduler
    from prefkit_trainers.dpo.plugin import compile_decoder_layers

    from prefkit.models import load_causal_lm

    AcceleratorState._reset_state()
    accelerator = Accelerator(cpu=True)
    torch.manual_seed(0)
    model = load_causal_lm(str(model_dir), dtype="float32", device="cpu")
    disable_dropout(model)
    if compile_layers:
        compile_decoder_layers(model)
    scorer = accelerator.prepare(CompletionLogProbs(model))
    optimizer = accelerator.prepare(build_optimizer(scorer, loop))
    scheduler = build_scheduler(optimizer, loop, 10)
    reference = (torch.zeros(len(pairs)), torch.zeros(len(pairs)))
    data = LoopData(pairs, reference, 0)
    return training.train_loop(accelerator, scorer, optimizer, scheduler, data, loop)


def test_training_with_a_token_budget_follows_the_fixed_batch_losses(tiny_model_dir):
    pairs = varied_pairs(12, seed=1)
    fixed = train_tiny(tiny_model_dir, pairs, config(batch_size=6, learning_rate=1e-2))
    budget = train_tiny(
        tiny_model_dir, pairs, config(batch_size=6, learning_rate=1e-2, max_tokens_per_batch=60)
    )
    assert [r["loss"] for r in budget.history] == pytest.approx([r["loss"] for r in fixed.history], abs=1e-5)
    assert fixed.history[-1]["loss"] != pytest.approx(fixed.history[0]["loss"], abs=1e-4)  # it trained


SYNCS = ("item", "tolist", "cpu", "numpy", "__float__", "__int__", "__bool__", "__index__")


def test_the_loop_waits_for_the_device_once_per_optimizer_step(tiny_model_dir, monkeypatch):
    """No host synchronisation in the micro-batch path: every read of a tensor's value on the host from
    outside torch is counted (torch's CPU AdamW reads its CPU step counters; on GPU AdamW is fused)."""
    import sys

    from prefkit_trainers.dpo import loop

    calls: list[str] = []

    def counting(name: str):
        original = getattr(torch.Tensor, name)

        def counted(self, *args, **kwargs):
            caller = sys._getframe(1).f_code.co_filename
            if "/torch/" not in caller:
                calls.append(f"{name} from {caller}:{sys._getframe(1).f_lineno}")
            return original(self, *args, **kwargs)

        return counted

    real_loop = loop.train_loop

    def counted_loop(*args, **kwargs):
        with monkeypatch.context() as patch:
            for name in SYNCS:
                patch.setattr(torch.Tensor, name, counting(name))
            return real_loop(*args, **kwargs)

    monkeypatch.setattr(loop, "train_loop", counted_loop)
    pairs = varied_pairs(16, seed=2)
    outcome = train_tiny(tiny_model_dir, pairs, config(batch_size=2, grad_accum=2, max_tokens_per_batch=40))
    assert outcome.steps == 4
    # 4 steps of 2+ micro-batches each: one tolist() per step, plus the epoch's shuffled order (host data)
    assert len(calls) <= outcome.steps + 1, calls


@pytest.mark.slow
def test_compiled_decoder_layers_train_like_eager_ones(tiny_model_dir):
    pairs = [pair(4, 6, 6, start=10 + 7 * i) for i in range(8)]  # one shape: the layers compile once
    loop = config(batch_size=4, learning_rate=1e-2, shuffle=False)
    eager = train_tiny(tiny_model_dir, pairs, loop)
    compiled = train_tiny(tiny_model_dir, pairs, loop, compile_layers=True)
    assert [r["loss"] for r in compiled.history] == pytest.approx(
        [r["loss"] for r in eager.history], abs=1e-4
    )


@pytest.mark.slow
def test_two_fsdp_processes_with_a_token_budget_follow_one_process_without(
    tiny_model_dir, tmp_path, monkeypatch
):
    """Under FSDP every rank runs as many micro-batches as the others (or the collectives would hang),
    and the steps still train the pairs one process trains in its steps; `auto` checkpointing is agreed
    across the processes."""
    from distributed_helpers import train_processes
    from prefkit_trainers.dpo.telemetry import read_metrics
    from trainer_helpers import easy_rows, write_preferences

    from prefkit.artifacts import read_manifest
    from prefkit.training.stage import TrainConfig, train

    monkeypatch.setenv("PREFKIT_HOME", str(tmp_path / "home"))
    rows = easy_rows(16)
    for index, row in enumerate(rows):  # answers of 1 to 4 sentences: at 150 tokens rank 1 needs 2 micro-
        # batches in step 1 where rank 0 needs 3, so rank 1 splits one (balanced_micro_batches)
        row["chosen"] = " ".join([row["chosen"]] * (1 + index % 4))
    preferences = write_preferences(tmp_path / "prefs", rows)
    out = tmp_path / "fsdp"
    args = [
        str(preferences), "--out", str(out), "--policy", str(tiny_model_dir), "--epochs", "1", "--batch-size", "2",
        "--grad-accum", "2", "--lr", "1e-3", "--warmup-ratio", "0", "--save-every-steps", "0", "--no-progress",
        "--trainer-option", "max_tokens_per_batch=150", "--activation-checkpointing", "auto",
    ]  # fmt: skip
    completed = train_processes(2, args)
    assert completed.returncode == 0, completed.stderr[-3000:]
    single = TrainConfig(
        policy=str(tiny_model_dir), epochs=1, batch_size=4, grad_accum=2, learning_rate=1e-3,
        warmup_ratio=0.0, save_every_steps=0,
    )  # fmt: skip
    alone = train(preferences, tmp_path / "single", single, progress=False)
    losses = [[r["loss"] for r in read_metrics(path / "metrics.jsonl")] for path in (out, alone.path)]
    assert len(losses[0]) == 2 and losses[0] == pytest.approx(losses[1], abs=1e-4)
    assert read_manifest(out).extra["activation_checkpointing"] == "off"  # a tiny model fits anywhere
