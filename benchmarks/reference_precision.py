"""Reference log-prob precision: bf16 vs fp32, per sequence, for prefkit's scorer and TRL's default.

The same synthetic pairs (benchmarks/train.py) are scored four times: prefkit's reference pass in fp32 and
under bf16 autocast (backbone bf16; LM head, log-softmax and sums float32), and TRL's DPOTrainer reference
precompute with bf16=False and with its default bf16=True. Reported: mean and max absolute difference
between the bf16 and the fp32 summed log-prob of each completion (nats per sequence), and the mean
completion length.

    python benchmarks/reference_precision.py                      # tiny model, CPU
    python benchmarks/reference_precision.py --model smollm2 --pairs 32
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import tempfile
from pathlib import Path

from train import make_importable, synthetic_pairs


def ours(model_dir: str, rows, max_length: int, bf16: bool):
    import torch
    from prefkit_trainers.dpo.data import tokenize_pairs
    from prefkit_trainers.dpo.logprobs import CompletionLogProbs
    from prefkit_trainers.dpo.reference import compute_reference_logprobs

    from prefkit.models import load_causal_lm, load_tokenizer

    tokenizer = load_tokenizer(model_dir)
    model = load_causal_lm(model_dir, dtype="float32", device="cpu")
    pairs, _ = tokenize_pairs(
        tokenizer,
        [r["prompt"] for r in rows],
        [r["chosen"] for r in rows],
        [r["rejected"] for r in rows],
        use_chat_template=False,
        max_length=max_length,
    )

    def autocast():
        if bf16:
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    chosen, rejected = compute_reference_logprobs(
        CompletionLogProbs(model),
        pairs,
        pad_id=tokenizer.pad_token_id,
        batch_size=8,
        layout="shared_prefix",
        device="cpu",
        autocast=autocast,
    )
    lengths = [len(p.chosen) for p in pairs] + [len(p.rejected) for p in pairs]
    return torch.cat([chosen, rejected]), sum(lengths) / len(lengths)


def trl_reference(model_dir: str, rows, max_length: int, bf16: bool):
    import datasets
    import torch
    import trl

    from prefkit.models import load_causal_lm, load_tokenizer

    tokenizer = load_tokenizer(model_dir)
    model = load_causal_lm(model_dir, dtype="float32", device="cpu")
    config = trl.DPOConfig(
        output_dir=tempfile.mkdtemp(prefix="trl-precision-"),
        max_length=max_length,
        precompute_ref_log_probs=True,
        precompute_ref_batch_size=8,
        bf16=bf16,
        use_cpu=True,
        report_to=[],
        disable_tqdm=True,
    )
    trainer = trl.DPOTrainer(
        model=model, args=config, train_dataset=datasets.Dataset.from_list(rows), processing_class=tokenizer
    )
    if "ref_chosen_logps" not in trainer.train_dataset.column_names:  # computed lazily by some versions
        trainer.get_train_dataloader()
    data = trainer.train_dataset
    return torch.tensor(list(data["ref_chosen_logps"]) + list(data["ref_rejected_logps"]))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="tiny", help="'tiny' (built locally), 'smollm2', or a HF folder")
    parser.add_argument("--pairs", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=256)
    args = parser.parse_args()
    make_importable()
    from prefkit.models import resolve_model

    if args.model == "tiny":
        from prefkit.testing import build_tiny_llama

        model_dir = str(build_tiny_llama(Path(tempfile.gettempdir()) / "prefkit-bench-tiny-llama"))
    else:
        model_dir = resolve_model(args.model)
    rows = synthetic_pairs(args.pairs, args.max_length)
    results = []
    fp32, mean_length = ours(model_dir, rows, args.max_length, bf16=False)
    bf16, _ = ours(model_dir, rows, args.max_length, bf16=True)
    results.append(("prefkit dpo (bf16 autocast, fp32 head)", (bf16 - fp32).abs(), fp32))
    if importlib.util.find_spec("trl") is not None:
        trl_fp32 = trl_reference(model_dir, rows, args.max_length, bf16=False)
        trl_bf16 = trl_reference(model_dir, rows, args.max_length, bf16=True)
        results.append(("trl DPOTrainer (default bf16=True)", (trl_bf16 - trl_fp32).abs(), trl_fp32))
    print(f"\nmodel {args.model} | CPU | {args.pairs} pairs | mean completion {mean_length:.0f} tokens")
    print(f"{'reference pass':42} {'mean |bf16-fp32|':>17} {'max':>8} {'mean fp32 logp':>15}")
    for name, error, base in results:
        print(f"{name:42} {error.mean().item():17.4f} {error.max().item():8.4f} {base.mean().item():15.2f}")
    print("(nats per sequence; each completion's summed log-prob)")


if __name__ == "__main__":
    main()
