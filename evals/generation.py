"""The one place evaluators generate text: k seeded samples per prompt with transformers, plus log-probs.

Sampling is from the model's own distribution (top-k off, top-p 1 by default) so that the mean of
log pi(y|x) - log pi_ref(y|x) over samples is an unbiased estimate of the sequence KL. Temperature 0
means greedy decoding (one sample per prompt is then enough). Log-probs are computed on the token ids that
were actually sampled (closed by EOS when the model stopped), through `prefkit.scoring`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from prefkit.chat import encode_prompt
from prefkit.errors import ConfigError
from prefkit.scoring import completion_logprobs, completion_logprobs_from_ids


@dataclass(frozen=True)
class GenerationConfig:
    """How to sample: k completions per prompt, decoding settings, seed and batch size."""

    n: int = 1
    max_new_tokens: int = 128
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 0
    batch_size: int = 8
    use_chat_template: bool | None = None

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ConfigError(f"n must be at least 1, got {self.n}", field="n")
        if self.max_new_tokens < 1:
            raise ConfigError(f"must be at least 1, got {self.max_new_tokens}", field="max_new_tokens")
        if self.temperature < 0:
            raise ConfigError(f"must be >= 0, got {self.temperature}", field="temperature")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"must be in (0, 1], got {self.top_p}", field="top_p")
        if self.batch_size < 1:
            raise ConfigError(f"must be at least 1, got {self.batch_size}", field="batch_size")


@dataclass(frozen=True)
class GeneratedSample:
    """One completion: its text, its token count (EOS excluded), the ids scored, and its log-prob."""

    text: str
    num_tokens: int
    prompt_ids: tuple[int, ...]
    completion_ids: tuple[int, ...]
    logprob: float | None = None


def load_model_and_tokenizer(model_name: str, dtype: str = "float32"):
    """Load a causal LM (safetensors only) and its tokenizer, in eval mode."""
    from prefkit.models import load_causal_lm, load_tokenizer

    tokenizer = load_tokenizer(model_name)
    model = load_causal_lm(model_name, dtype=dtype)
    model.eval()
    return model, tokenizer


def generate_samples(
    model, tokenizer, prompts: Sequence[str], config: GenerationConfig, *, with_logprobs: bool = False
) -> list[list[GeneratedSample]]:
    """`config.n` completions for each prompt (seeded); with log-probs under `model` when asked."""
    import torch

    torch.manual_seed(config.seed)
    results: list[list[GeneratedSample]] = []
    for start in range(0, len(prompts), config.batch_size):
        batch = list(prompts[start : start + config.batch_size])
        results.extend(_generate_batch(model, tokenizer, batch, config))
    if with_logprobs:
        flat = [sample for samples in results for sample in samples]
        pairs = [(list(s.prompt_ids), list(s.completion_ids)) for s in flat]
        logprobs = iter(completion_logprobs_from_ids(model, pairs, batch_size=config.batch_size))
        results = [[_with_logprob(sample, next(logprobs)) for sample in samples] for samples in results]
    return results


def score_samples(
    model,
    tokenizer,
    prompts: Sequence[str],
    samples: Sequence[Sequence[GeneratedSample]],
    config: GenerationConfig,
    *,
    same_tokenizer: bool,
) -> list[list[float]]:
    """Log-probs of already generated samples under another model (e.g. the reference)."""
    flat_prompts = [prompt for prompt, group in zip(prompts, samples, strict=True) for _ in group]
    flat = [sample for group in samples for sample in group]
    if same_tokenizer:
        pairs = [(list(s.prompt_ids), list(s.completion_ids)) for s in flat]
        scores = completion_logprobs_from_ids(model, pairs, batch_size=config.batch_size)
    else:
        # a different vocabulary: re-tokenize the text with the other tokenizer
        scores = completion_logprobs(
            model,
            tokenizer,
            flat_prompts,
            [s.text for s in flat],
            use_chat_template=config.use_chat_template,
            batch_size=config.batch_size,
        )
    iterator = iter(scores)
    return [[next(iterator) for _ in group] for group in samples]


def _with_logprob(sample: GeneratedSample, logprob: float) -> GeneratedSample:
    return GeneratedSample(sample.text, sample.num_tokens, sample.prompt_ids, sample.completion_ids, logprob)


def _generate_batch(
    model, tokenizer, prompts: list[str], config: GenerationConfig
) -> list[list[GeneratedSample]]:
    import torch

    encoded = [encode_prompt(tokenizer, prompt, config.use_chat_template) for prompt in prompts]
    width = max(len(ids) for ids in encoded)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    input_ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(encoded), width), dtype=torch.long)
    for row, ids in enumerate(encoded):  # left padding so every prompt ends where generation starts
        input_ids[row, width - len(ids) :] = torch.tensor(ids)
        attention[row, width - len(ids) :] = 1
    device = next(model.parameters()).device
    greedy = config.temperature == 0
    sampling = {} if greedy else {"temperature": config.temperature, "top_p": config.top_p, "top_k": 0}
    with torch.no_grad():
        output = model.generate(
            input_ids=input_ids.to(device),
            attention_mask=attention.to(device),
            do_sample=not greedy,
            max_new_tokens=config.max_new_tokens,
            num_return_sequences=config.n,
            pad_token_id=pad_id,
            eos_token_id=tokenizer.eos_token_id,
            **sampling,
        )
    generated = output[:, width:].tolist()
    eos = tokenizer.eos_token_id
    groups: list[list[GeneratedSample]] = []
    for index, prompt_ids in enumerate(encoded):
        group = []
        for ids in generated[index * config.n : (index + 1) * config.n]:
            stopped = eos is not None and eos in ids
            tokens = ids[: ids.index(eos)] if stopped else ids
            completion_ids = tokens + [eos] if stopped else tokens
            text = tokenizer.decode(tokens, skip_special_tokens=True)
            group.append(GeneratedSample(text, len(tokens), tuple(prompt_ids), tuple(completion_ids)))
        groups.append(group)
    return groups
