"""judge_answer_sets: two answer sets judged pairwise (the core of the winrate evaluator and round win rates)."""

from __future__ import annotations

import json

import pytest

from prefkit.judge.client import JudgeSettings
from prefkit.judge.pairwise import JUDGEMENTS_FILE, USAGE_FILE, PairwiseJudging, judge_answer_sets
from prefkit.judge.templates import load_template
from prefkit.labeling.pairing import row_rng
from prefkit.records import PromptRecord
from prefkit.testing.judge_server import FakeJudgeServer
from tests.judge.fakes import fast_judge_options, helpfulness_judge

ANSWERS = ["I love it, wonderful.", "Great and happy.", "Awful, sad and bad.", "Excellent, good."]
EARLIER = ["It is bad.", "Terrible.", "Lovely, great, wonderful, happy!", "Sad and awful."]


def judging_for(server: FakeJudgeServer, tmp_path, **fields) -> PairwiseJudging:
    options = {**fast_judge_options(tmp_path), "base_url": server.base_url}
    return PairwiseJudging(JudgeSettings.from_options(options), load_template(None, "pairwise"), **fields)


def earlier_round_items() -> list[PromptRecord]:
    # round win rates judge against an earlier round's answers carried as each prompt's reference
    return [PromptRecord(f"p{i}", f"Tell me about thing {i}.", EARLIER[i]) for i in range(len(ANSWERS))]


@pytest.mark.parametrize("both_orders", [False, True])
def test_a_consistent_judge_gives_the_hand_counted_win_rate(tmp_path, both_orders):
    items = earlier_round_items()
    with FakeJudgeServer(helpfulness_judge) as server:
        judging = judging_for(server, tmp_path, both_orders=both_orders, seed=5, bootstrap_resamples=200)
        metrics = judge_answer_sets(judging, items, ANSWERS, tmp_path / "work", progress=False)
        assert server.requests == (8 if both_orders else 4)
    # the judge prefers the warmer answer: ours wins items 0, 1, 3 and loses item 2
    assert (metrics["wins"], metrics["losses"], metrics["ties"], metrics["invalid"]) == (3, 1, 0, 0)
    assert metrics["win_rate"] == 0.75 and metrics["n"] == 4
    assert metrics["ci_low"] <= 0.75 <= metrics["ci_high"] and metrics["confidence"] == 0.95
    assert metrics["mean_output_chars"] == sum(map(len, ANSWERS)) / 4
    records = [json.loads(line) for line in open(tmp_path / "work" / JUDGEMENTS_FILE)]
    assert [r["outcome"] for r in records] == ["win", "win", "loss", "win"]
    assert [r["reference"] for r in records] == EARLIER
    shown_first = [r["output_shown_first"] for r in records]
    expected = [True] * 4 if both_orders else [row_rng(5, f"p{i}").random() >= 0.5 for i in range(4)]
    assert shown_first == expected  # the order is seeded per prompt id, so reruns show the same order
    assert json.loads((tmp_path / "work" / USAGE_FILE).read_text())["requests"] == metrics["judge_requests"]
