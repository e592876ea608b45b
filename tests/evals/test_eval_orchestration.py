"""prefkit.evaluation.stage: subjects, config validation, the per-checkpoint cache, the artifact, leaderboard and plots."""

from __future__ import annotations

import shutil

import polars as pl
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from prefkit.errors import ArtifactError, ConfigError, ModelError
from prefkit.evaluation.leaderboard import format_value, markdown_table
from prefkit.evaluation.plots import frontier, write_plots
from prefkit.evaluation.stage import (
    EvalConfig,
    EvalSubject,
    build_evaluator,
    evaluate,
    load_report,
    parse_subject,
)


def test_parse_subject():
    assert parse_subject("runs/beta0.1/") == EvalSubject("beta0.1", "runs/beta0.1/")
    assert parse_subject("base=smollm2") == EvalSubject("base", "smollm2")
    assert parse_subject("org/model") == EvalSubject("model", "org/model")
    assert parse_subject("runs/a=b") == EvalSubject("a=b", "runs/a=b")


def test_config_validation():
    with pytest.raises(ValidationError, match="not run"):
        EvalConfig(evaluators=["reward-kl"], options={"alpaca-eval": {}})
    with pytest.raises(ValidationError, match="repeated"):
        EvalConfig(evaluators=["reward-kl", "reward-kl"])
    with pytest.raises(ConfigError, match=r"cannot honour option 'promts'.*its options: .*prompts") as error:
        build_evaluator("reward-kl", {"promts": "x"})
    assert error.value.field == "options.reward-kl.promts"


def test_frontier_and_formatting():
    # (KL, reward): B dominates A; C has more reward for more KL; D is dominated by C
    points = [(0.5, 0.1), (0.2, 0.3), (1.0, 0.6), (1.2, 0.5)]
    assert frontier(points) == [1, 2]
    assert format_value(0.123456, 0.01) == "0.1235 ± 0.01"
    assert format_value(None) == "-" and format_value(7) == "7"


def test_leaderboard_table_and_plots_from_a_frame(tmp_path):
    frame = pl.DataFrame(
        {
            "subject": ["a", "b"],
            "model": ["x", "y"],
            "content_hash": ["1", "2"],
            "reward-kl/reward_mean": [0.1, 0.4],
            "reward-kl/reward_se": [0.01, 0.02],
            "reward-kl/kl_mean": [0.0, 2.5],
            "reward-kl/length_chars": [100.0, 140.0],
            "alpaca-eval/win_rate": [10.0, 12.5],
            "alpaca-eval/standard_error": [1.0, 1.5],
            "alpaca-eval/lc_win_rate": [None, None],
            "alpaca-eval/lc_missing_reason": [
                "LC is defined on the full 805-instruction set only (this run used 5)"
            ]
            * 2,
        },
        strict=False,
    )
    table = markdown_table(frame)
    assert "| a | 0.1 ± 0.01 |" in table and "10 ± 1" in table
    assert "reward-kl/reward_se" not in table.splitlines()[0]  # shown beside its metric
    assert "Notes:" in table and "805-instruction" in table
    names = [path.name for path in write_plots(frame, tmp_path)]
    assert names == ["reward_vs_kl.png", "win_rate.png", "lengths.png"]
    assert all((tmp_path / name).read_bytes()[:4] == b"\x89PNG" for name in names)


def test_evaluate_caches_per_checkpoint(tiny_model_dir, prompts_file, tmp_path):
    second = tmp_path / "second"
    shutil.copytree(tiny_model_dir, second)
    (second / "marker.txt").write_text("different content, different hash")
    config = EvalConfig(
        evaluators=["reward-kl"],
        options={
            "reward-kl": {
                "prompts": str(prompts_file),
                "n": 1,
                "max_new_tokens": 4,
                "max_prompts": 2,
                "backend": "transformers",
            }
        },
    )
    out, cache = tmp_path / "eval", tmp_path / "cache"
    first = evaluate([f"base={tiny_model_dir}"], out, config, progress=False, cache_dir=cache)
    assert (first.evaluated, first.reused) == (1, 0)
    grown = evaluate([f"base={tiny_model_dir}", str(second)], out, config, progress=False, cache_dir=cache)
    assert (grown.evaluated, grown.reused) == (1, 1)
    assert grown.leaderboard["subject"].to_list() == ["base", "second"]
    assert grown.leaderboard["reward-kl/n_samples"].to_list() == [2, 2]
    assert {p.name for p in grown.plots} == {"reward_vs_kl.png", "lengths.png"}
    assert (out / "results" / "second" / "reward-kl" / "reward_kl_samples.jsonl").exists()
    report = grown.report.read_text()
    assert "## Leaderboard" in report and "![reward_vs_kl.png](reward_vs_kl.png)" in report
    assert pl.read_parquet(out / "leaderboard.parquet").height == 2
    same = evaluate([f"base={tiny_model_dir}", str(second)], out, config, progress=False, cache_dir=cache)
    assert same.evaluated == 0 and load_report(out).leaderboard.equals(grown.leaderboard)
    forced = evaluate(
        [f"base={tiny_model_dir}", str(second)], out, config, force=True, progress=False, cache_dir=cache
    )
    assert (forced.evaluated, forced.reused) == (2, 0)
    with pytest.raises(ConfigError, match="distinct"):
        evaluate(
            [f"x={tiny_model_dir}", f"x={second}"], tmp_path / "dup", config, progress=False, cache_dir=cache
        )


def test_missing_checkpoint_fails_before_any_evaluation(prompts_file, tmp_path):
    config = EvalConfig(evaluators=["reward-kl"], options={"reward-kl": {"prompts": str(prompts_file)}})
    with pytest.raises(ModelError, match="model folder does not exist"):
        evaluate(
            [str(tmp_path / "missing")], tmp_path / "out", config, progress=False, cache_dir=tmp_path / "c"
        )
    assert not (tmp_path / "out").exists() and not (tmp_path / "c").exists()


def test_evaluate_refuses_to_overwrite_a_non_eval_folder(tiny_model_dir, prompts_file, tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    config = EvalConfig(evaluators=["reward-kl"], options={"reward-kl": {"prompts": str(prompts_file)}})
    with pytest.raises(ArtifactError, match="not a finished prefkit artifact"):
        evaluate([str(tiny_model_dir)], out, config, progress=False, cache_dir=tmp_path / "cache")


def test_cli_eval(tiny_model_dir, prompts_file, tmp_path, monkeypatch):
    from prefkit.cli import app

    monkeypatch.setenv("PREFKIT_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    help_text = runner.invoke(app, ["eval", "--help"]).output
    for flag in ("--evaluator", "--option", "--out", "--force", "--config", "--no-plots"):
        assert flag in help_text
    args = ["eval", f"tiny={tiny_model_dir}", "-o", str(tmp_path / "out"), "-q", "--no-plots"]
    args += ["-O", f"prompts={prompts_file}", "-O", "n=1", "-O", "max_new_tokens=3", "-O", "max_prompts=2"]
    args += ["-O", "backend=transformers"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "evaluated 1, reused 0" in result.output and "| tiny |" in result.output
    ambiguous = runner.invoke(
        app,
        [
            "eval",
            str(tiny_model_dir),
            "-o",
            str(tmp_path / "o2"),
            "-e",
            "reward-kl",
            "-e",
            "alpaca-eval",
            "-O",
            "n=1",
        ],
    )
    assert isinstance(ambiguous.exception, ConfigError) and "ambiguous" in str(ambiguous.exception)


def test_leaderboard_will_not_rank_results_from_different_judges_silently():
    from prefkit.evaluation.leaderboard import judge_conflicts

    frame = pl.DataFrame(
        {
            "subject": ["a", "b"],
            "model": ["x", "y"],
            "content_hash": ["1", "2"],
            "alpaca-eval/win_rate": [30.0, 35.0],
            "alpaca-eval/judge_model": ["gpt-4-1106-preview", "gpt-4.1"],
            "alpaca-eval/alpaca_eval_version": ["0.6.6", "0.6.6"],
        }
    )
    conflicts = judge_conflicts(frame)
    assert conflicts == [
        "alpaca-eval results were judged differently: judge_model (gpt-4-1106-preview vs gpt-4.1). "
        "Their win rates are not comparable and are not ranked against each other."
    ]
    assert markdown_table(frame).startswith("**Not comparable:** alpaca-eval results were judged differently")
    same = frame.with_columns(pl.lit("gpt-4.1").alias("alpaca-eval/judge_model"))
    assert judge_conflicts(same) == [] and markdown_table(same).startswith("| subject |")
