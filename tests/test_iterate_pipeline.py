"""End to end: two iLR-DPO rounds on the tiny model, lineage, report, resume and refusal."""

from __future__ import annotations

import json

import polars as pl
import pytest

from prefkit.errors import ConfigError
from prefkit.iterate import IterateConfig, iterate


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
        "eval_options": {"reward-kl": {"n": 2, "max_new_tokens": 12}},
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
