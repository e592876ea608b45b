"""Dtype audit of a bf16 run: no float32 matmul over the vocabulary runs, in the reference pass, the
forward or the backward (the LM head is the largest matmul of a step; in float32 it gets no tensor cores)."""

from __future__ import annotations

import pytest
import torch
from model_helpers import shaped_llama
from torch.utils._python_dispatch import TorchDispatchMode
from trainer_helpers import easy_rows, write_preferences

from prefkit.training.stage import TrainConfig, train

VOCAB = 32000  # large, and equal to no other dimension of the model
aten = torch.ops.aten
MATMULS = {aten.mm, aten.addmm, aten.bmm, aten.baddbmm, aten.linear, aten.matmul}


class VocabularyMatmuls(TorchDispatchMode):
    """Records the dtypes of every matmul that has a dimension equal to the vocabulary size."""

    def __init__(self, vocab: int) -> None:
        super().__init__()
        self.vocab = vocab
        self.seen: list[tuple[str, tuple[torch.dtype, ...], tuple[tuple[int, ...], ...]]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket in MATMULS:
            tensors = [a for a in args if isinstance(a, torch.Tensor)]
            if any(self.vocab in t.shape for t in tensors):
                dtypes = tuple(t.dtype for t in tensors)
                self.seen.append((str(func), dtypes, tuple(tuple(t.shape) for t in tensors)))
        return func(*args, **(kwargs or {}))

    def float32(self) -> list:
        return [entry for entry in self.seen if torch.float32 in entry[1]]


def test_the_audit_sees_a_float32_matmul_over_the_vocabulary():
    with VocabularyMatmuls(VOCAB) as audit:
        torch.randn(3, 8) @ torch.randn(8, VOCAB)
        torch.randn(3, 8).bfloat16() @ torch.randn(8, 5).bfloat16()
    assert len(audit.seen) == 1 and audit.float32()


@pytest.fixture()
def large_vocabulary_model(tmp_path):
    """The tiny test Llama with a 32000-entry vocabulary (ids past the tokenizer's are never used)."""
    return shaped_llama(
        tmp_path / "model",
        vocab_size=VOCAB,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        head_dim=32,
    )


@pytest.mark.parametrize("options", [{}, {"wpo": True, "ld_alpha": 0.5}])
def test_a_bf16_run_runs_no_float32_matmul_over_the_vocabulary(large_vocabulary_model, tmp_path, options):
    preferences = write_preferences(tmp_path / "preferences", easy_rows(4))
    config = TrainConfig(
        policy=str(large_vocabulary_model),
        epochs=1,
        batch_size=4,
        dtype="bf16",
        save_every_steps=0,
        options=options,
    )
    with VocabularyMatmuls(VOCAB) as audit:
        train(preferences, tmp_path / "checkpoint", config, progress=False)
    # reference pass 1 matmul, training forward 2 (logits, hidden gradient), backward 2 (recompute, weight)
    assert len(audit.seen) >= 5, audit.seen
    assert not audit.float32(), audit.float32()
    assert {dtypes for _, dtypes, _ in audit.seen} == {(torch.bfloat16, torch.bfloat16)}
