"""One training run of benchmarks/train.py, in its own process: prefkit's DPO loop or TRL's DPOTrainer.

The parent (benchmarks/train.py) starts `python benchmarks/train.py --only '{spec}' ...`; this module runs
that spec and prints one `RESULT {json}` line: throughput of the steps, the reference pass, peak memory,
the per-step losses and the first pairs' token ids (to check both trainers saw the same tokens).
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path


def length_targeted_rows(tokenizer, count: int, prompt_tokens: int, answer_tokens: int, seed: int = 0):
    """Pairs of prompt ~prompt_tokens and answers ~answer_tokens tokens (+-12.5 %), made of words the
    tokenizer encodes as one token each, so both trainers tokenize them to the same lengths."""
    words = sorted(
        tokenizer.convert_tokens_to_string([token])
        for token in tokenizer.get_vocab()
        if token.startswith("Ġ") and token[1:].isalpha() and len(token) > 2
    )
    rng = random.Random(seed)

    def text(tokens: int) -> str:
        spread = max(tokens // 8, 0)
        return "".join(rng.choice(words) for _ in range(max(tokens + rng.randint(-spread, spread), 1)))

    return [
        {"prompt": text(prompt_tokens), "chosen": text(answer_tokens), "rejected": text(answer_tokens)}
        for _ in range(count)
    ]


def training_rows(args, tokenizer) -> list[dict[str, str]]:
    """The benchmark's pairs: length-targeted (presets) or the toy sentences (default)."""
    if args.prompt_tokens:
        return length_targeted_rows(tokenizer, args.pairs, args.prompt_tokens, args.answer_tokens)
    from train import synthetic_pairs

    return synthetic_pairs(args.pairs, args.max_length)


def setup(args):
    import torch
    from prefkit_trainers.dpo.data import tokenize_pairs

    from prefkit.models import load_causal_lm, load_tokenizer

    torch.manual_seed(0)
    tokenizer = load_tokenizer(args.model)
    model = load_causal_lm(args.model, dtype="float32", device=args.device)
    rows = training_rows(args, tokenizer)
    pairs, truncated = tokenize_pairs(
        tokenizer,
        [r["prompt"] for r in rows],
        [r["chosen"] for r in rows],
        [r["rejected"] for r in rows],
        use_chat_template=False,
        max_length=args.max_length,
    )
    return tokenizer, model, rows, pairs, truncated


def matmul_parameters(model) -> int:
    """Parameters that take part in matmuls: all of them but an untied input embedding (a lookup)."""
    total = sum(p.numel() for p in model.parameters())
    embedding = model.get_input_embeddings().weight
    output = model.get_output_embeddings()
    tied = output is not None and output.weight is embedding
    return total if tied else total - embedding.numel()


def pair_tokens(pairs) -> float:
    """Mean tokens of one pair with the prompt once (prompt + chosen + rejected): the MFU's token count."""
    return sum(len(p.prompt) + len(p.chosen) + len(p.rejected) for p in pairs) / max(len(pairs), 1)


def median_rate(rates: list[float]) -> float:
    """Median pairs/s over the steps after the first (warm-up); robust to a noisy shared machine."""
    timed = sorted(rates[1:] or rates)
    return timed[len(timed) // 2]


class PeakMemory:
    """Peak memory of a run from `start()` and of its training steps from `steps()`: CUDA max allocated,
    or on CPU the rise of the process's peak RSS over its RSS at that point (libraries and the loaded
    model left out, for both trainers)."""

    def __init__(self, device: str) -> None:
        self.cuda = device.startswith("cuda")
        self.run_mb = 0.0  # peak before the steps (CPU: rise over the RSS at start)
        self.baseline_mb = 0.0
        self.shift_mb = 0.0

    def _reset(self) -> None:
        import torch

        if self.cuda:
            torch.cuda.reset_peak_memory_stats()
            return
        from prefkit_trainers.dpo.telemetry import current_rss_megabytes, reset_peak_rss

        reset_peak_rss()
        self.baseline_mb = current_rss_megabytes()

    def _peak(self) -> float:
        import torch

        if self.cuda:
            return torch.cuda.max_memory_allocated() / 2**20
        from prefkit_trainers.dpo.telemetry import peak_rss_megabytes

        return peak_rss_megabytes() - self.baseline_mb

    def start(self) -> None:
        self._reset()

    def steps(self) -> None:
        """The training steps start: keep the run's peak so far, count the steps' own from here."""
        self.run_mb = self._peak()
        start_baseline = self.baseline_mb
        self._reset()
        self.shift_mb = self.baseline_mb - start_baseline  # CPU: RSS gained before the steps

    def report(self) -> dict[str, float]:
        """{'peak_memory_mb': the whole run, 'step_peak_mb': the training steps only}."""
        steps = self._peak()
        return {"peak_memory_mb": max(self.run_mb, steps + self.shift_mb), "step_peak_mb": steps}


def run_ours(args, spec: dict) -> dict:
    import torch
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState
    from prefkit_trainers.dpo.batching import longest_sequence
    from prefkit_trainers.dpo.logprobs import CompletionLogProbs, disable_dropout, supports_shared_prefix
    from prefkit_trainers.dpo.loop import LoopConfig, LoopData, build_optimizer, build_scheduler, train_loop
    from prefkit_trainers.dpo.losses import LossOptions, parse_loss_spec
    from prefkit_trainers.dpo.memory import apply_checkpointing
    from prefkit_trainers.dpo.options import checkpoint_interval
    from prefkit_trainers.dpo.plugin import compile_decoder_layers
    from prefkit_trainers.dpo.reference import compute_reference_logprobs

    from prefkit.training.stage import TrainConfig

    tokenizer, model, _, pairs, truncated = setup(args)
    disable_dropout(model)
    AcceleratorState._reset_state()
    accelerator = Accelerator(
        mixed_precision="bf16" if args.dtype == "bf16" else "no", cpu=args.device == "cpu"
    )
    layout = spec["layout"] if supports_shared_prefix(model, longest_sequence(pairs)) else "separate"
    memory = PeakMemory(args.device)
    memory.start()
    started = time.perf_counter()
    reference = compute_reference_logprobs(
        CompletionLogProbs(model),
        pairs,
        pad_id=tokenizer.pad_token_id,
        batch_size=spec["batch_size"] * 2,
        layout=layout,
        device=accelerator.device,
        autocast=accelerator.autocast,
    )
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    reference_seconds = time.perf_counter() - started
    options = TrainConfig(
        learning_rate=args.lr,
        epochs=1,
        batch_size=spec["batch_size"],
        shuffle=False,
        warmup_ratio=0.1,
        scheduler="linear",
    )
    config = LoopConfig.from_options(
        options,
        loss=parse_loss_spec("sigmoid"),
        loss_options=LossOptions(beta=0.1),
        layout=layout,
        eval_every_steps=0,
        max_tokens_per_batch=spec.get("max_tokens_per_batch"),
    )
    apply_checkpointing(model, checkpoint_interval(spec.get("checkpointing", "off")))
    if spec.get("compile"):
        compile_decoder_layers(model)
    scorer = accelerator.prepare(CompletionLogProbs(model))
    optimizer = accelerator.prepare(build_optimizer(scorer, config))
    steps = -(-len(pairs) // spec["batch_size"])
    scheduler = build_scheduler(optimizer, config, steps)
    data = LoopData(pairs, reference, tokenizer.pad_token_id)
    memory.steps()
    outcome = train_loop(accelerator, scorer, optimizer, scheduler, data, config)
    rate = median_rate([r["pairs_per_s"] for r in outcome.history])
    return {
        "pairs_per_s": rate,
        "pairs_per_s_total": len(pairs) / (reference_seconds + len(pairs) / rate),
        "pair_tokens": pair_tokens(pairs),
        "model_tokens_per_pair": median_rate([r["tokens_per_s"] / r["pairs_per_s"] for r in outcome.history]),
        "reference_seconds": reference_seconds,
        **memory.report(),
        "matmul_parameters": matmul_parameters(model),
        "losses": [r["loss"] for r in outcome.history],
        "truncated": truncated,
        "tokens": [[p.prompt, p.chosen, p.rejected] for p in pairs[:4]],
    }


def run_trl(args, spec: dict) -> dict:
    import datasets
    import torch
    import trl
    from transformers import TrainerCallback

    tokenizer, model, rows, pairs, _ = setup(args)
    step_times: list[float] = []

    class StepTimer(TrainerCallback):
        def on_step_begin(self, *_, **__):
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            self.tick = time.perf_counter()

        def on_step_end(self, *_, **__):
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            step_times.append(time.perf_counter() - self.tick)

    batch_size, precompute = spec["batch_size"], spec.get("precompute", False)
    config = trl.DPOConfig(
        output_dir=tempfile.mkdtemp(prefix="trl-bench-"),
        beta=0.1,
        learning_rate=args.lr,
        num_train_epochs=1,
        per_device_train_batch_size=batch_size,
        max_length=args.max_length,
        warmup_steps=0.1,
        lr_scheduler_type="linear",
        train_sampling_strategy="sequential",
        precompute_ref_log_probs=precompute,
        precompute_ref_batch_size=batch_size * 2,
        gradient_checkpointing=spec.get("checkpointing", "full") == "full",
        bf16=args.dtype == "bf16",
        use_cpu=args.device == "cpu",
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        disable_tqdm=True,
        optim="adamw_torch_fused" if args.device.startswith("cuda") else "adamw_torch",
        dataloader_num_workers=0,
    )
    memory = PeakMemory(args.device)
    memory.start()
    started = time.perf_counter()
    trainer = trl.DPOTrainer(
        model=model,
        args=config,
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=tokenizer,
        callbacks=[StepTimer()],
    )
    setup_seconds = time.perf_counter() - started  # includes the reference pass when precomputing
    memory.steps()
    trainer.train()
    sizes = [min(batch_size, len(rows) - start) for start in range(0, len(rows), batch_size)]
    rate = median_rate([size / seconds for size, seconds in zip(sizes, step_times, strict=True)])
    reference_seconds = setup_seconds if precompute else None
    tokenized = trainer.train_dataset
    return {
        "pairs_per_s": rate,
        "pairs_per_s_total": len(rows) / ((reference_seconds or 0.0) + len(rows) / rate),
        "pair_tokens": pair_tokens(pairs),
        "model_tokens_per_pair": None,
        "reference_seconds": reference_seconds,
        **memory.report(),
        "matmul_parameters": matmul_parameters(model),
        "losses": [e["loss"] for e in trainer.state.log_history if "loss" in e],
        "tokens": [
            [tokenized[i]["prompt_ids"], tokenized[i]["chosen_ids"], tokenized[i]["rejected_ids"]]
            for i in range(min(4, len(tokenized)))
        ],
    }


def run(args, spec: dict) -> dict:
    """Run one spec; a CUDA out-of-memory error is a result ({'oom': true}), not a failure."""
    import torch

    torch.manual_seed(0)
    try:
        result = run_trl(args, spec) if spec["trainer"] == "trl" else run_ours(args, spec)
    except torch.OutOfMemoryError:
        return {**spec, "oom": True}
    return {**spec, **result, "oom": False}


def build_model(name: str, scratch: Path) -> str:
    """'tiny' (the test Llama), 'random:ARCH' (benchmarks/architectures.py), or a folder / hub id."""
    if name == "tiny":
        from prefkit.testing import build_tiny_llama

        return str(build_tiny_llama(Path(tempfile.gettempdir()) / "prefkit-bench-tiny-llama"))
    if name.startswith("random:"):
        from architectures import random_model

        return str(random_model(name.removeprefix("random:"), scratch / name.removeprefix("random:")))
    return name
