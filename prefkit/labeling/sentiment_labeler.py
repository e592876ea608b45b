"""A transformers text classifier as a reward: the positive class's probability or logit.

This is the reward of the DPO paper's controlled-sentiment experiment (a sentiment classifier's
positive score). The positive class is found in the model's id2label (the label containing "pos",
e.g. POSITIVE or LABEL_POSITIVE); name it with `positive_label` when the model uses other names.
"""

from __future__ import annotations

from prefkit.conversation import Prompt, display_prompt
from prefkit.errors import ConfigError
from prefkit.labeling.classifier import ScoringStats, batched_logits, load_classifier

OUTPUTS = ("probability", "logit")


class SentimentLabeler:
    """Scores completions with a sequence classifier's positive class.

    Options: `model` (folder or hub id, required), `output` ("probability": softmax probability in
    [0, 1], default; "logit": its log-odds log(p / (1 - p)), unbounded), `positive_label` (label name
    or index; default: the one label containing "pos"), `include_prompt` (score prompt + completion;
    default False; a conversation's history as `role: text` lines; without it only the completion,
    i.e. the last assistant turn, is scored), `batch_size` (32), `max_length` (512 tokens, truncating), `dtype` (auto = bf16 on
    GPU), `device`.
    """

    name = "sentiment"

    def __init__(
        self,
        model: str,
        output: str = "probability",
        positive_label: str | int | None = None,
        include_prompt: bool = False,
        batch_size: int = 32,
        max_length: int | None = 512,
        dtype: str = "auto",
        device: str | None = None,
    ) -> None:
        if output not in OUTPUTS:
            raise ConfigError(
                f"must be 'probability' or 'logit', got '{output}'", field="labeler_options.output"
            )
        self.output = output
        self.include_prompt = include_prompt
        self.batch_size = batch_size
        self.max_length = max_length
        self.model, self.tokenizer = load_classifier(model, dtype=dtype, device=device)
        self.positive_index = positive_class_index(dict(self.model.config.id2label), positive_label)
        self.stats = ScoringStats()

    def score(self, prompts: list[Prompt], completions: list[list[str]]) -> list[list[float]]:
        """Positive-class probability (or log-odds) of every completion."""
        import torch

        texts = [
            f"{display_prompt(p)} {c}" if self.include_prompt else c
            for p, row in zip(prompts, completions, strict=True)
            for c in row
        ]
        logits = batched_logits(
            self.model,
            self.tokenizer,
            texts,
            batch_size=self.batch_size,
            max_length=self.max_length,
            add_special_tokens=True,
            stats=self.stats,
        )
        values = iter(
            positive_scores(torch.tensor(logits).reshape(len(texts), -1), self.positive_index, self.output)
        )
        return [[next(values) for _ in row] for row in completions]

    def usage(self) -> dict[str, float]:
        return {"samples": self.stats.samples, "seconds": round(self.stats.seconds, 3)}


def positive_class_index(id2label: dict[int, str], positive_label: str | int | None) -> int:
    """Index of the positive class: given by name or index, else the one label containing 'pos'."""
    labels = {int(index): str(name) for index, name in id2label.items()}
    if positive_label is not None:
        for index, name in labels.items():
            if positive_label == index or str(positive_label).lower() == name.lower():
                return index
        raise ConfigError(
            f"no class '{positive_label}' in the model's labels {labels}",
            field="labeler_options.positive_label",
        )
    found = [index for index, name in labels.items() if "pos" in name.lower()]
    if len(found) != 1:
        raise ConfigError(
            f"cannot tell the positive class from the model's labels {labels}",
            field="labeler_options.positive_label",
            hint='name it, e.g. labeler_options {"positive_label": "LABEL_1"}',
        )
    return found[0]


def positive_scores(logits, positive_index: int, output: str) -> list[float]:
    """Softmax probability of the positive class, or its log-odds (logit_pos - logsumexp(others))."""
    import torch

    if logits.shape[-1] < 2:
        raise ConfigError(
            "a sentiment model needs at least two classes; use the reward-model labeler for one"
        )
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    if output == "probability":
        return log_probs[:, positive_index].exp().tolist()
    others = torch.cat([logits[:, :positive_index], logits[:, positive_index + 1 :]], dim=-1).float()
    return (logits[:, positive_index].float() - torch.logsumexp(others, dim=-1)).tolist()
