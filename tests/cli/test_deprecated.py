"""Old spellings of the length penalty's command and flags: rewritten to the new ones, one notice each."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from prefkit.cli import app
from prefkit.cli.deprecated import DEPRECATED_COMMANDS, DEPRECATED_FLAGS, translate_deprecated


def test_old_command_and_its_old_flag_become_the_new_ones():
    argv, notices = translate_deprecated(["lambda-sweep", "cands", "--penalties", "0,0.1", "--out", "s.json"])
    assert argv == ["length-penalty-sweep", "cands", "--length-penalties", "0,0.1", "--out", "s.json"]
    assert notices == [
        "`lambda-sweep` is deprecated, use `length-penalty-sweep`",
        "`--penalties` is deprecated, use `--length-penalties`",
    ]


def test_old_flag_with_equals_sign():
    argv, notices = translate_deprecated(["label", "cands", "-o", "p", "--lambda=0.01"])
    assert argv == ["label", "cands", "-o", "p", "--length-penalty=0.01"]
    assert notices == ["`--lambda` is deprecated, use `--length-penalty`"]


@pytest.mark.parametrize(
    "argv",
    [
        ["label", "cands", "--length-penalty", "0.01"],  # current spelling
        ["sample", "--lambda", "1"],  # not a flag of that command: typer reports it as unknown
        ["label", "cands", "--", "--lambda"],  # after `--` it is a value
        ["--help"],
        [],
    ],
)
def test_everything_else_is_left_alone(argv):
    assert translate_deprecated(argv) == (argv, [])


def test_help_shows_only_the_new_names():
    runner = CliRunner()
    top = runner.invoke(app, ["--help"], env={"COLUMNS": "200"}).output
    assert "length-penalty-sweep" in top and "lambda-sweep" not in top
    label_help = runner.invoke(app, ["label", "--help"], env={"COLUMNS": "200"}).output
    assert "--length-penalty" in label_help and "--lambda" not in label_help
    sweep_help = runner.invoke(app, ["length-penalty-sweep", "--help"], env={"COLUMNS": "200"}).output
    assert "--length-penalties" in sweep_help and "--penalties" not in sweep_help


def test_every_new_spelling_exists():
    """The table points at commands and flags that are declared, so an old spelling never leads nowhere."""
    runner = CliRunner()
    assert set(DEPRECATED_FLAGS) >= set(DEPRECATED_COMMANDS.values())
    for command, flags in DEPRECATED_FLAGS.items():
        result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        for new_flag in flags.values():
            assert new_flag in result.output
