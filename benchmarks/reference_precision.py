"""Reference log-prob precision: each completion's summed log-prob against a float64 computation.

The same synthetic pairs (benchmarks/train.py) are scored by prefkit's reference pass and by TRL's
DPOTrainer reference precompute, each in float64 (the truth), float32 and under bf16 autocast. prefkit
under bf16 is measured twice: as it runs (LM head matmul in bf16 with float32 accumulation, log-sum-exp in
float32: head_logprobs.py) and with the head's matmul in float32 (how prefkit ran before, what the bf16
head gives up); on CPU also with the bf16 product returned in float32, as CUDA's torch.mm(out_dtype=)
returns it (the CPU kernel rounds it to bf16 first). Each implementation is compared with its own float64 run on the same token ids (TRL
tokenizes by itself; a last line checks that both float64 runs agree). Reported: mean and max absolute
error per sequence in nats, and the mean completion length.

    python benchmarks/reference_precision.py                                  # tiny model, CPU
    python benchmarks/reference_precision.py --model smollm2 --pairs 32
    python benchmarks/reference_precision.py --model smollm2 --device cuda --dtype bf16 --pairs 64
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import tempfile
from pathlib import Path

from train import make_importable, synthetic_pairs

AUTOCAST_DTYPES = {"bf16": "bfloat16", "fp16": "float16"}


@contextlib.contextmanager
def float32_head():
    """Run the LM head's matmul in the weights' dtype (float32) even under autocast: prefkit's earlier
    method, for comparison only."""
    from prefkit_trainers.dpo import head_logprobs

    original = head_logprobs.compute_dtype
    head_logprobs.compute_dtype = lambda weight, device_type: weight.dtype
    try:
        yield
    finally:
        head_logprobs.compute_dtype = original


@contextlib.contextmanager
def float32_products():
    """Return the head's bf16 x bf16 products in float32 on any device, as torch.mm(out_dtype=float32)
    does on CUDA: a CPU run then shows the precision of the CUDA path (its float32 matmul of bf16-rounded
    inputs adds only the accumulation order)."""
    from prefkit_trainers.dpo import head_logprobs

    original = head_logprobs.matmul_float32
    head_logprobs.matmul_float32 = lambda left, right: left.float() @ right.float()
    try:
        yield
    finally:
        head_logprobs.matmul_float32 = original


def ours(model_dir: str, rows, max_length: int, precision: str, device: str, variant=contextlib.nullcontext):
    """prefkit's reference pass; precision: float64, float32, or an autocast dtype name (bf16, fp16)."""
    import torch
    from prefkit_trainers.dpo.data import tokenize_pairs
    from prefkit_trainers.dpo.logprobs import CompletionLogProbs
    from prefkit_trainers.dpo.reference import compute_reference_logprobs

    from prefkit.models import load_causal_lm, load_tokenizer

    tokenizer = load_tokenizer(model_dir)
    model = load_causal_lm(model_dir, dtype="float32", device=device)
    if precision == "float64":
        model = model.double()
    pairs, _ = tokenize_pairs(
        tokenizer,
        [r["prompt"] for r in rows],
        [r["chosen"] for r in rows],
        [r["rejected"] for r in rows],
        use_chat_template=False,
        max_length=max_length,
    )

    def autocast():
        if precision in AUTOCAST_DTYPES:
            return torch.autocast(device, dtype=getattr(torch, AUTOCAST_DTYPES[precision]))
        return contextlib.nullcontext()

    with variant():
        chosen, rejected = compute_reference_logprobs(
            CompletionLogProbs(model),
            pairs,
            pad_id=tokenizer.pad_token_id,
            batch_size=8,
            layout="shared_prefix",
            device=device,
            autocast=autocast,
        )
    lengths = [len(p.chosen) for p in pairs] + [len(p.rejected) for p in pairs]
    return torch.cat([chosen, rejected]).double(), sum(lengths) / len(lengths)


def trl_reference(model_dir: str, rows, max_length: int, precision: str, device: str):
    """TRL's reference precompute: float64 (model in float64), float32, or its bf16=True default."""
    import datasets
    import torch
    import trl

    from prefkit.models import load_causal_lm, load_tokenizer

    tokenizer = load_tokenizer(model_dir)
    model = load_causal_lm(model_dir, dtype="float32", device=device)
    if precision == "float64":
        model = model.double()
    config = trl.DPOConfig(
        output_dir=tempfile.mkdtemp(prefix="trl-precision-"),
        max_length=max_length,
        precompute_ref_log_probs=True,
        precompute_ref_batch_size=8,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        use_cpu=device == "cpu",
        report_to=[],
        disable_tqdm=True,
    )
    trainer = trl.DPOTrainer(
        model=model, args=config, train_dataset=datasets.Dataset.from_list(rows), processing_class=tokenizer
    )
    if "ref_chosen_logps" not in trainer.train_dataset.column_names:  # computed lazily by some versions
        trainer.get_train_dataloader()
    data = trainer.train_dataset
    return torch.tensor(
        list(data["ref_chosen_logps"]) + list(data["ref_rejected_logps"]), dtype=torch.float64
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="tiny", help="'tiny' (built locally), 'smollm2', or a HF folder")
    parser.add_argument("--pairs", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--dtype", default="bf16", choices=sorted(AUTOCAST_DTYPES), help="autocast dtype")
    parser.add_argument("--skip-trl", action="store_true", help="prefkit only")
    args = parser.parse_args()
    make_importable()
    from prefkit.models import resolve_model

    if args.model == "tiny":
        from prefkit.testing import build_tiny_llama

        model_dir = str(build_tiny_llama(Path(tempfile.gettempdir()) / "prefkit-bench-tiny-llama"))
    else:
        model_dir = resolve_model(args.model)
    rows = synthetic_pairs(args.pairs, args.max_length)
    low = args.dtype

    def score(**kwargs):
        return ours(model_dir, rows, args.max_length, device=args.device, **kwargs)[0]

    truth, mean_length = ours(model_dir, rows, args.max_length, "float64", args.device)
    results = [
        ("prefkit float32", score(precision="float32"), truth),
        (f"prefkit {low} (head matmul {low}, lse fp32)", score(precision=low), truth),
        (f"prefkit {low} with a float32 head matmul", score(precision=low, variant=float32_head), truth),
    ]
    if args.device == "cpu":  # what the CUDA path gives: bf16 inputs, float32 product
        emulated = score(precision=low, variant=float32_products)
        results.insert(2, (f"prefkit {low}, float32 product (as on CUDA)", emulated, truth))
    trl_truth = None
    if not args.skip_trl and importlib.util.find_spec("trl") is not None:
        trl_truth = trl_reference(model_dir, rows, args.max_length, "float64", args.device)
        for precision, name in (("float32", "trl float32"), (low, f"trl {low} (DPOTrainer default)")):
            results.append(
                (name, trl_reference(model_dir, rows, args.max_length, precision, args.device), trl_truth)
            )
    print(
        f"\nmodel {args.model} | {args.device} | {args.pairs} pairs | mean completion {mean_length:.0f} tokens"
        f" | mean float64 log-prob {truth.mean().item():.2f}"
    )
    print(f"{'reference pass':46} {'mean |err| vs float64':>22} {'max':>8}")
    for name, values, reference in results:
        error = (values - reference).abs()
        print(f"{name:46} {error.mean().item():22.4f} {error.max().item():8.4f}")
    if trl_truth is not None:
        agreement = (trl_truth - truth).abs().max().item()
        print(f"(float64: prefkit and trl differ by at most {agreement:.2e} nats: the same tokens)")
    print("(nats per sequence; each completion's summed log-prob)")


if __name__ == "__main__":
    main()
