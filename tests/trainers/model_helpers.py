"""Random Llama models of a chosen shape, with the tiny test tokenizer, for FLOP and dtype tests."""

from __future__ import annotations

from pathlib import Path


def shaped_llama(out: Path, **shape) -> Path:
    """Write a seeded random tied-embedding Llama of `shape` (LlamaConfig fields) and the test BPE
    tokenizer to `out`; a vocabulary larger than the tokenizer's leaves the extra ids unused."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from prefkit.testing import build_tiny_llama

    tokenizer = AutoTokenizer.from_pretrained(build_tiny_llama(out.parent / f"{out.name}-tokenizer"))
    config = LlamaConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
        **shape,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out
