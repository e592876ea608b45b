"""LM-head log-probs (head_logprobs.py): values and gradients against a float64 full-logits computation,
the matmul dtype under bf16, and the FLOPs each pass runs."""

from __future__ import annotations

import pytest
import torch
from prefkit_trainers.dpo.data import TokenizedPair
from prefkit_trainers.dpo.head_logprobs import linear_head_logprobs
from prefkit_trainers.dpo.logprobs import CompletionLogProbs, head_logprobs
from prefkit_trainers.dpo.packing import collate_layout
from torch.utils.flop_counter import FlopCounterMode

HIDDEN, VOCAB, TOKENS = 24, 97, 37


def naive_float64(hidden, weight, bias, targets):
    """Full logits in float64: (log p(target), WPO aligned log-prob) per row, differentiable."""
    logits = hidden @ weight.t() + (0 if bias is None else bias)
    log_probs = torch.log_softmax(logits, dim=1)
    target = log_probs.gather(1, targets.unsqueeze(1)).squeeze(1)
    return target, target - torch.logsumexp(2 * log_probs, dim=1)


def float64_leaves(*tensors):
    return [None if t is None else t.detach().double().requires_grad_() for t in tensors]


@pytest.mark.parametrize("chunk", [1, 5, 16, 1000])
@pytest.mark.parametrize("bias", [False, True])
def test_values_and_gradients_equal_float64_full_logits(chunk, bias):
    torch.manual_seed(chunk)
    head = torch.nn.Linear(HIDDEN, VOCAB, bias=bias)
    hidden = (3 * torch.randn(TOKENS, HIDDEN)).requires_grad_()
    targets = torch.randint(0, VOCAB, (TOKENS,))
    upstream = torch.randn(TOKENS)  # a different gradient for every token, as LD-DPO and the losses give
    ours = linear_head_logprobs(head, hidden, targets, aligned=True, chunk=chunk)
    (ours.logps * upstream).sum().backward()

    h64, w64, b64 = float64_leaves(hidden, head.weight, head.bias)
    exact, aligned = naive_float64(h64, w64, b64, targets)
    (exact * upstream.double()).sum().backward()

    assert ours.logps.dtype == ours.aligned.dtype == torch.float32
    torch.testing.assert_close(ours.logps.double(), exact, atol=2e-5, rtol=0)
    torch.testing.assert_close(ours.aligned.double(), aligned, atol=2e-5, rtol=0)
    torch.testing.assert_close(hidden.grad.double(), h64.grad, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(head.weight.grad.double(), w64.grad, atol=2e-5, rtol=1e-4)
    if bias:
        torch.testing.assert_close(head.bias.grad.double(), b64.grad, atol=2e-5, rtol=1e-4)


CUDA = pytest.param(
    "cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="the CUDA path needs a GPU")
)


@pytest.mark.parametrize("device", ["cpu", CUDA])
def test_bf16_autocast_runs_the_matmuls_in_bf16_and_the_log_sum_exp_in_float32(device):
    torch.manual_seed(0)
    head = torch.nn.Linear(HIDDEN, VOCAB, bias=False, device=device)
    hidden = (3 * torch.randn(TOKENS, HIDDEN, device=device)).requires_grad_()
    targets = torch.randint(0, VOCAB, (TOKENS,), device=device)
    upstream = torch.rand(TOKENS, device=device) + 0.5
    with torch.autocast(device, dtype=torch.bfloat16):
        ours = linear_head_logprobs(head, hidden, targets, chunk=8)
    (ours.logps * upstream).sum().backward()
    assert ours.logps.dtype == hidden.grad.dtype == head.weight.grad.dtype == torch.float32

    # the exact values of bf16-rounded inputs: only the product's rounding to bf16 (<= 2**-9 relative per
    # logit on CPU; CUDA returns it in float32) separates ours from them
    h64, w64 = float64_leaves(hidden.bfloat16(), head.weight.bfloat16())
    exact, _ = naive_float64(h64, w64, None, targets)
    (exact * upstream.double()).sum().backward()
    logit_tolerance = 0.03 if device == "cpu" else 1e-4
    torch.testing.assert_close(ours.logps.double(), exact, atol=logit_tolerance, rtol=0)
    torch.testing.assert_close(hidden.grad.double(), h64.grad, atol=0.02, rtol=0.02)
    torch.testing.assert_close(head.weight.grad.double(), w64.grad, atol=0.02, rtol=0.02)
    # and float32 matmuls would differ from them by more than rounding noise of the inputs' cast
    full32, _ = naive_float64(hidden.detach().double(), head.weight.detach().double(), None, targets)
    assert (full32 - exact).abs().max() > 1e-3


def test_a_wrapped_head_module_runs_itself_and_matches():
    torch.manual_seed(1)
    linear = torch.nn.Linear(HIDDEN, VOCAB, bias=True)
    wrapped = torch.nn.Sequential(linear)  # stands for a LoRA / modules_to_save head: not a plain Linear
    hidden = torch.randn(TOKENS, HIDDEN, requires_grad=True)
    targets = torch.randint(0, VOCAB, (TOKENS,))
    fast = head_logprobs(linear, hidden, targets, aligned=True)
    slow = head_logprobs(wrapped, hidden, targets, aligned=True)
    torch.testing.assert_close(fast.logps, slow.logps)
    torch.testing.assert_close(fast.aligned, slow.aligned)


def test_no_tokens_give_empty_log_probs():
    head = torch.nn.Linear(HIDDEN, VOCAB)
    out = linear_head_logprobs(head, torch.zeros(0, HIDDEN), torch.zeros(0, dtype=torch.long), aligned=True)
    assert out.logps.shape == out.aligned.shape == (0,)


def head_flops(run) -> int:
    with FlopCounterMode(display=False) as counter:
        run()
    return counter.get_total_flops()


@pytest.mark.parametrize("chunk", [7, 1000])
def test_flops_per_pass_forward_2n_frozen_head_4n_trainable_head_8n(chunk):
    torch.manual_seed(2)
    head = torch.nn.Linear(HIDDEN, VOCAB, bias=False)
    targets = torch.randint(0, VOCAB, (TOKENS,))
    hidden = torch.randn(TOKENS, HIDDEN, requires_grad=True)
    per_token = 2 * HIDDEN * VOCAB  # one matmul over the vocabulary, 2 FLOPs per multiply-add

    with torch.no_grad():  # the reference pass: forward only, no gradient pieces
        assert (
            head_flops(lambda: linear_head_logprobs(head, hidden, targets, chunk=chunk)) == per_token * TOKENS
        )

    def step():
        linear_head_logprobs(head, hidden, targets, chunk=chunk).logps.sum().backward()

    head.weight.requires_grad_(False)  # LoRA: the head is frozen, only hidden needs a gradient
    assert head_flops(step) == 2 * per_token * TOKENS
    head.weight.requires_grad_(True)  # one recompute of the logits in backward, for the weight gradient
    assert head_flops(step) == 4 * per_token * TOKENS


def tiny_llama(tied: bool, vocab: int = 211):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(3)
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        head_dim=16,
        tie_word_embeddings=tied,
        attn_implementation="sdpa",
    )
    return LlamaForCausalLM(config)


def random_pairs(vocab: int) -> list[TokenizedPair]:
    generator = torch.Generator().manual_seed(4)

    def ids(count):
        return torch.randint(1, vocab, (count,), generator=generator).tolist()

    return [TokenizedPair(ids(5), ids(7), ids(3)), TokenizedPair(ids(2), ids(4), ids(9))]


def full_logits_float64(model, pairs, weights):
    """Per-sequence weighted log-prob sums from the model's own full logits, in float64, one sequence at
    a time (chosen of every pair, then rejected, as CompletionLogProbs orders them)."""
    sums = []
    for side in ("chosen", "rejected"):
        for pair, sequence_weights in zip(pairs, weights[side], strict=True):
            completion = getattr(pair, side)
            ids = torch.tensor([pair.prompt + completion])
            log_probs = torch.log_softmax(model(input_ids=ids).logits[0].double(), dim=1)
            start = len(pair.prompt)
            picked = log_probs[start - 1 : start - 1 + len(completion)].gather(
                1, torch.tensor(completion).unsqueeze(1)
            )
            sums.append((picked.squeeze(1) * sequence_weights).sum())
    return torch.stack(sums)


@pytest.mark.parametrize("layout", ["separate", "shared_prefix", "padding_free"])
@pytest.mark.parametrize("tied", [True, False])
def test_completion_logprobs_and_model_gradients_equal_float64_full_logits(layout, tied):
    model = tiny_llama(tied)
    pairs = random_pairs(model.config.vocab_size)
    ld_alpha = 0.3  # LD-DPO: tokens past the shorter completion weigh 0.3, so upstream gradients vary
    scorer = CompletionLogProbs(model, ld_alpha=ld_alpha)
    batch = collate_layout(pairs, 0, layout)
    upstream = torch.tensor([1.5, -0.7, 0.4, -2.0])
    (scorer(batch).logps * upstream).sum().backward()
    ours = {name: p.grad.clone() for name, p in model.named_parameters()}
    ours_logps = scorer(batch).logps.detach()

    exact_model = tiny_llama(tied).double()
    exact_model.load_state_dict(model.state_dict())
    weights = {"chosen": [], "rejected": []}
    for pair in pairs:
        shared = min(len(pair.chosen), len(pair.rejected))
        for side in ("chosen", "rejected"):
            count = len(getattr(pair, side))
            weights[side].append(
                torch.tensor([1.0 if i < shared else ld_alpha for i in range(count)]).double()
            )
    exact = full_logits_float64(exact_model, pairs, weights)
    (exact * upstream.double()).sum().backward()

    torch.testing.assert_close(ours_logps.double(), exact.detach(), atol=1e-4, rtol=0)
    for name, parameter in exact_model.named_parameters():
        torch.testing.assert_close(ours[name].double(), parameter.grad, atol=1e-5, rtol=1e-3, msg=name)
