"""Segment attention: the shared-prefix and packed layouts without a dense mask, exact against the mask."""

from __future__ import annotations

import json
import logging

import pytest
import torch
import torch.nn.functional as F
from prefkit_trainers.dpo.batching import longest_sequence
from prefkit_trainers.dpo.data import TokenizedPair
from prefkit_trainers.dpo.logprobs import CompletionLogProbs, prepare_attention_mask, supports_shared_prefix
from prefkit_trainers.dpo.packing import collate_layout
from prefkit_trainers.dpo.segment_attention import (
    SEGMENT_ATTENTION,
    attention_implementation,
    restore_attention_implementation,
    segment_attention,
    segment_attention_blocker,
)
from prefkit_trainers.dpo.segments import PairSpan, RowSegments
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode
from transformers import LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM

VOCAB = 97
TINY = {
    "vocab_size": VOCAB,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_attention_heads": 4,
    "head_dim": 8,
}


def tiny_llama(attn_implementation: str = "sdpa", kv_heads: int = 1) -> LlamaForCausalLM:
    """Two layers, four query heads sharing `kv_heads` key/value heads (grouped-query attention)."""
    torch.manual_seed(0)
    config = LlamaConfig(
        **TINY, num_hidden_layers=2, num_key_value_heads=kv_heads, attn_implementation=attn_implementation
    )
    return LlamaForCausalLM(config).eval()


def random_pairs(count: int, seed: int = 1) -> list[TokenizedPair]:
    generator = torch.Generator().manual_seed(seed)

    def ids(low: int, high: int) -> list[int]:
        length = int(torch.randint(low, high, (1,), generator=generator))
        return torch.randint(1, VOCAB, (length,), generator=generator).tolist()

    return [TokenizedPair(ids(2, 9), ids(1, 12), ids(1, 12)) for _ in range(count)]


def scored(model, pairs, layout: str) -> torch.Tensor:
    batch = collate_layout(pairs, 0, layout).to(next(model.parameters()).device)
    return CompletionLogProbs(model)(prepare_attention_mask(batch, model, torch.float32)).logps


SEGMENTS = RowSegments(
    rows=2,
    width=15,
    spans=(
        PairSpan(0, 0, 3, 4, 2),
        PairSpan(0, 9, 2, 1, 3),
        PairSpan(1, 0, 1, 0, 5),
        PairSpan(1, 8, 4, 2, 1),
    ),
)


@pytest.mark.parametrize("kv_heads", [4, 2])
def test_segment_attention_equals_the_dense_mask_with_gradients(kv_heads):
    torch.manual_seed(0)
    query = torch.randn(2, 4, 15, 8, requires_grad=True)
    key = torch.randn(2, kv_heads, 15, 8, requires_grad=True)
    value = torch.randn(2, kv_heads, 15, 8, requires_grad=True)
    weights = torch.randn(2, 4, 15, 8)
    real = torch.zeros(2, 1, 15, 1)  # compare the pairs' columns only (row 1 has a padding gap)
    for span in SEGMENTS.spans:
        real[span.row, :, span.start : span.end] = 1
    mask = SEGMENTS.dense_mask()
    results = []
    for output in (
        F.scaled_dot_product_attention(query, key, value, attn_mask=mask, enable_gqa=True),
        segment_attention(query, key, value, SEGMENTS),
    ):
        grads = torch.autograd.grad((output * real * weights).sum(), (query, key, value))
        results.append(((output * real).detach(), grads))
    (dense, dense_grads), (split, split_grads) = results
    torch.testing.assert_close(split, dense, atol=1e-5, rtol=1e-5)
    for got, want in zip(split_grads, dense_grads, strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("layout", ["shared_prefix", "padding_free"])
def test_model_runs_segment_attention_and_matches_separate_rows(layout):
    model = tiny_llama()
    pairs = random_pairs(5)
    with torch.no_grad():
        separate = scored(model, pairs, "separate")
        assert attention_implementation(model) == SEGMENT_ATTENTION  # set on first use
        torch.testing.assert_close(scored(model, pairs, layout), separate, atol=1e-5, rtol=0)
        restore_attention_implementation(model)
        assert attention_implementation(model) == "sdpa"
        torch.testing.assert_close(scored(tiny_llama(), pairs, layout), separate, atol=1e-5, rtol=0)


class SquareSizes(TorchDispatchMode):
    """Records n for every [..., n, n] tensor an op takes or returns (a dense mask or a score matrix)."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: set[int] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        flat = [*args, *(kwargs or {}).values(), *(out if isinstance(out, tuple | list) else [out])]
        for value in flat:
            if isinstance(value, torch.Tensor) and value.dim() >= 2 and value.shape[-1] == value.shape[-2]:
                self.sizes.add(value.shape[-1])
        return out


def square_sizes(model, batch) -> set[int]:
    sizes = set()
    for backend in (SDPBackend.FLASH_ATTENTION, SDPBackend.MATH):  # the fused CPU kernel; scores spelled out
        with sdpa_kernel(backend), SquareSizes() as seen:
            CompletionLogProbs(model)(batch).logps.sum().backward()
        sizes |= seen.sizes
    return sizes


@pytest.mark.parametrize("layout", ["shared_prefix", "padding_free"])
def test_no_width_by_width_tensor_on_the_segment_path(layout):
    pairs = random_pairs(6)
    model = tiny_llama()
    batch = prepare_attention_mask(collate_layout(pairs, 0, layout), model, torch.float32)
    assert batch.attention_mask is None and batch.segments is not None
    width = batch.input_ids.shape[1]
    assert width not in (8, 32, 64)  # head_dim, hidden and MLP sizes: square weights are no mask
    assert width not in square_sizes(model, batch)
    fallback = tiny_llama("eager")  # the check sees the dense mask where there is one
    dense = prepare_attention_mask(collate_layout(pairs, 0, layout), fallback, torch.float32)
    assert width in square_sizes(fallback, dense)


def test_eager_model_falls_back_to_the_additive_mask(caplog):
    model = tiny_llama("eager")
    pairs = random_pairs(4)
    assert "'eager'" in segment_attention_blocker(model)
    with torch.no_grad(), caplog.at_level(logging.WARNING):
        separate = scored(model, pairs, "separate")
        for layout in ("shared_prefix", "padding_free"):
            batch = prepare_attention_mask(collate_layout(pairs, 0, layout), model, torch.float32)
            assert batch.attention_mask.dtype == torch.float32 and batch.attention_mask.dim() == 4
            logps = CompletionLogProbs(model)(batch).logps
            torch.testing.assert_close(logps, separate, atol=1e-5, rtol=0)
    assert attention_implementation(model) == "eager"
    assert "dense attention mask" in caplog.text


def test_sliding_window_model_keeps_its_attention():
    config = MistralConfig(
        **TINY, num_hidden_layers=1, num_key_value_heads=2, sliding_window=4, attn_implementation="sdpa"
    )
    model = MistralForCausalLM(config)
    assert "sliding" in segment_attention_blocker(model)
    batch = prepare_attention_mask(collate_layout(random_pairs(2), 0, "shared_prefix"), model, torch.float32)
    assert batch.attention_mask.dtype == torch.bool and attention_implementation(model) == "sdpa"


@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
def test_shared_layouts_are_chosen_only_where_they_give_the_separate_log_probs(implementation):
    # the dense mask replaces the model's sliding-window mask: exact only while no sequence reaches the window
    pairs = random_pairs(4)
    longest = longest_sequence(pairs)
    for window, exact in ((4, False), (longest, True)):
        torch.manual_seed(0)
        config = MistralConfig(
            **TINY,
            num_hidden_layers=1,
            num_key_value_heads=2,
            sliding_window=window,
            attn_implementation=implementation,
        )
        model = MistralForCausalLM(config).eval()
        with torch.no_grad():
            separate = scored(model, pairs, "separate")
            shared = [scored(model, pairs, layout) for layout in ("shared_prefix", "padding_free")]
        matches = all(torch.allclose(logps, separate, atol=1e-5, rtol=0) for logps in shared)
        assert matches == exact, window
        assert supports_shared_prefix(model, longest) == exact, window
        assert not supports_shared_prefix(model, window + 1)
        assert not supports_shared_prefix(model)  # lengths unknown: any window may be reached


def test_gradients_equal_the_separate_layout_under_grouped_query_attention():
    model = tiny_llama(kv_heads=2).train()
    pairs = random_pairs(4)
    gradients = {}
    for layout in ("separate", "shared_prefix", "padding_free"):
        model.zero_grad()
        logps = scored(model, pairs, layout)
        (logps * torch.linspace(-1, 1, logps.numel())).sum().backward()
        gradients[layout] = torch.cat([p.grad.flatten() for p in model.parameters()])
    assert attention_implementation(model) == SEGMENT_ATTENTION
    for layout in ("shared_prefix", "padding_free"):
        torch.testing.assert_close(gradients[layout], gradients["separate"], atol=1e-5, rtol=1e-4)


def test_saved_checkpoint_keeps_the_original_attention(tmp_path):
    model = tiny_llama()
    with torch.no_grad():
        scored(model, random_pairs(2), "padding_free")
    assert attention_implementation(model) == SEGMENT_ATTENTION
    model.save_pretrained(tmp_path, safe_serialization=True)
    assert "prefkit" not in (tmp_path / "config.json").read_text()
    assert "attn_implementation" not in json.loads((tmp_path / "config.json").read_text())
    assert attention_implementation(LlamaForCausalLM.from_pretrained(tmp_path)) == "sdpa"


def training_flops(model, layout: str, count: int) -> int:
    """Forward + backward FLOPs of a batch of `count` copies of one pair (sdpa's scores spelled out, so
    the counter sees attention too)."""
    pair = random_pairs(1, seed=3)[0]
    pair = TokenizedPair(pair.prompt * 2, pair.chosen * 2, pair.rejected * 2)
    batch = prepare_attention_mask(collate_layout([pair] * count, 0, layout), model, torch.float32)
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        CompletionLogProbs(model)(batch).logps.sum().backward()
    return counter.get_total_flops()


def test_packed_flops_grow_linearly_with_the_number_of_pairs():
    model = tiny_llama()
    assert training_flops(model, "padding_free", 6) == 3 * training_flops(model, "padding_free", 2)
    dense = tiny_llama("eager")  # the fallback attends over the whole packed row: quadratic
    assert training_flops(dense, "padding_free", 6) > 3.3 * training_flops(dense, "padding_free", 2)


class ElementsWritten(TorchDispatchMode):
    """Counts the elements of every tensor an op returns (the memory traffic of a step, roughly)."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for value in out if isinstance(out, tuple | list) else [out]:
            if isinstance(value, torch.Tensor):
                self.total += value.numel()
        return out


def test_packed_memory_traffic_grows_linearly_with_the_number_of_pairs():
    # a gradient through a per-pair slice of the packed row would be as wide as the row: pairs x width
    model = tiny_llama()
    pair = random_pairs(1, seed=4)[0]
    written = []
    for count in (2, 4, 6):
        batch = prepare_attention_mask(
            collate_layout([pair] * count, 0, "padding_free"), model, torch.float32
        )
        model.zero_grad(set_to_none=True)  # every run writes fresh parameter gradients
        with ElementsWritten() as counter:
            CompletionLogProbs(model)(batch).logps.sum().backward()
        written.append(counter.total)
    assert written[2] - written[1] == written[1] - written[0]  # a + b * pairs


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the flash kernel is CUDA only")
@pytest.mark.parametrize("layout", ["shared_prefix", "padding_free"])
def test_every_attention_call_runs_on_the_flash_kernel_on_cuda(layout):
    # with only the flash backend enabled, sdpa raises for any call it cannot run there (a mask, fp32)
    model = tiny_llama(kv_heads=2).cuda().train()
    pairs = random_pairs(6)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        separate = scored(model, pairs, "separate").detach()
        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            logps = scored(model, pairs, layout)
            logps.sum().backward()
        torch.testing.assert_close(logps.detach(), separate, atol=0.05, rtol=0.01)
    dense = collate_layout(pairs, 0, layout).to("cuda")
    dense.attention_mask, dense.segments = dense.segments.dense_mask("cuda"), None  # the fallback's input
    with torch.autocast("cuda", dtype=torch.bfloat16), sdpa_kernel(SDPBackend.FLASH_ATTENTION):
        with pytest.raises(RuntimeError):
            CompletionLogProbs(tiny_llama().cuda())(dense)
