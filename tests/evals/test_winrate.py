"""The winrate evaluator: order randomisation, ties as half, bootstrap interval, both reference sources."""

from __future__ import annotations

import json
import math

import pytest
from prefkit_evals.winrate import ReferenceItem, WinRateEvaluator, load_references

from prefkit.errors import ConfigError, InputError
from prefkit.evaluation.stage import EvalSubject
from prefkit.judge.statistics import bootstrap_interval, win_rate
from prefkit.labeling.stage import LabelConfig, label
from prefkit.testing.judge_server import FakeJudgeServer
from tests.judge.fakes import always_a, between, fast_judge_options
from tests.labeling.conftest import SENTIMENT_ROWS, write_candidates

MARK = "REFERENCE-ANSWER"


def reference_loses(messages: list[dict]) -> str:
    """A judge that always prefers the subject's answer (the one without the reference mark)."""
    text = messages[-1]["content"]
    a = between(text, "Response A:\n", "\n\nResponse B:")
    return f"Comparison: fine.\nMore helpful: {'B' if MARK in a else 'A'}"


def evaluator_for(server: FakeJudgeServer, tmp_path, references, **options) -> WinRateEvaluator:
    judge = fast_judge_options(tmp_path)
    extra_judge_options = options.pop("judge_options", {})
    return WinRateEvaluator(
        references=str(references),
        judge_model=judge["model"],
        judge_base_url=server.base_url,
        judge_cache_path=judge["cache_path"],
        judge_options={
            "timeout_s": judge["timeout_s"],
            "backoff_initial_s": 0.001,
            "backoff_max_s": 0.01,
            **extra_judge_options,
        },
        max_new_tokens=6,
        backend="transformers",
        **options,
    )


@pytest.fixture()
def references_file(tmp_path):
    path = tmp_path / "refs.jsonl"
    with open(path, "w") as handle:
        for index in range(6):
            handle.write(
                json.dumps(
                    {
                        "prompt_id": f"r{index}",
                        "prompt": f"Say something {index}.",
                        "reference": f"{MARK} {index}",
                    }
                )
                + "\n"
            )
    return path


def test_bootstrap_and_win_rate_by_hand():
    assert win_rate([1.0, 0.5, 0.0, 1.0]) == pytest.approx(0.625)
    assert math.isnan(win_rate([]))
    assert bootstrap_interval([1.0, 1.0, 1.0]) == (1.0, 1.0)
    assert bootstrap_interval([0.5] * 4) == (0.5, 0.5)
    low, high = bootstrap_interval([0.0, 1.0] * 20, resamples=2000, seed=1)
    # mean 0.5, standard error 0.5/sqrt(40) = 0.079: a 95% interval is about 0.5 +- 0.155
    assert 0.30 < low < 0.40 and 0.60 < high < 0.70
    assert bootstrap_interval([0.0, 1.0] * 20, seed=1) == bootstrap_interval([0.0, 1.0] * 20, seed=1)


@pytest.mark.slow
def test_subject_that_always_wins(tiny_model_dir, references_file, tmp_path):
    with FakeJudgeServer(reference_loses) as server:
        metrics = evaluator_for(server, tmp_path, references_file).evaluate(
            EvalSubject("tiny", str(tiny_model_dir)), tmp_path / "work"
        )
        assert server.requests == 6
    assert metrics["win_rate"] == 1.0 and (metrics["ci_low"], metrics["ci_high"]) == (1.0, 1.0)
    assert (metrics["n"], metrics["ties"], metrics["invalid"]) == (6, 0, 0)
    records = [json.loads(line) for line in open(tmp_path / "work" / "winrate_judgements.jsonl")]
    shown_first = [record["output_shown_first"] for record in records]
    assert any(shown_first) and not all(shown_first)  # the order really was randomised


def test_position_bias_shows_and_both_orders_cancel_it(references_file, tmp_path):
    items = load_references(references_file)
    outputs = [f"answer {index}" for index in range(len(items))]
    with FakeJudgeServer(always_a) as server:
        one_order = evaluator_for(server, tmp_path, references_file, seed=3).judge_outputs(
            items, outputs, tmp_path / "w1"
        )
        records = [json.loads(line) for line in open(tmp_path / "w1" / "winrate_judgements.jsonl")]
        expected = sum(record["output_shown_first"] for record in records) / len(records)
        assert one_order["win_rate"] == pytest.approx(expected)
        both = evaluator_for(server, tmp_path, references_file, both_orders=True).judge_outputs(
            items, outputs, tmp_path / "w2"
        )
    assert both["win_rate"] == 0.5 and both["ties"] == 6  # disagreement in the two orders = tie = half


def test_invalid_verdicts_are_counted_not_guessed(references_file, tmp_path):
    items = load_references(references_file)
    with FakeJudgeServer(lambda messages: "hmm") as server:
        evaluator = evaluator_for(server, tmp_path, references_file, judge_options={"parse_attempts": 1})
        metrics = evaluator.judge_outputs(items, ["x"] * len(items), tmp_path / "w")
    assert metrics["invalid"] == 6 and metrics["n"] == 0 and math.isnan(metrics["win_rate"])


def test_references_from_preferences_artifact(tmp_path):
    candidates = write_candidates(tmp_path / "cands", SENTIMENT_ROWS[:3])
    preferences = label(candidates, tmp_path / "prefs", LabelConfig(), progress=False)
    items = load_references(preferences.path)
    assert [item.prompt_id for item in items] == ["p0", "p1", "p2"]
    assert all("wonderful" in item.reference for item in items)
    assert isinstance(items[0], ReferenceItem)


def test_bad_reference_sources(tmp_path, prompts_file):
    with pytest.raises(InputError, match="no reference answer") as caught:
        load_references(prompts_file)
    assert caught.value.row == 1 and caught.value.field == "reference"
    with pytest.raises(ConfigError, match="needs reference answers"):
        WinRateEvaluator()
