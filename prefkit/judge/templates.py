"""Judge prompt templates: replaceable text files with YAML front matter saying how to read the answer.

A template file looks like:

    ---
    mode: pairwise            # or pointwise
    first_label: A            # pairwise: the answer naming the first response ...
    second_label: B           # ... and the second one; tie_label is optional
    answer_pattern: 'More helpful:\\s*([AB])'   # regex; group 1 is the verdict (last match wins)
    system: optional system message
    max_tokens: 256
    ---
    Prompt text with {prompt}, {response_a}, {response_b} (pairwise) or {response} (pointwise).

Only those placeholders are substituted (other braces are left alone, so templates may show JSON).
A conversational prompt fills {prompt} with its history written out turn by turn (`render_history`), so
every template judges multi-turn candidates as the next assistant turn without a template change.
The template's hash is part of every cache key: editing a template never reuses old verdicts.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from prefkit.conversation import Prompt, is_conversation
from prefkit.errors import ConfigError

BUILTIN = {
    "pairwise": "dpo_helpfulness",
    "pointwise": "pointwise",
}
PLACEHOLDERS = {
    "pairwise": ("{prompt}", "{response_a}", "{response_b}"),
    "pointwise": ("{prompt}", "{response}"),
}
FIRST, SECOND, TIE = "first", "second", "tie"
HISTORY_HEADER = "The conversation so far (the responses are the assistant's next turn):"


def render_history(prompt: Prompt) -> str:
    """The text a judge sees for a prompt: a string as is; a conversation as a header and one
    `Role: text` paragraph per turn (a lone user turn is shown as its plain text)."""
    if not is_conversation(prompt):
        return prompt
    if len(prompt) == 1 and prompt[0]["role"] == "user":
        return prompt[0]["content"]
    turns = [f"{message['role'].capitalize()}: {message['content']}" for message in prompt]
    return "\n\n".join([HISTORY_HEADER, *turns])


@dataclass(frozen=True)
class JudgeTemplate:
    """A parsed template: how to build the messages and how to read a verdict out of the answer."""

    name: str
    mode: str
    body: str
    answer_pattern: re.Pattern
    sha256: str
    system: str | None = None
    first_label: str | None = None
    second_label: str | None = None
    tie_label: str | None = None
    min_score: float = -math.inf
    max_score: float = math.inf
    max_tokens: int = 256

    def messages(
        self, prompt: Prompt, response_a: str, response_b: str | None = None
    ) -> list[dict[str, str]]:
        """Chat messages for one judgement (pointwise templates use `response_a` as {response}; a
        conversational prompt is written out by `render_history`)."""
        values = {"{prompt}": render_history(prompt)}
        if self.mode == "pairwise":
            values.update({"{response_a}": response_a, "{response_b}": response_b or ""})
        else:
            values["{response}"] = response_a
        # one pass, so a response that itself contains "{response_b}" is not substituted again
        pattern = re.compile("|".join(re.escape(key) for key in values))
        text = pattern.sub(lambda match: values[match.group(0)], self.body)
        system = [{"role": "system", "content": self.system}] if self.system else []
        return system + [{"role": "user", "content": text}]

    def parse(self, answer: str | None) -> str | float | None:
        """The verdict (`first`/`second`/`tie`) or score in the answer, or None when it cannot be read."""
        if not answer:
            return None
        matches = list(self.answer_pattern.finditer(answer))
        if not matches:
            return None
        token = matches[-1].group(1).strip()
        if self.mode == "pointwise":
            try:
                score = float(token)
            except ValueError:
                return None
            return score if self.min_score <= score <= self.max_score else None
        for label, verdict in ((self.first_label, FIRST), (self.second_label, SECOND), (self.tie_label, TIE)):
            if label is not None and token == label:
                return verdict
        return None


def builtin_template_dir() -> Path:
    """Where the shipped templates live (prefkit/data/judge_templates)."""
    return Path(str(resources.files("prefkit") / "data" / "judge_templates"))


def load_template(name_or_path: str | Path | None, mode: str) -> JudgeTemplate:
    """A template by file path or built-in name (dpo_helpfulness, dpo_summarization, alpaca_eval, pointwise)."""
    if mode not in PLACEHOLDERS:
        raise ConfigError(f"judge mode must be 'pairwise' or 'pointwise', got '{mode}'", field="mode")
    name = str(name_or_path or BUILTIN[mode])
    path = Path(name).expanduser()
    if not path.exists():
        path = builtin_template_dir() / f"{name}.md"
        if not path.exists():
            shipped = ", ".join(sorted(p.stem for p in builtin_template_dir().glob("*.md")))
            raise ConfigError(
                f"no judge template file or built-in named '{name}' (built-in: {shipped})", field="template"
            )
    return parse_template(path.read_text(encoding="utf-8"), name=str(path), expected_mode=mode)


def parse_template(text: str, *, name: str, expected_mode: str) -> JudgeTemplate:
    """Parse a template's front matter and body; errors name the file and field."""
    if not text.startswith("---"):
        raise ConfigError("a judge template starts with YAML front matter between '---' lines", file=name)
    try:
        _, header, body = text.split("---\n", 2) if text.startswith("---\n") else ("", "", "")
        meta = yaml.safe_load(header) or {}
    except (ValueError, yaml.YAMLError) as error:
        raise ConfigError(f"front matter is not valid YAML ({error.__class__.__name__})", file=name) from None
    if not isinstance(meta, dict):
        raise ConfigError("front matter must be a mapping", file=name)
    mode = meta.get("mode")
    if mode != expected_mode:
        raise ConfigError(
            f"is a '{mode}' template but the judge runs in '{expected_mode}' mode", file=name, field="mode"
        )
    for placeholder in PLACEHOLDERS[mode]:
        if placeholder not in body:
            raise ConfigError(f"the template text lacks the placeholder {placeholder}", file=name)
    if "answer_pattern" not in meta:
        raise ConfigError("is missing", file=name, field="answer_pattern")
    try:
        pattern = re.compile(str(meta["answer_pattern"]), re.MULTILINE)
    except re.error as error:
        raise ConfigError(
            f"is not a valid regular expression ({error})", file=name, field="answer_pattern"
        ) from None
    if pattern.groups < 1:
        raise ConfigError("needs one capturing group for the verdict", file=name, field="answer_pattern")
    if mode == "pairwise" and not (meta.get("first_label") and meta.get("second_label")):
        raise ConfigError("pairwise templates need first_label and second_label", file=name)
    return JudgeTemplate(
        name=Path(name).stem,
        mode=mode,
        body=body.strip() + "\n",
        answer_pattern=pattern,
        sha256=hashlib.sha256(text.encode()).hexdigest(),
        system=meta.get("system"),
        first_label=_label(meta.get("first_label")),
        second_label=_label(meta.get("second_label")),
        tie_label=_label(meta.get("tie_label")),
        min_score=float(meta.get("min_score", -math.inf)),
        max_score=float(meta.get("max_score", math.inf)),
        max_tokens=int(meta.get("max_tokens", 256)),
    )


def _label(value: object) -> str | None:
    return None if value is None else str(value)
