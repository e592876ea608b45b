"""Training speed and memory: prefkit's DPO loop vs TRL's DPOTrainer on the same pairs, model and hardware.

Each run is its own subprocess (so peak memory is its own), on synthetic pairs built in memory, in the same
sequential data order, with the same optimizer, schedule and clipping. One run prints one row each for
every prefkit batch layout and for TRL: pairs/s of the training steps (median after the first), pairs/s
including the reference pass, MFU, peak memory (CUDA max allocated; on CPU the rise of peak RSS during
training) and the largest per-step loss difference from the first prefkit row.

MFU = 6 x N x (prompt + chosen + rejected tokens per pair, the prompt once) x pairs/s of the steps / peak
FLOP/s, N = matmul parameters (989 TFLOP/s dense bf16 on H100/H200, by device name, or --peak-tflops).

    python benchmarks/train.py --preset realistic --out bench/train.json   # GPU: Llama-3.2-1B shape
    python benchmarks/train.py --preset dry-run --out /tmp/train.json      # the same code paths, CPU, seconds
    python benchmarks/train.py                                             # toy shape: tiny model, CPU
    python benchmarks/train.py --model /path/to/hf-folder --device cuda --dtype bf16 --batch-size 8 --pairs 512

Presets (each flag still overrides):
  realistic  random:llama-3.2-1b, cuda, bf16 autocast, 256 pairs of prompt ~256 + chosen ~512 + rejected
             ~512 tokens, batch 8, max_length 1024. Rows, in this order: every layout; TRL default (gradient
             checkpointing, reference in each step), TRL with precompute_ref_log_probs, TRL without
             checkpointing; shared_prefix with activation checkpointing full; 64 pairs per step as grad_accum
             8 and as micro-batches of <= 10,240 tokens; compiled decoder layers; the largest batch that fits
             (doubling from 16 until out of memory, or --search-seconds 180). No run starts after
             --time-budget 420 s (the rows left are listed as skipped), so it ends within ~9 minutes.
  dry-run    the same rows on CPU with random:tiny-128k (2 layers, 128,256 vocabulary), 8 pairs of ~12 +
             2 x ~24 tokens, batch 2 (largest batch tried: 4): checks every code path on a CPU.

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
# dense bf16 tensor-core FLOP/s by device name (the MFU's denominator)
PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "H800": 989.0, "A100": 312.0, "L40S": 362.0, "A10G": 125.0}
EXTRAS = "checkpointing,budget,compile"  # in the order they run (a --time-budget drops the last first)
PRESETS = {
    "realistic": dict(
        model="random:llama-3.2-1b", device="cuda", dtype="bf16", pairs=256, batch_size=8, max_length=1024,
        prompt_tokens=256, answer_tokens=512, repeats=1, extras=EXTRAS, search=True, search_seconds=180,
        time_budget=420,
    ),
    "dry-run": dict(
        model="random:tiny-128k", device="cpu", dtype="bf16", pairs=8, batch_size=2, max_length=64,
        prompt_tokens=12, answer_tokens=24, repeats=1, extras=EXTRAS, search=True, search_limit=4,
    ),
}  # fmt: skip


def make_importable() -> None:
    """Let a plain checkout run this file: the repo root on sys.path, trainers/ as `prefkit_trainers`."""
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "benchmarks"))  # architectures.py, train_runs.py
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
    """The toy shape: deterministic pairs with a long-ish shared prompt and completions of varied length."""
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


def planned_rows(args) -> list[dict]:
    """The runs of this benchmark, one spec each (what the child process trains)."""
    base = args.batch_size
    rows = [
        {"name": f"prefkit {layout}", "trainer": "prefkit", "layout": layout, "batch_size": base}
        for layout in args.layouts.split(",")
    ]
    default = {"trainer": "prefkit", "layout": "shared_prefix"}
    step = base * max(min(8, args.pairs // (2 * base)), 1)  # pairs per step; at least two steps
    budget = base * (args.prompt_tokens + 2 * args.answer_tokens)
    extras = {
        "checkpointing": [{**default, "name": "prefkit shared_prefix, checkpointing full", "batch_size": base,
                           "checkpointing": "full"}],
        "compile": [{**default, "name": "prefkit shared_prefix, compiled layers", "batch_size": base,
                     "compile": True}],
        "budget": [  # the same pairs per step: grad_accum micro-batches of batch_size vs cut by tokens
            {**default, "name": f"prefkit shared_prefix, {step} pairs/step, grad_accum {step // base}",
             "batch_size": base, "grad_accum": step // base},
            {**default, "name": f"prefkit shared_prefix, {step} pairs/step, <={budget:,}-token micro-batches",
             "batch_size": step, "max_tokens_per_batch": budget},
        ],
    }  # fmt: skip
    if args.skip_trl:
        print("TRL skipped (--skip-trl)")
    elif importlib.util.find_spec("trl") is None or importlib.util.find_spec("datasets") is None:
        print("TRL skipped: `trl` and `datasets` are not importable (pip install trl datasets)")
    else:
        trl = {"trainer": "trl", "batch_size": base}
        rows += [
            {**trl, "name": "trl default (checkpointing, reference in each step)", "checkpointing": "full"},
            {**trl, "name": "trl precompute_ref_log_probs", "checkpointing": "full", "precompute": True},
        ]
        if args.preset:
            rows.append({**trl, "name": "trl without checkpointing", "checkpointing": "off"})
    for extra in args.extras.split(",") if args.extras else ():
        if extra not in extras:
            sys.exit(f"unknown --extras '{extra}' (choose from {', '.join(extras)})")
        rows += extras[extra] if args.prompt_tokens else []
    return rows


def spawn(args, spec: dict) -> dict | None:
    """Run one spec in a fresh process; None (and its stderr printed) when it failed."""
    passed = ("model", "device", "dtype", "pairs", "max_length", "lr", "prompt_tokens", "answer_tokens")
    command = [sys.executable, __file__, "--only", json.dumps(spec)]
    command += [f"--{key.replace('_', '-')}={getattr(args, key)}" for key in passed]
    started = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True)
    for line in completed.stdout.splitlines():
        if line.startswith("RESULT "):  # wall time of the whole child: imports, load, reference, steps
            return {**json.loads(line[7:]), "process_seconds": time.perf_counter() - started}
    print(f"{spec['name']} failed:\n{completed.stderr[-3000:]}")
    return None


def best_of(args, specs: list[dict]) -> list[dict]:
    """Each spec's best run (pairs/s) over --repeats interleaved rounds (others may share the machine)."""
    best: dict[str, dict] = {}
    for _ in range(args.repeats):
        for spec in specs:
            if out_of_time(args):
                best.setdefault(spec["name"], {**spec, "skipped": True})
                continue
            result = spawn(args, spec)
            if result is None or result.get("oom"):
                best.setdefault(spec["name"], result or {**spec, "failed": True})
            elif best.get(spec["name"], {}).get("pairs_per_s", -1) < result["pairs_per_s"]:
                best[spec["name"]] = result
    return [best[spec["name"]] for spec in specs if spec["name"] in best]


def out_of_time(args) -> bool:
    """True once --time-budget seconds have passed since the benchmark started (rows left are skipped)."""
    return bool(args.time_budget) and time.perf_counter() - args.started > args.time_budget


def largest_batch(args) -> tuple[dict | None, list[int]]:
    """The default layout at the largest batch that fits: doubling from 2 x --batch-size until out of
    memory, fewer than two steps of pairs, --search-limit, or --search-seconds spent. (row, batches tried)"""
    started, batch, found, tried = time.perf_counter(), args.batch_size * 2, None, []
    limit = args.search_limit or args.pairs // 2
    while batch <= limit and time.perf_counter() - started < args.search_seconds and not out_of_time(args):
        spec = {"name": f"prefkit shared_prefix, largest batch ({batch})", "trainer": "prefkit"}
        result = spawn(args, {**spec, "layout": "shared_prefix", "batch_size": batch})
        tried.append(batch)
        if result is None or result.get("oom"):
            break
        found, batch = result, batch * 2
    return found, tried


def peak_flops(args, machine: str) -> float | None:
    """Dense bf16 peak FLOP/s: --peak-tflops, else by GPU name; None on CPU (no MFU)."""
    if args.peak_tflops:
        return args.peak_tflops * 1e12
    return next((tflops * 1e12 for name, tflops in PEAK_TFLOPS.items() if name in machine), None)


def add_derived(rows: list[dict], flops: float | None) -> None:
    """MFU and the largest loss difference from the first prefkit row at the same step size."""
    first = rows[0]
    for row in rows:
        if row.get("oom") or row.get("failed") or row.get("skipped"):
            continue
        useful = 6 * row["matmul_parameters"] * row["pair_tokens"] * row["pairs_per_s"]
        row["mfu"] = useful / flops if flops else None
        same_steps = all(row.get(k, d) == first.get(k, d) for k, d in (("batch_size", 0), ("grad_accum", 1)))
        diffs = [abs(a - b) for a, b in zip(first.get("losses", []), row["losses"], strict=False)]
        row["max_loss_difference"] = max(diffs) if same_steps and diffs else None
        row["same_tokens_as_first"] = row["tokens"] == first["tokens"]


def table(rows: list[dict], cpu: bool) -> str:
    """The markdown table of every row."""
    unit = "peak RSS rise (MB)" if cpu else "peak memory (GB)"
    lines = [
        f"| trainer | pairs/s (steps) | pairs/s incl. reference pass | reference pass s | MFU | {unit} | max |Δloss| |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        if row.get("oom") or row.get("failed") or row.get("skipped"):
            what = (
                "out of memory"
                if row.get("oom")
                else "skipped (--time-budget)"
                if row.get("skipped")
                else "failed"
            )
            lines.append(f"| {row['name']} | {what} | | | | | |")
            continue
        memory = row["peak_memory_mb"] if cpu else row["peak_memory_mb"] / 1024
        cells = [
            f"{row['pairs_per_s']:.2f}",
            f"{row['pairs_per_s_total']:.2f}",
            "" if row["reference_seconds"] is None else f"{row['reference_seconds']:.1f}",
            "" if row.get("mfu") is None else f"{100 * row['mfu']:.1f} %",
            f"{memory:.0f}" if cpu else f"{memory:.1f}",
            "" if row.get("max_loss_difference") is None else f"{row['max_loss_difference']:.1e}",
        ]
        lines.append(f"| {row['name']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", choices=sorted(PRESETS), default=None)
    parser.add_argument("--model", default="tiny", help="'tiny', 'random:ARCH', 'smollm2', or a HF folder")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"], help="bf16 = autocast, as TRL's")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--pairs", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--prompt-tokens", type=int, default=0, help="~tokens per prompt (0 = toy sentences)")
    parser.add_argument("--answer-tokens", type=int, default=0, help="~tokens per chosen / rejected answer")
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--layouts", default="separate,shared_prefix,padding_free", help="prefkit layouts")
    parser.add_argument("--skip-trl", action="store_true")
    parser.add_argument(
        "--extras",
        default="",
        help="extra prefkit rows (comma-separated): checkpointing, compile, budget (presets: all three)",
    )
    parser.add_argument("--repeats", type=int, default=2, help="interleaved runs per row; best kept")
    parser.add_argument("--search", action="store_true", help="also find the largest batch that fits")
    parser.add_argument("--search-seconds", type=float, default=600.0, help="time cap of the batch search")
    parser.add_argument("--search-limit", type=int, default=0, help="largest batch to try (0 = pairs / 2)")
    parser.add_argument(
        "--time-budget", type=float, default=0.0, help="start no run after this many seconds (0 = no limit)"
    )
    parser.add_argument("--peak-tflops", type=float, default=None, help="peak dense bf16 TFLOP/s for MFU")
    parser.add_argument("--out", type=Path, default=None, help="write the rows as JSON here")
    parser.add_argument("--only", default=None, help=argparse.SUPPRESS)
    given = {  # flags given on the command line win over the preset
        action.dest
        for action in parser._actions
        for flag in action.option_strings
        if any(arg == flag or arg.startswith(flag + "=") for arg in sys.argv[1:])
    }
    args = parser.parse_args()
    for key, value in PRESETS.get(args.preset, {}).items():
        if key not in given:
            setattr(args, key, value)
    args.started = time.perf_counter()
    make_importable()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.only:
        from train_runs import run

        print("RESULT " + json.dumps(run(args, json.loads(args.only))))
        return
    import torch
    from train_runs import build_model

    scratch = Path(tempfile.mkdtemp(prefix="prefkit-train-bench-"))
    args.model = build_model(args.model, scratch)
    cuda = args.device.startswith("cuda")
    machine = torch.cuda.get_device_name() if cuda else f"CPU, {os.cpu_count()} cores"
    rows = best_of(args, planned_rows(args))
    tried: list[int] = []
    if args.search:
        found, tried = largest_batch(args)
        rows += [found] if found else []
    if not rows or any(rows[0].get(key) for key in ("oom", "failed", "skipped")):
        sys.exit("the first prefkit run failed")
    add_derived(rows, peak_flops(args, machine))
    print(
        f"\n{machine} | model {args.model} | {args.device} {args.dtype} | {args.pairs} pairs of "
        f"~{rows[0]['pair_tokens']:.0f} tokens (prompt once) | batch {args.batch_size} | max length "
        f"{args.max_length} | batches tried in the search: {tried or 'none'}\n"
    )
    print(table(rows, cpu=not cuda))
    differ = [row["name"] for row in rows if row.get("same_tokens_as_first") is False]
    print(f"\ntoken ids of the first pairs differ from the first row's in: {differ}" if differ else "")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        report = {
            "preset": args.preset, "machine": machine, "torch": torch.__version__, "model": args.model,
            "device": args.device, "dtype": args.dtype, "pairs": args.pairs, "batch_size": args.batch_size,
            "max_length": args.max_length, "prompt_tokens": args.prompt_tokens,
            "answer_tokens": args.answer_tokens, "peak_tflops": (peak_flops(args, machine) or 0) / 1e12 or None,
            "search_batches_tried": tried, "rows": rows,
        }  # fmt: skip
        args.out.write_text(json.dumps(report, indent=1))
        print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
