"""Benchmark: stream a synthetic candidates set through the VADER labeler; report rows/s and peak RSS.

    python benchmarks/labeling.py --rows 100000 --completions 4

The candidates artifact is written in chunks (so making it does not inflate memory), then labeling runs
in a fresh child process whose peak resident memory is read from the OS (ru_maxrss of children).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from prefkit.artifacts import DATA_FILE, StageRun
from prefkit.records import CANDIDATES_SCHEMA

WORDS = "good great bad awful movie meal trip friend really quite very not happy sad long short day".split()


def write_synthetic_candidates(
    out: Path, rows: int, completions: int, seed: int = 0, chunk: int = 10_000
) -> Path:
    """A candidates artifact of `rows` prompts with `completions` random sentences each."""
    rng = random.Random(seed)
    run = StageRun(
        out, "candidates", {"synthetic": True, "rows": rows, "completions": completions, "seed": seed}, {}
    )
    work = run.open()
    schema = pl.DataFrame(schema=CANDIDATES_SCHEMA).to_arrow().schema
    with pq.ParquetWriter(work / DATA_FILE, schema) as writer:
        for start in range(0, rows, chunk):
            batch = []
            for index in range(start, min(rows, start + chunk)):
                texts = [" ".join(rng.choices(WORDS, k=rng.randint(5, 30))) + "." for _ in range(completions)]
                batch.append(
                    {
                        "prompt_id": f"s{index:07d}",
                        "prompt": f"Write about topic {index}.",
                        "completions": texts,
                        "completion_tokens": [len(text.split()) for text in texts],
                        "completion_logprobs": None,
                    }
                )
            writer.write_table(pl.DataFrame(batch, schema=CANDIDATES_SCHEMA).to_arrow().cast(schema))
    run.finish(counts={"prompts": rows}, extra={"use_chat_template": False})
    return out


def _label_child(candidates: str, out: str, shard_size: int, result_path: str) -> None:
    from prefkit.labeling.stage import LabelConfig, label

    started = time.perf_counter()
    artifact = label(candidates, out, LabelConfig(labeler="vader", shard_size=shard_size), progress=False)
    Path(result_path).write_text(
        json.dumps({"seconds": time.perf_counter() - started, "counts": artifact.manifest.counts})
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--completions", type=int, default=4)
    parser.add_argument("--shard-size", type=int, default=2048)
    parser.add_argument("--work-dir", type=Path, default=None)
    args = parser.parse_args()
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="prefkit-bench-"))
    made = time.perf_counter()
    candidates = write_synthetic_candidates(work / "candidates", args.rows, args.completions)
    print(
        f"synthetic candidates: {args.rows} rows x {args.completions} in {time.perf_counter() - made:.1f}s",
        file=sys.stderr,
    )
    result_path = work / "result.json"
    context = multiprocessing.get_context("spawn")
    child = context.Process(
        target=_label_child, args=(str(candidates), str(work / "prefs"), args.shard_size, str(result_path))
    )
    child.start()
    child.join()
    if child.exitcode != 0:
        sys.exit(f"labeling failed with exit code {child.exitcode}")
    result = json.loads(result_path.read_text())
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
    report = {
        "rows": args.rows,
        "completions_per_row": args.completions,
        "shard_size": args.shard_size,
        "seconds": round(result["seconds"], 2),
        "rows_per_s": round(args.rows / result["seconds"], 1),
        "completions_per_s": round(args.rows * args.completions / result["seconds"], 1),
        "peak_rss_mib": round(peak_mib, 1),
        "pairs": result["counts"]["pairs"],
        "dropped": result["counts"]["dropped"],
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
