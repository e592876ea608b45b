"""Choosing lambda: the sweep's pair statistics by hand, its agreement with the label stage, and its CLI."""

from __future__ import annotations

import json
import math
import sys

import pytest

from prefkit.cli import main
from prefkit.labeling.length_penalty_sweep import PenaltyPoint, length_neutral_penalty, sweep_point
from prefkit.labeling.stage import LabelConfig, ScoredShard, label

SHARD = ScoredShard(
    prompt_ids=["a", "b"],
    prompts=["first", "second"],
    completions=[["x" * 30, "y" * 10, "z" * 20], ["u" * 10, "v" * 40]],
    scores=[[1.0, 0.8, 0.0], [0.5, 0.2]],
    lengths=[[30, 10, 20], [10, 40]],
)


def test_sweep_point_by_hand():
    config = LabelConfig(length_unit="chars")
    # lambda 0: prompt a pairs 0 (30 chars) over 2 (20): gap +10, margin 1.0; prompt b pairs 0 over 1: gap -30, margin 0.3
    assert sweep_point([SHARD], config, 0.0) == PenaltyPoint(0.0, 2, -10.0, 0.5, 0.65, 0.0, 0.0)
    # lambda 0.02: prompt a's adjusted scores are 0.4, 0.6, -0.4, so 1 (10 chars) beats 2: gap -10, margin 0.8
    point = sweep_point([SHARD], config, 0.02)
    assert (point.pairs, point.length_gap, point.chosen_longer) == (2, -20.0, 0.0)
    assert point.score_margin == pytest.approx(0.55)


def test_length_neutral_penalty_is_the_gap_closest_to_zero():
    def points(gaps, pairs=5):
        return [PenaltyPoint(0.001 * i, pairs, gap, 0.5, 0.1) for i, gap in enumerate(gaps)]

    assert length_neutral_penalty(points([10.0, 3.0, -4.0, -13.0])) == pytest.approx(0.001)
    assert length_neutral_penalty(points([2.0, -2.0])) == 0.0  # a tie goes to the smaller lambda
    assert length_neutral_penalty(points([math.nan], pairs=0)) is None


def test_cli_sweep_agrees_with_the_label_stage(sentiment_candidates, tmp_path, monkeypatch, capsys):
    out = tmp_path / "sweep.json"
    argv = ["prefkit", "length-penalty-sweep", str(sentiment_candidates), "--length-unit", "chars"]
    monkeypatch.setattr(sys, "argv", [*argv, "--length-penalties", "0.5,0", "--out", str(out)])
    with pytest.raises(SystemExit) as caught:
        main()
    assert caught.value.code == 0
    printed = capsys.readouterr().out
    assert "| 0.5 |" in printed and "length-neutral lambda" in printed
    sweep = json.loads(out.read_text())
    assert [point["length_penalty"] for point in sweep["points"]] == [0.0, 0.5]

    pairs = label(
        sentiment_candidates, tmp_path / "prefs", LabelConfig(length_unit="chars"), progress=False
    ).table()
    gap = (pairs["len_chosen"] - pairs["len_rejected"]).mean()
    assert sweep["points"][0]["pairs"] == pairs.height == 8
    assert sweep["points"][0]["length_gap"] == pytest.approx(gap)
    assert gap > 0 and sweep["points"][1]["length_gap"] < 0  # a large lambda prefers the short neutral one
    # gaps are +5 (lambda 0) and -18 (lambda 0.5) characters: 0 is closer to neutral
    assert sweep["length_neutral_penalty"] == 0.0


def test_cli_bad_penalty_is_one_line(sentiment_candidates, monkeypatch, capsys):
    monkeypatch.setattr(
        sys,
        "argv",
        ["prefkit", "length-penalty-sweep", str(sentiment_candidates), "--length-penalties", "0,abc"],
    )
    with pytest.raises(SystemExit) as caught:
        main()
    assert caught.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "penalties" in err and "'abc' is not a number" in err and "\n" not in err


def test_deprecated_command_and_flag_give_the_same_sweep(sentiment_candidates, tmp_path, monkeypatch, capsys):
    sweeps = {}
    for name, command, flag in (
        ("new", "length-penalty-sweep", "--length-penalties"),
        ("old", "lambda-sweep", "--penalties"),
    ):
        out = tmp_path / f"{name}.json"
        argv = [
            "prefkit",
            command,
            str(sentiment_candidates),
            "--length-unit",
            "chars",
            flag,
            "0,0.5",
            "-o",
            str(out),
        ]
        monkeypatch.setattr(sys, "argv", argv)
        with pytest.raises(SystemExit) as caught:
            main()
        assert caught.value.code == 0
        sweeps[name] = (json.loads(out.read_text())["points"], capsys.readouterr().err.strip().splitlines())
    assert sweeps["old"][0] == sweeps["new"][0]
    assert sweeps["new"][1] == []
    assert sweeps["old"][1] == [
        "`lambda-sweep` is deprecated, use `length-penalty-sweep`",
        "`--penalties` is deprecated, use `--length-penalties`",
    ]


def test_deprecated_module_name_still_imports():
    import importlib
    import sys as system

    system.modules.pop("prefkit.labeling.penalty_sweep", None)
    with pytest.warns(DeprecationWarning, match="length_penalty_sweep"):
        old = importlib.import_module("prefkit.labeling.penalty_sweep")
    from prefkit.labeling.length_penalty_sweep import length_penalty_sweep

    assert old.penalty_sweep is length_penalty_sweep
