"""What `prefkit report` reads from artifacts and run folders, and how the page embeds it."""

from __future__ import annotations

import json
import sys

import polars as pl
import pytest

from prefkit.cli import main
from prefkit.report import build_report, collect, default_report_path, render_page
from prefkit.report.collect import read_leaderboard
from prefkit.report.page import embedded_json
from prefkit.report.statistics import constant_columns, per_prompt_mean_and_se
from tests.report.conftest import write_preferences


def test_pairs_keep_texts_lengths_gaps_and_finish_reasons(run_folder):
    data = collect(run_folder / "round-01" / "preferences")
    (pairs,) = data.pair_sets
    first = pairs.rows[0]
    assert first["row"] == 1 and first["prompt"] == "Write one sentence about a movie."
    assert first["chosen"] == "Round 1: a lovely movie." and first["rejected"].startswith(
        "Round 1: a dull movie"
    )
    assert first["gap"] == first["len_chosen"] - first["len_rejected"] == 5 - 10
    assert first["chars_chosen"] == len("Round 1: a lovely movie.")
    assert (first["finish_chosen"], first["finish_rejected"]) == ("stop", "length")
    assert pairs.dropped == {"tie": 2} and pairs.length_unit == "tokens" and pairs.total == 6


def test_a_large_set_embeds_a_seeded_sample_that_keeps_file_row_numbers(tmp_path):
    folder = write_preferences(tmp_path / "big", 1, count=250)
    first = collect(folder, max_pairs=100).pair_sets[0]
    again = collect(folder, max_pairs=100).pair_sets[0]
    assert len(first.rows) == 100 and first.total == 250
    assert "250 pairs" in first.note and "random sample of 100" in first.note
    numbers = [row["row"] for row in first.rows]
    assert numbers == sorted(numbers) and len(set(numbers)) == 100 and max(numbers) <= 250
    assert numbers == [row["row"] for row in again.rows]  # seeded: the same page twice
    assert all(row["prompt_id"] == f"p{row['row'] - 1}" for row in first.rows)  # the row is the file's row


def test_run_folder_has_every_round_candidates_rounds_and_leaderboard(run_folder):
    data = collect(run_folder)
    assert data.kind == "run" and data.title == "iterate run: known-run"
    assert [s.name for s in data.pair_sets] == ["round-01", "round-02"]
    (candidates,) = data.candidate_sets
    picked = candidates.rows[0]["completions"]
    assert [c.get("role") for c in picked] == ["chosen", "rejected", None]
    assert picked[0]["score"] == 0.5 and picked[1]["finish"] == "length"
    assert [r["round"] for r in data.rounds] == [0, 1, 2]
    assert data.leaderboard["constant"] == {"reward-kl/labeler": "vader", "reward-kl/n_prompts": 2}
    names = {p.name for p in data.provenance}
    assert {"run config", "round-01 preferences", "round-01 candidates", "evaluation"} <= names


def test_leaderboard_length_error_bar_is_over_prompts(run_folder):
    board = read_leaderboard(run_folder / "eval")
    by_subject = {row["subject"]: row for row in board["rows"]}
    # per prompt: a = (10 + 20) / 2 = 15, b = 30; s.e. = sd(15, 30) / sqrt(2) = 10.6066 / 1.4142 = 7.5
    assert by_subject["round-01"]["reward-kl/length_chars_se"] == pytest.approx(7.5)
    assert "reward-kl/length_chars_se" not in by_subject["round-00"]  # no samples stored for it
    assert "reward-kl/labeler" not in board["columns"]


def test_statistics_by_hand():
    frame = pl.DataFrame({"subject": ["a", "b"], "same": [1, 1], "other": [1, 2], "model": ["m", "m"]})
    assert constant_columns(frame) == {"same": 1}  # identity columns are never folded
    mean, se = per_prompt_mean_and_se(
        [{"prompt_id": "x", "v": 1.0}, {"prompt_id": "y", "v": 3.0}], lambda s: s["v"]
    )
    assert (mean, se) == (2.0, pytest.approx(1.0))  # sd(1, 3) = sqrt(2); / sqrt(2) = 1
    assert per_prompt_mean_and_se([{"prompt_id": "x", "v": 4.0}], lambda s: s["v"]) == (4.0, 0.0)


def test_conversational_prompts_stay_turns(conversation_preferences):
    row = collect(conversation_preferences).pair_sets[0].rows[0]
    assert [m["role"] for m in row["prompt"]] == ["system", "user", "assistant", "user"]
    assert (row["chosen"], row["rejected"]) == ("Blue.", "I cannot say.")


def test_page_embeds_data_that_cannot_close_its_script(tmp_path):
    text = embedded_json({"t": "</script><script>alert(1)</script> & <!--"})
    assert "</script>" not in text and "<!--" not in text
    assert json.loads(text) == {"t": "</script><script>alert(1)</script> & <!--"}
    folder = write_preferences(tmp_path / "p", 1)
    page = render_page(collect(folder))
    assert page.count("<script") == 2 and "default-src 'none'" in page
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "") and "https://" not in page


def test_report_is_written_beside_an_artifact_not_inside_it(run_folder):
    preferences = run_folder / "round-01" / "preferences"
    before = sorted(p.name for p in preferences.iterdir())
    out = build_report(preferences)
    assert out == default_report_path(preferences) == run_folder / "round-01" / "preferences.report.html"
    assert sorted(p.name for p in preferences.iterdir()) == before  # the artifact's content hash holds
    assert build_report(run_folder) == run_folder / "report.html"


def run_main(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["prefkit", "report", *args])
    with pytest.raises(SystemExit) as caught:
        main()
    return caught.value.code, capsys.readouterr().err.strip()


def test_cli_bad_paths_are_one_line_and_write_nothing(tmp_path, run_folder, monkeypatch, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [
        ((str(tmp_path / "nope"),), "nope: does not exist"),
        ((str(empty),), "neither a finished prefkit artifact"),
        ((str(run_folder), "--out", str(tmp_path)), "field '--out': is a folder"),
        ((str(run_folder), "--out", str(tmp_path / "no" / "x.html")), "folder to write into does not exist"),
    ]
    for args, message in cases:
        code, err = run_main(monkeypatch, capsys, *args)
        assert code == 2 and message in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "run"]
    assert sorted(p.name for p in run_folder.iterdir()) == [
        "eval",
        "iterate.json",
        "report.parquet",
        "round-01",
        "round-02",
    ]


def test_cli_prints_the_page_path(run_folder, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["prefkit", "report", str(run_folder)])
    with pytest.raises(SystemExit) as caught:
        main()
    assert caught.value.code == 0
    assert capsys.readouterr().out.strip() == str(run_folder / "report.html")
