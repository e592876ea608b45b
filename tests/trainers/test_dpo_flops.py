"""FLOPs of a whole `prefkit train --dtype bf16` run (reference pass and every step), counted by
torch.utils.flop_counter, against the useful minimum of the issue's formula:

  useful = pairs * epochs * [6 N_body (P+C+R) + 6 N_head (C+R)] + pairs * [2 N_body (P+C+R) + 2 N_head (C+R)]

N_body = matmul parameters of the decoder layers, N_head = hidden x vocab, P/C/R = prompt / chosen /
rejected tokens of each pair (the prompt once). The model is Llama-3.2-1B at 1/8 width (hidden 256,
intermediate 1024, 4 heads of 64, 1 KV head) and 1/4 depth (4 layers), its vocabulary cut to 4008 so that
N_head / N_body is the 1B model's 0.27: with completions ~2/3 of the tokens (1B realistic shape: 4/5) the
LM head weighs here about what it weighs there.

The LM head cannot reach 6 N_head per training token without keeping [tokens x vocab] values until
backward (head_logprobs.py): it runs 8 N_head (one recompute for the weight gradient), pinned exactly by
the second test; at these proportions that is about 4 % over the useful minimum of this one-epoch run.
The pairs have equal lengths, so no layout pads here: the count measures the layouts' attention and the
LM head, not batching.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field

import pytest
import torch
from model_helpers import shaped_llama
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop, sdpa_flop
from trainer_helpers import write_preferences

from prefkit.training.stage import TrainConfig, train

pytestmark = pytest.mark.slow

HIDDEN, INTERMEDIATE, LAYERS, HEADS, KV_HEADS, VOCAB = 256, 1024, 4, 4, 1, 4008
EPOCHS, PAIRS, BATCH = 1, 4, 2
aten = torch.ops.aten


def already_shape_wrapped(formula):
    """flop_counter's exported formulas take tensors already: tell FlopCounterMode not to wrap them again."""
    formula._get_raw = True
    return formula


# attention kernels: CPU's flash kernel is missing from flop_counter's table, so it is added here
ATTENTION_FORMULAS = {
    aten._scaled_dot_product_flash_attention_for_cpu: already_shape_wrapped(sdpa_flop),
    aten._scaled_dot_product_flash_attention_for_cpu_backward: already_shape_wrapped(sdpa_backward_flop),
}
ATTENTION_OPS = {
    aten._scaled_dot_product_flash_attention_for_cpu,
    aten._scaled_dot_product_flash_attention_for_cpu_backward,
    aten._scaled_dot_product_efficient_attention,
    aten._scaled_dot_product_efficient_attention_backward,
    aten._scaled_dot_product_flash_attention,
    aten._scaled_dot_product_flash_attention_backward,
}


class FlopBreakdown(FlopCounterMode):
    """FlopCounterMode that also sorts every counted op into attention, LM head (a dimension equal to
    the vocabulary) and body."""

    def __init__(self) -> None:
        super().__init__(display=False, custom_mapping=ATTENTION_FORMULAS)
        self.parts: dict[str, int] = defaultdict(int)

    def _count_flops(self, func_packet, out, args, kwargs):
        if func_packet in self.flop_registry:
            flops = self.flop_registry[func_packet](*args, **kwargs, out_val=out)
            shapes = [tuple(a.shape) for a in args if isinstance(a, torch.Tensor)]
            if func_packet in ATTENTION_OPS:
                self.parts["attention"] += flops
            elif any(VOCAB in shape for shape in shapes):
                self.parts["head"] += flops
            else:
                self.parts["body"] += flops
        return super()._count_flops(func_packet, out, args, kwargs)


@dataclass
class CountedRun:
    total: int
    parts: dict[str, int]
    body_params: int
    head_params: int
    tokens: list[tuple[int, int, int]] = field(default_factory=list)  # (P, C, R) per pair

    def useful(self) -> dict[str, int]:
        """The issue's minimum: training 6 per parameter and token, the reference pass 2."""
        all_tokens = sum(p + c + r for p, c, r in self.tokens)
        completion_tokens = sum(c + r for _, c, r in self.tokens)
        per_pass = {"body": self.body_params * all_tokens, "head": self.head_params * completion_tokens}
        return {name: (6 * EPOCHS + 2) * value for name, value in per_pass.items()}

    def report(self) -> str:
        useful = self.useful()
        return (
            f"executed {self.total / 1e9:.2f} GFLOP = body {self.parts['body'] / 1e9:.2f} + head "
            f"{self.parts['head'] / 1e9:.2f} + attention {self.parts['attention'] / 1e9:.2f}; useful "
            f"{sum(useful.values()) / 1e9:.2f} = body {useful['body'] / 1e9:.2f} + head {useful['head'] / 1e9:.2f}"
            f"; ratio {self.total / sum(useful.values()):.3f}"
        )


def flop_rows() -> list[dict]:
    """Pairs of prompt ~16 tokens and answers ~24 tokens (chat template included)."""
    topics = ["movie", "book", "city", "song", "meal", "garden", "friend", "trip"]
    rows = []
    for index in range(PAIRS):
        topic = topics[index % len(topics)]
        chosen = f"The {topic} was wonderful and I felt happy about it, the {topic} was good and nice."
        rejected = f"The {topic} was terrible and I felt sad about it, the {topic} was bad and awful."
        rows.append(
            {
                "prompt_id": f"p{index}",
                "prompt": f"Write one sentence about a {topic}.",
                "chosen": chosen,
                "rejected": rejected,
                "score_chosen": 1.0,
                "score_rejected": 0.0,
                "len_chosen": len(chosen),
                "len_rejected": len(rejected),
            }
        )
    return rows


@pytest.fixture(scope="module")
def flop_model_dir(tmp_path_factory):
    """Llama-3.2-1B's proportions (module docstring), with the tiny test tokenizer (ids past it unused)."""
    return shaped_llama(
        tmp_path_factory.mktemp("flops") / "model",
        vocab_size=VOCAB,
        hidden_size=HIDDEN,
        intermediate_size=INTERMEDIATE,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        num_key_value_heads=KV_HEADS,
        head_dim=HIDDEN // HEADS,
    )


def run_counted(model_dir, preferences, out, layout: str) -> CountedRun:
    from prefkit_trainers.dpo.data import tokenize_pairs

    from prefkit.models import load_causal_lm, load_tokenizer

    config = TrainConfig(
        policy=str(model_dir),
        epochs=EPOCHS,
        batch_size=BATCH,
        dtype="bf16",
        save_every_steps=0,
        options={"layout": layout},
    )
    saved_home = os.environ.get("PREFKIT_HOME")
    os.environ["PREFKIT_HOME"] = str(out.parent / "home")  # an empty reference cache: the pass runs here
    try:
        with FlopBreakdown() as counter:
            train(preferences, out, config, progress=False)
    finally:
        if saved_home is None:
            os.environ.pop("PREFKIT_HOME")
        else:
            os.environ["PREFKIT_HOME"] = saved_home
    rows = flop_rows()
    pairs, _ = tokenize_pairs(
        load_tokenizer(str(model_dir)),
        [r["prompt"] for r in rows],
        [r["chosen"] for r in rows],
        [r["rejected"] for r in rows],
        use_chat_template=True,
        max_length=config.max_length,
    )
    model = load_causal_lm(str(model_dir), dtype="float32", device="cpu")
    body = sum(m.weight.numel() for m in model.model.layers.modules() if isinstance(m, torch.nn.Linear))
    return CountedRun(
        total=counter.get_total_flops(),
        parts=dict(counter.parts),
        body_params=body,
        head_params=HIDDEN * VOCAB,
        tokens=[(len(p.prompt), len(p.chosen), len(p.rejected)) for p in pairs],
    )


@pytest.fixture(scope="module", params=["shared_prefix", "padding_free"])
def counted_run(request, flop_model_dir, tmp_path_factory) -> CountedRun:
    folder = tmp_path_factory.mktemp(f"run-{request.param}")
    preferences = write_preferences(folder / "preferences", flop_rows())
    return run_counted(flop_model_dir, preferences, folder / "checkpoint", request.param)


def test_a_bf16_run_executes_at_most_1_1x_the_useful_flops(counted_run):
    useful = sum(counted_run.useful().values())
    print(counted_run.report())
    assert counted_run.total <= 1.1 * useful, counted_run.report()


def test_the_lm_head_runs_8n_per_training_token_and_2n_per_reference_token(counted_run):
    completion_tokens = sum(c + r for _, c, r in counted_run.tokens)
    per_pass = 2 * counted_run.head_params * completion_tokens
    # training: forward 2N + hidden gradient 2N, backward 2N recompute + 2N weight gradient; reference 2N
    assert counted_run.parts["head"] == (4 * EPOCHS + 1) * per_pass, counted_run.report()
