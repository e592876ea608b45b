"""Judging two answer sets against each other: pairwise verdicts, the win rate and its bootstrap interval.

One function, `judge_answer_sets`, used by the `winrate` evaluator (answers vs reference answers) and by
iterate's round win rates (round k's answers vs an earlier round's). The order in which the two
answers are shown is randomised per item (seeded by prompt id) unless `both_orders` asks both orders
(disagreement counts as a tie). Ties count half a win; unparseable verdicts are counted as invalid and
left out, never guessed. The interval is a percentile bootstrap over items.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from prefkit.conversation import Prompt
from prefkit.judge.client import JudgeClient, JudgeSettings
from prefkit.judge.statistics import OUTCOME_VALUE, bootstrap_interval, win_rate
from prefkit.judge.templates import JudgeTemplate
from prefkit.judge.verdicts import INVALID, A, B, compare_both_orders, compare_one_order
from prefkit.labeling.pairing import row_rng

JUDGEMENTS_FILE = "winrate_judgements.jsonl"
USAGE_FILE = "winrate_judge_usage.json"


class JudgedItem(Protocol):
    """A prompt and the answer an output is judged against (a ReferenceItem or a PromptRecord)."""

    prompt_id: str
    prompt: Prompt
    reference: str | None


@dataclass(frozen=True)
class PairwiseJudging:
    """How two answer sets are judged: the judge endpoint and template, order handling and the interval."""

    settings: JudgeSettings
    template: JudgeTemplate
    both_orders: bool = False
    seed: int = 0  # order randomisation and bootstrap
    bootstrap_resamples: int = 1000
    confidence: float = 0.95


def judge_answer_sets(
    judging: PairwiseJudging,
    items: Sequence[JudgedItem],
    outputs: Sequence[str],
    work_dir: Path,
    *,
    progress: bool = True,
) -> dict[str, Any]:
    """Judge `outputs[i]` against `items[i].reference`; returns the win rate metrics of `outputs`.

    Per-item verdicts go to `work_dir/winrate_judgements.jsonl` and the judge's usage to
    `work_dir/winrate_judge_usage.json`.
    """
    comparisons = [(item.prompt, output, item.reference) for item, output in zip(items, outputs, strict=True)]
    client = JudgeClient(judging.settings, progress=progress)
    try:
        if judging.both_orders:
            outcomes = compare_both_orders(client, judging.template, comparisons)
            swapped = [False] * len(items)
        else:
            swapped = [row_rng(judging.seed, item.prompt_id).random() < 0.5 for item in items]
            outcomes = compare_one_order(client, judging.template, comparisons, swapped)
    finally:
        client.close()
    labels = [{A: "win", B: "loss"}.get(outcome, outcome) for outcome in outcomes]
    values = [OUTCOME_VALUE[label] for label in labels if label != INVALID]
    low, high = bootstrap_interval(
        values, resamples=judging.bootstrap_resamples, confidence=judging.confidence, seed=judging.seed
    )
    work_dir.mkdir(parents=True, exist_ok=True)
    with open(work_dir / JUDGEMENTS_FILE, "w", encoding="utf-8") as handle:
        for item, output, label, swap in zip(items, outputs, labels, swapped, strict=True):
            record = {
                "prompt_id": item.prompt_id,
                "prompt": item.prompt,
                "output": output,
                "reference": item.reference,
                "outcome": label,
                "output_shown_first": not swap,
            }
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    usage = client.usage.as_dict()
    (work_dir / USAGE_FILE).write_text(json.dumps(usage, indent=2))
    return {
        "win_rate": win_rate(values),
        "ci_low": low,
        "ci_high": high,
        "confidence": judging.confidence,
        "n": len(values),
        "wins": labels.count("win"),
        "ties": labels.count("tie"),
        "losses": labels.count("loss"),
        "invalid": labels.count(INVALID),
        "judge": judging.settings.model,
        "judge_template": judging.template.name,
        "judge_requests": usage["requests"],
        "judge_cache_hits": usage["cache_hits"],
        "mean_output_chars": sum(len(o) for o in outputs) / len(outputs) if outputs else 0.0,
    }
