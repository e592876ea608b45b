"""`trl`: hand the same preferences artifact to TRL's DPOTrainer, so users can compare it with `dpo`.

Options map onto `trl.DPOConfig` (TRL >= 1.0); those TRL's DPOTrainer has no equivalent for (R-DPO's alpha,
SimPO, reference-free, label smoothing of the sigmoid loss) raise a ConfigError naming the `dpo` trainer.
"""

from __future__ import annotations

import json
from typing import Any

from prefkit.chat import wants_chat_template
from prefkit.conversation import assistant_turn, completion_text, is_conversation
from prefkit.errors import ConfigError, require_module
from prefkit.models import load_causal_lm, load_tokenizer
from prefkit.training import METRICS_FILE, TrainConfig, TrainRequest, TrainResult

LOSS_TYPES = {"sigmoid": "sigmoid", "ipo": "ipo", "hinge": "hinge", "sft": "sft"}
METRIC_NAMES = {"learning_rate": "lr"}


def check_supported(config: TrainConfig) -> None:
    """Refuse options TRL's DPOTrainer cannot express, instead of silently training something else."""
    problems = []
    if config.loss not in LOSS_TYPES:
        problems.append(f"loss '{config.loss}'")
    if config.reference == "none":
        problems.append("reference 'none'")
    if config.alpha or config.gamma:
        problems.append("alpha/gamma")
    if config.label_smoothing:
        problems.append("label_smoothing")
    if problems:
        raise ConfigError(
            f"the trl trainer does not support {', '.join(problems)}",
            field="trainer",
            hint="use --trainer dpo, which supports every prefkit loss",
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

    def check_config(self, config: TrainConfig) -> None:
        """Refuse unsupported options and a policy without tokenizer before any output exists."""
        check_supported(config)
        load_tokenizer(config.policy, trust_remote_code=config.trust_remote_code)

    def train(self, request: TrainRequest) -> TrainResult:
        config = request.config
        check_supported(config)
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
            from prefkit_trainers.dpo.plugin import check_same_tokenizer

            check_same_tokenizer(tokenizer, config.reference)
            ref_model = load_causal_lm(config.reference, dtype="float32", device="cpu")
        model = load_causal_lm(
            config.policy, dtype="float32", device="cpu", trust_remote_code=config.trust_remote_code
        )
        cuda = torch.cuda.is_available()
        eval_dataset = dataset(request.eval_indices)
        output_dir = request.state_dir / "trl"
        args = trl.DPOConfig(
            output_dir=str(output_dir),
            beta=config.beta,
            loss_type=[LOSS_TYPES[config.loss]],
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
            gradient_checkpointing=config.gradient_checkpointing,
            precompute_ref_log_probs=True,
            train_sampling_strategy="random" if config.shuffle else "sequential",
            logging_steps=1,
            save_strategy="steps" if config.save_every_steps else "no",
            save_steps=config.save_every_steps or 500,
            eval_strategy="epoch" if eval_dataset is not None else "no",
            report_to=[],
            use_cpu=not cuda,
            disable_tqdm=not request.progress,
        )
        peft_config = None
        if config.lora:
            peft = require_module("peft", "pip install 'prefkit[peft]'")
            peft_config = peft.LoraConfig(
                r=config.lora_r,
                lora_alpha=config.lora_alpha,
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
