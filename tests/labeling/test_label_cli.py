"""`prefkit label`: help explains the options, a run writes the artifact, errors are one line."""

from __future__ import annotations

import sys

import pytest
from typer.testing import CliRunner

from prefkit.cli import app, main


def test_help_lists_every_option():
    result = CliRunner().invoke(app, ["label", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in (
        "--out",
        "--labeler",
        "--labeler-options",
        "--pairing",
        "--min-margin",
        "--length-penalty",
        "--length-unit",
        "--seed",
        "--shard-size",
        "--license",
        "--force",
        "--no-progress",
    ):
        assert option in result.output


def test_label_command_writes_artifact(sentiment_candidates, tmp_path):
    out = tmp_path / "prefs"
    args = [
        "label",
        str(sentiment_candidates),
        "--out",
        str(out),
        "--no-progress",
        "--pairing",
        "all-pairs",
        "--min-margin",
        "0.5",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "pairs from 8 prompts" in result.output and (out / "data.parquet").exists()
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and again.output == result.output


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--pairing", "tournament"], "pairing"),
        (["--labeler-options", "[1]"], "must be a JSON object"),
        (["--labeler", "nope"], "no labeler plugin named 'nope'"),
    ],
)
def test_bad_options_print_one_line(sentiment_candidates, tmp_path, monkeypatch, capsys, extra, message):
    argv = [
        "prefkit",
        "label",
        str(sentiment_candidates),
        "--out",
        str(tmp_path / "p"),
        "--no-progress",
        *extra,
    ]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as caught:
        main()
    assert caught.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and "\n" not in err


def test_missing_candidates_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(
        sys, "argv", ["prefkit", "label", str(tmp_path / "none"), "--out", str(tmp_path / "p")]
    )
    with pytest.raises(SystemExit):
        main()
    assert "does not exist" in capsys.readouterr().err


def test_deprecated_lambda_flag_still_sets_the_length_penalty(
    sentiment_candidates, tmp_path, monkeypatch, capsys
):
    out = tmp_path / "prefs"
    argv = [
        "prefkit",
        "label",
        str(sentiment_candidates),
        "-o",
        str(out),
        "--no-progress",
        "--lambda",
        "0.01",
    ]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as caught:
        main()
    assert caught.value.code == 0
    err = capsys.readouterr().err
    assert err.strip() == "`--lambda` is deprecated, use `--length-penalty`"
    from prefkit.artifacts import open_artifact

    assert open_artifact(out, "preferences").manifest.config["length_penalty"] == 0.01
