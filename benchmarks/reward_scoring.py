"""Benchmark: reward-model labeling, transformers forward passes vs vLLM's pooling runner, same texts.

    python benchmarks/reward_scoring.py --model smollm2 --completions 256       # SmolLM2 backbone, random head
    python benchmarks/reward_scoring.py --model random:llama-3.2-1b --completions 4096 --words 200   # GPU

Both engines go through prefkit's RewardModelLabeler (engine transformers / vllm) on the same
(prompt, completion) pairs; each is warmed up once, then timed. Reported: load seconds, completions/s,
the vLLM/transformers ratio, and the largest score difference between the engines.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

WORDS = "good great bad awful movie meal trip friend really quite very not happy sad long short day".split()


def resolve_reward_model(name: str, scratch: Path) -> str:
    """A one-output reward model: 'random:ARCH' (random weights), or a causal LM ('smollm2', 'tiny', a
    folder) whose backbone gets a seeded random head, or a folder that already is a reward model."""
    from architectures import random_model, reward_model_from
    from transformers import AutoConfig

    if name.startswith("random:"):
        return str(random_model(name.removeprefix("random:"), scratch / "random", head="reward"))
    if name == "tiny":
        from prefkit.testing import build_tiny_llama

        return str(reward_model_from(str(build_tiny_llama(scratch / "tiny")), scratch / "tiny-reward"))
    from prefkit.models import resolve_model

    location = resolve_model(name)
    if any(
        a.endswith("ForSequenceClassification")
        for a in AutoConfig.from_pretrained(location).architectures or []
    ):
        return location
    return str(reward_model_from(location, scratch / "reward"))


def pairs(count: int, words: int, seed: int = 0) -> tuple[list[str], list[list[str]]]:
    rng = random.Random(seed)
    prompts = [f"Write about a {rng.choice(WORDS)} day, number {i}." for i in range(count)]
    completions = [
        [" ".join(rng.choice(WORDS) for _ in range(rng.randint(words // 2, words)))] for _ in range(count)
    ]
    return prompts, completions


def time_engine(model: str, engine: str, prompts, completions, dtype: str, batch_size: int) -> dict:
    from prefkit.labeling.reward_model_labeler import RewardModelLabeler

    started = time.perf_counter()
    labeler = RewardModelLabeler(model, dtype=dtype, engine=engine, batch_size=batch_size)
    load = time.perf_counter() - started
    try:
        labeler.score(prompts[:4], completions[:4])  # warm-up
        started = time.perf_counter()
        scores = labeler.score(prompts, completions)
        seconds = time.perf_counter() - started
    finally:
        labeler.close()
    return {
        "engine": engine,
        "load_s": round(load, 2),
        "seconds": round(seconds, 3),
        "completions_per_s": len(prompts) / seconds,
        "scores": [row[0] for row in scores],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--completions", type=int, default=256)
    parser.add_argument("--words", type=int, default=60, help="longest completion in words (shortest: half)")
    parser.add_argument("--dtype", default="auto", help="auto = bfloat16 on GPU, float32 on CPU")
    parser.add_argument("--batch-size", type=int, default=16, help="transformers: texts per forward pass")
    parser.add_argument("--engines", default="transformers,vllm")
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args()
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    with tempfile.TemporaryDirectory() as scratch:
        model = resolve_reward_model(args.model, Path(scratch))
        prompts, completions = pairs(args.completions, args.words)
        device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU, {os.cpu_count()} cores"
        print(
            f"reward model {args.model} ({model}); {args.completions} completions of up to {args.words} words; "
            f"torch {torch.__version__}, {platform.machine()}, {device}"
        )
        results = []
        for engine in [e.strip() for e in args.engines.split(",") if e.strip()]:
            result = time_engine(model, engine, prompts, completions, args.dtype, args.batch_size)
            results.append(result)
            print(
                f"{engine:>12}: load {result['load_s']:6.1f} s | {result['seconds']:8.2f} s | "
                f"{result['completions_per_s']:8.1f} completions/s"
            )
    by_engine = {r["engine"]: r for r in results}
    summary = {}
    if {"vllm", "transformers"} <= by_engine.keys():
        fast, slow = by_engine["vllm"], by_engine["transformers"]
        summary = {
            "ratio": round(fast["completions_per_s"] / slow["completions_per_s"], 2),
            "max_abs_score_difference": max(
                abs(a - b) for a, b in zip(fast["scores"], slow["scores"], strict=True)
            ),
        }
        print(
            f"vLLM / transformers: {summary['ratio']}x completions/s; "
            f"largest score difference {summary['max_abs_score_difference']:.2e}"
        )
    if args.json_out:
        args.json_out.write_text(
            json.dumps(
                {
                    "arguments": vars(args) | {"json_out": str(args.json_out)},
                    "results": [{k: v for k, v in r.items() if k != "scores"} for r in results],
                    **summary,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
