"""Training speed: prefkit's DPO loop vs TRL's DPOTrainer on the same pairs, model, batch size and hardware.

Each trainer runs in its own subprocess (so peak memory is its own) on synthetic preference pairs built in
memory (no polars, no artifacts), in the same sequential data order, with the same optimizer, schedule and
clipping. prefkit runs once per batch layout (separate rows, shared prefix, padding-free). Reported: median pairs/s and
data tokens/s over the training steps after the first (warm-up), best of --repeats interleaved runs, tokens
the forward pass runs per pair (padding included), reference pass time, peak memory (CUDA max allocated, or
peak RSS on CPU), and the largest per-step loss difference from the first prefkit layout.

    python benchmarks/train.py                                   # tiny model, CPU
    python benchmarks/train.py --model smollm2 --pairs 32 --max-length 128
    python benchmarks/train.py --model /path/to/hf-folder --device cuda --dtype bf16 --batch-size 8 --pairs 512

TRL is skipped with a printed reason when it cannot be imported (it is optional).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOPICS = "movie book city song meal garden friend weather phone game trip teacher".split()
POSITIVE = "wonderful great lovely delightful happy excellent".split()
NEGATIVE = "terrible awful boring sad disappointing poor".split()


def make_importable() -> None:
    """Let a plain checkout run this file: the repo root on sys.path, trainers/ as `prefkit_trainers`."""
    sys.path.insert(0, str(ROOT))
    if importlib.util.find_spec("prefkit_trainers") is None:
        spec = importlib.util.spec_from_file_location(
            "prefkit_trainers",
            ROOT / "trainers" / "__init__.py",
            submodule_search_locations=[str(ROOT / "trainers")],
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules["prefkit_trainers"] = module
        spec.loader.exec_module(module)


def synthetic_pairs(count: int, max_length: int) -> list[dict[str, str]]:
    """Deterministic pairs with a long-ish shared prompt and completions of varied length."""
    rows = []
    for i in range(count):
        topic, good, bad = (
            TOPICS[i % len(TOPICS)],
            POSITIVE[i % len(POSITIVE)],
            NEGATIVE[(i * 7) % len(NEGATIVE)],
        )
        context = " ".join(
            f"Note {j}: the {TOPICS[(i + j) % len(TOPICS)]} matters." for j in range(max_length // 48)
        )
        repeat = 1 + i % 4
        rows.append(
            {
                "prompt": f"{context}\nWrite about a {topic}.\n",
                "chosen": " ".join([f"The {topic} was {good} and I felt happy."] * repeat),
                "rejected": " ".join([f"The {topic} was {bad} and I felt sad about it."] * (5 - repeat)),
            }
        )
    return rows


def setup(args):
    import torch
    from prefkit_trainers.dpo.data import tokenize_pairs

    from prefkit.models import load_causal_lm, load_tokenizer

    torch.manual_seed(0)
    tokenizer = load_tokenizer(args.model)
    model = load_causal_lm(args.model, dtype="float32", device=args.device)
    rows = synthetic_pairs(args.pairs, args.max_length)
    pairs, truncated = tokenize_pairs(
        tokenizer,
        [r["prompt"] for r in rows],
        [r["chosen"] for r in rows],
        [r["rejected"] for r in rows],
        use_chat_template=False,
        max_length=args.max_length,
    )
    return tokenizer, model, rows, pairs, truncated


def pair_tokens(pairs) -> float:
    """Mean tokens of one pair as TRL feeds it without padding (prompt + chosen + prompt + rejected): the
    same data-token count for every trainer and layout, so tokens/s compares like with like."""
    total = sum(2 * len(p.prompt) + len(p.chosen) + len(p.rejected) for p in pairs)
    return total / max(len(pairs), 1)


def median_rate(rates: list[float]) -> float:
    """Median pairs/s over the steps after the first (warm-up); robust to a noisy shared machine."""
    timed = sorted(rates[1:] or rates)
    return timed[len(timed) // 2]


def peak_memory_mb(device: str) -> float:
    import torch
    from prefkit_trainers.dpo.telemetry import peak_rss_megabytes

    return torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else peak_rss_megabytes()


def run_ours(args) -> dict:
    from accelerate import Accelerator
    from prefkit_trainers.dpo.logprobs import CompletionLogProbs, disable_dropout, supports_shared_prefix
    from prefkit_trainers.dpo.loop import LoopConfig, LoopData, build_optimizer, build_scheduler, train_loop
    from prefkit_trainers.dpo.losses import LossOptions, parse_loss_spec
    from prefkit_trainers.dpo.reference import compute_reference_logprobs

    from prefkit.training.stage import TrainConfig

    tokenizer, model, _, pairs, truncated = setup(args)
    disable_dropout(model)
    accelerator = Accelerator(
        mixed_precision="bf16" if args.dtype == "bf16" else "no", cpu=args.device == "cpu"
    )
    layout = args.layout if supports_shared_prefix(model) else "separate"
    started = time.perf_counter()
    reference = compute_reference_logprobs(
        CompletionLogProbs(model),
        pairs,
        pad_id=tokenizer.pad_token_id,
        batch_size=args.batch_size * 2,
        layout=layout,
        device=accelerator.device,
        autocast=accelerator.autocast,
    )
    reference_seconds = time.perf_counter() - started
    options = TrainConfig(
        learning_rate=args.lr,
        epochs=1,
        batch_size=args.batch_size,
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
    )
    scorer = accelerator.prepare(CompletionLogProbs(model))
    optimizer = accelerator.prepare(build_optimizer(scorer, config))
    steps = -(-len(pairs) // args.batch_size)
    scheduler = build_scheduler(optimizer, config, steps)
    outcome = train_loop(
        accelerator, scorer, optimizer, scheduler, LoopData(pairs, reference, tokenizer.pad_token_id), config
    )
    return {
        "trainer": f"prefkit dpo ({layout})",
        "pairs_per_s": median_rate([r["pairs_per_s"] for r in outcome.history]),
        "pair_tokens": pair_tokens(pairs),
        "model_tokens_per_pair": median_rate([r["tokens_per_s"] / r["pairs_per_s"] for r in outcome.history]),
        "reference_seconds": reference_seconds,
        "peak_memory_mb": peak_memory_mb(args.device),
        "losses": [r["loss"] for r in outcome.history],
        "truncated": truncated,
        "tokens": [[p.prompt, p.chosen, p.rejected] for p in pairs[:4]],
    }


def run_trl(args, precompute: bool) -> dict:
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

    config = trl.DPOConfig(
        output_dir=tempfile.mkdtemp(prefix="trl-bench-"),
        beta=0.1,
        learning_rate=args.lr,
        num_train_epochs=1,
        per_device_train_batch_size=args.batch_size,
        max_length=args.max_length,
        warmup_steps=0.1,
        lr_scheduler_type="linear",
        train_sampling_strategy="sequential",
        precompute_ref_log_probs=precompute,
        precompute_ref_batch_size=args.batch_size * 2,
        bf16=args.dtype == "bf16",
        use_cpu=args.device == "cpu",
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        disable_tqdm=True,
        optim="adamw_torch",
        dataloader_num_workers=0,
    )
    started = time.perf_counter()
    trainer = trl.DPOTrainer(
        model=model,
        args=config,
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=tokenizer,
        callbacks=[StepTimer()],
    )
    setup_seconds = time.perf_counter() - started  # includes the reference pass when precomputing
    trainer.train()
    sizes = [min(args.batch_size, len(rows) - start) for start in range(0, len(rows), args.batch_size)]
    tokenized = trainer.train_dataset
    return {
        "trainer": "trl DPOTrainer" + (" (precompute_ref_log_probs)" if precompute else ""),
        "pairs_per_s": median_rate([size / seconds for size, seconds in zip(sizes, step_times, strict=True)]),
        "pair_tokens": pair_tokens(pairs),
        "model_tokens_per_pair": None,
        "reference_seconds": setup_seconds if precompute else None,
        "peak_memory_mb": peak_memory_mb(args.device),
        "losses": [e["loss"] for e in trainer.state.log_history if "loss" in e],
        "tokens": [
            [tokenized[i]["prompt_ids"], tokenized[i]["chosen_ids"], tokenized[i]["rejected_ids"]]
            for i in range(4)
        ],
    }


def child(args) -> None:
    make_importable()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    torch.manual_seed(0)
    if args.only.startswith("ours-"):
        args.layout = args.only.removeprefix("ours-")
        result = run_ours(args)
    else:
        result = run_trl(args, precompute=args.only == "trl-precompute")
    print("RESULT " + json.dumps(result))


def spawn(args, which: str) -> dict | None:
    command = [sys.executable, __file__, "--only", which] + [
        f"--{k.replace('_', '-')}={v}"
        for k, v in vars(args).items()
        if k not in ("only", "layouts", "skip_trl", "repeats", "layout")
    ]
    completed = subprocess.run(command, capture_output=True, text=True)
    for line in completed.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    print(f"{which} failed:\n{completed.stderr[-3000:]}")
    return None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", default="tiny", help="'tiny' (built locally), 'smollm2', or a HF model folder"
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument(
        "--dtype", default="fp32", choices=["fp32", "bf16"], help="bf16 = autocast, as TRL's bf16"
    )
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--pairs", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument(
        "--layouts",
        default="separate,shared_prefix,padding_free",
        help="prefkit batch layouts to run (comma-separated)",
    )
    parser.add_argument("--skip-trl", action="store_true")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved runs per trainer; best kept")
    parser.add_argument("--only", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only:
        child(args)
        return
    if args.model == "tiny":
        make_importable()
        from prefkit.testing import build_tiny_llama

        args.model = str(build_tiny_llama(Path(tempfile.gettempdir()) / "prefkit-bench-tiny-llama"))
    runs = [f"ours-{layout}" for layout in args.layouts.split(",")]
    if args.skip_trl:
        print("TRL skipped (--skip-trl)")
    elif importlib.util.find_spec("trl") is None or importlib.util.find_spec("datasets") is None:
        print("TRL skipped: `trl` and `datasets` are not importable (pip install trl datasets)")
    else:
        runs += ["trl", "trl-precompute"]
    best: dict[str, dict] = {}
    for _ in range(args.repeats):  # interleaved repeats; the best of each is kept (others may share the CPU)
        for which in runs:
            result = spawn(args, which)
            if result is not None and (
                which not in best or result["pairs_per_s"] > best[which]["pairs_per_s"]
            ):
                best[which] = result
    results = [best[which] for which in runs if which in best]
    if not results or runs[0] not in best:
        sys.exit("the prefkit run failed")
    print(
        f"\nmodel {args.model} | device {args.device} {args.dtype} | {args.pairs} pairs | batch {args.batch_size}"
        f" | max length {args.max_length}"
    )
    header = f"{'trainer':44} {'pairs/s':>8} {'tokens/s':>9} {'model tok/pair':>14} {'ref pass s':>10}"
    print(f"{header} {'peak MB':>8} {'max |dloss|':>11}")
    ours = results[0]
    for result in results:
        diff = max(
            (abs(a - b) for a, b in zip(ours["losses"], result["losses"], strict=False)), default=float("nan")
        )
        ref = "" if result["reference_seconds"] is None else f"{result['reference_seconds']:.2f}"
        per_pair = result["model_tokens_per_pair"]
        per_pair = "" if per_pair is None else f"{per_pair:.0f}"
        tokens_per_s = result["pairs_per_s"] * result["pair_tokens"]
        print(
            f"{result['trainer']:44} {result['pairs_per_s']:8.2f} {tokens_per_s:9.0f} {per_pair:>14} {ref:>10}"
            f" {result['peak_memory_mb']:8.0f} {diff:11.2e}"
        )
    print(
        "tokens/s: data tokens (prompt+chosen+prompt+rejected, no padding) per second, equal work per pair;"
    )
    print("model tok/pair: tokens the forward pass runs per pair, padding and shared prompts included.")
    for result in results[1:]:
        same = result["tokens"] == ours["tokens"]
        print(
            f"speed-up vs {result['trainer']}: {ours['pairs_per_s'] / result['pairs_per_s']:.2f}x"
            f" (token ids identical on the first pairs: {same})"
        )


if __name__ == "__main__":
    main()
