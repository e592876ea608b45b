"""A reward model (AutoModelForSequenceClassification, one output) scoring (prompt, completion).

The pair is rendered with the reward model's own chat template (user turn = prompt, assistant turn
= completion), as reward models are trained that way; a conversational prompt is rendered whole (system,
history, then the completion as the final assistant turn), i.e. exactly
`apply_chat_template(prompt + [assistant])`. A tokenizer without a template gets plain concatenation
`prompt + separator + completion` instead (a conversation as `role: text` lines; stated in the
manifest through options).
"""

from __future__ import annotations

from prefkit.conversation import Prompt, assistant_turn, display_prompt, is_conversation
from prefkit.errors import ConfigError, ModelError
from prefkit.labeling.classifier import ScoringStats, batched_logits, load_classifier


class RewardModelLabeler:
    """Scores completions with a reward model's scalar output.

    Options: `model` (folder or hub id, required), `use_chat_template` (None = when the tokenizer has
    one), `separator` ("\\n\\n", for plain concatenation), `batch_size` (16), `max_length` (2048 tokens,
    truncating), `dtype` (auto = bf16 on GPU, fp32 on CPU), `device`, `trust_remote_code` (False),
    `engine` ("transformers" forward passes, or "vllm": vLLM's pooling runner, same inputs and outputs).
    """

    name = "reward-model"

    def __init__(
        self,
        model: str,
        use_chat_template: bool | None = None,
        separator: str = "\n\n",
        batch_size: int = 16,
        max_length: int | None = 2048,
        dtype: str = "auto",
        device: str | None = None,
        trust_remote_code: bool = False,
        engine: str = "transformers",
    ) -> None:
        if engine not in ("transformers", "vllm"):
            raise ConfigError(f"must be transformers or vllm, got '{engine}'", field="labeler_options.engine")
        self.vllm_scorer = None
        if engine == "vllm":
            from prefkit.labeling.vllm_pooling import VLLMRewardScorer

            num_labels = reward_head_size(model, trust_remote_code)
            if num_labels == 1:
                self.vllm_scorer = VLLMRewardScorer(
                    model, dtype=dtype, max_length=max_length, trust_remote_code=trust_remote_code
                )
                self.model, self.tokenizer = None, self.vllm_scorer.tokenizer
        else:
            self.model, self.tokenizer = load_classifier(
                model, dtype=dtype, device=device, trust_remote_code=trust_remote_code
            )
            num_labels = self.model.config.num_labels
        if num_labels != 1:
            raise ConfigError(
                f"a reward model has one output, this one has {num_labels}",
                field="labeler_options.model",
                hint="use the sentiment labeler for classifiers",
            )
        has_template = bool(getattr(self.tokenizer, "chat_template", None))
        if use_chat_template and not has_template:
            raise ConfigError(
                "the reward model's tokenizer has no chat template", field="labeler_options.use_chat_template"
            )
        self.use_chat_template = has_template if use_chat_template is None else use_chat_template
        self.separator = separator
        self.batch_size = batch_size
        self.max_length = max_length
        self.stats = ScoringStats()

    def render(self, prompt: Prompt, completion: str) -> str:
        """The exact text the reward model scores: the whole conversation, the completion as its last turn."""
        if not self.use_chat_template:
            return f"{display_prompt(prompt)}{self.separator}{completion}"
        history = list(prompt) if is_conversation(prompt) else [{"role": "user", "content": prompt}]
        try:
            return self.tokenizer.apply_chat_template(history + assistant_turn(completion), tokenize=False)
        except Exception as error:  # jinja2 TemplateError: templates raise_exception() on turns they reject
            raise ModelError(
                f"the reward model's chat template refused the conversation: {error}",
                field="labeler_options.model",
                hint="e.g. a template without a system role; drop the system turn from the prompts",
            ) from None

    def score(self, prompts: list[Prompt], completions: list[list[str]]) -> list[list[float]]:
        """The reward of each (prompt, completion)."""
        texts = [self.render(p, c) for p, row in zip(prompts, completions, strict=True) for c in row]
        if self.vllm_scorer is not None:
            rewards = iter(
                self.vllm_scorer.scores(
                    texts, add_special_tokens=not self.use_chat_template, stats=self.stats
                )
            )
            return [[next(rewards) for _ in row] for row in completions]
        logits = batched_logits(
            self.model,
            self.tokenizer,
            texts,
            batch_size=self.batch_size,
            max_length=self.max_length,
            add_special_tokens=not self.use_chat_template,
            stats=self.stats,
        )
        values = iter(value[0] for value in logits)
        return [[next(values) for _ in row] for row in completions]

    def close(self) -> None:
        """Free a vLLM engine (the transformers model is freed with the labeler)."""
        if self.vllm_scorer is not None:
            self.vllm_scorer.close()
            self.vllm_scorer = None

    def usage(self) -> dict[str, float]:
        """Samples scored and seconds spent (the stage reports samples/s)."""
        return {"samples": self.stats.samples, "seconds": round(self.stats.seconds, 3)}


def reward_head_size(model: str, trust_remote_code: bool = False) -> int:
    """`num_labels` from the model's config, read without loading its weights."""
    from transformers import AutoConfig

    from prefkit.errors import ModelError
    from prefkit.models import first_line, resolve_model

    location = resolve_model(model)
    try:
        return AutoConfig.from_pretrained(location, trust_remote_code=trust_remote_code).num_labels
    except (OSError, ValueError) as error:
        raise ModelError(
            f"could not read the reward model's config: {first_line(error)}", file=location
        ) from None
