"""One `prefkit iterate` round as a user runs it (the CLI, one process), with each stage's wall time and peak
memory: sample (vLLM) -> label (reward model) -> train (dpo) -> eval (reward-kl on held-out prompts).

    python benchmarks/gpu/iterate_round.py --policy P --reward R --out LOGS/iterate --json-out LOGS/iterate.json

Stage times are those the artifacts' manifests record (started_at / finished_at, whole seconds); memory is
sampled every 0.25 s while the run lasts (benchmarks/gpu/memory.py: GPU memory in use on a GPU, the
process tree's resident memory on CPU) and each stage gets the largest sample inside its interval, the
interval's first second left out so that the stage before it, releasing its engine, is not counted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # benchmarks/sampling.py (the prompts)
sys.path.insert(0, str(HERE))

from memory import peak_between, read_samples, run_sampled  # noqa: E402

# stage -> its artifact folder inside the run folder (one round)
STAGES = {
    "sample": "round-01/candidates",
    "label": "round-01/preferences",
    "train": "round-01/checkpoint",
    "eval": "eval",
}


def write_prompts(path: Path, prompts: list[str], prefix: str) -> None:
    with open(path, "w") as handle:
        for index, prompt in enumerate(prompts):
            handle.write(json.dumps({"prompt_id": f"{prefix}{index}", "prompt": prompt}) + "\n")


def run_config(args, prompts: Path, heldout: Path) -> dict:
    """The iterate config of the round: GPU settings, or tiny CPU ones in a dry run."""
    cpu = args.dry_run
    engine = {"enforce_eager": True, "max_model_len": 512} if cpu else {"max_model_len": 2048}
    dtype = "float32" if cpu else "bfloat16"
    config = {
        "name": "gpu-check",
        "policy": args.policy,
        "prompts": str(prompts),
        "heldout_prompts": str(heldout),
        "rounds": 1,
        "reference": "initial",
        "evaluators": ["reward-kl"],
        "sample": {
            "backend": "vllm",
            "n": args.n,
            "max_new_tokens": args.max_new_tokens,
            "dtype": dtype,
            **engine,
        },
        "label": {
            "labeler": "reward-model",
            "pairing": "best-vs-worst",
            "labeler_options": {"model": args.reward, "engine": "transformers"},
        },
        "train": {
            "epochs": 1,
            "batch_size": args.batch_size,
            "learning_rate": 1e-6,
            "max_length": 2 * args.max_new_tokens + 64,
            "save_every_steps": 0,
        },
        "eval_options": {
            "reward-kl": {
                "n": args.n,
                "max_new_tokens": args.max_new_tokens,
                "labeler": "reward-model",
                "labeler_options": {"model": args.reward},
                "dtype": dtype,
                "backend": "vllm",
                "engine": engine,
            }
        },
    }
    return config


def seconds_of(stamp: str) -> float:
    return dt.datetime.fromisoformat(stamp).timestamp()


def stage_rows(run_dir: Path, memory_csv: Path) -> list[dict]:
    """Wall time, peak memory and counts of each stage, from its manifest and the memory samples."""
    source, samples = read_samples(memory_csv)
    rows = []
    for stage, folder in STAGES.items():
        manifest_path = run_dir / folder / "manifest.json"
        if not manifest_path.exists():
            rows.append({"stage": stage, "status": "failed", "error": f"no {manifest_path}"})
            continue
        manifest = json.loads(manifest_path.read_text())
        start, end = seconds_of(manifest["started_at"]), seconds_of(manifest["finished_at"])
        inner = (start + 1, end + 1) if end - start >= 2 else (start, end + 1)
        peak = peak_between(samples, *inner)
        rows.append(
            {
                "stage": stage,
                "status": "ok",
                "seconds": end - start,
                "peak_mib": round(peak, 1) if peak is not None else None,
                "memory": source,
                "counts": manifest.get("counts", {}),
            }
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", required=True)
    parser.add_argument("--reward", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--json-out", type=Path, required=True)
    parser.add_argument("--prompts", type=int, default=256)
    parser.add_argument("--heldout", type=int, default=128)
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--dry-run", action="store_true", help="CPU settings (eager vLLM, float32)")
    args = parser.parse_args()
    from sampling import benchmark_prompts

    args.out.mkdir(parents=True, exist_ok=True)
    texts = benchmark_prompts(args.prompts + args.heldout)
    prompts, heldout = args.out / "prompts.jsonl", args.out / "heldout.jsonl"
    write_prompts(prompts, texts[: args.prompts], "p")
    write_prompts(heldout, texts[args.prompts :], "h")
    config = args.out / "iterate-config.json"  # prefkit reads TOML, YAML or JSON configs
    config.write_text(json.dumps(run_config(args, prompts, heldout), indent=2))
    run_dir = args.out / "run"
    command = [
        sys.executable,
        "-m",
        "prefkit",
        "iterate",
        str(config),
        "--run-dir",
        str(run_dir),
        "--new-run",
    ]
    print(" ".join(command), flush=True)
    code, source = run_sampled(command, args.out / "memory.csv")
    run_dir = max(args.out.glob("run*"), key=lambda p: p.stat().st_mtime)  # --new-run may add a suffix
    rows = stage_rows(run_dir, args.out / "memory.csv")
    report = {
        "rc": code,
        "memory": source,
        "run_dir": str(run_dir),
        "shape": {
            "prompts": args.prompts,
            "n": args.n,
            "max_new_tokens": args.max_new_tokens,
            "heldout": args.heldout,
        },
        "stages": rows,
    }
    args.json_out.write_text(json.dumps(report, indent=2))
    for row in rows:
        print(json.dumps(row))
    return code or (1 if any(row["status"] != "ok" for row in rows) else 0)


if __name__ == "__main__":
    sys.exit(main())
