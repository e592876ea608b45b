"""Judge win rates across the rounds of an iterative run: round k against round k-1 and round 0.

Each round's policy answers the held-out prompts once (the `winrate` evaluator's generation settings:
greedy by default), and the answers are kept under `<run>/winrate/answers/` keyed by a hash of the
model's content and the generation settings, so a resumed or extended run never generates twice.
A judge then compares round k's answers with round k-1's ("vs previous") and with the initial
policy's ("vs initial") through core's `prefkit.judge.pairwise.judge_answer_sets` (the function the
`winrate` evaluator judges with: order randomisation, ties counted as half, bootstrap interval). The
evaluator is reached only through the `AnswersForJudging` protocol. Judgements land in
`<run>/winrate/round-KK-vs-round-JJ/`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from prefkit.artifacts import atomic_write_text, content_hash
from prefkit.errors import ConfigError
from prefkit.ingest import read_prompts
from prefkit.judge.pairwise import judge_answer_sets
from prefkit.plugins import construct_plugin
from prefkit.protocols import AnswersForJudging
from prefkit.records import PromptRecord

WINRATE_DIR = "winrate"
# round-report columns (win rate of round k, and its bootstrap interval) per opponent
OPPONENTS = {"previous": "win_vs_previous", "initial": "win_vs_initial"}


def build_judge(options: dict[str, Any]) -> AnswersForJudging:
    """The `winrate` evaluator configured from the run's `round_winrate` section (errors name the field)."""
    if "references" in options:
        raise ConfigError(
            "references are the previous and initial rounds' answers here", field="round_winrate.references"
        )
    judge = construct_plugin(
        "evals", "winrate", {"references": "(earlier rounds)", **options}, field="round_winrate"
    )
    if not isinstance(judge, AnswersForJudging):
        raise ConfigError(
            "the installed winrate evaluator cannot answer for round win rates (no AnswersForJudging)",
            field="round_winrate",
        )
    return judge


def answers_path(run_dir: Path, round_index: int, model: str, judge: AnswersForJudging) -> Path:
    """Where one round's held-out answers are kept, named by the model's content and generation settings."""
    settings = json.dumps(judge.answer_settings(), sort_keys=True)
    key = hashlib.sha256(f"{content_hash(model)}|{settings}".encode()).hexdigest()[:16]
    return run_dir / WINRATE_DIR / "answers" / f"round-{round_index:02d}-{key}.jsonl"


def round_answers(
    run_dir: Path, round_index: int, model: str, prompts: list[PromptRecord], judge: AnswersForJudging
) -> list[str]:
    """The round's answers to `prompts`, generated once and then read back."""
    path = answers_path(run_dir, round_index, model, judge)
    if path.exists():
        stored = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if [row["prompt_id"] for row in stored] == [prompt.prompt_id for prompt in prompts]:
            return [row["answer"] for row in stored]
    answers = judge.answer(model, prompts)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        json.dumps({"prompt_id": p.prompt_id, "prompt": p.prompt, "answer": a}, ensure_ascii=False)
        for p, a in zip(prompts, answers, strict=True)
    ]
    atomic_write_text(path, "\n".join(lines) + "\n")
    return answers


def round_winrates(
    run_dir: Path,
    round_index: int,
    models: dict[int, str],
    prompts_source: str | Path,
    options: dict[str, Any],
) -> dict[str, dict[str, Any]]:
    """Judge round `round_index` against the previous round and against round 0 (`models[k]` = policy of round k).

    Returns {"previous": metrics, "initial": metrics} (the winrate evaluator's metrics) and writes them,
    with the options and prompts they were judged with, to `<run>/winrate/round-KK.json`.
    """
    judge = build_judge(options)
    prompts = read_prompts(prompts_source)[: judge.max_prompts]
    answers = round_answers(run_dir, round_index, models[round_index], prompts, judge)
    by_round: dict[int, dict[str, Any]] = {}  # round 1's previous round is the initial policy: judged once
    for opponent_round in sorted({round_index - 1, 0}):
        opponent_answers = round_answers(run_dir, opponent_round, models[opponent_round], prompts, judge)
        items = [
            PromptRecord(prompt.prompt_id, prompt.prompt, reference)
            for prompt, reference in zip(prompts, opponent_answers, strict=True)
        ]
        work_dir = run_dir / WINRATE_DIR / f"round-{round_index:02d}-vs-round-{opponent_round:02d}"
        metrics = judge_answer_sets(judge.judging, items, answers, work_dir)
        by_round[opponent_round] = {**metrics, "opponent_round": opponent_round}
    results = {"previous": by_round[round_index - 1], "initial": by_round[0]}
    stored = {**results, "judged_with": judge_key(options, prompts_source)}
    atomic_write_text(round_winrates_path(run_dir, round_index), json.dumps(stored, indent=2, default=str))
    return results


def round_winrates_path(run_dir: Path, round_index: int) -> Path:
    return run_dir / WINRATE_DIR / f"round-{round_index:02d}.json"


def judge_key(options: dict[str, Any], prompts_source: str | Path) -> dict[str, Any]:
    """What a round's stored win rates depend on besides the (fixed) checkpoints, as JSON values."""
    return json.loads(json.dumps({"options": options, "prompts": str(prompts_source)}, default=str))


def judged_with(run_dir: Path, round_index: int, options: dict[str, Any], prompts_source: str | Path) -> bool:
    """Whether the round's win rates are stored and were judged with these options and prompts."""
    path = round_winrates_path(run_dir, round_index)
    return path.exists() and json.loads(path.read_text()).get("judged_with") == judge_key(
        options, prompts_source
    )


def read_round_winrates(run_dir: Path, round_index: int) -> dict[str, float]:
    """Report columns for one round from its stored win rates (empty when none were judged)."""
    path = round_winrates_path(run_dir, round_index)
    if not path.exists():
        return {}
    stored = json.loads(path.read_text())
    columns: dict[str, float] = {}
    for opponent, column in OPPONENTS.items():
        if opponent in stored:
            columns[column] = stored[opponent]["win_rate"]
            columns[f"{column}_low"] = stored[opponent]["ci_low"]
            columns[f"{column}_high"] = stored[opponent]["ci_high"]
    return columns
