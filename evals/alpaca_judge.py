"""Run an alpaca-eval 0.6.6 weighted judge as a library against any OpenAI-compatible server.

What makes it work (see docs/evaluation.md): data passed as lists of dicts (never the hub loader);
caching_path=None; metric_kwargs save_weights_dir=None; an annotator config written here from the
shipped one (`prefkit_evals.alpaca_annotators`) whose client config points at the judge endpoint; and
`glm_winrate.hf_hub_download` replaced, for the duration of the call, by a function returning the
`df_gamed.csv` prefkit located (`prefkit.evaluation.alpaca_data.locate_gamed_csv`). The weighted judge asks
for one token and reads P('m') vs P('M') from its top log-probs, so the server must support
`logprobs`/`top_logprobs`. Settings and errors are prefkit.judge's: `JudgeSettings`, `JudgeError`.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from prefkit_evals.alpaca_annotators import Annotator

from prefkit.errors import require_module
from prefkit.evaluation.annotations import WinRateSummary, summarize_preferences
from prefkit.judge.client import JudgeError, JudgeSettings, judge_api_key

__all__ = ["JudgeError", "JudgeResult", "check_judge", "run_judge"]


@dataclass(frozen=True)
class JudgeResult:
    """alpaca_eval's metrics, prefkit's recount, the annotations, and what judging cost."""

    summary: WinRateSummary
    lc_win_rate: float | None
    lc_standard_error: float | None
    annotations: list[dict]
    cost_usd: float | None
    judge_tokens: float | None


def import_alpaca_eval():
    """Import alpaca_eval offline (it imports pkg_resources, so setuptools<81 must be installed)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    require_module("pkg_resources", "pip install 'setuptools<81'")
    main = require_module("alpaca_eval.main", "pip install 'prefkit[alpaca]'")
    glm = require_module("alpaca_eval.metrics.glm_winrate", "pip install 'prefkit[alpaca]'")
    return main, glm


def annotator_config(
    settings: JudgeSettings, annotator: Annotator, client_config_path: Path, price_per_token: float | None
) -> dict[str, Any]:
    """The shipped weighted config, asking `annotator.model` through our client config, in chat format."""
    body = copy.deepcopy(annotator.config)
    body["prompt_template"] = str(annotator.template)
    completions = body["completions_kwargs"]
    completions.update(
        model_name=annotator.model,
        # upstream guesses chat vs completion from the model name; a local 'instruct' judge is still chat
        requires_chatml=True,
        client_config_path=str(client_config_path),
        num_procs=settings.max_concurrency,
    )
    if price_per_token is not None:
        completions["price_per_token"] = price_per_token
    return {annotator.name: body}


@contextlib.contextmanager
def local_gamed_csv(glm_module, gamed_csv: Path | None) -> Iterator[None]:
    """Make alpaca_eval's LC fit read `gamed_csv` instead of downloading it from the hub."""

    def local_download(*args: Any, filename: str = "", **kwargs: Any) -> str:
        if filename == "df_gamed.csv" and gamed_csv is not None:
            return str(gamed_csv)
        raise JudgeError(f"alpaca_eval asked the hub for '{filename}'; prefkit fetches its data itself")

    original = glm_module.hf_hub_download
    glm_module.hf_hub_download = local_download
    try:
        yield
    finally:
        glm_module.hf_hub_download = original


@contextlib.contextmanager
def quiet_logging(level: int = logging.WARNING) -> Iterator[None]:
    """alpaca_eval logs every request at INFO on the root logger; keep only warnings while it runs."""
    root = logging.getLogger()
    previous = root.level
    root.setLevel(max(level, previous))
    try:
        yield
    finally:
        root.setLevel(previous)


def client_kwargs(settings: JudgeSettings) -> dict[str, Any]:
    """Arguments of `openai.OpenAI` for the judge (the key comes from the environment, never from config)."""
    kwargs: dict[str, Any] = {
        "max_retries": settings.max_attempts - 1,
        "timeout": settings.timeout_s,
        "api_key": judge_api_key(settings),
    }
    if settings.base_url:
        kwargs["base_url"] = settings.base_url
    return kwargs


def endpoint(settings: JudgeSettings) -> str:
    return settings.base_url or "api.openai.com"


@contextlib.contextmanager
def judge_errors(settings: JudgeSettings) -> Iterator[None]:
    """Turn the openai client's connection, key and HTTP errors into one clear JudgeError line."""
    openai = require_module("openai", "pip install openai")
    try:
        yield
    except openai.APIConnectionError as error:
        raise JudgeError(
            f"the judge server at {endpoint(settings)} is unreachable ({error.__class__.__name__}: {error})",
            field="judge_base_url",
            hint="start an OpenAI-compatible server (e.g. vLLM) or fix judge_base_url",
        ) from None
    except openai.AuthenticationError:
        raise JudgeError(
            f"the judge at {endpoint(settings)} rejected the API key", hint=f"set ${settings.api_key_env}"
        ) from None
    except openai.APIStatusError as error:
        raise JudgeError(
            f"the judge at {endpoint(settings)} answered HTTP {error.status_code}: {_short(error.message)}",
            hint="check judge_model and that the server supports logprobs/top_logprobs",
        ) from None


def check_judge(settings: JudgeSettings, model: str) -> None:
    """One probe request before judging hundreds: the server answers `model`, and with top log-probs."""
    openai = require_module("openai", "pip install openai")
    client = openai.OpenAI(**client_kwargs(settings))
    with judge_errors(settings):
        response = client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": "Answer with one letter: m or M."}],
            max_tokens=1,
            logprobs=True,
            top_logprobs=5,
        )
    choice = response.choices[0] if response.choices else None
    content = choice.logprobs.content if choice is not None and choice.logprobs is not None else None
    if not content or not content[0].top_logprobs:
        raise JudgeError(
            f"the judge {model} at {endpoint(settings)} returned no logprobs",
            hint="the weighted AlpacaEval judge reads P('m') vs P('M') from top_logprobs; use a server that "
            "supports them (vLLM, OpenAI)",
        )


def run_judge(
    model_outputs: list[dict],
    baseline_outputs: list[dict],
    settings: JudgeSettings,
    annotator: Annotator,
    *,
    name: str,
    gamed_csv: Path | None = None,
    length_controlled: bool = False,
    max_missing: int = 0,
    probe: bool = True,
    price_per_token: float | None = None,
) -> JudgeResult:
    """Judge model vs baseline outputs (aligned by instruction); raise JudgeError past `max_missing` gaps.

    `probe` sends one request first (see `check_judge`); pass False when the caller already checked.
    """
    main, glm = import_alpaca_eval()
    require_module("openai", "pip install openai")
    fn_metric = "get_length_controlled_winrate" if length_controlled else "get_winrate"
    metric_kwargs = {"save_weights_dir": None} if length_controlled else {}
    with tempfile.TemporaryDirectory(prefix="prefkit-judge-") as tmp:
        # the client config lives in a private temporary folder because it holds the API key
        client_path = Path(tmp) / "client_config.yaml"
        client = client_kwargs(settings)
        if probe:
            check_judge(settings, annotator.model)
        client_path.write_text(yaml.safe_dump({"default": [client]}))
        os.chmod(client_path, 0o600)
        config_path = Path(tmp) / annotator.name / "configs.yaml"
        config_path.parent.mkdir()
        config_path.write_text(
            yaml.safe_dump(annotator_config(settings, annotator, client_path, price_per_token))
        )
        with judge_errors(settings), local_gamed_csv(glm, gamed_csv), quiet_logging():
            leaderboard, annotations = main.evaluate(
                model_outputs=model_outputs,
                reference_outputs=baseline_outputs,
                annotators_config=str(config_path),
                name=name,
                output_path=None,
                precomputed_leaderboard=None,
                is_return_instead_of_print=True,
                fn_metric=fn_metric,
                metric_kwargs=metric_kwargs,
                caching_path=None,
                sort_by="win_rate",
            )
    rows = (
        [_clean(row) for row in annotations.to_dict(orient="records")]
        if hasattr(annotations, "to_dict")
        else list(annotations)
    )
    return _result(rows, leaderboard.loc[name].to_dict(), len(model_outputs), max_missing, length_controlled)


def _result(rows, metrics, n_expected, max_missing, length_controlled) -> JudgeResult:
    summary = summarize_preferences(
        [row.get("preference") for row in rows],
        [len(row["output_2"]) for row in rows if isinstance(row.get("output_2"), str)],
        n_expected=n_expected,
    )
    unusable = summary.n_missing + summary.n_invalid
    if unusable > max_missing:
        raise JudgeError(
            f"{unusable} of {n_expected} judge annotations are missing or invalid "
            f"({summary.n_missing} missing, {summary.n_invalid} invalid); max_missing is {max_missing}",
            hint="raise max_missing to accept a partial result, or check the judge's answers",
        )
    prices = [row.get("preference_price_per_example") for row in rows]
    cost = math.fsum(p for p in prices if _finite(p)) if any(_finite(p) for p in prices) else None
    tokens = [_raw_tokens(row) for row in rows]
    lc = metrics.get("length_controlled_winrate") if length_controlled else None
    lc_se = metrics.get("lc_standard_error") if length_controlled else None
    return JudgeResult(
        summary=summary,
        lc_win_rate=float(lc) if _finite(lc) else None,
        lc_standard_error=float(lc_se) if _finite(lc_se) else None,
        annotations=rows,
        cost_usd=cost,
        judge_tokens=math.fsum(t for t in tokens if t is not None)
        if any(t is not None for t in tokens)
        else None,
    )


def _raw_tokens(row: dict) -> float | None:
    raw = row.get("preference_raw_completion") or row.get("raw_completion")
    value = raw.get("total_tokens") if isinstance(raw, dict) else None
    return float(value) if _finite(value) else None


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _clean(row: dict) -> dict:
    """NaN -> None so annotations serialise as JSON."""
    return {
        key: (None if isinstance(value, float) and math.isnan(value) else value) for key, value in row.items()
    }


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
