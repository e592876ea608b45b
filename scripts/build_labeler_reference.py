"""Build prefkit's shipped labeler-validation reference set from published AlpacaEval 2 annotations.

Input: alpaca_eval's `annotations/<model>.weighted_alpaca_eval_gpt4_turbo.json` files (GPT-4 Turbo's
soft preference between GPT-4 Preview's output (output_1) and a model's (output_2) on the 805
instructions). Output: a gzipped JSONL of `--per-model` pairs per model, drawn with a fixed seed,
written to prefkit/data/labeler_reference/alpaca_eval_gpt4_turbo.jsonl.gz (see its card beside it).

    mkdir -p /tmp/annotations && for f in tests/data/alpaca_eval/annotations/*.json.xz; do
        xz -dc "$f" > /tmp/annotations/$(basename "$f" .xz); done
    python scripts/build_labeler_reference.py /tmp/annotations
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
from pathlib import Path

OUT = (
    Path(__file__).resolve().parents[1]
    / "prefkit"
    / "data"
    / "labeler_reference"
    / "alpaca_eval_gpt4_turbo.jsonl.gz"
)


def build(annotations_dir: Path, per_model: int, seed: int, out: Path) -> int:
    """Write the reference pairs; return how many were written."""
    rows = []
    for path in sorted(annotations_dir.glob("*.weighted_alpaca_eval_gpt4_turbo.json")):
        annotations = json.loads(path.read_text())
        usable = [a for a in annotations if a.get("preference") not in (None, "", "nan")]
        for index in sorted(random.Random(f"{seed}/{path.name}").sample(range(len(usable)), per_model)):
            a = usable[index]
            pair_id = f"{a['generator_2']}/{annotations.index(a)}"
            # P(model's output better) from the judge's log-probs: preference in [1, 2] minus 1
            model_preferred = round(float(a["preference"]) - 1.0, 6)
            first, second = (a["output_1"], a["generator_1"]), (a["output_2"], a["generator_2"])
            # the baseline is output_1 in every annotation: show it second in a seeded half of the pairs,
            # so that a labeler that always picks one position scores no better than chance
            swap = random.Random(f"{seed}/order/{pair_id}").random() < 0.5
            if swap:
                first, second = second, first
            rows.append(
                {
                    "pair_id": pair_id,
                    "prompt": a["instruction"],
                    "first": first[0],
                    "second": second[0],
                    "first_generator": first[1],
                    "second_generator": second[1],
                    "second_preferred": round(1.0 - model_preferred, 6) if swap else model_preferred,
                }
            )
    out.parent.mkdir(parents=True, exist_ok=True)
    with gzip.GzipFile(out, "wb", mtime=0) as handle:  # mtime 0: the same input gives the same bytes
        handle.write("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode())
    return len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("annotations_dir", type=Path)
    parser.add_argument("--per-model", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    print(f"wrote {build(args.annotations_dir, args.per_model, args.seed, args.out)} pairs to {args.out}")


if __name__ == "__main__":
    main()
