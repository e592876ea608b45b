"""`dpo`: prefkit's own trainer plugin. Wires tokenization, reference caching, the loop and saving together."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from prefkit_trainers.dpo.batching import batch_tokens, longest_sequence
from prefkit_trainers.dpo.data import TokenizedPair, tokenize_pairs
from prefkit_trainers.dpo.logprobs import CompletionLogProbs, disable_dropout, supports_shared_prefix
from prefkit_trainers.dpo.loop import (
    LoopConfig,
    LoopData,
    build_optimizer,
    build_scheduler,
    largest_micro_batch,
    planned_steps,
    train_loop,
)
from prefkit_trainers.dpo.losses import needs_reference
from prefkit_trainers.dpo.memory import (
    AUTO_INTERVALS,
    GB,
    MemoryPlan,
    apply_checkpointing,
    out_of_memory_message,
    out_of_memory_reported,
    plan_memory,
)
from prefkit_trainers.dpo.options import DPOOptions, checked_loss, checkpointing_name
from prefkit_trainers.dpo.reference import (
    compute_reference_logprobs,
    load_cached,
    model_content_hash,
    reference_cache_key,
    save_cached,
)
from prefkit_trainers.dpo.sharding import (
    accelerate_without_fsdp,
    decoder_layer_classes,
    gathered_state_dict,
    is_sharded,
    requested_sharding,
    shard_model,
    unsharded_copy,
)
from prefkit_trainers.dpo.telemetry import MetricsLog, read_metrics
from prefkit_trainers.dpo.train_state import Position, read_position

from prefkit.errors import ConfigError, ModelError
from prefkit.models import check_same_tokenizer, load_causal_lm, load_tokenizer, resolve_model
from prefkit.progress import say
from prefkit.training.stage import METRICS_FILE, TrainConfig, TrainRequest, TrainResult
from prefkit.validation import check_safetensors


class DPOTrainerPlugin:
    """Direct preference optimisation with pure-function losses, cached reference log-probs and accelerate."""

    name = "dpo"
    options_model = DPOOptions

    def check(self, config: TrainConfig, options: DPOOptions) -> None:
        """Refuse a bad loss name or mix, or a combination the losses do not define, before any work."""
        try:
            checked_loss(config.loss, options, config.betas()[0])
        except ValueError as error:
            raise ConfigError(str(error), field="loss") from None

    def check_config(self, config: TrainConfig) -> None:
        """Refuse models this trainer cannot run before any output exists: no tokenizer, unreadable weights
        (the loss and the options are checked by `check`)."""
        for model in (config.policy, config.reference):
            if model not in ("policy", "none"):
                load_tokenizer(model, trust_remote_code=config.trust_remote_code)
                check_safetensors(resolve_model(model))

    def train(self, request: TrainRequest) -> TrainResult:
        config = request.config
        self.check_config(config)
        options = request.options if request.options is not None else DPOOptions(**config.options)
        self.check(config, options)
        loss_spec, loss_options = checked_loss(config.loss, options, config.betas()[0])
        from accelerate import Accelerator
        from accelerate.state import AcceleratorState
        from accelerate.utils import set_seed

        sharding = requested_sharding()  # refuses FSDP settings it cannot honour, before any work
        # an earlier trainer in this process (TRL, another dtype) may have fixed other options; the process
        # group (PartialState) is kept
        AcceleratorState._reset_state()
        # cpu=True when there is no GPU: accelerate only forms a multi-process CPU (gloo) group when told so
        with accelerate_without_fsdp():
            accelerator = Accelerator(
                mixed_precision=mixed_precision(config.dtype), cpu=not torch.cuda.is_available()
            )
        set_seed(config.seed)
        device = accelerator.device
        tokenizer = load_tokenizer(config.policy, trust_remote_code=config.trust_remote_code)
        table = request.preferences.table()
        pairs, truncated = tokenize_pairs(
            tokenizer,
            table["prompt"].to_list(),
            table["chosen"].to_list(),
            table["rejected"].to_list(),
            use_chat_template=request.use_chat_template,
            max_length=config.max_length,
            # per-row EOS flags from `prefkit label --truncated` (older preferences lack them: EOS everywhere)
            eos_chosen=eos_flags(table, "eos_chosen"),
            eos_rejected=eos_flags(table, "eos_rejected"),
        )
        policy = load_causal_lm(
            config.policy, dtype="float32", device="cpu", trust_remote_code=config.trust_remote_code
        )
        disable_dropout(policy)
        # the two masked layouts need sdpa/eager attention and no window a sequence reaches; other models
        # fall back to separate rows
        layout = options.layout if supports_shared_prefix(policy, longest_sequence(pairs)) else "separate"
        with out_of_memory_reported(lambda: out_of_memory_message("the reference pass", None, device)):
            reference, cache_status = reference_logprobs(
                accelerator, request, policy, tokenizer, pairs, layout, options, needs_reference(loss_spec)
            )

        if options.lora:
            policy = add_lora(policy, options.lora_r, options.lora_alpha, options.lora_dropout)
        loop_config = LoopConfig.from_options(
            config,
            loss=loss_spec,
            loss_options=loss_options,
            layout=layout,
            eval_every_steps=options.eval_every_steps,
            max_tokens_per_batch=options.max_tokens_per_batch,
        )

        def take(indices: list[int]):
            chosen = [pairs[i] for i in indices]
            return chosen, None if reference is None else (reference[0][indices], reference[1][indices])

        train_pairs, train_reference = take(request.train_indices)
        eval_pairs, eval_reference = take(request.eval_indices)
        interval = options.checkpoint_interval()
        if interval == 0 and sharding is not None and sharding.activation_checkpointing:
            interval = 1  # fsdp_activation_checkpointing: true in the accelerate config
        plan = memory_plan(accelerator, policy, train_pairs, loop_config, interval, sharding is not None)
        checkpointing = checkpointing_name(plan.interval)
        say(request.progress and accelerator.is_main_process, "[train] " + plan.describe(checkpointing))
        apply_checkpointing(policy, plan.interval)
        if options.compile:
            compile_decoder_layers(policy)
        model = CompletionLogProbs(policy, ld_alpha=options.ld_alpha, wpo=options.wpo)
        if sharding is not None:
            model = shard_model(model.to(accelerator.device), sharding, accelerator.device)
        else:
            model = accelerator.prepare(model)
        optimizer = accelerator.prepare(build_optimizer(model, loop_config))
        saved = read_position(request.state_dir)
        total_steps = planned_steps(
            len(request.train_indices),
            loop_config,
            accelerator.num_processes,
            saved[0] if saved else Position(),
        )
        scheduler = build_scheduler(optimizer, loop_config, total_steps)

        data = LoopData(train_pairs, train_reference, tokenizer.pad_token_id, eval_pairs, eval_reference)
        log = MetricsLog(
            request.work_dir / METRICS_FILE, request.work_dir / "tensorboard", accelerator.is_main_process
        )
        with out_of_memory_reported(lambda: out_of_memory_message("training", plan, device)):
            outcome = train_loop(
                accelerator,
                model,
                optimizer,
                scheduler,
                data,
                loop_config,
                state_dir=request.state_dir,
                log=log,
                progress=request.progress,
            )
        log.close()

        def unsharded_policy():
            fresh = load_causal_lm(
                config.policy, dtype="float32", device="cpu", trust_remote_code=config.trust_remote_code
            )
            if options.lora:
                fresh = add_lora(fresh, options.lora_r, options.lora_alpha, options.lora_dropout)
            return fresh

        save_model(accelerator, model, tokenizer, request.work_dir, unsharded_policy)
        history = (
            read_metrics(request.work_dir / METRICS_FILE) if accelerator.is_main_process else outcome.history
        )
        return TrainResult(
            history=history,
            steps=outcome.steps,
            stopped_because=outcome.stopped_because,
            counts={"truncated_pairs": truncated},
            extra={
                "reference_cache": cache_status,
                "layout": layout,
                "processes": accelerator.num_processes,
                "sharding": "fsdp2" if sharding is not None else None,
                "activation_checkpointing": checkpointing,
                "memory_estimate_gb": round(plan.estimate.total / GB, 3),
                "max_tokens_per_batch": options.max_tokens_per_batch,
                "compile": options.compile,
            },
        )


def memory_plan(accelerator, policy, train_pairs, config: LoopConfig, interval: int | None, sharded: bool):
    """The memory estimate over this process's largest micro-batch, and the checkpointing `auto` picks.

    Under several processes `auto` takes the most checkpointing any process needs: all must recompute
    the same layers (FSDP gathers a checkpointed layer's weights again in its backward)."""
    world = accelerator.num_processes
    largest = [
        train_pairs[i] for i in largest_micro_batch(train_pairs, config, accelerator.process_index, world)
    ]

    def plan(every: int | None) -> MemoryPlan:
        return plan_memory(
            policy,
            tokens=batch_tokens(largest, config.layout),
            completion_tokens=sum(len(pair.chosen) + len(pair.rejected) for pair in largest),
            activation_bytes=2 if accelerator.mixed_precision == "bf16" else 4,
            device=accelerator.device,
            interval=every,
            shards=world if sharded else 1,
        )

    chosen = plan(interval)
    if interval is None and world > 1:
        position = torch.tensor([AUTO_INTERVALS.index(chosen.interval)], device=accelerator.device)
        agreed = AUTO_INTERVALS[int(accelerator.gather(position).max())]
        chosen = dataclasses.replace(plan(agreed), available=chosen.available)
    return chosen


def compile_decoder_layers(model: torch.nn.Module) -> None:
    """torch.compile each decoder layer in place (regional compilation: one graph reused by every layer)."""
    classes = tuple(decoder_layer_classes(model))
    for module in model.modules():
        if isinstance(module, classes):
            module.compile()


def eos_flags(table, column: str) -> list[bool] | None:
    """The preferences' per-row EOS flag of one side (a null counts as true), or None when absent."""
    if column not in table.columns:
        return None
    return [flag is not False for flag in table[column].to_list()]


def mixed_precision(dtype: str) -> str:
    """'auto' = bf16 autocast on GPU, fp32 on CPU; 'bf16' asks for autocast anywhere."""
    if dtype == "bf16" or (dtype == "auto" and torch.cuda.is_available()):
        return "bf16"
    return "no"


def add_lora(model, rank: int, alpha: int, dropout: float):
    """Wrap the policy with LoRA adapters on every linear layer (merged into the weights on save)."""
    from prefkit.errors import require_module

    peft = require_module("peft", "pip install 'prefkit[peft]'")
    lora = peft.LoraConfig(
        r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules="all-linear", task_type="CAUSAL_LM"
    )
    return peft.get_peft_model(model, lora)


def reference_logprobs(
    accelerator,
    request: TrainRequest,
    policy,
    tokenizer,
    pairs: list[TokenizedPair],
    layout: str,
    options: DPOOptions,
    needed: bool,
):
    """(chosen, rejected) reference log-probs for every pair from the persistent cache, computing them once."""
    config = request.config
    if config.reference == "none" or not needed:
        return None, "reference-free"
    location = config.policy if config.reference == "policy" else config.reference
    if config.reference != "policy":
        check_same_tokenizer(tokenizer, config.reference)
    key = reference_cache_key(
        model_content_hash(location), pairs, accelerator.mixed_precision, options.ld_alpha
    )
    status = "hit"
    if accelerator.is_main_process and load_cached(request.cache_dir, key, len(pairs)) is None:
        status = "computed"
        model = policy
        if config.reference != "policy":
            model = load_causal_lm(
                location, dtype="float32", device="cpu", trust_remote_code=config.trust_remote_code
            )
        scorer = CompletionLogProbs(model.to(accelerator.device), ld_alpha=options.ld_alpha)
        chosen, rejected = compute_reference_logprobs(
            scorer,
            pairs,
            pad_id=tokenizer.pad_token_id,
            batch_size=max(config.batch_size, 8),
            layout=layout if supports_shared_prefix(model, longest_sequence(pairs)) else "separate",
            device=accelerator.device,
            autocast=accelerator.autocast,
        )
        save_cached(
            request.cache_dir,
            key,
            chosen,
            rejected,
            model=str(location),
            precision=accelerator.mixed_precision,
        )
        if model is not policy:
            del model, scorer
    accelerator.wait_for_everyone()
    cached = load_cached(request.cache_dir, key, len(pairs))
    if cached is None:
        raise ModelError(
            "reference log-probs were not found in the cache after computing them", file=request.cache_dir
        )
    return cached, status


def save_model(accelerator, model, tokenizer, folder: Path, unsharded_policy) -> None:
    """Write the policy as a Hugging Face folder (safetensors + tokenizer); LoRA adapters are merged first.

    A sharded (FSDP) model is gathered into a full state dict on the main process and loaded into a fresh
    unsharded copy from `unsharded_policy()`, so the folder is the same as a single process would write.
    """
    accelerator.wait_for_everyone()
    state_dict = gathered_state_dict(model) if is_sharded(model) else None
    if accelerator.is_main_process:
        if state_dict is not None:
            lm_state = {key.removeprefix("lm."): value for key, value in state_dict.items()}
            lm = unsharded_copy(unsharded_policy, lm_state)
        else:
            lm = accelerator.unwrap_model(model).lm
        if hasattr(lm, "merge_and_unload"):
            lm = lm.merge_and_unload()
        lm.save_pretrained(folder, safe_serialization=True)
        tokenizer.save_pretrained(folder)
    accelerator.wait_for_everyone()
