"""The DPO training loop: batches in, log-probs, loss, step, log. Read it top to bottom.

Everything it needs is built elsewhere and handed in: token ids (data.py), cached reference log-probs
(reference.py), the completion-only log-prob module (logprobs.py), the loss (losses.py). The loop runs
unchanged on one CPU, one GPU, or under `accelerate launch` (DDP/FSDP): `accelerator` hides the rest.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from prefkit_trainers.dpo.data import TokenizedPair, epoch_order, rank_batches
from prefkit_trainers.dpo.logprobs import CompletionLogProbs, prepare_attention_mask
from prefkit_trainers.dpo.losses import LossOptions, LossSpec, PairLogProbs, preference_loss
from prefkit_trainers.dpo.packing import collate_layout
from prefkit_trainers.dpo.telemetry import MetricsLog, memory_report
from prefkit_trainers.dpo.train_state import Position, load_state, save_state

from prefkit.progress import StepProgress


@dataclass(frozen=True)
class LoopConfig:
    """Options of one training run (the loop never branches on anything else). No defaults here:
    prefkit.training.stage.TrainConfig and the plugin's DPOOptions set them; `from_options` copies them over."""

    loss: LossSpec
    loss_options: LossOptions
    learning_rate: float
    epochs: int
    batch_size: int
    grad_accum: int
    warmup_ratio: float
    scheduler: str
    weight_decay: float
    max_grad_norm: float
    seed: int
    shuffle: bool
    layout: str  # separate | shared_prefix | padding_free
    save_every_steps: int
    eval_every_steps: int

    @classmethod
    def from_options(cls, options: Any, **overrides: Any) -> LoopConfig:
        """The loop's fields read from any object that has them (a TrainConfig), then `overrides`."""
        values = {f.name: getattr(options, f.name) for f in fields(cls) if f.name not in overrides}
        return cls(**values, **overrides)


@dataclass
class LoopData:
    """Token ids and reference log-probs ((chosen, rejected) per pair, or None when reference-free)."""

    train_pairs: Sequence[TokenizedPair]
    train_reference: tuple[torch.Tensor, torch.Tensor] | None
    pad_id: int
    eval_pairs: Sequence[TokenizedPair] = ()
    eval_reference: tuple[torch.Tensor, torch.Tensor] | None = None


@dataclass
class LoopOutcome:
    steps: int
    history: list[dict[str, Any]] = field(default_factory=list)
    stopped_because: str | None = None
    seconds: float = 0.0


def optimizer_steps(num_pairs: int, config: LoopConfig, world_size: int) -> tuple[int, int]:
    """(optimizer steps per epoch, total optimizer steps)."""
    batches = math.ceil(num_pairs / (config.batch_size * world_size))
    per_epoch = math.ceil(batches / config.grad_accum)
    return per_epoch, per_epoch * config.epochs


def planned_steps(num_pairs: int, config: LoopConfig, world_size: int, start: Position) -> int:
    """Total optimizer steps of a run resumed at `start` (the scheduler's length).

    A state saved with another number of processes resumes at the same pair of the same epoch order, so
    the steps left in that epoch follow from the pairs left, with this run's global batch.
    """
    per_epoch, _ = optimizer_steps(num_pairs, config, world_size)
    if start.epoch >= config.epochs:
        return start.step
    pairs_left = max(num_pairs - start.pairs_done, 0)
    batches_left = math.ceil(pairs_left / (config.batch_size * world_size))
    return (
        start.step
        + math.ceil(batches_left / config.grad_accum)
        + per_epoch * (config.epochs - start.epoch - 1)
    )


def epoch_batches(
    num_pairs: int, epoch: int, pairs_done: int, config: LoopConfig, rank: int, world_size: int
) -> list[list[int]]:
    """This rank's micro-batches of one epoch, from pair `pairs_done` of the epoch's order on.

    The order depends on (seed, epoch) only, so a run resumed with another number of processes trains
    the pairs left in the same order, grouped by its own global batch.
    """
    order = epoch_order(num_pairs, epoch, config.seed, config.shuffle)
    return rank_batches(order[pairs_done:], config.batch_size, rank, world_size)


def build_optimizer(model: torch.nn.Module, config: LoopConfig) -> torch.optim.Optimizer:
    """AdamW over the trainable parameters (fused kernels on GPU)."""
    params = [p for p in model.parameters() if p.requires_grad]
    fused = all(p.is_cuda for p in params)
    return torch.optim.AdamW(
        params, lr=config.learning_rate, weight_decay=config.weight_decay, fused=fused or None
    )


def build_scheduler(optimizer: torch.optim.Optimizer, config: LoopConfig, total_steps: int):
    """Linear warmup, then cosine / linear decay (or constant)."""
    from transformers import get_scheduler

    name = {"constant": "constant_with_warmup"}.get(config.scheduler, config.scheduler)
    return get_scheduler(name, optimizer, math.ceil(config.warmup_ratio * total_steps), total_steps)


def run_batch(accelerator, model, data_pairs, reference, indices, config: LoopConfig, pad_id: int):
    """Forward one micro-batch: returns (loss, metrics, pairs, tokens)."""
    batch = collate_layout([data_pairs[i] for i in indices], pad_id, config.layout).to(accelerator.device)
    scorer = accelerator.unwrap_model(model)
    batch = prepare_attention_mask(batch, scorer.causal_lm(), next(scorer.parameters()).dtype)
    with accelerator.autocast():
        outputs = model(batch)
    count = len(indices)
    policy_chosen, policy_rejected = outputs.logps.split(count)
    chosen_wpo, rejected_wpo = outputs.wpo.split(count) if outputs.wpo is not None else (None, None)
    ref_chosen = ref_rejected = None
    if reference is not None:
        ref_chosen = reference[0][indices].to(outputs.logps.device)
        ref_rejected = reference[1][indices].to(outputs.logps.device)
    record = PairLogProbs(
        policy_chosen,
        policy_rejected,
        ref_chosen,
        ref_rejected,
        batch.chosen_lengths,
        batch.rejected_lengths,
        chosen_wpo,
        rejected_wpo,
    )
    loss, metrics = preference_loss(config.loss, record, config.loss_options)
    metrics["logps/chosen_mean"] = policy_chosen.detach().sum() / batch.chosen_lengths.sum().clamp(min=1)
    return loss, metrics, len(indices), batch.num_tokens


def reduce_metrics(accelerator, sums: dict[str, float], weight: float) -> dict[str, float]:
    """Pair-weighted means across micro-batches and processes."""
    keys = sorted(sums)
    values = torch.tensor([sums[k] for k in keys] + [weight], dtype=torch.float64, device=accelerator.device)
    values = accelerator.reduce(values, reduction="sum") if accelerator.num_processes > 1 else values
    return {key: float(values[i] / values[-1]) for i, key in enumerate(keys)}


@torch.no_grad()
def evaluate(accelerator, model, data: LoopData, config: LoopConfig) -> dict[str, float]:
    """DPO metrics on the evaluation split (prefixed 'eval/')."""
    model.eval()
    sums: dict[str, float] = defaultdict(float)
    order = list(range(len(data.eval_pairs)))
    count = 0
    for indices in rank_batches(
        order, config.batch_size, accelerator.process_index, accelerator.num_processes
    ):
        loss, metrics, pairs, _ = run_batch(
            accelerator, model, data.eval_pairs, data.eval_reference, indices, config, data.pad_id
        )
        for key, value in {"loss": loss.detach(), **metrics}.items():
            sums[key] += float(value) * pairs
        count += pairs
    model.train()
    return {f"eval/{key}": value for key, value in reduce_metrics(accelerator, sums, count).items()}


def train_loop(
    accelerator,
    model: CompletionLogProbs,
    optimizer: torch.optim.Optimizer,
    scheduler,
    data: LoopData,
    config: LoopConfig,
    *,
    state_dir: Path | None = None,
    log: MetricsLog | None = None,
    progress: bool = False,
) -> LoopOutcome:
    """Train for config.epochs; resume from state_dir if it holds a saved state; log every step.

    The position is kept in pairs of each epoch's order, not in steps, so a state saved by N processes
    resumes in M processes at the same pair (the global batch is batch_size x processes).
    """
    world, rank = accelerator.num_processes, accelerator.process_index
    num_pairs = len(data.train_pairs)
    per_epoch, _ = optimizer_steps(num_pairs, config, world)
    start = load_state(state_dir, model, optimizer, scheduler)
    step = start.step
    total_steps = planned_steps(num_pairs, config, world, start)
    if log is not None and accelerator.is_main_process:
        log.truncate_after(step)
    outcome = LoopOutcome(steps=step)
    bar = ProgressBar(total_steps, step, enabled=progress and accelerator.is_main_process)
    started = time.perf_counter()
    global_batch = config.batch_size * world * config.grad_accum
    model.train()
    for epoch in range(start.epoch, config.epochs):
        done = start.pairs_done if epoch == start.epoch else 0
        batches = epoch_batches(num_pairs, epoch, done, config, rank, world)
        epoch_steps = math.ceil(len(batches) / config.grad_accum)
        for index in range(epoch_steps):
            group = batches[index * config.grad_accum : (index + 1) * config.grad_accum]
            tick = time.perf_counter()
            sums: dict[str, float] = defaultdict(float)
            step_pairs, step_tokens = sum(len(indices) for indices in group), 0
            for micro, indices in enumerate(group):
                with accelerator.no_sync(model) if micro < len(group) - 1 else contextlib.nullcontext():
                    loss, metrics, pairs, tokens = run_batch(
                        accelerator,
                        model,
                        data.train_pairs,
                        data.train_reference,
                        indices,
                        config,
                        data.pad_id,
                    )
                    accelerator.backward(loss * pairs / step_pairs)
                step_tokens += tokens
                for key, value in {"loss": loss.detach(), **metrics}.items():
                    sums[key] += float(value) * pairs
            grad_norm = float(accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm))
            record = reduce_metrics(accelerator, sums, step_pairs)
            if not (math.isfinite(record["loss"]) and math.isfinite(grad_norm)):
                optimizer.zero_grad(set_to_none=True)  # never apply a non-finite update
                outcome.stopped_because = f"non-finite loss or gradient at step {step + 1}"
                break
            lr = scheduler.get_last_lr()[0]
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            seconds = time.perf_counter() - tick  # before evaluation, which is not training throughput
            record.update(
                step=step,
                epoch=round(step / per_epoch, 4),
                lr=lr,
                grad_norm=grad_norm,
                pairs_per_s=step_pairs * world / seconds,
                tokens_per_s=step_tokens * world / seconds,
                **memory_report(accelerator.unwrap_model(model), optimizer, accelerator.device),
            )
            epoch_done = index == epoch_steps - 1
            if data.eval_pairs and (
                epoch_done or (config.eval_every_steps and step % config.eval_every_steps == 0)
            ):
                record.update(evaluate(accelerator, model, data, config))
            outcome.history.append(record)
            if log is not None and accelerator.is_main_process:
                log.write(record)
            bar.advance(record)
            if state_dir is not None and config.save_every_steps and step % config.save_every_steps == 0:
                position = (
                    Position(step, epoch + 1, 0)
                    if epoch_done
                    else Position(step, epoch, done + (index + 1) * global_batch)
                )
                save_state(accelerator, state_dir, position, model, optimizer, scheduler)
        if outcome.stopped_because:
            break
    bar.close()
    outcome.steps = step
    outcome.seconds = time.perf_counter() - started
    return outcome


class ProgressBar:
    """The training bar (prefkit.progress) with the latest loss, accuracy and throughput as its status."""

    def __init__(self, total: int, completed: int, enabled: bool) -> None:
        self.bar = StepProgress("train", total, unit="steps", enabled=enabled, done=completed).start()

    def advance(self, record: dict[str, Any]) -> None:
        """One optimizer step done; `record` is its metrics line."""
        status = f"loss {record['loss']:.4f}  acc {record.get('rewards/accuracies', float('nan')):.2f}"
        status += f"  {record['pairs_per_s']:.1f} pairs/s"
        self.bar.advance(1, status)

    def close(self) -> None:
        self.bar.close()
