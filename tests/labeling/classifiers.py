"""Tiny sequence classifiers for tests, built on the tiny Llama's tokenizer and trained for a few steps.

Training makes the scores mean something (positive words score higher), so tests can check that the
labelers pick the right completion rather than only that they return numbers.
"""

from __future__ import annotations

from pathlib import Path

POSITIVE = "good great wonderful happy love excellent".split()
NEGATIVE = "bad terrible awful sad hate horrible".split()
TOPICS = "movie meal trip".split()


def _build(tokenizer_dir: Path, out: Path, num_labels: int, id2label: dict[int, str] | None):
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForSequenceClassification

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        head_dim=16,
        max_position_embeddings=256,
        num_labels=num_labels,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **({"id2label": id2label, "label2id": {v: k for k, v in id2label.items()}} if id2label else {}),
    )
    return LlamaForSequenceClassification(config), tokenizer


def _texts(words: list[str]) -> list[str]:
    return [f"The {topic} was {word} and I {word} it." for topic in TOPICS for word in words]


def _train(model, tokenizer, loss_fn, steps: int = 25) -> None:
    import torch

    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    tokenizer.padding_side = "right"
    for _ in range(steps):
        optimizer.zero_grad()
        loss = loss_fn(model, tokenizer)
        loss.backward()
        optimizer.step()
    model.eval()


def _logits(model, tokenizer, texts: list[str]):
    encoded = tokenizer(texts, return_tensors="pt", padding=True)
    return model(**encoded).logits


def build_sentiment_classifier(tokenizer_dir: Path, out: Path) -> Path:
    """Two classes (NEGATIVE, POSITIVE), trained to tell the word lists apart."""
    import torch

    model, tokenizer = _build(tokenizer_dir, out, 2, {0: "NEGATIVE", 1: "POSITIVE"})
    texts = _texts(POSITIVE) + _texts(NEGATIVE)
    labels = torch.tensor([1] * len(_texts(POSITIVE)) + [0] * len(_texts(NEGATIVE)))
    _train(model, tokenizer, lambda m, t: torch.nn.functional.cross_entropy(_logits(m, t, texts), labels))
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out


def build_reward_model(tokenizer_dir: Path, out: Path) -> Path:
    """One output, trained Bradley-Terry style on chat-rendered (positive, negative) answers."""
    import torch

    model, tokenizer = _build(tokenizer_dir, out, 1, None)

    def render(text: str) -> str:
        messages = [{"role": "user", "content": "Say something."}, {"role": "assistant", "content": text}]
        return tokenizer.apply_chat_template(messages, tokenize=False)

    good = [render(text) for text in _texts(POSITIVE)]
    bad = [render(text) for text in _texts(NEGATIVE)]

    def loss(m, t):
        return -torch.nn.functional.logsigmoid(_logits(m, t, good)[:, 0] - _logits(m, t, bad)[:, 0]).mean()

    _train(model, tokenizer, loss)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out
