"""The AlpacaEval judges prefkit can run: the weighted (log-prob) annotator configs alpaca_eval ships.

A judge is chosen by the name of its config folder in the installed alpaca_eval
(`weighted_alpaca_eval_gpt4_turbo`, the leaderboard's default, or another `weighted_*` config such as
`weighted_alpaca_eval_gpt-4o-mini-2024-07-18`); `judge_model` may replace its model with any
OpenAI-compatible model that returns top log-probs. What a result depends on is recorded with it:
the judge model id, the config name, the SHA-256 of the prompt template and alpaca_eval's version.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from prefkit.errors import ConfigError, DependencyError, require_module

DEFAULT_ANNOTATOR = "weighted_alpaca_eval_gpt4_turbo"
# the only parser whose soft preference prefkit's recount and the LC fit are checked against
WEIGHTED_PARSER = "logprob_parser"


@dataclass(frozen=True)
class Annotator:
    """One shipped weighted judge config, with the model it will ask and its template's identity."""

    name: str
    model: str
    template: Path
    template_sha256: str
    alpaca_eval_version: str
    config: dict[str, Any]

    def identity(self) -> dict[str, str]:
        """What makes two results comparable: recorded in every alpaca-eval result."""
        return {
            "judge_annotator": self.name,
            "judge_model": self.model,
            "judge_template_sha256": self.template_sha256,
            "alpaca_eval_version": self.alpaca_eval_version,
        }


def configs_dir() -> Path:
    """The `evaluators_configs` folder of the installed alpaca_eval."""
    alpaca_eval = require_module("alpaca_eval", "pip install 'prefkit[alpaca]'")
    return Path(alpaca_eval.__file__).parent / "evaluators_configs"


def weighted_annotators() -> list[str]:
    """Names of the shipped configs that use the weighted log-prob judge."""
    names = []
    for path in sorted(configs_dir().glob("*/configs.yaml")):
        config = yaml.safe_load(path.read_text()) or {}
        body = config.get(path.parent.name, {})
        if isinstance(body, dict) and body.get("fn_completion_parser") == WEIGHTED_PARSER:
            names.append(path.parent.name)
    return names


def load_annotator(name: str = DEFAULT_ANNOTATOR, model: str | None = None) -> Annotator:
    """The shipped config `name` (a weighted judge), asking `model` instead of its own when given."""
    import alpaca_eval

    path = configs_dir() / name / "configs.yaml"
    if not path.exists():
        raise ConfigError(
            f"alpaca_eval {alpaca_eval.__version__} ships no judge config '{name}'",
            field="judge",
            hint=f"weighted judges it ships: {', '.join(weighted_annotators())}",
        )
    body = (yaml.safe_load(path.read_text()) or {}).get(name, {})
    if body.get("fn_completion_parser") != WEIGHTED_PARSER:
        raise ConfigError(
            f"'{name}' is not a weighted (log-prob) judge; prefkit runs only those",
            field="judge",
            hint=f"weighted judges shipped: {', '.join(weighted_annotators())}",
        )
    template = configs_dir() / body["prompt_template"]
    if not template.exists():
        raise DependencyError("the installed alpaca_eval lacks this judge's prompt template", file=template)
    return Annotator(
        name=name,
        model=model or body["completions_kwargs"]["model_name"],
        template=template,
        template_sha256=hashlib.sha256(template.read_bytes()).hexdigest(),
        alpaca_eval_version=str(alpaca_eval.__version__),
        config=body,
    )
