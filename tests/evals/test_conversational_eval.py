"""Evaluators on conversational held-out data: references from conversational pairs, judges see history."""

from __future__ import annotations

from prefkit_evals.winrate import WinRateEvaluator, load_references

from prefkit.ingest import read_prompts
from prefkit.labeling.stage import LabelConfig, label
from prefkit.testing.judge_server import FakeJudgeServer
from tests.judge.fakes import fast_judge_options, helpfulness_judge
from tests.labeling.conftest import write_candidates

HISTORY = [
    {"role": "system", "content": "Be kind."},
    {"role": "user", "content": "Hello"},
    {"role": "assistant", "content": "Hi!"},
    {"role": "user", "content": "Describe the meal."},
]


def test_winrate_references_from_conversational_preferences_are_text(tmp_path):
    rows = [{"prompt_id": "c0", "prompt": HISTORY, "completions": ["A wonderful meal.", "An awful meal."]}]
    preferences = label(
        write_candidates(tmp_path / "cands", rows), tmp_path / "prefs", LabelConfig(), progress=False
    )
    (item,) = load_references(preferences.path)
    assert item.prompt == HISTORY and item.reference == "A wonderful meal."


def test_winrate_judges_conversational_prompts_with_their_history(tmp_path, monkeypatch):
    path = tmp_path / "held-out.jsonl"
    path.write_text(
        '{"prompt_id": "c0", "messages": '
        '[{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi!"}, '
        '{"role": "user", "content": "Describe the meal."}, {"role": "assistant", "content": "An awful meal."}]}\n'
    )
    (record,) = read_prompts(path)
    seen: list[str] = []

    def judge(messages):
        seen.append(messages[-1]["content"])
        return helpfulness_judge(messages)

    monkeypatch.setenv("PREFKIT_TEST_JUDGE_KEY", "sk-test")
    options = fast_judge_options(tmp_path)
    with FakeJudgeServer(judge) as server:
        evaluator = WinRateEvaluator(
            references=str(path),
            judge_model=options["model"],
            judge_base_url=server.base_url,
            judge_api_key_env="PREFKIT_TEST_JUDGE_KEY",
            judge_cache_path=options["cache_path"],
            judge_options={"timeout_s": options["timeout_s"], "backoff_initial_s": 0.001},
        )
        metrics = evaluator.judge_outputs(load_references(path), ["A wonderful meal."], tmp_path / "work")
    assert record.reference == "An awful meal."
    assert metrics["wins"] == 1 and metrics["n"] == 1
    assert "User: Hello\n\nAssistant: Hi!\n\nUser: Describe the meal." in seen[0]
