"""The DPO training loop: batches in, log-probs, loss, step, log. Read it top to bottom.

Everything it needs is built elsewhere and handed in: token ids (data.py), cached reference log-probs
(reference.py), the completion-only log-prob module (logprobs.py), the loss (losses.py). The loop runs
unchanged on one CPU, one GPU, or under `accelerate launch` (DDP/FSDP): `accelerator` hides the rest.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch
from prefkit_trainers.dpo.batching import balanced_micro_batches, batch_tokens
from prefkit_trainers.dpo.data import TokenizedPair, epoch_order, rank_batches
from prefkit_trainers.dpo.logprobs import CompletionLogProbs, prepare_attention_mask
from prefkit_trainers.dpo.losses import LossOptions, LossSpec, PairLogProbs, preference_loss
from prefkit_trainers.dpo.packing import collate_layout
from prefkit_trainers.dpo.telemetry import MetricsLog, memory_report
from prefkit_trainers.dpo.train_state import Position, load_state, save_state

from prefkit.progress import StepProgress


@dataclass(frozen=True)
class LoopConfig:
    """Options of one training run (the loop never branches on anything else). No defaults but for the
    optional token budget: prefkit.training.stage.TrainConfig and the plugin's DPOOptions set them;
    `from_options` copies them over."""

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
    max_tokens_per_batch: int | None = None  # token budget per micro-batch (trainers/dpo/batching.py)

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


def step_batches(
    pairs: Sequence[TokenizedPair], shares: Sequence[list[list[int]]], config: LoopConfig, rank: int
) -> list[list[list[int]]]:
    """This rank's micro-batches of each optimizer step, from every rank's micro-batches (`rank_batches`).

    A step takes grad_accum micro-batches of batch_size pairs per rank; with a token budget the same pairs
    are cut into micro-batches by tokens instead (trainers/dpo/batching.py), so the pairs of each step and
    the position in pairs stay what they are without one.
    """
    accum, budget = config.grad_accum, config.max_tokens_per_batch
    steps = []
    for start in range(0, len(shares[rank]), accum):
        groups = [batches[start : start + accum] for batches in shares]
        if budget is None:
            steps.append(groups[rank])
        else:
            merged = [[i for batch in group for i in batch] for group in groups]
            steps.append(balanced_micro_batches(merged, pairs, config.layout, budget)[rank])
    return steps


def epoch_steps(
    pairs: Sequence[TokenizedPair], epoch: int, pairs_done: int, config: LoopConfig, rank: int, world: int
) -> list[list[list[int]]]:
    """This rank's optimizer steps of one epoch (each a list of micro-batches), from pair `pairs_done` on."""
    shares = [epoch_batches(len(pairs), epoch, pairs_done, config, r, world) for r in range(world)]
    return step_batches(pairs, shares, config, rank)


def largest_micro_batch(
    pairs: Sequence[TokenizedPair], config: LoopConfig, rank: int, world: int
) -> list[int]:
    """The micro-batch of this rank with the most model tokens over all epochs (what peak memory follows)."""
    batches = [
        indices
        for epoch in range(config.epochs)
        for step in epoch_steps(pairs, epoch, 0, config, rank, world)
        for indices in step
    ]
    return max(
        batches, key=lambda indices: batch_tokens([pairs[i] for i in indices], config.layout), default=[]
    )


def build_optimizer(model: torch.nn.Module, config: LoopConfig) -> torch.optim.Optimizer:
    """AdamW over the trainable parameters: fused kernels on GPU, multi-tensor (foreach) ones elsewhere."""
    params = [p for p in model.parameters() if p.requires_grad]
    fused = bool(params) and all(p.is_cuda for p in params)
    return torch.optim.AdamW(
        params,
        lr=config.learning_rate,
        weight_decay=config.weight_decay,
        fused=fused or None,
        foreach=None if fused else True,
    )


def build_scheduler(optimizer: torch.optim.Optimizer, config: LoopConfig, total_steps: int):
    """Linear warmup, then cosine / linear decay (or constant)."""
    from transformers import get_scheduler

    name = {"constant": "constant_with_warmup"}.get(config.scheduler, config.scheduler)
    return get_scheduler(name, optimizer, math.ceil(config.warmup_ratio * total_steps), total_steps)


def run_batch(accelerator, model, data_pairs, reference, indices, config: LoopConfig, pad_id: int):
    """Forward one micro-batch: returns (loss, metrics, pairs, tokens). Nothing in it waits for the device:
    `reference` lives on the device already and the metrics stay tensors."""
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
        rows = torch.tensor(indices).to(reference[0].device, non_blocking=True)
        ref_chosen, ref_rejected = reference[0][rows], reference[1][rows]
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


def add_metrics(sums: dict[str, torch.Tensor], loss: torch.Tensor, metrics: dict, pairs: int) -> None:
    """Add a micro-batch's pair-weighted metrics to `sums`, on the device (no host synchronisation)."""
    for key, value in {"loss": loss.detach(), **metrics}.items():
        value = torch.as_tensor(value).detach().to(torch.float64)
        sums[key] = sums[key] + value * pairs if key in sums else value * pairs


def reduce_metrics(
    accelerator, sums: dict[str, torch.Tensor], weight: int, extra: torch.Tensor | None = None
) -> tuple[dict[str, float], float | None]:
    """Pair-weighted means across micro-batches and processes, and `extra` (the gradient norm) as a float.

    This is the one point per optimizer step where the host waits for the device: one `tolist()`.
    """
    keys = sorted(sums)
    device = accelerator.device
    values = torch.stack(
        [sums[k].to(device) for k in keys] + [torch.full((), weight, dtype=torch.float64, device=device)]
    )
    values = accelerator.reduce(values, reduction="sum") if accelerator.num_processes > 1 else values
    if extra is not None:
        extra = extra.full_tensor() if hasattr(extra, "full_tensor") else extra  # FSDP2: a DTensor
        values = torch.cat([values, extra.detach().to(device, torch.float64).reshape(1)])
    host = values.tolist()
    count = len(keys) + 1
    return {key: host[i] / host[count - 1] for i, key in enumerate(keys)}, (
        host[count] if extra is not None else None
    )


@torch.no_grad()
def evaluate(accelerator, model, data: LoopData, config: LoopConfig) -> dict[str, float]:
    """DPO metrics on the evaluation split (prefixed 'eval/')."""
    model.eval()
    sums: dict[str, torch.Tensor] = {}
    world, rank = accelerator.num_processes, accelerator.process_index
    order = list(range(len(data.eval_pairs)))
    shares = [rank_batches(order, config.batch_size, r, world) for r in range(world)]
    eval_config = replace(config, grad_accum=1)
    reference = on_device(data.eval_reference, accelerator.device)
    count = 0
    for step in step_batches(data.eval_pairs, shares, eval_config, rank):
        for indices in step:
            loss, metrics, _, _ = run_batch(
                accelerator, model, data.eval_pairs, reference, indices or step[0][:1], config, data.pad_id
            )
            add_metrics(sums, loss, metrics, len(indices))
            count += len(indices)
    model.train()
    means, _ = reduce_metrics(accelerator, sums, count)
    return {f"eval/{key}": value for key, value in means.items()}


def on_device(reference: tuple[torch.Tensor, torch.Tensor] | None, device) -> tuple | None:
    """Cached reference log-probs moved to the device once (indexing them there needs no host wait)."""
    return None if reference is None else (reference[0].to(device), reference[1].to(device))


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
    reference = on_device(data.train_reference, accelerator.device)
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
        steps = epoch_steps(data.train_pairs, epoch, done, config, rank, world)
        for index, group in enumerate(steps):
            tick = time.perf_counter()
            sums: dict[str, torch.Tensor] = {}
            step_pairs, step_tokens = sum(len(indices) for indices in group), 0
            for micro, indices in enumerate(group):
                # an empty micro-batch keeps this rank in step with the others' collectives: one of its
                # pairs runs with weight zero (trainers/dpo/batching.py)
                with accelerator.no_sync(model) if micro < len(group) - 1 else contextlib.nullcontext():
                    loss, metrics, _, tokens = run_batch(
                        accelerator,
                        model,
                        data.train_pairs,
                        reference,
                        indices or group[0][:1],
                        config,
                        data.pad_id,
                    )
                    accelerator.backward(loss * (len(indices) / step_pairs))
                step_tokens += tokens if indices else 0
                add_metrics(sums, loss, metrics, len(indices))
            norm = accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            record, grad_norm = reduce_metrics(accelerator, sums, step_pairs, norm)
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
            epoch_done = index == len(steps) - 1
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
