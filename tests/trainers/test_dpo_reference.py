"""Reference precision (float32 head under bf16 autocast), the cache's recorded precision, LD-DPO weights."""

from __future__ import annotations

import torch
from prefkit_trainers.dpo.data import TokenizedPair, collate_separate
from prefkit_trainers.dpo.logprobs import (
    chunked_head_logprobs,
    completion_positions,
    ld_token_weights,
    target_logprobs,
)
from prefkit_trainers.dpo.packing import collate_padding_free
from prefkit_trainers.dpo.reference import cached_metadata, load_cached, reference_cache_key, save_cached


def test_head_and_log_softmax_run_in_float32_under_bf16_autocast():
    torch.manual_seed(0)
    head = torch.nn.Linear(64, 500, bias=False)
    hidden, targets = 4 * torch.randn(32, 64), torch.randint(0, 500, (32,))
    exact = target_logprobs(head(hidden), targets)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ours = chunked_head_logprobs(head, hidden, targets)
        naive = target_logprobs(head(hidden).float(), targets)  # bf16 logits, then float32
    assert ours.dtype == torch.float32
    assert torch.allclose(ours, exact, atol=1e-5)
    assert (naive - exact).abs().max() > 1e-3  # what the float32 head avoids


def test_cache_records_the_precision(tmp_path):
    key = "ab" + "0" * 62
    save_cached(tmp_path, key, torch.tensor([-1.0]), torch.tensor([-2.0]), model="m", precision="bf16")
    assert cached_metadata(tmp_path, key) == {
        "model": "m",
        "backbone_precision": "bf16",
        "logsoftmax_precision": "float32",
    }
    chosen, rejected = load_cached(tmp_path, key, 1)
    assert chosen.tolist() == [-1.0] and rejected.tolist() == [-2.0]


def test_cache_key_separates_ld_alpha_only_when_set():
    pairs = [TokenizedPair([1], [2, 3], [4])]
    plain = reference_cache_key("h", pairs, "no")
    assert plain == reference_cache_key("h", pairs, "no", None)
    assert plain != reference_cache_key("h", pairs, "no", 0.5) != reference_cache_key("h", pairs, "bf16")


def test_ld_weights_count_tokens_past_the_shorter_completion_alpha_times():
    pairs = [TokenizedPair([1, 2], [3, 4, 5], [6]), TokenizedPair([7], [8], [9, 10])]
    for batch in (collate_separate(pairs, pad_id=0), collate_padding_free(pairs)):
        positions = completion_positions(batch)
        weights = ld_token_weights(batch, 0.25)
        by_sequence = {}
        for sequence, position, weight in zip(
            batch.sequence_index.tolist(), positions.tolist(), weights.tolist(), strict=True
        ):
            by_sequence.setdefault(sequence, []).append((position, weight))
        # shared lengths: pair 0 -> 1, pair 1 -> 1; sequences 0,1 chosen, 2,3 rejected
        assert by_sequence[0] == [(0, 1.0), (1, 0.25), (2, 0.25)]
        assert by_sequence[2] == [(0, 1.0)]
        assert by_sequence[1] == [(0, 1.0)]
        assert by_sequence[3] == [(0, 1.0), (1, 0.25)]
