"""`prefkit validate-labeler`: VADER on the shipped set, a tiny reward model and a fake judge on sentiment pairs."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from prefkit.errors import InputError
from prefkit.evaluation.labeler_validation import builtin_reference_path, read_reference, validate_labeler
from prefkit.testing.judge_server import FakeJudgeServer
from tests.judge.fakes import fast_judge_options, helpfulness_judge
from tests.labeling.classifiers import build_reward_model

GOOD = ["good great wonderful", "happy love excellent", "great happy love", "wonderful excellent good"]
BAD = ["bad terrible awful", "sad hate horrible", "awful sad hate", "horrible terrible bad"]


@pytest.fixture()
def sentiment_preferences(tmp_path):
    """Chosen = the positive answer (the reference's pick), as a prefkit preference JSONL."""
    path = tmp_path / "prefs.jsonl"
    rows = [
        {
            "prompt": f"Say something about the {topic}.",
            "chosen": f"The {topic} is {g}.",
            "rejected": f"The {topic} is {b}.",
        }
        for topic in ("movie", "meal", "trip")
        for g, b in zip(GOOD, BAD, strict=True)
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_shipped_set_is_balanced_in_position():
    pairs = read_reference()
    assert len(pairs) == 192 and builtin_reference_path().stat().st_size < 300_000
    second_wins = sum(pair.second_preferred > 0.5 for pair in pairs)
    assert 70 <= second_wins <= 122  # the baseline is shown first or second by a seeded coin


def test_vader_on_the_shipped_set_through_the_cli():
    from prefkit.cli import app

    result = CliRunner().invoke(
        app, ["validate-labeler", "--labeler", "vader", "--max-pairs", "96", "--resamples", "200", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    direct = validate_labeler("vader", max_pairs=96, resamples=200)
    assert {k: v for k, v in report.items() if k != "seconds"} == {
        k: v for k, v in direct.items() if k != "seconds"
    }
    assert (
        report["n_pairs"] == 96 and report["agreement_low"] <= report["agreement"] <= report["agreement_high"]
    )
    assert -1 <= report["kappa"] <= 1 and -1 <= report["length_bias"] <= 1


def test_tiny_reward_model_agrees_with_sentiment_preferences(sentiment_preferences, tiny_model_dir, tmp_path):
    reward_model = build_reward_model(tiny_model_dir, tmp_path / "reward")
    report = validate_labeler(
        "reward-model", {"model": str(reward_model)}, sentiment_preferences, resamples=100
    )
    assert report["n_pairs"] == 12 and report["agreement"] >= 0.75 and report["kappa"] > 0.4


def test_fake_judge_agrees_and_a_reversed_reference_disagrees(sentiment_preferences, tmp_path):
    with FakeJudgeServer(helpfulness_judge) as server:
        options = {**fast_judge_options(tmp_path), "base_url": server.base_url}
        report = validate_labeler("judge", options, sentiment_preferences, resamples=100)
        reversed_file = tmp_path / "reversed.jsonl"
        rows = [json.loads(line) for line in sentiment_preferences.read_text().splitlines()]
        reversed_file.write_text(
            "".join(json.dumps({**r, "chosen": r["rejected"], "rejected": r["chosen"]}) + "\n" for r in rows)
        )
        reversed_report = validate_labeler("judge", options, reversed_file, resamples=100)
    assert report["agreement"] == 1.0 and report["kappa"] == 1.0
    assert reversed_report["agreement"] == 0.0 and reversed_report["kappa"] < 0


def test_bad_reference_rows_name_file_row_and_field(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"prompt": "p", "chosen": "a"}) + "\n")
    with pytest.raises(InputError, match="rejected") as error:
        read_reference(path)
    assert error.value.row == 1


def test_iterate_stops_before_round_one_when_the_labeler_disagrees(
    sentiment_preferences, tiny_model_dir, prompts_file, tmp_path, capsys
):
    from prefkit.errors import ConfigError
    from prefkit.evaluation.labeler_validation import LabelerCheck, check_labeler
    from prefkit.iteration.stage import IterateConfig, iterate

    reversed_file = tmp_path / "reversed.jsonl"
    rows = [json.loads(line) for line in sentiment_preferences.read_text().splitlines()]
    reversed_file.write_text(
        "".join(json.dumps({**r, "chosen": r["rejected"], "rejected": r["chosen"]}) + "\n" for r in rows)
    )
    config = IterateConfig(
        name="check",
        policy=str(tiny_model_dir),
        prompts=str(prompts_file),
        rounds=1,
        label={"labeler": "vader"},
        labeler_check={"reference": str(reversed_file), "min_agreement": 0.6, "resamples": 50},
    )
    with pytest.raises(ConfigError, match="labeler vader agrees with the reference labels on 0.000") as error:
        iterate(config, tmp_path / "run", progress=False)
    assert error.value.field == "labeler_check.min_agreement"
    assert not (tmp_path / "run" / "round-01").exists()  # no round was built on it
    report = json.loads((tmp_path / "run" / "labeler_check.json").read_text())
    assert report["agreement"] == 0.0 and report["labeler"] == "vader"
    warned = check_labeler(
        LabelerCheck(reference=str(reversed_file), on_fail="warn", resamples=50),
        "vader",
        {},
        tmp_path / "warn.json",
        progress=False,
    )
    assert warned["agreement"] == 0.0 and "warning: labeler vader agrees" in capsys.readouterr().err
