"""Random-weight models of real architectures for benchmarks (no download: the config is written here).

    random:llama-3.2-1b   Llama-3.2-1B's shape (1.24 B parameters, vocab 128,256, GQA 32/8 heads)
    random:qwen2.5-1.5b   Qwen2.5-1.5B's shape (1.54 B parameters, vocab 151,936, GQA 12/2 heads)
    random:tiny-128k      a 2-layer Llama (hidden 64) with Llama-3's 128,256 vocabulary: the LM head
                          dominates, as at the real shape, and a CPU runs it in seconds

Throughput depends on the shape, not the values, so random weights measure what the real model would;
completions of a random model rarely hit EOS, so runs generate close to max_new_tokens (state it). The
tokenizer is the test BPE tokenizer (its ids are a subset of the model's vocabulary).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

ARCHITECTURES: dict[str, dict] = {
    "llama-3.2-1b": {
        "model_type": "llama",
        "architectures": ["LlamaForCausalLM"],
        "hidden_size": 2048,
        "intermediate_size": 8192,
        "num_hidden_layers": 16,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "head_dim": 64,
        "vocab_size": 128256,
        "rope_theta": 500000.0,
        "tie_word_embeddings": True,
        "rms_norm_eps": 1e-5,
    },
    "tiny-128k": {
        "model_type": "llama",
        "architectures": ["LlamaForCausalLM"],
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 2,
        "head_dim": 32,
        "vocab_size": 128256,
        "rope_theta": 500000.0,
        "tie_word_embeddings": True,
        "rms_norm_eps": 1e-5,
    },
    "qwen2.5-1.5b": {
        "model_type": "qwen2",
        "architectures": ["Qwen2ForCausalLM"],
        "hidden_size": 1536,
        "intermediate_size": 8960,
        "num_hidden_layers": 28,
        "num_attention_heads": 12,
        "num_key_value_heads": 2,
        "vocab_size": 151936,
        "rope_theta": 1000000.0,
        "tie_word_embeddings": True,
        "rms_norm_eps": 1e-6,
    },
}


def random_model(
    name: str, out: Path | None = None, *, max_position_embeddings: int = 4096, head: str = "causal-lm"
) -> Path:
    """Write a seeded random-weight bf16 model of architecture `name` (and a tokenizer) to `out`.

    `head` is "causal-lm" (sampling, training) or "reward" (one-output sequence classifier)."""
    import torch
    from transformers import (
        AutoConfig,
        AutoModelForCausalLM,
        AutoModelForSequenceClassification,
        AutoTokenizer,
    )

    from prefkit.testing import build_tiny_llama

    if name not in ARCHITECTURES:
        raise SystemExit(f"unknown architecture '{name}' (known: {', '.join(ARCHITECTURES)})")
    out = out or Path(tempfile.mkdtemp(prefix=f"prefkit-{name}-"))
    values = dict(ARCHITECTURES[name])
    model_type = values.pop("model_type")
    config = AutoConfig.for_model(model_type, max_position_embeddings=max_position_embeddings, **values)
    tokenizer = AutoTokenizer.from_pretrained(build_tiny_llama(out / "tokenizer-source"))
    config.bos_token_id, config.eos_token_id = tokenizer.bos_token_id, tokenizer.eos_token_id
    config.pad_token_id = (
        tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    )
    torch.manual_seed(0)
    if head == "reward":
        config.num_labels = 1
        config.architectures = [config.architectures[0].replace("ForCausalLM", "ForSequenceClassification")]
        model = AutoModelForSequenceClassification.from_config(config, dtype=torch.bfloat16)
    else:
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(out / "model")
    tokenizer.save_pretrained(out / "model")
    return out / "model"


def reward_model_from(causal_lm: str, out: Path) -> Path:
    """A one-output reward model on a causal LM's backbone (its weights) with a seeded random head."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(causal_lm)
    model = AutoModelForSequenceClassification.from_pretrained(causal_lm, num_labels=1, dtype=torch.float32)
    model.config.pad_token_id = (
        tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    )
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
