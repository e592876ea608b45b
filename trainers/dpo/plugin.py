"""`dpo`: prefkit's own trainer plugin. Wires tokenization, reference caching, the loop and saving together."""

from __future__ import annotations

from pathlib import Path

import torch
from prefkit_trainers.dpo.data import TokenizedPair, tokenize_pairs
from prefkit_trainers.dpo.logprobs import CompletionLogProbs, disable_dropout, supports_shared_prefix
from prefkit_trainers.dpo.loop import (
    LoopConfig,
    LoopData,
    build_optimizer,
    build_scheduler,
    planned_steps,
    train_loop,
)
from prefkit_trainers.dpo.losses import LOSS_NAMES
from prefkit_trainers.dpo.reference import (
    compute_reference_logprobs,
    load_cached,
    model_content_hash,
    reference_cache_key,
    save_cached,
)
from prefkit_trainers.dpo.sharding import (
    accelerate_without_fsdp,
    gathered_state_dict,
    is_sharded,
    requested_sharding,
    shard_model,
    unsharded_copy,
)
from prefkit_trainers.dpo.telemetry import MetricsLog, read_metrics
from prefkit_trainers.dpo.train_state import Position, read_position

from prefkit.errors import ConfigError, ModelError
from prefkit.models import load_causal_lm, load_tokenizer, resolve_model
from prefkit.training import METRICS_FILE, TrainConfig, TrainRequest, TrainResult
from prefkit.validation import check_safetensors


class DPOTrainerPlugin:
    """Direct preference optimisation with pure-function losses, cached reference log-probs and accelerate."""

    name = "dpo"

    def check_config(self, config: TrainConfig) -> None:
        """Refuse what this trainer cannot run before any output exists: an unknown loss, no tokenizer."""
        if config.loss not in LOSS_NAMES:
            raise ConfigError(
                f"unknown loss '{config.loss}' (choose from {', '.join(LOSS_NAMES)})", field="loss"
            )
        for model in (config.policy, config.reference):
            if model not in ("policy", "none"):
                load_tokenizer(model, trust_remote_code=config.trust_remote_code)
                check_safetensors(resolve_model(model))

    def train(self, request: TrainRequest) -> TrainResult:
        config = request.config
        self.check_config(config)
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
        shared_prefix = config.shared_prefix and supports_shared_prefix(policy)
        reference, cache_status = reference_logprobs(
            accelerator, request, policy, tokenizer, pairs, shared_prefix
        )

        if config.lora:
            policy = add_lora(policy, config.lora_r, config.lora_alpha, config.lora_dropout)
        if config.gradient_checkpointing or (sharding is not None and sharding.activation_checkpointing):
            policy.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        loop_config = LoopConfig.from_options(config, shared_prefix=shared_prefix)
        model = CompletionLogProbs(policy)
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

        def take(indices: list[int]):
            chosen = [pairs[i] for i in indices]
            return chosen, None if reference is None else (reference[0][indices], reference[1][indices])

        train_pairs, train_reference = take(request.train_indices)
        eval_pairs, eval_reference = take(request.eval_indices)
        data = LoopData(train_pairs, train_reference, tokenizer.pad_token_id, eval_pairs, eval_reference)
        log = MetricsLog(
            request.work_dir / METRICS_FILE, request.work_dir / "tensorboard", accelerator.is_main_process
        )
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
            if config.lora:
                fresh = add_lora(fresh, config.lora_r, config.lora_alpha, config.lora_dropout)
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
                "shared_prefix": shared_prefix,
                "processes": accelerator.num_processes,
                "sharding": "fsdp2" if sharding is not None else None,
            },
        )


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


def check_same_tokenizer(policy_tokenizer, reference: str) -> None:
    """DPO compares log-probs of the same token ids under two models, so they must share a tokenizer."""
    reference_tokenizer = load_tokenizer(reference)
    if (
        reference_tokenizer.get_vocab() != policy_tokenizer.get_vocab()
        or reference_tokenizer.eos_token_id != policy_tokenizer.eos_token_id
    ):
        raise ModelError(
            "the reference model's tokenizer differs from the policy's (vocabulary or EOS)",
            file=resolve_model(reference),
            hint="pick a reference of the same model family, or use --reference policy",
        )


def reference_logprobs(
    accelerator, request: TrainRequest, policy, tokenizer, pairs: list[TokenizedPair], shared_prefix
):
    """(chosen, rejected) reference log-probs for every pair from the persistent cache, computing them once."""
    config = request.config
    if config.reference == "none" or config.loss == "simpo":
        return None, "reference-free"
    location = config.policy if config.reference == "policy" else config.reference
    if config.reference != "policy":
        check_same_tokenizer(tokenizer, config.reference)
    key = reference_cache_key(model_content_hash(location), pairs, accelerator.mixed_precision)
    status = "hit"
    if accelerator.is_main_process and load_cached(request.cache_dir, key, len(pairs)) is None:
        status = "computed"
        model = policy
        if config.reference != "policy":
            model = load_causal_lm(
                location, dtype="float32", device="cpu", trust_remote_code=config.trust_remote_code
            )
        scorer = CompletionLogProbs(model.to(accelerator.device))
        chosen, rejected = compute_reference_logprobs(
            scorer,
            pairs,
            pad_id=tokenizer.pad_token_id,
            batch_size=max(config.batch_size, 8),
            shared_prefix=shared_prefix and supports_shared_prefix(model),
            device=accelerator.device,
            autocast=accelerator.autocast,
        )
        save_cached(request.cache_dir, key, chosen, rejected, model=str(location))
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
