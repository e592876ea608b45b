"""`trl`: hand the same preferences artifact to TRL's DPOTrainer, so users can compare it with `dpo`.

Shared options (TrainConfig) and the plugin's own (TRLOptions, `--trainer-option key=value`) map onto
`trl.DPOConfig` (TRL >= 1.16): every loss type and mix, f-divergences, WPO, LD-DPO, LoRA. What TRL's
DPOTrainer has no equivalent for (R-DPO, SimPO, reference-free, label smoothing of the sigmoid loss, prefkit's
batch layouts) is refused with one line naming the option, before any work; nothing is silently ignored.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from pydantic import BaseModel

from prefkit.chat import wants_chat_template
from prefkit.conversation import assistant_turn, completion_text, is_conversation
from prefkit.errors import ConfigError, require_module
from prefkit.models import check_same_tokenizer, load_causal_lm, load_tokenizer
from prefkit.training.stage import METRICS_FILE, TrainConfig, TrainRequest, TrainResult, loss_terms
from prefkit.validation import STRICT_CONFIG

# TRL 1.16's loss_type names; prefkit's `dpo` names the same losses the same way
LOSS_TYPES = frozenset(
    {
        "sigmoid",
        "hinge",
        "ipo",
        "exo_pair",
        "nca_pair",
        "robust",
        "bco_pair",
        "sppo_hard",
        "aot",
        "aot_unpaired",
        "apo_zero",
        "apo_down",
        "discopop",
        "sft",
        "sigmoid_norm",
    }
)
LABEL_SMOOTHING_LOSSES = {
    "robust",
    "exo_pair",
    "aot",
    "aot_unpaired",
}  # TRL's sigmoid ignores label_smoothing
METRIC_NAMES = {"learning_rate": "lr"}


class TRLOptions(BaseModel):
    """The `trl` trainer's options: each maps onto one DPOConfig / LoraConfig field."""

    model_config = STRICT_CONFIG  # unknown keys and NaN/inf refused
    # options of the `dpo` trainer TRL has no equivalent for: refused with this reason, never ignored
    refused: ClassVar[dict[str, str]] = {
        "alpha": "R-DPO's length penalty is a `dpo` loss (--trainer dpo --loss rdpo)",
        "gamma": "SimPO's margin is a `dpo` loss (--trainer dpo --loss simpo)",
        "layout": "TRL pads every chosen and rejected sequence separately (its padding_free pads anyway)",
        "shared_prefix": "TRL runs the prompt once per completion",
    }

    label_smoothing: float = 0.0  # DPOConfig.label_smoothing (read by robust, exo_pair, aot)
    discopop_tau: float = 0.05  # DPOConfig.discopop_tau
    f_divergence: str = "reverse_kl"  # DPOConfig.f_divergence_type
    f_alpha: float = 0.5  # DPOConfig.f_alpha_divergence_coef
    wpo: bool = False  # DPOConfig.use_weighting
    ld_alpha: float | None = None  # DPOConfig.ld_alpha
    gradient_checkpointing: bool = False
    lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    eval_every_steps: int = 0  # eval_strategy "steps" with eval_steps (0 = once per epoch)


def loss_mix(loss: str) -> tuple[list[str], list[float]]:
    """prefkit's `--loss` ('sigmoid' or 'sigmoid:1,sft:0.2') as TRL's loss_type and loss_weights lists."""
    try:
        terms = loss_terms(loss)
    except ValueError as error:
        raise ConfigError(str(error), field="loss") from None
    return [name for name, _ in terms], [weight for _, weight in terms]


def check_supported(config: TrainConfig, options: TRLOptions) -> None:
    """Refuse what TRL's DPOTrainer cannot express, one line naming it, instead of training something else."""
    names, _ = loss_mix(config.loss)
    unsupported = [name for name in names if name not in LOSS_TYPES]
    if unsupported:
        raise ConfigError(
            f"the trl trainer has no loss '{unsupported[0]}'",
            field="loss",
            hint=f"TRL's loss types: {', '.join(sorted(LOSS_TYPES))}; --trainer dpo has every prefkit loss",
        )
    if config.reference == "none":
        raise ConfigError(
            "the trl trainer cannot train reference-free (reference 'none')",
            field="reference",
            hint="use --trainer dpo",
        )
    if options.label_smoothing and not set(names) & LABEL_SMOOTHING_LOSSES:
        raise ConfigError(
            f"the trl trainer cannot honour option 'label_smoothing' with loss '{config.loss}' "
            "(TRL reads it only for robust, exo_pair, aot, aot_unpaired)",
            field="options.label_smoothing",
            hint="conservative DPO (label-smoothed sigmoid) is --trainer dpo",
        )


def trl_metrics_record(entry: dict[str, Any]) -> dict[str, Any]:
    """One TRL log_history entry in prefkit's metrics.jsonl names ('eval_rewards/x' -> 'eval/rewards/x')."""
    record: dict[str, Any] = {}
    for key, value in entry.items():
        if key.startswith("eval_"):
            key = "eval/" + key.removeprefix("eval_")
        record[METRIC_NAMES.get(key, key)] = value
    return record


def as_turns(completion: str | list[dict[str, str]]) -> list[dict[str, str]]:
    """A completion as TRL's conversational format wants it: a list of assistant messages."""
    return list(completion) if is_conversation(completion) else assistant_turn(completion)


def trl_row(row: dict[str, Any], chat_template: bool) -> dict[str, Any]:
    """One preference pair in TRL's format: a conversation goes as is (completions as assistant turns, so
    TRL renders them with the template); a string prompt is wrapped as one user turn when the template is on."""
    prompt, chosen, rejected = row["prompt"], row["chosen"], row["rejected"]
    if is_conversation(prompt):
        return {"prompt": prompt, "chosen": as_turns(chosen), "rejected": as_turns(rejected)}
    if chat_template:
        return {
            "prompt": [{"role": "user", "content": prompt}],
            "chosen": assistant_turn(completion_text(chosen)),
            "rejected": assistant_turn(completion_text(rejected)),
        }
    return {"prompt": prompt, "chosen": completion_text(chosen), "rejected": completion_text(rejected)}


class TRLTrainerPlugin:
    """TRL's DPOTrainer on prefkit artifacts (same split, tokenizer and hyper-parameters)."""

    name = "trl"
    options_model = TRLOptions

    def check(self, config: TrainConfig, options: TRLOptions) -> None:
        """Run before any work (prefkit.training.stage.trainer_options)."""
        check_supported(config, options)

    def check_config(self, config: TrainConfig) -> None:
        """Refuse a policy without tokenizer before any output exists (loss and options: `check`)."""
        load_tokenizer(config.policy, trust_remote_code=config.trust_remote_code)

    def train(self, request: TrainRequest) -> TrainResult:
        config = request.config
        options = request.options if request.options is not None else TRLOptions(**config.options)
        check_supported(config, options)
        loss_types, loss_weights = loss_mix(config.loss)
        trl = require_module("trl", "pip install 'prefkit[trl]'")
        datasets = require_module("datasets", "pip install 'prefkit[trl]'")
        import torch
        from accelerate.state import AcceleratorState
        from transformers.trainer_utils import get_last_checkpoint

        AcceleratorState._reset_state()  # options of an earlier trainer in this process must not leak into TRL
        tokenizer = load_tokenizer(config.policy, trust_remote_code=config.trust_remote_code)
        table = request.preferences.table().to_dicts()
        conversational = wants_chat_template(tokenizer, request.use_chat_template) or bool(
            table and is_conversation(table[0]["prompt"])
        )

        def dataset(indices: list[int]):
            rows = [trl_row(table[i], conversational) for i in indices]
            return datasets.Dataset.from_list(rows) if rows else None

        ref_model = None
        if config.reference != "policy":
            check_same_tokenizer(tokenizer, config.reference)
            ref_model = load_causal_lm(config.reference, dtype="float32", device="cpu")
        model = load_causal_lm(
            config.policy, dtype="float32", device="cpu", trust_remote_code=config.trust_remote_code
        )
        cuda = torch.cuda.is_available()
        eval_dataset = dataset(request.eval_indices)
        output_dir = request.state_dir / "trl"
        eval_strategy = "no"
        if eval_dataset is not None:
            eval_strategy = "steps" if options.eval_every_steps else "epoch"
        args = trl.DPOConfig(
            output_dir=str(output_dir),
            beta=config.beta,
            loss_type=loss_types,
            loss_weights=loss_weights,
            label_smoothing=options.label_smoothing,
            discopop_tau=options.discopop_tau,
            f_divergence_type=options.f_divergence,
            f_alpha_divergence_coef=options.f_alpha,
            use_weighting=options.wpo,
            ld_alpha=options.ld_alpha,
            learning_rate=config.learning_rate,
            num_train_epochs=config.epochs,
            per_device_train_batch_size=config.batch_size,
            per_device_eval_batch_size=config.batch_size,
            gradient_accumulation_steps=config.grad_accum,
            max_length=config.max_length,
            warmup_steps=config.warmup_ratio,  # a float < 1 is a ratio in transformers 5
            lr_scheduler_type={"constant": "constant_with_warmup"}.get(config.scheduler, config.scheduler),
            weight_decay=config.weight_decay,
            max_grad_norm=config.max_grad_norm,
            seed=config.seed,
            bf16=config.dtype == "bf16" or (config.dtype == "auto" and cuda),
            gradient_checkpointing=options.gradient_checkpointing,
            precompute_ref_log_probs=True,
            train_sampling_strategy="random" if config.shuffle else "sequential",
            logging_steps=1,
            save_strategy="steps" if config.save_every_steps else "no",
            save_steps=config.save_every_steps or 500,
            eval_strategy=eval_strategy,
            eval_steps=options.eval_every_steps or None,
            report_to=[],
            use_cpu=not cuda,
            disable_tqdm=not request.progress,
        )
        peft_config = None
        if options.lora:
            peft = require_module("peft", "pip install 'prefkit[peft]'")
            peft_config = peft.LoraConfig(
                r=options.lora_r,
                lora_alpha=options.lora_alpha,
                lora_dropout=options.lora_dropout,
                target_modules="all-linear",
                task_type="CAUSAL_LM",
            )
        trainer = trl.DPOTrainer(
            model=model,
            ref_model=ref_model,
            args=args,
            train_dataset=dataset(request.train_indices),
            eval_dataset=eval_dataset,
            processing_class=tokenizer,
            peft_config=peft_config,
        )
        last = get_last_checkpoint(str(output_dir)) if output_dir.exists() else None
        trainer.train(resume_from_checkpoint=last)
        trained = trainer.model
        if hasattr(trained, "merge_and_unload"):
            trained = trained.merge_and_unload()
        trained.save_pretrained(request.work_dir, safe_serialization=True)
        tokenizer.save_pretrained(request.work_dir)
        history: list[dict[str, Any]] = []
        for entry in trainer.state.log_history:
            record = trl_metrics_record(entry)
            if "eval/loss" in record and history and history[-1].get("step") == record.get("step"):
                history[-1].update(record)  # an epoch's eval metrics join that step's record, as in `dpo`
            elif "loss" in record or "eval/loss" in record:
                history.append(record)
        with open(request.work_dir / METRICS_FILE, "w") as handle:
            handle.writelines(json.dumps(record) + "\n" for record in history)
        return TrainResult(
            history=history,
            steps=trainer.state.global_step,
            extra={"trl_version": trl.__version__, "conversational": conversational},
            # TRL closes every completion with an EOS: rows `prefkit label --truncated no-eos` flagged
            # otherwise are trained as under `keep`; recorded so the manifest says so
            counts={
                "eos_flags_ignored": sum(
                    row.get("eos_chosen") is False or row.get("eos_rejected") is False for row in table
                )
            },
        )
