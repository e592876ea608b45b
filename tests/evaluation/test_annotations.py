"""Real-world check: published AlpacaEval 2 annotations reproduce the leaderboard's win rates and SEs."""

from __future__ import annotations

import csv
import json
import lzma
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from prefkit.errors import InputError
from prefkit.evaluation.alpaca_data import BASELINE_FILE, bundled_data_dir, read_outputs_file
from prefkit.evaluation.annotations import (
    parse_preference,
    read_annotations,
    summarize_preferences,
    win_rate_from_annotations,
)

# the published annotation files, compressed, with their source and licence (tests/data/alpaca_eval/README.md)
PUBLISHED = Path(__file__).resolve().parents[1] / "data" / "alpaca_eval" / "annotations"
MODELS = ["alpaca-7b", "gpt-3.5-turbo-1106", "phi-2"]


@pytest.fixture(scope="module")
def annotations(tmp_path_factory) -> Path:
    """A folder with the published `<model>.weighted_alpaca_eval_gpt4_turbo.json` files, decompressed."""
    folder = tmp_path_factory.mktemp("alpaca_eval_annotations")
    for packed in sorted(PUBLISHED.glob("*.json.xz")):
        (folder / packed.name.removesuffix(".xz")).write_bytes(lzma.decompress(packed.read_bytes()))
    return folder


def leaderboard_row(model: str) -> dict[str, str]:
    path = bundled_data_dir() / "weighted_alpaca_eval_gpt4_turbo_leaderboard.csv"
    with open(path, newline="") as handle:
        rows = {row[""]: row for row in csv.DictReader(handle)}
    return rows[model]


@pytest.mark.parametrize("model", MODELS)
def test_published_annotations_reproduce_the_leaderboard(model, annotations):
    rows = read_annotations(annotations / f"{model}.weighted_alpaca_eval_gpt4_turbo.json")
    summary = win_rate_from_annotations(rows)
    expected = leaderboard_row(model)
    # the CSV was written from unrounded preferences; the JSON keeps 10 decimals: equal to 1e-12 relative
    assert summary.win_rate == pytest.approx(float(expected["win_rate"]), rel=1e-12, abs=0)
    assert summary.standard_error == pytest.approx(float(expected["standard_error"]), rel=1e-12, abs=0)
    assert summary.discrete_win_rate == pytest.approx(float(expected["discrete_win_rate"]), rel=1e-12)
    for count in ("n_wins", "n_wins_base", "n_draws", "n_total"):
        assert getattr(summary, count) == int(expected[count]), count
    if summary.n_total == 805:
        assert summary.avg_length == int(expected["avg_length"])
    else:  # phi-2: the leaderboard's length is over all 805 outputs, two of which have no annotation
        assert summary.avg_length != int(expected["avg_length"])


def test_standard_error_uses_the_sample_standard_deviation(annotations):
    rows = read_annotations(annotations / "alpaca-7b.weighted_alpaca_eval_gpt4_turbo.json")
    values = [row["preference"] - 1 for row in rows]
    mean = sum(values) / len(values)
    population = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values)) / math.sqrt(len(values))
    summary = win_rate_from_annotations(rows)
    assert summary.standard_error != pytest.approx(100 * population, rel=1e-6)
    assert summary.standard_error == pytest.approx(
        float(leaderboard_row("alpaca-7b")["standard_error"]), rel=1e-12
    )


def test_phi2_annotations_miss_two_of_the_805_instructions(annotations):
    rows = read_annotations(annotations / "phi-2.weighted_alpaca_eval_gpt4_turbo.json")
    instructions = [row["instruction"] for row in read_outputs_file(bundled_data_dir() / BASELINE_FILE)]
    summary = win_rate_from_annotations(rows, instructions)
    assert (summary.n_total, summary.n_missing, summary.n_invalid) == (803, 2, 0)
    assert int(leaderboard_row("phi-2")["n_total"]) == 803


def test_gpt4_preview_against_itself_is_fifty_percent():
    baseline = read_outputs_file(bundled_data_dir() / BASELINE_FILE)
    # alpaca_eval's convention: identical outputs are a draw (1.5) without asking the judge
    rows = [
        {"instruction": r["instruction"], "output_1": r["output"], "output_2": r["output"], "preference": 1.5}
        for r in baseline
    ]
    summary = win_rate_from_annotations(rows)
    expected = leaderboard_row("gpt4_1106_preview")
    assert summary.win_rate == 50.0 == float(expected["win_rate"])
    assert summary.standard_error == 0.0 == float(expected["standard_error"])
    assert summary.n_draws == 805 == int(expected["n_draws"])
    assert summary.avg_length == int(expected["avg_length"]) == 2049


def test_preferences_are_parsed_strictly():
    assert parse_preference(0) == 1.5
    assert parse_preference(1.25) == 1.25
    assert parse_preference(None) is None
    assert parse_preference(float("nan")) is None
    assert parse_preference(3) is None
    assert parse_preference("2") is None
    assert parse_preference(True) is None
    summary = summarize_preferences([2, 1, None, 7, 1.5], n_expected=6)
    # valid: 1, 0, 0.5 -> 50 %; one null + one absent row are missing, 7 is invalid
    assert (summary.win_rate, summary.n_total, summary.n_missing, summary.n_invalid) == (50.0, 3, 2, 1)
    assert summary.standard_error == pytest.approx(100 * 0.5 / math.sqrt(3))  # stdev of (1, 0, 0.5) is 0.5
    with pytest.raises(InputError, match="no valid preference"):
        summarize_preferences([None, None])


def test_read_annotations_names_the_row_without_preference(tmp_path):
    path = tmp_path / "annotations.json"
    path.write_text(json.dumps([{"preference": 2}, {"instruction": "x"}]))
    with pytest.raises(InputError, match=r"row 2, field 'preference'"):
        read_annotations(path)


def test_cli_winrate_from_annotations(annotations):
    from prefkit.cli import app

    path = annotations / "phi-2.weighted_alpaca_eval_gpt4_turbo.json"
    result = CliRunner().invoke(
        app, ["winrate-from-annotations", str(path), "--expected", "alpaca-eval", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["win_rate"] == pytest.approx(float(leaderboard_row("phi-2")["win_rate"]), rel=1e-12)
    assert (data["n_total"], data["n_missing"]) == (803, 2)
    text = CliRunner().invoke(app, ["winrate-from-annotations", str(path)])
    assert "win rate 2.3502 % ± 0.4497" in text.output
