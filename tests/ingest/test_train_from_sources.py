"""`prefkit train FILE|FOLDER|HUB_ID`: every accepted format read -> imported -> one DPO step on the tiny model."""

from __future__ import annotations

import pytest
from ingest_helpers import bad_row, rows_for, write_jsonl
from typer.testing import CliRunner

from prefkit.cli import app
from prefkit.conversation import completion_text
from prefkit.errors import InputError
from prefkit.ingest import resolve_preferences
from prefkit.training.stage import TrainConfig, train

FORMATS = {  # fixture name -> detected format
    "trl-standard": "trl-standard",
    "trl-conversational": "trl-conversational",
    "implicit-prompt": "implicit-prompt",
    "implicit-prompt-conversational": "implicit-prompt",
    "hh-rlhf": "hh-rlhf",
    "ultrafeedback-binarized": "ultrafeedback-binarized",
}


def one_step(tiny_model_dir) -> TrainConfig:
    # 4 pairs, batch 4, one epoch: exactly one optimizer step
    return TrainConfig(
        policy=str(tiny_model_dir), epochs=1, batch_size=4, save_every_steps=0, learning_rate=1e-3
    )


@pytest.mark.parametrize("fixture", list(FORMATS))
def test_each_format_trains_one_step(fixture, tiny_model_dir, tmp_path):
    path = write_jsonl(tmp_path / f"{fixture}.jsonl", rows_for(fixture))
    imported = resolve_preferences(path)
    assert imported.manifest.extra["format"] == FORMATS[fixture]
    # lengths are characters of the answer text, and the manifest says so (reports and rounds read it)
    first = imported.table().row(0, named=True)
    assert imported.manifest.extra["length_unit"] == "chars"
    assert first["len_chosen"] == len(completion_text(first["chosen"]))
    assert f"Detected format: **{FORMATS[fixture]}**" in (imported.path / "README.md").read_text()
    checkpoint = train(path, tmp_path / "out", one_step(tiny_model_dir), progress=False)
    assert checkpoint.manifest.counts["steps"] == 1 and checkpoint.manifest.counts["train_pairs"] == 4
    # the checkpoint's input is the imported artifact (its content hash): cache and resume key on it
    assert checkpoint.manifest.inputs["preferences"] == imported.manifest.content_hash


def test_cli_trains_a_csv_with_a_columns_mapping(tiny_model_dir, tmp_path):
    import polars as pl

    rows = [
        {"question": r["prompt"], "response_j": r["chosen"], "response_k": r["rejected"]}
        for r in rows_for("trl-standard")
    ]
    pl.DataFrame(rows).write_csv(tmp_path / "pairs.csv")
    args = [
        "train",
        str(tmp_path / "pairs.csv"),
        "--out",
        str(tmp_path / "out"),
        "--policy",
        str(tiny_model_dir),
    ]
    args += ["--columns", "prompt=question,chosen=response_j,rejected=response_k", "--epochs", "1"]
    result = CliRunner().invoke(app, [*args, "--save-every-steps", "0", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "wrote checkpoint artifact" in result.output
    # the same command again is skipped: the import and the run are keyed by content
    again = CliRunner().invoke(app, [*args, "--save-every-steps", "0", "--no-progress"])
    assert again.exit_code == 0, again.output


def test_save_to_disk_folder_and_dataset_object_train(tiny_model_dir, tmp_path):
    datasets = pytest.importorskip("datasets")
    rows = rows_for("trl-standard")
    splits = datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(rows), "test": datasets.Dataset.from_list(rows[:1])}
    )
    splits.save_to_disk(str(tmp_path / "folder"))
    checkpoint = train(tmp_path / "folder", tmp_path / "a", one_step(tiny_model_dir), progress=False)
    assert checkpoint.manifest.counts["train_pairs"] == 4
    # a datasets.Dataset and a list of dicts with the same rows import to the same artifact
    from_object = train(
        datasets.Dataset.from_list(rows), tmp_path / "b", one_step(tiny_model_dir), progress=False
    )
    from_list = train(rows, tmp_path / "c", one_step(tiny_model_dir), progress=False)
    assert (
        checkpoint.manifest.inputs["preferences"]
        == from_object.manifest.inputs["preferences"]
        == from_list.manifest.inputs["preferences"]
    )


@pytest.mark.parametrize("fixture", list(FORMATS))
def test_bad_input_fails_before_any_output(fixture, tiny_model_dir, tmp_path):
    rows = rows_for(fixture)
    rows[1], field, _ = bad_row(fixture)
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    args = ["train", str(path), "--out", str(tmp_path / "out"), "--policy", str(tiny_model_dir)]
    result = CliRunner().invoke(app, args)
    assert isinstance(result.exception, InputError)
    assert (result.exception.file, result.exception.row, result.exception.field) == (str(path), 2, field)
    assert not (tmp_path / "out").exists()


def test_help_lists_the_source_options():
    result = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    for option in ("--columns", "--split", "--subset", "--revision", "hub dataset id"):
        assert option in result.output


def test_bad_row_exits_2_with_one_line(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    rows = rows_for("hh-rlhf")
    rows[1], _, _ = bad_row("hh-rlhf")
    path = write_jsonl(tmp_path / "hh.jsonl", rows)
    repo = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(repo / ".pp"), PREFKIT_HOME=str(tmp_path / "home"))
    result = subprocess.run(
        [sys.executable, "-m", "prefkit", "train", str(path), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"error: {path}, row 2, field 'rejected': is not an HH-RLHF transcript: "
        "does not end with an '\\n\\nAssistant:' turn"
    ]
    assert not (tmp_path / "out").exists()
