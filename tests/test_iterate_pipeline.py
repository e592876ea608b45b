"""End to end: two iLR-DPO rounds on the tiny model, lineage, report, resume and refusal."""

from __future__ import annotations

import json

import polars as pl
import pytest

from prefkit.errors import ConfigError
from prefkit.iteration.stage import IterateConfig, iterate
from prefkit.testing.judge_server import FakeJudgeServer
from tests.judge.fakes import between, fast_judge_options


def tiny_run_config(model: str, prompts: str, **changes) -> IterateConfig:
    values = {
        "name": "tiny",
        "policy": model,
        "prompts": prompts,
        "heldout_prompts": prompts,
        "rounds": 2,
        "reference": "previous",
        "sample": {"n": 4, "max_new_tokens": 12, "backend": "transformers"},
        "label": {"labeler": "vader", "length_penalty": 0.01, "length_unit": "chars"},
        "train": {"learning_rate": 5e-3, "epochs": 2, "batch_size": 4},
        "eval_options": {"reward-kl": {"n": 8, "max_new_tokens": 12}},
    }
    values.update(changes)
    return IterateConfig(**values)


@pytest.mark.slow
def test_two_rounds_with_lineage_report_and_resume(tiny_model_dir, prompts_file, tmp_path):
    config = tiny_run_config(str(tiny_model_dir), str(prompts_file))
    run_dir = iterate(config, tmp_path / "run", progress=False)

    lineage = [json.loads((run_dir / f"round-{k:02d}" / "lineage.json").read_text()) for k in (1, 2)]
    assert lineage[0]["policy"] == str(tiny_model_dir)
    assert lineage[1]["policy"] == str(run_dir / "round-01" / "checkpoint")
    assert lineage[1]["reference"] == lineage[1]["policy"]  # reference = previous round's policy
    assert lineage[1]["previous_round"] == str(run_dir / "round-01")

    report = pl.read_parquet(run_dir / "report.parquet")
    assert report["round"].to_list() == [0, 1, 2]
    assert report["kl_mean"][0] == 0.0 and report["kl_mean"][2] > 0.0  # KL to the initial policy
    assert report["pairs"][1] > 0
    assert (run_dir / "rounds.png").stat().st_size > 1000
    assert "round" in (run_dir / "report.md").read_text()

    # a finished run resumes as a no-op: no stage rewrites its artifact
    stamps = {p: p.stat().st_mtime_ns for p in run_dir.glob("round-*/*/manifest.json")}
    iterate(config, run_dir, progress=False)
    assert stamps == {p: p.stat().st_mtime_ns for p in run_dir.glob("round-*/*/manifest.json")}

    # changing a finished run's config is refused, or starts a new folder on request
    changed = tiny_run_config(str(tiny_model_dir), str(prompts_file), label={"labeler": "vader"})
    with pytest.raises(ConfigError, match="changed: label"):
        iterate(changed, run_dir, progress=False)


def test_unknown_stage_option_fails_before_any_work(tiny_model_dir, prompts_file, tmp_path):
    config = tiny_run_config(str(tiny_model_dir), str(prompts_file), sample={"temprature": 0.7})
    with pytest.raises(ConfigError, match="sample.temprature"):
        iterate(config, tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "round-01").exists()


def test_bad_trainer_option_fails_before_any_work(tiny_model_dir, prompts_file, tmp_path):
    config = tiny_run_config(
        str(tiny_model_dir), str(prompts_file), train={"options": {"layout": "diagonal"}}
    )
    with pytest.raises(ConfigError, match="layout must be one of") as info:
        iterate(config, tmp_path / "run", progress=False)
    assert info.value.field == "options.layout"
    assert not (tmp_path / "run").exists()


def longer_wins(messages: list[dict]) -> str:
    """A dpo_helpfulness judge that prefers the longer response (A when equally long)."""
    text = messages[-1]["content"]
    a = between(text, "Response A:\n", "\n\nResponse B:")
    b = between(text, "Response B:\n", "\n\nFIRST")
    return f"Comparison: length.\nMore helpful: {'A' if len(a) >= len(b) else 'B'}"


def expected_outcome(record: dict) -> str:
    output, reference = record["output"], record["reference"]
    first, second = (output, reference) if record["output_shown_first"] else (reference, output)
    output_wins = (len(first) >= len(second)) == record["output_shown_first"]
    return "win" if output_wins else "loss"


def stored_answers(run_dir, round_index: int) -> dict[str, str]:
    (path,) = (run_dir / "winrate" / "answers").glob(f"round-{round_index:02d}-*.jsonl")
    return {row["prompt_id"]: row["answer"] for row in map(json.loads, path.read_text().splitlines())}


@pytest.mark.slow
def test_round_win_rates_against_previous_and_initial_round(tiny_model_dir, prompts_file, tmp_path):
    with FakeJudgeServer(longer_wins) as server:
        judge = fast_judge_options(tmp_path)
        round_winrate = {
            "judge_model": judge["model"],
            "judge_base_url": server.base_url,
            "judge_cache_path": judge["cache_path"],
            "max_new_tokens": 8,
        }
        config = tiny_run_config(
            str(tiny_model_dir), str(prompts_file), evaluators=[], round_winrate=round_winrate
        )
        run_dir = iterate(config, tmp_path / "run", progress=False)
        requests = server.requests
        answer_files = sorted((run_dir / "winrate" / "answers").iterdir())
        stamps = [path.stat().st_mtime_ns for path in answer_files]
        iterate(config, run_dir, progress=False)  # resumed: answers and verdicts come from the caches
        assert server.requests == requests
        assert [path.stat().st_mtime_ns for path in answer_files] == stamps

    answers = {k: stored_answers(run_dir, k) for k in (0, 1, 2)}
    report = pl.read_parquet(run_dir / "report.parquet").to_dicts()
    for round_index, opponent, column in ((2, 1, "win_vs_previous"), (2, 0, "win_vs_initial")):
        folder = run_dir / "winrate" / f"round-{round_index:02d}-vs-round-{opponent:02d}"
        records = [
            json.loads(line) for line in (folder / "winrate_judgements.jsonl").read_text().splitlines()
        ]
        assert len(records) == len(answers[0])
        for record in records:  # each answer was judged against the right round's answer to the same prompt
            assert record["output"] == answers[round_index][record["prompt_id"]]
            assert record["reference"] == answers[opponent][record["prompt_id"]]
            assert record["outcome"] == expected_outcome(record)
        wins = sum(record["outcome"] == "win" for record in records) / len(records)
        assert report[round_index][column] == pytest.approx(wins)
        assert report[round_index][f"{column}_low"] <= wins <= report[round_index][f"{column}_high"]
    assert report[1]["win_vs_previous"] == report[1]["win_vs_initial"]  # round 1's previous round is round 0
    assert "win_vs_initial" in (run_dir / "report.md").read_text()


def test_round_winrate_option_typo_fails_before_any_work(tiny_model_dir, prompts_file, tmp_path):
    config = tiny_run_config(str(tiny_model_dir), str(prompts_file), round_winrate={"judge_modle": "x"})
    with pytest.raises(ConfigError, match="round_winrate"):
        iterate(config, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_length_neutral_mode_picks_each_rounds_lambda_from_its_candidates(
    tiny_model_dir, prompts_file, tmp_path
):
    grid = [0.0, 0.01, 0.05, 0.2]
    config = tiny_run_config(
        str(tiny_model_dir),
        str(prompts_file),
        rounds=1,
        evaluators=[],
        length_penalty_mode="length-neutral",
        length_penalty_grid=grid,
    )
    run_dir = iterate(config, tmp_path / "run", progress=False)
    lineage = json.loads((run_dir / "round-01" / "lineage.json").read_text())
    gaps = {point["length_penalty"]: point["length_gap"] for point in lineage["length_penalty_sweep"]}
    assert sorted(gaps) == grid
    chosen = lineage["length_penalty"]
    assert abs(gaps[chosen]) == min(abs(gap) for gap in gaps.values())
    pairs = pl.read_parquet(run_dir / "round-01" / "preferences" / "data.parquet")
    assert (pairs["len_chosen"] - pairs["len_rejected"]).mean() == pytest.approx(gaps[chosen])
    report = pl.read_parquet(run_dir / "report.parquet")
    assert report["length_penalty"][1] == chosen
    # truncation per side travels from the candidates through the pairs into the round's report row
    assert report["truncated_chosen"][1] == pytest.approx((pairs["finish_chosen"] == "length").mean())
    assert report["truncated_rejected"][1] == pytest.approx((pairs["finish_rejected"] == "length").mean())
    # the default, keep: every completion is trained with its EOS, cut ones included
    assert pairs["eos_chosen"].all() and pairs["eos_rejected"].all()
