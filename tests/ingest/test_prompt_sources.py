"""Prompt readers (sample, eval prompts, iterate) take CSV files, `datasets` folders and hub ids too."""

from __future__ import annotations

import time

import pytest

from prefkit.errors import InputError
from prefkit.ingest import read_prompts


def test_csv_prompts(tmp_path):
    (tmp_path / "p.csv").write_text('prompt_id,prompt\na,"Hello, there"\nb,42\n')
    records = read_prompts(tmp_path / "p.csv")
    assert [(r.prompt_id, r.prompt) for r in records] == [("a", "Hello, there"), ("b", "42")]


def test_csv_prompt_errors_name_the_data_row(tmp_path):
    (tmp_path / "p.csv").write_text("prompt\nfine\n   \n")
    with pytest.raises(InputError) as error:
        read_prompts(tmp_path / "p.csv")
    assert (error.value.row, error.value.field) == (2, "prompt")
    assert str(tmp_path / "p.csv") in str(error.value)


def test_datasets_folder_prompts(tmp_path):
    datasets = pytest.importorskip("datasets")
    rows = [{"prompt": f"Say {word}.", "reference": word} for word in ("yes", "no")]
    datasets.DatasetDict({"train": datasets.Dataset.from_list(rows)}).save_to_disk(str(tmp_path / "set"))
    records = read_prompts(tmp_path / "set")
    assert [r.prompt for r in records] == ["Say yes.", "Say no."] and records[1].reference == "no"


def test_offline_hub_prompts_fail_at_once(monkeypatch):
    pytest.importorskip("datasets")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    with pytest.raises(InputError, match="save_to_disk") as error:
        read_prompts("no-such-org/prompts")
    assert time.perf_counter() - started < 10 and "\n" not in str(error.value)


def test_sample_cli_reads_a_datasets_folder_split_with_columns(tmp_path, tiny_model_dir):
    datasets = pytest.importorskip("datasets")
    from typer.testing import CliRunner

    from prefkit.artifacts import open_artifact
    from prefkit.cli import app

    train = datasets.Dataset.from_list([{"question": "Say yes."}, {"question": "Say no."}])
    test = datasets.Dataset.from_list([{"question": "Say maybe."}])
    datasets.DatasetDict({"train": train, "test": test}).save_to_disk(str(tmp_path / "set"))
    args = ["sample", str(tmp_path / "set"), "-o", str(tmp_path / "out"), "--model", str(tiny_model_dir)]
    args += ["--columns", "prompt=question", "--split", "test", "--backend", "transformers"]
    args += ["-n", "2", "--max-new-tokens", "3", "--dtype", "float32", "--quiet"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert open_artifact(tmp_path / "out", "candidates").table()["prompt"].to_list() == ["Say maybe."]


def test_columns_mapping_errors_name_the_original_file(tmp_path):
    from prefkit.ingest.prompts import materialise_prompts

    (tmp_path / "q.csv").write_text('question\nfine\n""\n')
    with pytest.raises(InputError) as error:
        materialise_prompts(tmp_path / "q.csv", columns="prompt=question")
    assert error.value.file == str(tmp_path / "q.csv") and error.value.row == 2
