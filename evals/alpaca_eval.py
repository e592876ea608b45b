"""alpaca-eval: AlpacaEval 2 win rate (and length-controlled win rate) against GPT-4 Preview.

prefkit generates the subject's outputs on the AlpacaEval instructions (greedy by default) through the
sampler plugins of `prefkit sample` (`backend`: auto = vLLM when installed, else transformers), reads the
instructions and the baseline's outputs from a local folder, and runs one of alpaca_eval's weighted
judges (`judge`, default weighted_alpaca_eval_gpt4_turbo) through any OpenAI-compatible endpoint (see
`prefkit_evals.alpaca_judge`). The LC win rate is reported on the full 805-instruction set when
`df_gamed.csv` is found (data_dir, $PREFKIT_HOME/alpaca_eval, or the hub); otherwise
`lc_missing_reason` says why. Every result records the judge model, its config and template hash, the
alpaca_eval version and the df_gamed revision, so the leaderboard can tell comparable results apart.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prefkit_evals.alpaca_annotators import DEFAULT_ANNOTATOR, load_annotator
from prefkit_evals.alpaca_judge import JudgeResult, check_judge, run_judge
from prefkit_evals.sampling import EvalGeneration, sample_prompts

from prefkit.errors import ConfigError
from prefkit.evaluation.alpaca_data import (
    AlpacaEvalSet,
    length_control_unavailable_reason,
    load_alpaca_eval_set,
)
from prefkit.evaluation.stage import EvalSubject
from prefkit.judge.client import JudgeSettings
from prefkit.records import PromptRecord

MODEL_OUTPUTS_FILE = "model_outputs.json"
ANNOTATIONS_FILE = "annotations.json"


class AlpacaEvalEvaluator:
    """AlpacaEval 2 with a local judge: win rate, standard error, LC win rate, average length, judge cost."""

    name = "alpaca-eval"

    def __init__(
        self,
        judge: str = DEFAULT_ANNOTATOR,
        judge_model: str | None = None,
        judge_base_url: str | None = None,
        judge_api_key_env: str = "OPENAI_API_KEY",
        judge_concurrency: int = 8,
        judge_timeout_s: float = 60.0,
        judge_max_attempts: int = 6,
        judge_price_per_token: float | None = None,
        data_dir: str | None = None,
        data_revision: str | None = None,
        max_instances: int | None = None,
        subset_seed: int = 0,
        max_missing: int = 0,
        max_new_tokens: int = 512,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int = 0,
        batch_size: int = 8,
        dtype: str = "float32",
        use_chat_template: bool | None = None,
        backend: str = "auto",
        engine: dict[str, Any] | None = None,
    ) -> None:
        if int(max_missing) < 0:
            raise ConfigError(f"must be >= 0, got {max_missing}", field="max_missing")
        self.annotator = load_annotator(judge, judge_model)
        # judge_base_url None = api.openai.com (the key from judge_api_key_env)
        self.settings = JudgeSettings.from_options(
            {
                "model": self.annotator.model,
                "base_url": judge_base_url,
                "api_key_env": judge_api_key_env,
                "max_concurrency": judge_concurrency,
                "timeout_s": judge_timeout_s,
                "max_attempts": judge_max_attempts,
            }
        )
        self.price_per_token = float(judge_price_per_token) if judge_price_per_token is not None else None
        self.data_revision = data_revision
        self.data_dir = data_dir
        self.max_instances = int(max_instances) if max_instances is not None else None
        self.subset_seed = int(subset_seed)
        self.max_missing = int(max_missing)
        self.dtype = dtype
        self.generation = EvalGeneration(
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_p=top_p,
            seed=seed,
            batch_size=batch_size,
            dtype=dtype,
            use_chat_template=use_chat_template,
            backend=backend,
            engine=engine,
        )
        self.progress = True  # set by prefkit.evaluation.stage (False for --quiet)

    def evaluate(self, subject: EvalSubject, work_dir: Path) -> dict[str, Any]:
        """Generate, judge against the baseline, save outputs and annotations to `work_dir`; return metrics."""
        data = load_alpaca_eval_set(
            self.data_dir, self.max_instances, self.subset_seed, gamed_revision=self.data_revision
        )
        check_judge(self.settings, self.annotator.model)  # fail before spending time on generation
        outputs = self.generate_outputs(subject, data)
        work_dir.mkdir(parents=True, exist_ok=True)
        (work_dir / MODEL_OUTPUTS_FILE).write_text(json.dumps(outputs, indent=1, ensure_ascii=False))
        lc_reason = length_control_unavailable_reason(data)
        result = run_judge(
            outputs,
            [dict(row) for row in data.rows],
            self.settings,
            self.annotator,
            name=subject.name,
            gamed_csv=data.gamed_csv,
            length_controlled=not lc_reason,
            max_missing=self.max_missing,
            probe=False,
            price_per_token=self.price_per_token,
        )
        (work_dir / ANNOTATIONS_FILE).write_text(json.dumps(result.annotations, indent=1, ensure_ascii=False))
        return self.metrics(result, lc_reason, data)

    def generate_outputs(self, subject: EvalSubject, data: AlpacaEvalSet) -> list[dict]:
        """The subject's outputs in alpaca_eval's format (instruction, output, generator, dataset)."""
        records = [PromptRecord(str(index), row["instruction"]) for index, row in enumerate(data.rows)]
        config = self.generation.sample_config(subject.model)
        sampled = sample_prompts(records, config, progress=self.progress, description="answering")
        return [
            {
                "instruction": row["instruction"],
                "output": group[0],
                "generator": subject.name,
                "dataset": row.get("dataset", ""),
            }
            for row, group in zip(data.rows, sampled.texts, strict=True)
        ]

    def metrics(self, result: JudgeResult, lc_reason: str, data: AlpacaEvalSet) -> dict[str, Any]:
        """Flat metrics: win rate and SE, LC (or why not), length, counts, judge usage and identity."""
        summary = result.summary
        return {
            "win_rate": summary.win_rate,
            "standard_error": summary.standard_error,
            "lc_win_rate": result.lc_win_rate,
            "lc_standard_error": result.lc_standard_error,
            "lc_missing_reason": ""
            if result.lc_win_rate is not None
            else (lc_reason or "the LC fit gave no value"),
            "discrete_win_rate": summary.discrete_win_rate,
            "avg_length": summary.avg_length,
            "n_instructions": len(data.rows),
            "n_total": summary.n_total,
            "n_wins": summary.n_wins,
            "n_wins_base": summary.n_wins_base,
            "n_draws": summary.n_draws,
            "n_missing_annotations": summary.n_missing + summary.n_invalid,
            **self.annotator.identity(),
            "data_revision": data.gamed_revision,
            "judge_cost_usd": result.cost_usd,
            "judge_tokens": result.judge_tokens,
        }
