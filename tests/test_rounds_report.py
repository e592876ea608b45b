"""The per-round report's pair statistics: truncation rates per side and length against round 0."""

from __future__ import annotations

import pytest

from prefkit.iteration.report import markdown_table, pair_statistics, round_rows
from prefkit.labeling.stage import LabelConfig, label
from tests.labeling.conftest import write_candidates
from tests.labeling.test_truncation import ROWS


class FakeEvaluation:
    """The one method of an evaluation report that round_rows reads."""

    def __init__(self, rows):
        self._rows = rows

    def rows(self, evaluator):
        assert evaluator == "reward-kl"
        return self._rows


def test_truncation_rates_per_side_and_length_vs_round0(tmp_path):
    run_dir = tmp_path / "run"
    candidates = write_candidates(tmp_path / "candidates", ROWS)
    label(candidates, run_dir / "round-01" / "preferences", LabelConfig(truncated="no-eos"), progress=False)
    statistics = pair_statistics(run_dir / "round-01" / "preferences")
    assert statistics["truncated_chosen"] == 1.0
    assert statistics["truncated_rejected"] == 0.5
    assert statistics["truncated_candidates"] == 0.5
    evaluation = FakeEvaluation(
        [
            {"subject": "round-00", "reward_mean": 0.4, "length_chars": 200.0},
            {"subject": "round-01", "reward_mean": 0.5, "length_chars": 190.0},
        ]
    )
    rows = round_rows(run_dir, evaluation, finished_rounds=1)
    assert "length_vs_round0" not in rows[0]
    assert rows[1]["length_vs_round0"] == pytest.approx(-0.05)
    table = markdown_table(rows)
    assert "truncated_chosen" in table and "truncated_rejected" in table and "-0.050" in table


def test_run_report_names_the_truncation_mode(tmp_path):
    from prefkit.iteration.report import write_run_report
    from prefkit.iteration.stage import IterateConfig

    run_dir = tmp_path / "run"
    candidates = write_candidates(tmp_path / "candidates", ROWS)
    label(candidates, run_dir / "round-01" / "preferences", LabelConfig(truncated="drop"), progress=False)
    config = IterateConfig(name="t", rounds=1, label={"truncated": "drop"})
    text = write_run_report(run_dir, config, None, finished_rounds=1).read_text()
    assert "truncated completions: `drop`" in text
    assert "truncated_candidates" in text and "0.500" in text  # 6 of 12 candidates were cut
