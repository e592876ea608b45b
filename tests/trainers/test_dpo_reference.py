"""The reference cache: its key and recorded method (LM head matmul dtype, float32 log-softmax); LD-DPO weights."""

from __future__ import annotations

import hashlib

import torch
from prefkit_trainers.dpo.data import TokenizedPair, collate_separate, pairs_hash
from prefkit_trainers.dpo.logprobs import LOGPROB_METHOD, completion_positions, ld_token_weights
from prefkit_trainers.dpo.packing import collate_padding_free
from prefkit_trainers.dpo.reference import cached_metadata, load_cached, reference_cache_key, save_cached


def test_cache_records_how_logprobs_were_computed(tmp_path):
    key = "ab" + "0" * 62
    save_cached(tmp_path, key, torch.tensor([-1.0]), torch.tensor([-2.0]), model="m", precision="bf16")
    assert cached_metadata(tmp_path, key) == {
        "model": "m",
        "backbone_precision": "bf16",
        "head_matmul_dtype": "bfloat16",
        "logsoftmax_precision": "float32",
        "logprob_method": LOGPROB_METHOD,
    }
    chosen, rejected = load_cached(tmp_path, key, 1)
    assert chosen.tolist() == [-1.0] and rejected.tolist() == [-2.0]
    save_cached(tmp_path, key, torch.tensor([-1.0]), torch.tensor([-2.0]), model="m")
    assert cached_metadata(tmp_path, key)["head_matmul_dtype"] == "float32"


def test_an_entry_of_the_float32_head_method_is_not_taken_for_the_current_one(tmp_path):
    pairs = [TokenizedPair([1], [2, 3], [4])]
    # the key an entry got before the LM head ran in the compute dtype (no method in the payload)
    old_payload = f"h|{pairs_hash(pairs)}|bf16|v1"
    old_key = hashlib.sha256(old_payload.encode()).hexdigest()
    save_cached(tmp_path, old_key, torch.tensor([-1.0]), torch.tensor([-2.0]), model="m", precision="bf16")
    current = reference_cache_key("h", pairs, "bf16")
    assert current != old_key and load_cached(tmp_path, current, 1) is None
    assert load_cached(tmp_path, old_key, 1) is not None  # still readable as what it is


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
